"""(Named http_bench.py, not http.py: a script called http.py shadows the standard
library's http package.)

A bounded closed-loop load generator for any KServe v2 server (HTTP JSON, HTTP binary,
gRPC), and the comparison run of issue 14: our server (adaptive queue delay, the fixed
window, no delay) vs a plain FastAPI + uvicorn app and PyTriton on the 64 → 256 → 256 → 10
MLP with Triton's batching settings, the same payloads and the same load generator.

    python bench/http_bench.py [--pytriton-python .pt/bin/python]   # starts every server itself
    python bench/http_bench.py load --url http://127.0.0.1:8000 --model mlp --shape 1,256 \\
        --format binary --concurrency 1,16,64 --duration 5      # against any v2 server
    python bench/http_bench.py load --grpc 127.0.0.1:8001 --model mlp --shape 1,256

Targets (issue 14), at concurrency 64: ≥ 5x PyTriton's throughput, ≥ 3x FastAPI's, ≥ 0.95x
the fixed window's; at concurrency 1: p50 ≤ FastAPI's and within 1.1x of
max_queue_delay_us = 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "runtime"))


@dataclass
class LoadResult:
    label: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


def http_payload(shape: list[int], fmt: str) -> tuple[bytes, dict[str, str]]:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    if fmt == "json":
        body = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": shape, "data": x.ravel().tolist()}]}).encode()
        return body, {"Content-Type": "application/json"}
    header = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": shape, "parameters": {"binary_data_size": x.nbytes}}],
                         "parameters": {"binary_data_output": True}}).encode()
    return header + x.tobytes(), {"Inference-Header-Content-Length": str(len(header))}


async def _closed_loop(send, concurrency: int, duration_s: float, max_requests: int, label: str) -> LoadResult:  # type: ignore[no-untyped-def]
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + duration_s

    async def client() -> None:
        nonlocal errors
        while time.perf_counter() < stop_at and len(latencies) + errors < max_requests:
            start = time.perf_counter()
            ok = await send()
            if ok:
                latencies.append(time.perf_counter() - start)
            else:
                errors += 1

    async def progress() -> None:
        while True:
            await asyncio.sleep(0.5)
            print(f"\r  {label:44s} c={concurrency:<3d} {len(latencies):7d} ok {errors:5d} errors", end="", file=sys.stderr, flush=True)

    ticker = asyncio.create_task(progress())
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ticker.cancel()
    print("\r" + " " * 90 + "\r", end="", file=sys.stderr)
    lat = sorted(latencies) or [float("nan")]
    pick = lambda q: lat[min(len(lat) - 1, int(len(lat) * q))] * 1e3
    return LoadResult(label, concurrency, len(latencies), errors, elapsed, pick(0.5), pick(0.9), pick(0.99))


async def load_http(url: str, model: str, shape: list[int], fmt: str, concurrency: int, duration_s: float, label: str, max_requests: int = 10**9) -> LoadResult:
    import aiohttp

    body, headers = http_payload(shape, fmt)
    endpoint = f"{url}/v2/models/{model}/infer"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def send() -> bool:
            async with session.post(endpoint, data=body, headers=headers) as response:
                await response.read()
                return response.status == 200

        for _ in range(20):
            await send()
        return await _closed_loop(send, concurrency, duration_s, max_requests, label)


async def load_grpc(target: str, model: str, shape: list[int], concurrency: int, duration_s: float, label: str, max_requests: int = 10**9) -> LoadResult:
    import grpc

    from infer_runtime.server.proto import inference_pb2 as pb
    from infer_runtime.server.proto import inference_pb2_grpc as pb_grpc

    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    request = pb.ModelInferRequest(model_name=model)
    request.inputs.add(name="input", datatype="FP32", shape=shape)
    request.raw_input_contents.append(x.tobytes())
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)

        async def send() -> bool:
            try:
                await stub.ModelInfer(request)
                return True
            except grpc.aio.AioRpcError:
                return False

        for _ in range(20):
            await send()
        return await _closed_loop(send, concurrency, duration_s, max_requests, label)


def print_results(results: list[LoadResult]) -> None:
    print(f"{'configuration':46s} {'conc':>5s} {'req/s':>9s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s} {'errors':>7s}")
    for r in results:
        print(f"{r.label:46s} {r.concurrency:5d} {r.throughput:9,.0f} {r.p50_ms:8.2f} {r.p90_ms:8.2f} {r.p99_ms:8.2f} {r.errors:7d}")


def _wait_http(url: str, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


@dataclass
class Server:
    """One server of the comparison: how to start it, and where it answers."""

    label: str
    argv: list[str]
    port: int
    ready_path: str
    cwd: Path = ROOT
    env: dict[str, str] | None = None


def _ours(label: str, model: Path, tmp: Path, env: dict[str, str] | None = None, **batching: object) -> Server:
    from _common import mlp_spec

    sys.path.insert(0, str(ROOT / "tests"))
    from server_helpers import free_port

    spec = tmp / f"{label.replace(' ', '_').replace('=', '')}.toml"
    spec.write_text(mlp_spec(model, **batching))  # type: ignore[arg-type]
    http, grpc = free_port(), free_port()
    return Server(label, [sys.executable, "-m", "infer_runtime", "run", str(spec), "--http-port", str(http), "--grpc-port", str(grpc)],
                  http, "/v2/health/ready", env=env)


def perf_analyzer(binary: str, port: int, concurrency: int, interval_ms: int, label: str) -> LoadResult:
    """One level of Triton's perf_analyzer (C++, far cheaper per request than the Python
    generator), HTTP with binary tensors, single-row requests. Its CUDA runtime dependency is
    found through LD_LIBRARY_PATH (see tests/test_perf_analyzer.py)."""
    argv = [binary, "-m", "mlp", "-u", f"127.0.0.1:{port}", "-i", "http", "--shape", "input:1,64", "--concurrency-range", str(concurrency),
            "--measurement-interval", str(interval_ms), "--stability-percentage", "100", "--max-trials", "4", "--percentile", "50"]
    out = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=300).stdout  # failures show as NaN
    throughput = p50 = float("nan")
    for line in out.splitlines():
        words = line.split()
        if line.strip().startswith("Throughput:"):
            throughput = float(words[1])
        elif line.strip().startswith("p50 latency:"):
            p50 = float(words[2]) / 1e3
    seconds = interval_ms / 1e3
    return LoadResult(f"{label} (perf_analyzer)", concurrency, 0 if math.isnan(throughput) else int(throughput * seconds), 0, seconds, p50,
                      float("nan"), float("nan"))


def medians(results: list[LoadResult]) -> list[LoadResult]:
    """One result per (label, concurrency): the median throughput and latencies of its rounds
    (this VM's speed drifts by a fifth within a minute: single passes mislead)."""
    import statistics

    groups: dict[tuple[str, int], list[LoadResult]] = {}
    for r in results:
        groups.setdefault((r.label, r.concurrency), []).append(r)
    out = []
    for (label, conc), runs in groups.items():
        seconds = runs[0].seconds
        out.append(LoadResult(label, conc, int(statistics.median(r.throughput for r in runs) * seconds), sum(r.errors for r in runs), seconds,
                              statistics.median(r.p50_ms for r in runs), statistics.median(r.p90_ms for r in runs),
                              statistics.median(r.p99_ms for r in runs)))
    return out


async def compare(duration_s: float, pytriton_python: str | None, concurrency: tuple[int, ...], perf_analyzer_path: str | None,
                  rounds: int = 1) -> None:
    """Issue 14's run: the 64 → 256 → 256 → 10 MLP, Triton's batching settings
    (max_batch_size 64, max_queue_delay_us 500), single-row requests, one server at a time
    under load (all started first), the same load generator for every server; with
    ``rounds`` > 1 the whole sequence repeats and each figure is the median of its rounds."""
    from build_models import build_mlp

    sys.path.insert(0, str(ROOT / "tests"))
    from server_helpers import free_port

    model = ROOT / "var" / "bench" / "mlp_64_256_256_10.onnx"
    if not model.exists():
        build_mlp(model, (64, 256, 256, 10))
    tmp = Path(tempfile.mkdtemp())
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFER_RUNTIME_")}
    servers = [
        _ours("ours, adaptive", model, tmp, max_queue_delay_us=500, max_batch_size=64, host="native", adaptive=True),
        _ours("ours, max_queue_delay_us=0", model, tmp, max_queue_delay_us=0, max_batch_size=64, host="native", adaptive=False),
        _ours("ours, fixed window", model, tmp, max_queue_delay_us=500, max_batch_size=64, host="native", adaptive=False),
        # the same adaptive server with the engine's HTTP front end off: every request through aiohttp
        _ours("ours, Python front end", model, tmp, env={**env, "INFER_RUNTIME_SERVER__NATIVE_HTTP": "false"}, max_queue_delay_us=500, max_batch_size=64,
              host="native", adaptive=True),
    ]
    port = free_port()
    servers.append(Server("FastAPI + uvicorn", [sys.executable, "-m", "uvicorn", "bench.fastapi_baseline:app", "--port", str(port), "--log-level", "warning"],
                          port, "/docs", env={**env, "BASELINE_MODEL": str(model)}))
    if pytriton_python:
        port = free_port()
        servers.append(Server("PyTriton", [pytriton_python, str(ROOT / "bench" / "pytriton_baseline.py"), "--http-port", str(port),
                                           "--grpc-port", str(free_port()), "--metrics-port", str(free_port())],
                              port, "/v2/models/mlp/ready", cwd=tmp, env={**env, "BASELINE_MODEL": str(model)}))
    procs = []
    results: list[LoadResult] = []
    try:
        for server in servers:
            procs.append(subprocess.Popen(server.argv, cwd=server.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,  # noqa: ASYNC220 - started before any measurement
                                          env=server.env or env))
        for server in servers:
            _wait_http(f"http://127.0.0.1:{server.port}{server.ready_path}", timeout=120)
        print(f"load average before the run: {os.getloadavg()}")
        for _ in range(rounds):
            for conc in concurrency:
                for fmt in ("json", "binary"):
                    for server in servers:
                        results.append(await load_http(f"http://127.0.0.1:{server.port}", "mlp", [1, 64], fmt, conc, duration_s, f"{server.label}, {fmt}"))
                if perf_analyzer_path:
                    for server in servers:
                        results.append(perf_analyzer(perf_analyzer_path, server.port, conc, int(duration_s * 1000), f"{server.label}, binary"))
        print(f"load average after the run: {os.getloadavg()}")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    raw = results
    results = medians(results)
    print_results(results)
    by = {(r.label, r.concurrency): r for r in results}
    for fmt in ("json", "binary", "binary (perf_analyzer)"):
        def get(label: str, conc: int, fmt: str = fmt) -> LoadResult | None:
            return by.get((f"{label}, {fmt}", conc))

        ours = get("ours, adaptive", 64)
        lines = []
        for peer, target in (("PyTriton", 5.0), ("FastAPI + uvicorn", 3.0), ("ours, fixed window", 0.95)):
            other = get(peer, 64)
            if ours and other:
                ratio = ours.throughput / other.throughput
                lines.append(f"c=64 throughput {ratio:.2f}x {peer} [≥ {target}x: {'met' if ratio >= target else 'NOT met'}]")
        one, zero, fastapi = get("ours, adaptive", 1), get("ours, max_queue_delay_us=0", 1), get("FastAPI + uvicorn", 1)
        if one and zero:
            ratio = one.p50_ms / zero.p50_ms
            lines.append(f"c=1 p50 {ratio:.2f}x max_queue_delay_us=0 [≤ 1.1x: {'met' if ratio <= 1.1 else 'NOT met'}]")
        if one and fastapi:
            ratio = one.p50_ms / fastapi.p50_ms
            lines.append(f"c=1 p50 {ratio:.2f}x FastAPI's [≤ 1x: {'met' if ratio <= 1 else 'NOT met'}]")
        if lines:
            print(f"{fmt}:\n  " + "\n  ".join(lines))
    out = ROOT / "var" / "bench" / "http.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([dict(r.__dict__, throughput=r.throughput) for r in raw], indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    load = sub.add_parser("load", help="load one v2 server")
    load.add_argument("--url", help="HTTP base URL, e.g. http://127.0.0.1:8000")
    load.add_argument("--grpc", help="gRPC target, e.g. 127.0.0.1:8001")
    load.add_argument("--model", required=True)
    load.add_argument("--shape", default="1,256")
    load.add_argument("--format", choices=("json", "binary"), default="binary")
    load.add_argument("--concurrency", default="1,16,64")
    load.add_argument("--duration", type=float, default=5.0)
    load.add_argument("--requests", type=int, default=10**9, help="stop each level after this many requests")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per configuration (comparison)")
    parser.add_argument("--pytriton-python", help="a Python with nvidia-pytriton installed (see bench/pytriton_baseline.py)")
    parser.add_argument("--concurrency", default="1,64", help="levels of the comparison")
    parser.add_argument("--perf-analyzer", help="also load every server with this perf_analyzer binary (binary tensors)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the comparison; figures are the medians of the rounds")
    args = parser.parse_args()
    if args.command == "load":
        shape = [int(d) for d in args.shape.split(",")]
        results = []
        for conc in (int(c) for c in args.concurrency.split(",")):
            if args.url:
                results.append(asyncio.run(load_http(args.url, args.model, shape, args.format, conc, args.duration, f"HTTP {args.format}", args.requests)))
            if args.grpc:
                results.append(asyncio.run(load_grpc(args.grpc, args.model, shape, conc, args.duration, "gRPC", args.requests)))
        print_results(results)
    else:
        asyncio.run(compare(args.duration, args.pytriton_python, tuple(int(c) for c in args.concurrency.split(",")), args.perf_analyzer, args.rounds))


if __name__ == "__main__":
    main()
