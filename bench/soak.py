"""A bounded mixed soak of `infer-runtime run` (issue 13 "Must show"), on loopback only.

Starts its own server on free 127.0.0.1 ports, then for ``--seconds`` (default 600) runs at
once: good requests at concurrency 32 (JSON and binary, every answer checked against its
input), a stream of bad inputs over HTTP and gRPC (malformed and deeply nested JSON, shape
bombs, overflowing timeouts, lone surrogates, NUL names, corrupt gzip, unsupported
encodings, bad BYTES prefixes, oversized BYTES counts, unknown models), slow-header and
slow-body clients, and clients that disconnect with their request in flight.

    python bench/soak.py                 # 10 minutes
    python bench/soak.py --seconds 60    # a short run

Reports 5xx answers to client errors (must be 0), gRPC UNKNOWN/INTERNAL answers to client
errors (must be 0), good requests sent and answered correctly (must be equal), and the
server's RSS and open file descriptors at the start (after a warm-up) and the end. Exits 1
when a requirement fails.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

SPEC = """
[runtime]
name = "soak"
[monitoring]
log_format = "json"
log_level = "warning"
[server]
read_timeout_s = 2.0
keepalive_timeout_s = 5.0
max_connections = 256
max_request_bytes = 8388608
[models.echo]
backend = "identity"
inputs = [{ name = "x", dtype = "float32", shape = [-1, 4] }]
[models.echo.batching]
max_batch_size = 32
max_queue_delay_us = 500
[models.any]
backend = "identity"
"""

CONCURRENCY = 32


@dataclass
class Tally:
    good_sent: int = 0
    good_ok: int = 0
    good_wrong: list[str] = field(default_factory=list)
    bad_sent: int = 0
    bad_5xx: list[str] = field(default_factory=list)
    grpc_bad_sent: int = 0
    grpc_bad_server_errors: list[str] = field(default_factory=list)
    slow_clients: int = 0
    slow_cut_off: int = 0
    disconnects: int = 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_usage(pid: int) -> tuple[float, int]:
    """(RSS in MiB, open file descriptors) of a process."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return rss / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def bad_http_requests() -> list[tuple[str, bytes, dict[str, str]]]:
    """(path, body, headers) of client errors: each must be answered 4xx."""
    def infer(model: str = "echo") -> str:
        return f"/v2/models/{model}/infer"

    x = '{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}'
    bytes_header = json.dumps({"inputs": [{"name": "s", "datatype": "BYTES", "shape": [3], "parameters": {"binary_data_size": 5}}]}).encode()
    many = 1_100_000
    many_header = json.dumps({"inputs": [{"name": "s", "datatype": "BYTES", "shape": [many], "parameters": {"binary_data_size": many * 5}}]}).encode()
    return [
        (infer(), b"not json", {}),
        (infer(), b"[" * 20000 + b"]" * 20000, {}),
        (infer(), b" " * 2_000_000, {}),
        (infer(), f'{{"inputs": [{x}], "parameters": {{"timeout": 9223372036854775807}}}}'.replace("[1, 4]", "[1, 3]").encode(), {}),
        (infer("any"), b'{"inputs": [{"name": "v", "datatype": "FP32", "shape": [0, 4611686018427387904, 4611686018427387904], "data": []}]}', {}),
        (infer("any"), b'{"inputs": [{"name": "s", "datatype": "BYTES", "shape": [1], "data": ["\\ud800"]}]}', {}),
        (infer("any"), b'{"inputs": [{"name": "x\\udc00", "datatype": "FP32", "shape": [1], "data": [1]}]}', {}),
        (infer("any"), b'{"inputs": [{"name": "x\\u0000y", "datatype": "FP32", "shape": [1], "data": [1]}]}', {}),
        (infer(), b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage", {"Content-Encoding": "gzip"}),
        (infer(), gzip.compress(b"{" * 1000), {"Content-Encoding": "gzip"}),
        (infer(), b"{}", {"Content-Encoding": "zstd"}),
        (infer("any"), bytes_header + b"\x05\x00\x00\x00a", {"Inference-Header-Content-Length": str(len(bytes_header))}),
        (infer("any"), many_header + b"\x01\x00\x00\x00x" * many, {"Inference-Header-Content-Length": str(len(many_header))}),
        (infer(), f'{{"inputs": [{x}]}}'.encode(), {"Inference-Header-Content-Length": "-5"}),
        (infer("nope"), f'{{"inputs": [{x}]}}'.encode(), {}),
        ("/v2/models/echo/versions/9/infer", f'{{"inputs": [{x}]}}'.encode(), {}),
        (infer(), b'{"inputs": [{"name": "x", "datatype": "BF16", "shape": [1, 4], "data": [1, 2, 3, 4]}]}', {}),
        ("/v2/models/%ED%A0%80/infer", b"{}", {}),
    ]


async def good_client(session: object, url: str, tally: Tally, stop_at: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    while time.monotonic() < stop_at:
        rows = int(rng.integers(1, 4))
        x = rng.standard_normal((rows, 4)).astype(np.float32)
        if rng.random() < 0.5:
            body = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [rows, 4], "data": x.ravel().tolist()}]}).encode()
            headers: dict[str, str] = {}
        else:
            header = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [rows, 4], "parameters": {"binary_data_size": x.nbytes}}],
                                 "parameters": {"binary_data_output": True}}).encode()
            body, headers = header + x.tobytes(), {"Inference-Header-Content-Length": str(len(header))}
        tally.good_sent += 1
        try:
            async with session.post(f"{url}/v2/models/echo/infer", data=body, headers=headers) as response:  # type: ignore[attr-defined]
                raw = await response.read()
                if response.status != 200:
                    tally.good_wrong.append(f"status {response.status}: {raw[:200]!r}")
                    continue
                split = response.headers.get("Inference-Header-Content-Length")
                if split is None:
                    got = np.asarray(json.loads(raw)["outputs"][0]["data"], dtype=np.float32)
                else:
                    got = np.frombuffer(raw[int(split):], dtype=np.float32)
                if np.array_equal(got, x.ravel()):
                    tally.good_ok += 1
                else:
                    tally.good_wrong.append("wrong data")
        except Exception as exc:  # noqa: BLE001 - every failure of a good request is reported
            tally.good_wrong.append(f"{type(exc).__name__}: {exc}")


