"""Starting a real `infer-runtime run` process on free loopback ports for tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Server:
    process: subprocess.Popen[str]
    http_port: int
    grpc_port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log(self) -> str:
        return self.log_path.read_text()

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        return self.process.wait(timeout)


def start_server(spec: Path, *, extra_env: dict[str, str] | None = None, wait_ready: bool = True, timeout: float = 60) -> Server:
    http_port, grpc_port = free_port(), free_port()
    log_path = spec.with_suffix(".log")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFER_RUNTIME_")}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    env.update(extra_env or {})
    log_file = log_path.open("w")
    cmd = [sys.executable, "-m", "infer_runtime", "run", str(spec), "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    process = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, text=True)
    server = Server(process, http_port, grpc_port, log_path)
    if wait_ready:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
            try:
                if http_status(f"{server.base}/v2/health/live", timeout=1)[0] == 200 and "serving" in server.log():
                    return server
            except OSError:
                pass
            time.sleep(0.1)
        stop_server(server)
        raise RuntimeError(f"server not ready within {timeout}s:\n{server.log()}")
    return server


def stop_server(server: Server, timeout: float = 30) -> int:
    """Stops a server we started (by PID): SIGTERM, then SIGKILL after ``timeout``."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            return server.process.wait(timeout)
        except subprocess.TimeoutExpired:
            server.process.kill()
            return server.process.wait(10)
    return server.process.returncode


@contextmanager
def running(spec: Path, **kwargs) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    server = start_server(spec, **kwargs)
    try:
        yield server
    finally:
        stop_server(server)


def log_events(server: Server) -> list[dict[str, Any]]:
    """The server's JSON log events so far (``log_format = "json"``)."""
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


def wait_for(predicate: Any, timeout: float = 20) -> None:
    """Polls ``predicate`` until it holds; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")
