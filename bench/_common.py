"""Shared pieces of the benchmarks: the naive asyncio batcher (the in-process peer to
beat), closed-loop load drivers, model builders and result formatting."""

from __future__ import annotations

import asyncio
import json
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from typing_extensions import Self

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))


class NaiveBatcher:
    """What one writes by hand in an afternoon: an asyncio.Queue; a task takes whatever is
    waiting (up to ``max_batch``), runs ``InferenceSession.run`` on the concatenation in a
    thread, splits the result and resolves each caller's future."""

    def __init__(self, session: Any, input_name: str, max_batch: int = 64) -> None:
        self.session = session
        self.input_name = input_name
        self.max_batch = max_batch
        self.queue: asyncio.Queue[tuple[np.ndarray, asyncio.Future[list[np.ndarray]]]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self.task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()

    async def infer(self, x: np.ndarray) -> list[np.ndarray]:
        fut: asyncio.Future[list[np.ndarray]] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((x, fut))
        return await fut

    async def _loop(self) -> None:
        while True:
            items = [await self.queue.get()]
            while len(items) < self.max_batch and not self.queue.empty():
                items.append(self.queue.get_nowait())
            batch = np.concatenate([x for x, _ in items])
            outs = await asyncio.to_thread(self.session.run, None, {self.input_name: batch})
            row = 0
            for x, fut in items:
                k = x.shape[0]
                fut.set_result([o[row : row + k] for o in outs])
                row += k


@dataclass
class Result:
    """One measured configuration."""

    name: str
    concurrency: int
    requests: int
    seconds: float
    p50_us: float
    p99_us: float

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


async def closed_loop(call: Callable[[], Awaitable[Any]], concurrency: int, requests: int, warmup: int = 200) -> tuple[float, list[float]]:
    """``concurrency`` clients each issue requests back to back until ``requests`` are done;
    returns elapsed seconds and per-request latencies."""
    for _ in range(warmup):
        await call()
    latencies: list[float] = []
    remaining = requests

    async def client() -> None:
        nonlocal remaining
        perf = time.perf_counter
        while remaining > 0:
            remaining -= 1
            start = perf()
            await call()
            latencies.append(perf() - start)

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies


def summarize(name: str, concurrency: int, elapsed: float, latencies: list[float]) -> Result:
    latencies = sorted(latencies)
    return Result(name, concurrency, len(latencies), elapsed, latencies[len(latencies) // 2] * 1e6, latencies[int(len(latencies) * 0.99)] * 1e6)


def median_result(rounds: list[Result]) -> Result:
    """The round with the median throughput (its own latencies): robust to the drift of a
    shared 2-core VM, where single runs of the same configuration differ by 2x."""
    ordered = sorted(rounds, key=lambda r: r.throughput)
    return ordered[len(ordered) // 2]


def mlp_spec(model: Path, max_queue_delay_us: int = 0, max_batch_size: int = 64, host: str = "auto", *, max_queue_size: int = 4096,
             adaptive: bool | None = None) -> str:
    """The spec the MLP benchmarks serve: one instance, one intra-op thread, batches taking
    what is waiting (like the naive batcher), up to ``max_batch_size`` rows; ``adaptive``
    None keeps the spec's default."""
    adaptive_line = "" if adaptive is None else f"adaptive = {str(adaptive).lower()}\n"
    return f"""
[monitoring]
log_level = "warning"
[models.mlp]
backend = "onnxruntime"
path = "{model}"
[models.mlp.batching]
max_batch_size = {max_batch_size}
max_queue_delay_us = {max_queue_delay_us}
max_queue_size = {max_queue_size}
{adaptive_line}[models.mlp.onnxruntime]
intra_op_threads = 1
inter_op_threads = 1
host = "{host}"
"""


def identity_onnx(path: Path, width: int = 16) -> Path:
    """An ONNX Identity model: input ``x`` float32 [N, width] → output ``y``."""
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", width])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def ort_session(path: Path, threads: int = 1) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def print_table(results: list[Result], unit: str = "req/s") -> None:
    print(f"{'configuration':44s} {'conc':>5s} {unit:>12s} {'p50 us':>9s} {'p99 us':>9s}")
    for r in results:
        print(f"{r.name:44s} {r.concurrency:5d} {r.throughput:12,.0f} {r.p50_us:9.1f} {r.p99_us:9.1f}")


def save(results: list[Result], path: Path, extra: dict[str, Any]) -> None:
    import onnxruntime

    meta = {"python": platform.python_version(), "machine": platform.machine(), "onnxruntime": onnxruntime.__version__,
            "cpus": __import__("os").cpu_count(), **extra}
    payload = {"meta": meta, "results": [dict(asdict(r), throughput=r.throughput) for r in results]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x"


__all__ = ["NaiveBatcher", "Result", "closed_loop", "identity_onnx", "median_result", "mlp_spec", "ort_session", "print_table", "ratio", "save", "statistics", "summarize"]