async def bad_client(session: object, url: str, tally: Tally, stop_at: float) -> None:
    requests = bad_http_requests()
    rng = random.Random(1)
    while time.monotonic() < stop_at:
        path, body, headers = rng.choice(requests)
        tally.bad_sent += 1
        try:
            async with session.post(url + path, data=body, headers=headers) as response:  # type: ignore[attr-defined]
                raw = await response.read()
                if response.status >= 500:
                    tally.bad_5xx.append(f"{path} {body[:60]!r}: {response.status} {raw[:200]!r}")
        except Exception as exc:  # noqa: BLE001
            tally.bad_5xx.append(f"{path} {body[:60]!r}: {type(exc).__name__}: {exc}")
        await asyncio.sleep(0.01)


async def grpc_bad_client(target: str, tally: Tally, stop_at: float) -> None:
    import grpc

    sys.path.insert(0, str(ROOT / "runtime"))
    from infer_runtime.server.proto import inference_pb2 as pb
    from infer_runtime.server.proto import inference_pb2_grpc as pb_grpc

    tensor = pb.ModelInferRequest.InferInputTensor
    cases = [
        pb.ModelInferRequest(model_name="any", inputs=[tensor(name="x", datatype="FP32", shape=[0, 2**62, 2**62])], raw_input_contents=[b""]),
        pb.ModelInferRequest(model_name="echo", inputs=[tensor(name="x", datatype="FP32", shape=[1, 3])], raw_input_contents=[b"\0" * 12],
                             parameters={"timeout": pb.InferParameter(int64_param=2**63 - 1)}),
        pb.ModelInferRequest(model_name="any", inputs=[tensor(name="a\0b", datatype="FP32", shape=[1])], raw_input_contents=[b"\0" * 4]),
        pb.ModelInferRequest(model_name="any", inputs=[tensor(name="s", datatype="BYTES", shape=[3])], raw_input_contents=[b"\x05\0\0\0a"]),
        pb.ModelInferRequest(model_name="nope"),
        pb.ModelInferRequest(model_name="echo", inputs=[tensor(name="x", datatype="FP32", shape=[1, 4])], raw_input_contents=[b"\0" * 16],
                             parameters={"priority": pb.InferParameter(string_param="x")}),
    ]
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        i = 0
        while time.monotonic() < stop_at:
            tally.grpc_bad_sent += 1
            try:
                await stub.ModelInfer(cases[i % len(cases)], timeout=10)
                tally.grpc_bad_server_errors.append(f"case {i % len(cases)}: OK for a bad request")
            except grpc.aio.AioRpcError as exc:
                if exc.code() in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL):
                    tally.grpc_bad_server_errors.append(f"case {i % len(cases)}: {exc.code()} {exc.details()}")
            i += 1
            await asyncio.sleep(0.02)


