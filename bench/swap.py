"""Hot swap under load over HTTP (issue 10): a server follows its registry environment while
32 clients send requests; the registry promotes v2, then v3, then rolls back to v2.

Each version's model answers its own version number (y = x * 0 + version), so every response
is checked: its ``model_version`` must name the version whose output it carries. Reports
failed requests (target 0), mismatches (target 0), how long each switch took to become
visible (target: poll interval + load time) and p99 latency during the swaps against steady
state (target ≤ 3x). Loopback only; it starts and stops its own server.

Run: python bench/swap.py [--seconds 10] [--clients 32] [--poll 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
from onnx import TensorProto, helper, save

ROOT = Path(__file__).resolve().parent.parent

SPEC = """
[registry]
path = "registry.db"
environment = "production"
poll_interval_s = {poll}
[monitoring]
log_format = "console"
[models.m]
backend = "onnxruntime"
registry = "m@production"
instances = 2
inputs = [{{ name = "x", dtype = "float32", shape = [-1, 1] }}]
[models.m.batching]
max_batch_size = 32
max_queue_delay_us = 200
"""


def version_model(path: Path, version: float) -> Path:
    """y = x * 0 + version: a model that answers its own version number."""
    const = helper.make_tensor("v", TensorProto.FLOAT, [1], [version])
    zero = helper.make_tensor("z", TensorProto.FLOAT, [1], [0.0])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "z"], ["xz"]), helper.make_node("Add", ["xz", "v"], ["y"])], "versioned",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])], initializer=[const, zero])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


@dataclass
class Outcome:
    """What the clients saw."""

    latencies: list[tuple[float, float]] = field(default_factory=list)  # (time sent, seconds)
    failures: list[str] = field(default_factory=list)
    mismatches: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    switches: dict[str, float] = field(default_factory=dict)  # target version → seconds to become visible


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _client(session: aiohttp.ClientSession, url: str, stop: asyncio.Event, out: Outcome) -> None:
    body = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [1.0]}]}).encode()
    while not stop.is_set():
        sent = time.monotonic()
        try:
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
                payload = await response.json()
                if response.status != 200:
                    out.failures.append(f"{response.status}: {payload}")
                    continue
        except Exception as exc:  # noqa: BLE001 - a failed request is the measurement
            out.failures.append(f"{type(exc).__name__}: {exc}")
            continue
        out.latencies.append((sent, time.monotonic() - sent))
        version = payload["model_version"]
        value = payload["outputs"][0]["data"][0]
        out.versions[version] = out.versions.get(version, 0) + 1
        if float(value) != float(version):
            out.mismatches += 1


async def _wait_version(session: aiohttp.ClientSession, base: str, version: str, since: float, timeout: float = 30) -> float:
    while time.monotonic() - since < timeout:
        async with session.get(f"{base}/v2/models/m") as response:
            if (await response.json())["versions"] == [version]:
                return time.monotonic() - since
        await asyncio.sleep(0.005)
    raise TimeoutError(f"version {version} never became visible")


async def drive(base: str, registry: Path, seconds: float, clients: int) -> tuple[Outcome, list[tuple[float, float]]]:
    """Loads the server for ``seconds`` with ``clients`` clients; swaps in the middle half.
    Returns what was seen and the (start, end) windows of the swaps."""
    from infer_runtime.registry import SyncRegistry

    reg = SyncRegistry(registry)
    out = Outcome()
    stop = asyncio.Event()
    windows: list[tuple[float, float]] = []
    connector = aiohttp.TCPConnector(limit=clients)
    # The version probes get a session of their own: the clients would starve them of connections.
    async with aiohttp.ClientSession(connector=connector) as session, aiohttp.ClientSession() as probe:
        tasks = [asyncio.ensure_future(_client(session, f"{base}/v2/models/m/infer", stop, out)) for _ in range(clients)]
        step = seconds / 5
        await asyncio.sleep(step)  # steady state
        for action, target in (("promote 2", "2"), ("promote 3", "3"), ("rollback", "2")):
            started = time.monotonic()
            if action == "rollback":
                await asyncio.to_thread(reg.rollback, "m", "production")
            else:
                await asyncio.to_thread(reg.promote, "m", target, "production")
            out.switches[f"{action} → v{target}"] = await _wait_version(probe, base, target, started)
            windows.append((started, time.monotonic()))
            await asyncio.sleep(step)
        await asyncio.sleep(step)
        stop.set()
        await asyncio.gather(*tasks)
    return out, windows


def _p99(values: list[float]) -> float:
    return float(np.percentile(values, 99)) if values else float("nan")


def run(seconds: float, clients: int, poll: float, workdir: Path) -> dict[str, object]:
    """Sets up a registry with three versions, starts a server, drives it; returns figures."""
    from infer_runtime.registry import SyncRegistry

    reg = SyncRegistry(workdir / "registry.db")
    for v in (1, 2, 3):
        reg.register("m", version_model(workdir / f"m{v}.onnx", float(v)), version=str(v), backend="onnxruntime")
    reg.promote("m", "1", "production")
    spec = workdir / "spec.toml"
    spec.write_text(SPEC.format(poll=poll))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFER_RUNTIME_")}
    log = (workdir / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "infer_runtime", "run", str(spec), "--http-port", str(port), "--grpc-port", "0"],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError((workdir / "server.log").read_text())
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        out, windows = asyncio.run(drive(base, workdir / "registry.db", seconds, clients))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    during = [lat for sent, lat in out.latencies if any(a <= sent <= b for a, b in windows)]
    first_swap = windows[0][0] if windows else float("inf")
    steady = [lat for sent, lat in out.latencies if sent < first_swap]
    return {
        "requests": len(out.latencies), "failed": len(out.failures), "first_failures": out.failures[:3], "mismatches": out.mismatches,
        "versions": out.versions, "switch_s": {k: round(v, 3) for k, v in out.switches.items()},
        "p99_steady_ms": round(_p99(steady) * 1e3, 2), "p99_swaps_ms": round(_p99(during) * 1e3, 2),
        "p99_ratio": round(_p99(during) / _p99(steady), 2) if steady and during else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--poll", type=float, default=0.1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = run(args.seconds, args.clients, args.poll, Path(tmp))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
