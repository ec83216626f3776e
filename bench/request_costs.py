"""Where one request's time goes at concurrency 64 on the identity model (the case of
`overhead.py` that is bound by per-request Python work on the event loop).

Timers wrap the runtime's two per-request phases on the loop thread: submission (input
checks; then, in a burst, the doorbell's concatenation and `ir_model_submit_many`, or alone
descriptors and `ir_model_submit`) and completion delivery (the drain: completion records,
row views, resolving futures). The rest is asyncio and the client loop. The naive batcher's
whole request is measured in the same round for scale. The timers add ~0.2 µs per phase.

Run: python bench/request_costs.py [--requests 40000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import NaiveBatcher, closed_loop, identity_onnx, ort_session
from overhead import SPEC  # the same identity model and batching as overhead.py

import infer_runtime


def timed(function: Any, totals: dict[str, float], key: str) -> Any:
    """``function`` with its wall time added to ``totals[key]``."""

    def wrapper(*args: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args)
        finally:
            totals[key] += time.perf_counter() - start

    return wrapper


class _TimedStage:
    """An engine model whose ``stage`` is timed (its class has slots: no per-instance patch)."""

    def __init__(self, model: Any, totals: dict[str, float]) -> None:
        self._model = model
        self.stage = timed(model.stage, totals, "submit")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


async def one_round(spec: Path, session: Any, x: np.ndarray, requests: int) -> tuple[float, dict[str, float], float]:
    totals = {"submit": 0.0, "deliver": 0.0}
    async with infer_runtime.Runtime.from_spec(spec, environ={}) as rt:
        await closed_loop(lambda: rt.infer("echo", {"x": x}), 64, 0)  # warm up
        # Submission: checked and held per request (stage), submitted per burst (the doorbell),
        # or submitted alone (submit).
        rt._core.submit = timed(rt._core.submit, totals, "submit")  # type: ignore[method-assign]
        rt._serving = {name: _TimedStage(m, totals) for name, m in rt._serving.items()}
        rt._ring_doorbell = timed(rt._ring_doorbell, totals, "submit")  # type: ignore[method-assign]
        rt._drain = timed(rt._drain, totals, "deliver")  # type: ignore[method-assign]
        elapsed, _ = await closed_loop(lambda: rt.infer("echo", {"x": x}), 64, requests, warmup=0)
    async with NaiveBatcher(session, "x") as naive:
        await closed_loop(lambda: naive.infer(x), 64, 0)
        naive_elapsed, _ = await closed_loop(lambda: naive.infer(x), 64, requests, warmup=0)
    return elapsed, totals, naive_elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    spec = tmp / "costs.toml"
    spec.write_text(SPEC.format(spin=50))
    session = ort_session(identity_onnx(tmp / "identity.onnx"))
    x = np.ones((1, 16), np.float32)
    n = args.requests
    print("round   ours us/req   submit   deliver   asyncio+client   naive us/req   ratio")
    for r in range(args.rounds):
        elapsed, totals, naive_elapsed = await one_round(spec, session, x, n)
        ours, naive = elapsed / n * 1e6, naive_elapsed / n * 1e6
        submit, deliver = totals["submit"] / n * 1e6, totals["deliver"] / n * 1e6
        print(f"{r + 1:5d}   {ours:11.2f}   {submit:6.2f}   {deliver:7.2f}   {ours - submit - deliver:14.2f}   {naive:12.2f}   {naive / ours:5.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
