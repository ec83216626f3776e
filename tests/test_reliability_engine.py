"""Reliability of the engine under misbehaving backends and hostile options (issue 13's
engine-side cases): deadlines that fire on time while every instance is busy, execution
timeouts, hung backends at shutdown, BaseException in backends, timeouts that cannot overflow,
too many inputs, and outputs checked against the declared signature."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

import ir_test_backends as tb
from infer_runtime import Runtime
from infer_runtime.errors import (
    BackendError,
    DeadlineExceededError,
    InvalidInputError,
    ModelLoadError,
    UnavailableError,
)

X = np.zeros((1, 1), np.float32)


def gated(name: str, extra: str = "", batching: str = "max_batch_size = 1") -> str:
    tb.GATES.pop(name, None)
    tb.ENTERED.pop(name, None)
    tb.CALLS.pop(name, None)
    return f"""
[models.{name}]
backend = "python"
warmup = false
inputs = [{{ name = "x", dtype = "float32", shape = [-1, 1] }}]
python = {{ entrypoint = "ir_test_backends:Gated", config = {{ name = "{name}" }} }}
{extra}
[models.{name}.batching]
{batching}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


async def test_queue_deadline_fires_on_time_while_every_instance_is_busy(tmp_path: Path) -> None:
    async with Runtime.from_spec(write(tmp_path, gated("busy")), environ={}) as rt:
        running = asyncio.ensure_future(rt.infer("busy", {"x": X}))
        await asyncio.to_thread(tb.entered("busy").wait, 10)
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError, match="timed out in the queue"):
            await rt.infer("busy", {"x": X}, timeout_ms=100)
        elapsed = time.monotonic() - started
        assert 0.09 <= elapsed < 0.3, f"the 100 ms deadline fired after {elapsed * 1000:.0f} ms"
        tb.gate("busy").set()
        await running
        assert rt.stats("busy").timed_out == 1


async def test_a_huge_timeout_only_keeps_the_default(tmp_path: Path) -> None:
    text = gated("long", batching="max_batch_size = 1\ndefault_timeout_ms = 200")
    async with Runtime.from_spec(write(tmp_path, text), environ={}) as rt:
        running = asyncio.ensure_future(rt.infer("long", {"x": X}))
        await asyncio.to_thread(tb.entered("long").wait, 10)
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError):
            await rt.infer("long", {"x": X}, timeout_ms=1e16)  # µs overflow once; now clamped
        assert time.monotonic() - started < 0.6
        tb.gate("long").set()
        await running


async def test_execution_timeout_fails_the_batch_and_marks_the_instance(tmp_path: Path) -> None:
    text = gated("slow", extra="execution_timeout_ms = 100")
    async with Runtime.from_spec(write(tmp_path, text), environ={}) as rt:
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError, match="execution_timeout_ms"):
            await rt.infer("slow", {"x": X})
        elapsed = time.monotonic() - started
        assert 0.09 <= elapsed < 0.4, f"the execution timeout fired after {elapsed * 1000:.0f} ms"
        stats = rt.stats("slow")
        assert stats.execution_timeouts == 1 and stats.unhealthy_instances == 1
        tb.gate("slow").set()  # the backend returns at last: its result is dropped
        deadline = time.monotonic() + 5
        while rt.stats("slow").unhealthy_instances and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert rt.stats("slow").unhealthy_instances == 0
        out = await rt.infer("slow", {"x": np.ones((1, 1), np.float32)})  # serving again
        assert out["x"][0, 0] == 1.0


async def test_a_model_whose_every_instance_timed_out_is_unready(tmp_path: Path) -> None:
    from infer_runtime.server.state import ServingState

    text = gated("stalled", extra="execution_timeout_ms = 100")
    async with Runtime.from_spec(write(tmp_path, text), environ={}) as rt:
        state = ServingState(rt.spec, rt)
        state.phase = "serving"
        assert state.model_not_ready_reason("stalled") is None
        with pytest.raises(DeadlineExceededError):
            await rt.infer("stalled", {"x": X})
        assert "every instance is out of service" in (state.model_not_ready_reason("stalled") or "")
        tb.gate("stalled").set()  # the backend returns: the instance serves again
        deadline = time.monotonic() + 5
        while state.model_not_ready_reason("stalled") is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert state.model_not_ready_reason("stalled") is None


