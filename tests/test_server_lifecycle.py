"""`infer-runtime run` lifecycle and overload (ECOSYSTEM L1, L2, F1, F2, F7-F10)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server_helpers import HERE, free_port, http_status, running, start_server, stop_server

pytestmark = pytest.mark.slow

GATED = """
[monitoring]
log_format = "json"
[server]
shutdown_timeout_s = {timeout}
[models.held]
backend = "python"
warmup = false
inputs = [{{ name = "x", dtype = "float32", shape = [-1, 1] }}]
python = {{ entrypoint = "ir_test_backends:FileGated", config = {{ gate = "{gate}" }} }}
[models.held.batching]
max_batch_size = 1
max_queue_size = {queue}
default_timeout_ms = {default_timeout}
"""


def body(value: float = 1.0, **parameters) -> bytes:  # type: ignore[no-untyped-def]
    request = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [value]}]}
    if parameters:
        request["parameters"] = parameters
    return json.dumps(request).encode()


def infer(server, value: float = 1.0, **parameters):  # type: ignore[no-untyped-def]
    status, raw = http_status(f"{server.base}/v2/models/held/infer", "POST", body(value, **parameters), timeout=60)
    return status, json.loads(raw)


def gated_spec(tmp_path: Path, *, timeout: float = 30, queue: int = 1024, default_timeout: int = 0) -> tuple[Path, Path]:
    gate = tmp_path / "gate"
    spec = tmp_path / "spec.toml"
    spec.write_text(GATED.format(timeout=timeout, gate=gate, queue=queue, default_timeout=default_timeout))
    return spec, gate


def wait_for(predicate, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def entered(gate: Path) -> bool:
    return gate.with_suffix(".entered").exists()


def test_overload_rejects_exactly_the_overflow(tmp_path: Path) -> None:  # L1
    spec, gate = gated_spec(tmp_path, queue=3)
    with running(spec) as server, ThreadPoolExecutor(12) as pool:
        first = pool.submit(infer, server, 0.0)
        wait_for(lambda: entered(gate))  # the only instance is busy
        queued = [pool.submit(infer, server, float(i)) for i in range(3)]
        wait_for(lambda: "infer_runtime_queue_depth{model=\"held\",version=\"1\"} 3.0" in http_status(server.base + "/metrics")[1].decode())
        rejected = [infer(server, 9.0) for _ in range(4)]
        assert all(status == 503 and "queue is full" in payload["error"] for status, payload in rejected)
        gate.write_text("open")
        assert [f.result()[0] for f in [first, *queued]] == [200] * 4
        metrics = http_status(server.base + "/metrics")[1].decode()
        assert 'infer_runtime_requests_total{model="held",outcome="queue_full",version="1"} 4.0' in metrics


def test_queue_timeout_is_503_and_only_shortens(tmp_path: Path) -> None:  # L2
    spec, gate = gated_spec(tmp_path, default_timeout=60000)
    with running(spec) as server, ThreadPoolExecutor(4) as pool:
        first = pool.submit(infer, server, 0.0)
        wait_for(lambda: entered(gate))
        late = pool.submit(infer, server, 1.0, timeout=50_000)  # 50 ms (microseconds, as Triton)
        time.sleep(0.3)
        gate.write_text("open")
        assert first.result()[0] == 200
        status, payload = late.result()
        assert status == 503 and "timed out in the queue" in payload["error"]


def test_sigterm_drains_in_flight_work_and_exits_0(tmp_path: Path) -> None:  # F7
    spec, gate = gated_spec(tmp_path)
    server = start_server(spec)
    try:
        with ThreadPoolExecutor(8) as pool:
            in_flight = [pool.submit(infer, server, float(i)) for i in range(5)]
            wait_for(lambda: entered(gate))
            wait_for(lambda: 'infer_runtime_queue_depth{model="held",version="1"} 4.0' in http_status(server.base + "/metrics")[1].decode())
            server.signal(signal.SIGTERM)
            wait_for(lambda: http_status(server.base + "/v2/health/ready")[0] == 503)
            status, payload = infer(server, 9.0)
            assert status == 503 and "stopping" in payload["error"]
            assert server.process.poll() is None  # still draining
            gate.write_text("open")
            assert [f.result()[0] for f in in_flight] == [200] * 5
        assert server.wait(30) == 0
        assert '"event": "stopped"' in server.log()
        assert "never awaited" not in server.log() and "Traceback" not in server.log()
    finally:
        stop_server(server)


def test_drain_timeout_cancels_and_exits_nonzero(tmp_path: Path) -> None:  # F8
    spec, gate = gated_spec(tmp_path, timeout=0.5)
    server = start_server(spec)
    try:
        with ThreadPoolExecutor(4) as pool:
            running_one = pool.submit(infer, server, 0.0)
            wait_for(lambda: entered(gate))
            queued = [pool.submit(infer, server, 1.0) for _ in range(2)]
            wait_for(lambda: 'infer_runtime_queue_depth{model="held",version="1"} 2.0' in http_status(server.base + "/metrics")[1].decode())
            server.signal(signal.SIGTERM)
            # The running batch ends after the drain timeout, within the grace a running batch
            # gets (runtime._EXECUTOR_GRACE_S); one that never returns is the hung-backend test's.
            threading.Timer(0.9, lambda: gate.write_text("open")).start()
            assert all(f.result()[0] == 503 for f in queued)
            assert running_one.result()[0] == 200  # running work is never lost
        assert server.wait(30) == 1
        assert "abandoned" in server.log()
    finally:
        stop_server(server)


def test_a_signal_while_models_load_stops_startup(tmp_path: Path) -> None:
    """A model whose constructor hangs: the first SIGTERM stops the server at once (it does not
    bind, and exits 1), rather than being ignored until loading ends."""
    spec = tmp_path / "spec.toml"
    spec.write_text('[models.slow]\nbackend = "python"\npython = { entrypoint = "ir_test_backends:SlowInit", config = { name = "never", seconds = 120 } }\n')
    server = start_server(spec, wait_ready=False)
    try:
        deadline = time.monotonic() + 30
        while "starting" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # inside the constructor now
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        assert server.wait(15) == 1
        assert time.monotonic() - started < 10
        assert "signal during startup" in server.log()
    finally:
        stop_server(server)


def test_second_signal_exits_at_once(tmp_path: Path) -> None:  # F9
    spec, gate = gated_spec(tmp_path)
    server = start_server(spec)
    try:
        with ThreadPoolExecutor(2) as pool:
            pool.submit(infer, server, 0.0)
            wait_for(lambda: entered(gate))
            server.signal(signal.SIGTERM)
            time.sleep(0.3)
            started = time.monotonic()
            server.signal(signal.SIGINT)
            assert server.wait(10) == 1
            assert time.monotonic() - started < 5
            gate.write_text("open")
    finally:
        stop_server(server)


def test_port_in_use_is_a_clear_startup_error(tmp_path: Path) -> None:  # F10
    spec = tmp_path / "spec.toml"
    spec.write_text('[models.echo]\nbackend = "identity"\n')
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "infer_runtime", "run", str(spec), "--http-port", str(port), "--grpc-port", str(free_port())],
                              capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} (HTTP)" in proc.stderr


def test_failed_model_is_unready_while_others_serve(tmp_path: Path) -> None:  # F1
    spec = tmp_path / "spec.toml"
    spec.write_text('[server]\nexit_on_error = false\n[models.echo]\nbackend = "identity"\n[models.broken]\nbackend = "onnxruntime"\npath = "missing.onnx"\n')
    with running(spec) as server:
        assert http_status(server.base + "/v2/health/live")[0] == 200
        status, raw = http_status(server.base + "/v2/health/ready")
        assert status == 503 and "broken" in json.loads(raw)["error"]
        status, raw = http_status(server.base + "/v2/models/broken/ready")
        assert status == 503 and "file not found" in json.loads(raw)["error"]
        assert http_status(server.base + "/v2/models/echo/ready")[0] == 200
        status, raw = http_status(server.base + "/v2/models/broken/infer", "POST", body())
        assert status == 503 and "not available" in json.loads(raw)["error"]
        x = json.dumps({"inputs": [{"name": "v", "datatype": "INT32", "shape": [2], "data": [1, 2]}]}).encode()
        assert http_status(server.base + "/v2/models/echo/infer", "POST", x)[0] == 200
        assert 'infer_runtime_model_ready{model="broken"} 0.0' in http_status(server.base + "/metrics")[1].decode()


def test_failed_model_with_exit_on_error_fails_startup(tmp_path: Path) -> None:  # F2
    spec = tmp_path / "spec.toml"
    spec.write_text('[models.echo]\nbackend = "identity"\n[models.broken]\nbackend = "onnxruntime"\npath = "missing.onnx"\n')
    proc = subprocess.run([sys.executable, "-m", "infer_runtime", "run", str(spec), "--http-port", str(free_port()), "--grpc-port", "0"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert "startup failed: 1 model(s) failed to load: model 'broken': file not found" in proc.stderr


def test_invalid_spec_or_override_exits_2(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('[models.echo]\nbackend = "identity"\n')
    proc = subprocess.run([sys.executable, "-m", "infer_runtime", "run", str(spec)], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "INFER_RUNTIME_SERVER__HTTP_PRT": "1", "PYTHONPATH": str(HERE)}, check=False)
    assert proc.returncode == 2
    assert "did you mean 'INFER_RUNTIME_SERVER__HTTP_PORT'" in proc.stderr
