"""(Named http_bench.py, not http.py: a script called http.py shadows the standard
library's http package.)

A bounded closed-loop load generator for any KServe v2 server (HTTP JSON, HTTP binary,
gRPC), and the comparison run of issue 4: our server vs a plain FastAPI + uvicorn app on
the same MLP, payloads and load generator.

    python bench/http_bench.py                # the comparison (starts both servers itself)
    python bench/http_bench.py load --url http://127.0.0.1:8000 --model mlp --shape 1,256 \\
        --format binary --concurrency 1,16,64 --duration 5      # against any v2 server
    python bench/http_bench.py load --grpc 127.0.0.1:8001 --model mlp --shape 1,256

Targets (issue 4): ≥ 2x the FastAPI app's throughput at concurrency 64; p50 at
concurrency 1 within 1.3x of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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


async def compare(duration_s: float) -> None:
    from _common import mlp_spec
    from build_models import build_mlp

    sys.path.insert(0, str(ROOT / "tests"))
    from server_helpers import free_port

    model = ROOT / "var" / "bench" / "mlp_256_1024_1024_10.onnx"
    if not model.exists():
        build_mlp(model)
    tmp = Path(tempfile.mkdtemp())
    spec = tmp / "http.toml"
    spec.write_text(mlp_spec(model))
    ours_http, ours_grpc, base_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFER_RUNTIME_")}
    ours = subprocess.Popen([sys.executable, "-m", "infer_runtime", "run", str(spec), "--http-port", str(ours_http), "--grpc-port", str(ours_grpc)],  # noqa: ASYNC220 - started once, before any measurement
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    baseline = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
        [sys.executable, "-m", "uvicorn", "bench.fastapi_baseline:app", "--port", str(base_port), "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**env, "BASELINE_MODEL": str(model)})
    results: list[LoadResult] = []
    try:
        _wait_http(f"http://127.0.0.1:{ours_http}/v2/health/ready")
        _wait_http(f"http://127.0.0.1:{base_port}/docs")
        for conc in (1, 16, 64):
            for fmt in ("json", "binary"):
                results.append(await load_http(f"http://127.0.0.1:{ours_http}", "mlp", [1, 256], fmt, conc, duration_s, f"infer-runtime HTTP {fmt}"))
                results.append(await load_http(f"http://127.0.0.1:{base_port}", "mlp", [1, 256], fmt, conc, duration_s, f"FastAPI + uvicorn, session.run per request, {fmt}"))
            results.append(await load_grpc(f"127.0.0.1:{ours_grpc}", "mlp", [1, 256], conc, duration_s, "infer-runtime gRPC"))
    finally:
        for proc in (ours, baseline):
            proc.send_signal(signal.SIGTERM)
        for proc in (ours, baseline):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    print_results(results)
    by = {(r.label, r.concurrency): r for r in results}
    for fmt in ("json", "binary"):
        o64, b64 = by[(f"infer-runtime HTTP {fmt}", 64)], by[(f"FastAPI + uvicorn, session.run per request, {fmt}", 64)]
        o1, b1 = by[(f"infer-runtime HTTP {fmt}", 1)], by[(f"FastAPI + uvicorn, session.run per request, {fmt}", 1)]
        print(f"{fmt:6s}: c=64 throughput {o64.throughput / b64.throughput:.2f}x FastAPI [≥ 2x];  c=1 p50 {o1.p50_ms / b1.p50_ms:.2f}x FastAPI's [≤ 1.3x]")
    out = ROOT / "var" / "bench" / "http.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([dict(r.__dict__, throughput=r.throughput) for r in results], indent=2))


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
        asyncio.run(compare(args.duration))


if __name__ == "__main__":
    main()