async def test_a_hung_backend_does_not_hold_shutdown(tmp_path: Path) -> None:
    rt = await Runtime.from_spec(write(tmp_path, gated("hung")), environ={}).start()
    running = asyncio.ensure_future(rt.infer("hung", {"x": X}))
    await asyncio.to_thread(tb.entered("hung").wait, 10)
    queued = asyncio.ensure_future(rt.infer("hung", {"x": X}))
    await asyncio.sleep(0.02)
    started = time.monotonic()
    abandoned = await rt.stop(timeout_s=0.2)  # the gate never opens
    elapsed = time.monotonic() - started
    assert elapsed < 0.2 + 1.0 + 1.0, f"stop took {elapsed:.2f} s"
    assert abandoned == 2  # the queued one cancelled, the running one abandoned
    with pytest.raises(UnavailableError):
        await running
    with pytest.raises(Exception, match="shutting down"):
        await queued
    tb.gate("hung").set()  # let the leftover thread end


async def test_system_exit_in_a_backend_fails_that_batch_only(tmp_path: Path) -> None:
    text = """
[models.exits]
backend = "python"
warmup = false
inputs = [{ name = "x", dtype = "float32", shape = [-1, 1] }]
python = { entrypoint = "ir_test_backends:Exits" }
[models.exits.batching]
max_batch_size = 1
"""
    async with Runtime.from_spec(write(tmp_path, text), environ={}) as rt:
        with pytest.raises(BackendError, match="SystemExit"):
            await rt.infer("exits", {"x": -np.ones((1, 1), np.float32)})
        out = await rt.infer("exits", {"x": np.ones((1, 1), np.float32)})
        assert out["x"][0, 0] == 1.0


async def test_system_exit_in_a_constructor_is_a_load_error(tmp_path: Path) -> None:
    text = """
[server]
exit_on_error = false
[models.broken]
backend = "python"
python = { entrypoint = "ir_test_backends:Exits", config = { at_init = true } }
[models.echo]
backend = "identity"
"""
    async with Runtime.from_spec(write(tmp_path, text), environ={}) as rt:
        assert "SystemExit" in rt.failed_models["broken"]
        assert rt.model_names == ["echo"]
    with pytest.raises(ModelLoadError, match="SystemExit"):
        await Runtime.from_spec(write(tmp_path, text.replace("false", "true")), environ={}).start()


async def test_a_model_that_does_not_load_in_time_fails_alone(tmp_path: Path) -> None:
    tb.GATES.pop("slow-init", None)
    text = """
[runtime]
load_timeout_s = 0.5
[server]
exit_on_error = false
[models.slow]
backend = "python"
python = { entrypoint = "ir_test_backends:SlowInit", config = { name = "slow-init" } }
[models.echo]
backend = "identity"
"""
    started = time.monotonic()
    try:
        async with Runtime.from_spec(write(tmp_path, text), environ={}) as rt:
            assert time.monotonic() - started < 5
            assert "did not load within 0.5 s (runtime.load_timeout_s)" in rt.failed_models["slow"]
            assert rt.model_names == ["echo"]
    finally:
        tb.gate("slow-init").set()  # let the abandoned loading thread end


async def test_more_than_64_inputs_are_refused_at_submission(tmp_path: Path) -> None:
    async with Runtime.from_spec(write(tmp_path, '[models.echo]\nbackend = "identity"\n'), environ={}) as rt:
        inputs = {f"t{i}": np.zeros((1,), np.float32) for i in range(65)}
        with pytest.raises(InvalidInputError, match="at most 64 inputs"):
            await rt.infer("echo", inputs)
        out = await rt.infer("echo", {f"t{i}": np.full((1,), i, np.float32) for i in range(64)})
        assert len(out) == 64 and out["t63"][0] == 63


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("float64", "output 'y' has dtype float64, the model declares float32"),
        ("renamed", r"output 'z' is not one the model declares \('y'\)"),
        ("extra", r"output 'w' is not one the model declares \('y'\)"),
        ("empty", "did not set output 'y'"),
        ("shape", r"output 'y' has shape \[1, 3\], the model declares \[-1, 2\]"),
    ],
)
async def test_backend_outputs_are_checked_against_the_declared_signature(tmp_path: Path, mode: str, message: str) -> None:
    text = f"""
[models.r]
backend = "python"
warmup = false
inputs = [{{ name = "x", dtype = "float32", shape = [-1, 1] }}]
outputs = [{{ name = "y", dtype = "float32", shape = [-1, 2] }}]
python = {{ entrypoint = "ir_test_backends:Returns", config = {{ mode = "{mode}" }} }}
[models.r.batching]
max_batch_size = 4
"""
    async with Runtime.from_spec(write(tmp_path, text), environ={}) as rt:
        with pytest.raises(BackendError, match=message):
            await rt.infer("r", {"x": X})
        assert rt.stats("r").failed_backend == 1