async def slow_client(port: int, tally: Tally, stop_at: float) -> None:
    """Slow headers or a slow body, one byte per 0.3 s: the server must cut it off."""
    rng = random.Random(2)
    while time.monotonic() < stop_at:
        tally.slow_clients += 1
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.5)
            continue
        try:
            if rng.random() < 0.5:
                writer.write(b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: soak\r\n")
            else:
                writer.write(b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: soak\r\nContent-Length: 5000\r\n\r\n{")
            for _ in range(100):  # 30 s at most: the server's read timeout is 2 s
                await writer.drain()
                await asyncio.sleep(0.3)
                if reader.at_eof():
                    tally.slow_cut_off += 1
                    break
                writer.write(b"X")
                try:
                    await asyncio.wait_for(reader.read(65536), 0.01)
                except TimeoutError:
                    pass
        except (ConnectionError, OSError):
            tally.slow_cut_off += 1
        finally:
            writer.close()


async def disconnecting_client(port: int, tally: Tally, stop_at: float) -> None:
    """Sends a good request and hangs up before the answer."""
    body = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}).encode()
    request = b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: soak\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    while time.monotonic() < stop_at:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            writer.close()
            tally.disconnects += 1
        except OSError:
            pass
        await asyncio.sleep(0.05)


async def soak(seconds: float) -> int:
    import aiohttp

    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    spec = tmp / "soak.toml"
    spec.write_text(SPEC)
    http_port, grpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFER_RUNTIME_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "runtime"), env.get("PYTHONPATH", "")])
    log = (tmp / "server.log").open("w")
    command = [sys.executable, "-m", "infer_runtime", "run", str(spec), "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)  # noqa: ASYNC220 - once, before any load
    url = f"http://127.0.0.1:{http_port}"
    tally = Tally()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY + 8)) as session:
            for _ in range(300):
                try:
                    async with session.get(url + "/v2/health/ready") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
            warm_until = time.monotonic() + min(10.0, seconds / 10)
            await asyncio.gather(*(good_client(session, url, Tally(), warm_until, 1000 + i) for i in range(CONCURRENCY)))
            rss0, fds0 = process_usage(server.pid)
            started = time.monotonic()
            stop_at = started + seconds
            samples: list[tuple[float, float, int]] = []

            async def sampler() -> None:
                while time.monotonic() < stop_at:
                    await asyncio.sleep(min(30.0, seconds / 5))
                    rss, fds = process_usage(server.pid)
                    samples.append((round(time.monotonic() - started), round(rss, 1), fds))
                    print(f"  t={samples[-1][0]:4d}s rss={rss:7.1f} MiB fds={fds:4d} good={tally.good_ok} bad={tally.bad_sent} "
                          f"slow={tally.slow_clients} disconnects={tally.disconnects}", file=sys.stderr, flush=True)

            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4)) as bad_session:
                await asyncio.gather(
                    *(good_client(session, url, tally, stop_at, i) for i in range(CONCURRENCY)),
                    bad_client(bad_session, url, tally, stop_at),
                    grpc_bad_client(f"127.0.0.1:{grpc_port}", tally, stop_at),
                    *(slow_client(http_port, tally, stop_at) for _ in range(8)),
                    disconnecting_client(http_port, tally, stop_at),
                    sampler(),
                )
            await asyncio.sleep(3)  # let slow connections and cancelled requests settle
            rss1, fds1 = process_usage(server.pid)
            async with session.get(url + "/v2/health/live") as response:
                live = response.status == 200
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            code = server.wait(10)
        log.close()
    elapsed = time.monotonic() - started
    failures = []
    if tally.bad_5xx:
        failures.append(f"{len(tally.bad_5xx)} 5xx answers to client errors, e.g. {tally.bad_5xx[:3]}")
    if tally.grpc_bad_server_errors:
        failures.append(f"{len(tally.grpc_bad_server_errors)} gRPC server errors for client errors, e.g. {tally.grpc_bad_server_errors[:3]}")
    if tally.good_wrong or tally.good_ok != tally.good_sent:
        failures.append(f"{tally.good_sent - tally.good_ok} good requests not answered correctly, e.g. {tally.good_wrong[:3]}")
    if not live:
        failures.append("the server was not live at the end")
    report = {
        "seconds": round(elapsed, 1),
        "good": {"sent": tally.good_sent, "answered_correctly": tally.good_ok, "per_second": round(tally.good_ok / elapsed, 1), "concurrency": CONCURRENCY},
        "bad_http": {"sent": tally.bad_sent, "5xx": len(tally.bad_5xx)},
        "bad_grpc": {"sent": tally.grpc_bad_sent, "unknown_or_internal": len(tally.grpc_bad_server_errors)},
        "slow_clients": {"opened": tally.slow_clients, "cut_off_by_server": tally.slow_cut_off},
        "disconnects": tally.disconnects,
        "server": {"rss_mib_start": round(rss0, 1), "rss_mib_end": round(rss1, 1), "fds_start": fds0, "fds_end": fds1, "exit_code": code},
        "samples_t_rss_fds": samples,
        "failures": failures,
    }
    print(json.dumps(report, indent=2))
    print(f"server log: {tmp / 'server.log'}", file=sys.stderr)
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600.0, help="how long to soak (default 600)")
    args = parser.parse_args()
    sys.exit(asyncio.run(soak(args.seconds)))


if __name__ == "__main__":
    main()
