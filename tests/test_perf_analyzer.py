"""Triton's perf_analyzer (from the tritonclient 2.41.0 wheel) runs against our server
(issue 13 item 15): it reads /v2/models/{m}/config and the statistics extension, and aborts
with "Server side statistics compute counts must be the same" unless compute_input,
compute_infer and compute_output agree.

The binary needs libb64 (Debian: ``libb64-0d``) and the CUDA runtime library even on a CPU
machine (PyPI: ``nvidia-cuda-runtime-cu12``, which the test finds on ``sys.path``); where
they are missing the test is skipped, naming them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from server_helpers import running

pytestmark = pytest.mark.slow

SPEC = """
[monitoring]
log_format = "json"
[models.echo]
backend = "identity"
inputs = [{ name = "x", dtype = "float32", shape = [-1, 4] }]
[models.echo.batching]
max_batch_size = 8
max_queue_delay_us = 200
"""


def _binary() -> Path | None:
    for candidate in (Path(sysconfig.get_path("scripts")) / "perf_analyzer", Path(sys.executable).parent / "perf_analyzer"):
        if candidate.exists():
            return candidate
    found = shutil.which("perf_analyzer")
    return Path(found) if found else None


def _library_path() -> str:
    """LD_LIBRARY_PATH with the CUDA runtime shipped by the nvidia-cuda-runtime-cu12 wheel."""
    dirs = [os.environ.get("LD_LIBRARY_PATH", "")]
    for entry in sys.path:
        lib = Path(entry) / "nvidia" / "cuda_runtime" / "lib"
        if (lib / "libcudart.so.12").exists():
            dirs.append(str(lib))
    return os.pathsep.join(d for d in dirs if d)


def _runnable(binary: Path, env: dict[str, str]) -> str | None:
    """Why the binary cannot run here, or None."""
    ldd = subprocess.run(["ldd", str(binary)], check=False, capture_output=True, text=True, env=env, timeout=30)
    missing = re.findall(r"^\s*(\S+) => not found", ldd.stdout, re.MULTILINE)
    if missing:
        hints = {"libb64.so.0d": "apt-get install libb64-0d", "libcudart.so.12": "pip install nvidia-cuda-runtime-cu12"}
        return "perf_analyzer cannot load " + ", ".join(f"{m} ({hints.get(m, 'unknown package')})" for m in missing)
    return None


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_perf_analyzer_runs_against_the_server(tmp_path: Path, protocol: str) -> None:
    binary = _binary()
    if binary is None:
        pytest.skip("perf_analyzer is not installed (it ships in the tritonclient wheel's scripts: pip install tritonclient[all]==2.41.0)")
    env = {**os.environ, "LD_LIBRARY_PATH": _library_path()}
    reason = _runnable(binary, env)
    if reason:
        pytest.skip(reason)
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    with running(spec) as server:
        url = f"127.0.0.1:{server.http_port if protocol == 'http' else server.grpc_port}"
        result = subprocess.run(
            [str(binary), "-m", "echo", "-u", url, "-i", protocol, "--concurrency-range", "1:4:3", "--measurement-interval", "800",
             "--stability-percentage", "100", "--max-trials", "8"],
            check=False, capture_output=True, text=True, env=env, timeout=240,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-3000:]
        assert "compute counts must be the same" not in output
        assert re.search(r"Server:\s*\n\s*Inference count: [1-9]", output), output[-3000:]
        assert re.search(r"Concurrency: 1, throughput: [0-9.]+ infer/sec", output), output[-3000:]
        assert re.search(r"compute input \d+ usec \+ compute infer \d+ usec \+ compute output \d+ usec", output), output[-3000:]
