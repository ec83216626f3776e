"""The engine's live model table: add, replace and retire while requests flow, through the
thin tier and through Runtime.replace_model (the seam the registry's hot swap stands on)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from infer_runtime import Runtime
from infer_runtime._native import ffi, lib
from infer_runtime.engine import Engine, ModelSignature, TensorSignature
from infer_runtime.errors import (
    InvalidInputError,
    ModelLoadError,
    ModelNotFoundError,
    UnavailableError,
)
from infer_runtime.spec.models import BatchingSection

SIG = ModelSignature((TensorSignature("x", np.dtype(np.float32), (-1, 2)),), None, 8)


def _wait_one(engine: Engine) -> tuple[int, bool]:
    """(cookie, succeeded) of the next completion."""
    buf = ffi.new("ir_completion[]", 4)
    n = engine.wait(5.0, buf)
    assert n == 1
    done = (int(buf[0].cookie), buf[0].error == ffi.NULL)
    lib.ir_completions_release(buf, n)
    return done


def test_table_add_replace_retire_and_their_errors() -> None:
    engine = Engine()
    try:
        batching = BatchingSection(max_batch_size=8)
        first = engine.add_model("m", lib.IR_BACKEND_IDENTITY, SIG, instances=1, batching=batching)
        with pytest.raises(InvalidInputError, match="duplicate model name 'm'"):
            engine.add_model("m", lib.IR_BACKEND_IDENTITY, SIG, instances=1, batching=batching)
        with pytest.raises(ModelNotFoundError, match="no model named 'other' to replace"):
            engine.add_model("other", lib.IR_BACKEND_IDENTITY, SIG, instances=1, batching=batching, replace=True)
        second = engine.add_model("m", lib.IR_BACKEND_IDENTITY, SIG, instances=1, batching=batching, replace=True)
        assert engine.models["m"] is second and first in engine.retired
        # The old handle still works: what it submits now is admitted by the new model.
        x = np.ones((1, 2), np.float32)
        first.submit(7, {"x": x}, 0, None)
        assert _wait_one(engine) == (7, True)
        assert second.stats().succeeded >= 1 and first.stats().succeeded == 0
        engine.retire_model("m")
        with pytest.raises(ModelNotFoundError):
            engine.retire_model("m")
        with pytest.raises(UnavailableError):  # retired: nobody to hand submissions to
            second.submit(8, {"x": x}, 0, None)
    finally:
        engine.stop(1.0)
        engine.destroy()


VERSIONED = """
[models.v]
backend = "python"
warmup = false
instances = 2
inputs = [{{ name = "x", dtype = "float32", shape = [-1, 1] }}]
outputs = [{{ name = "y", dtype = "float32", shape = [-1, 2] }}]
python = {{ entrypoint = "ir_test_backends:Versioned", config = {{ version_file = "{file}" }} }}
[models.v.batching]
max_batch_size = 16
max_queue_delay_us = 200
"""


async def test_replace_50_times_while_32_tasks_infer(tmp_path: Path) -> None:
    version_file = tmp_path / "version"
    version_file.write_text("0")
    spec = tmp_path / "spec.toml"
    spec.write_text(VERSIONED.format(file=version_file))
    loaded_versions = [0.0]
    seen: list[float] = []
    failures: list[BaseException] = []
    stop = asyncio.Event()
    async with Runtime.from_spec(spec, environ={}) as rt:

        async def client() -> None:
            x = np.zeros((1, 1), np.float32)
            while not stop.is_set():
                try:
                    out = await rt.infer("v", {"x": x})
                except Exception as exc:  # noqa: BLE001 - every failure is recorded and fails the test
                    failures.append(exc)
                    continue
                y = out["y"]
                assert y.shape == (1, 2) and y[0, 0] == y[0, 1]  # one version per answer
                seen.append(float(y[0, 0]))

        tasks = [asyncio.ensure_future(client()) for _ in range(32)]
        for k in range(1, 51):
            version_file.write_text(str(k))
            await rt.replace_model("v")
            loaded_versions.append(float(k))
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*tasks)
        after = await rt.infer("v", {"x": np.zeros((1, 1), np.float32)})
    assert failures == []
    assert len(seen) > 100
    assert set(seen) <= set(loaded_versions)
    assert float(after["y"][0, 0]) == 50.0  # new requests are served by the newest version
    assert len(set(seen)) > 10  # the swaps were visible while requests flowed


async def test_a_version_that_fails_to_load_leaves_the_old_one_serving(tmp_path: Path) -> None:
    version_file = tmp_path / "version"
    version_file.write_text("3")
    spec = tmp_path / "spec.toml"
    spec.write_text(VERSIONED.format(file=version_file))
    async with Runtime.from_spec(spec, environ={}) as rt:
        version_file.write_text("not a number")
        with pytest.raises(ModelLoadError, match="ValueError"):
            await rt.replace_model("v")
        out = await rt.infer("v", {"x": np.zeros((1, 1), np.float32)})
        assert float(out["y"][0, 0]) == 3.0


async def test_a_cancelled_caller_cancels_its_queued_request(tmp_path: Path) -> None:
    import ir_test_backends as tb

    tb.GATES.pop("held", None)
    tb.ENTERED.pop("held", None)
    tb.CALLS.pop("held", None)
    spec = tmp_path / "spec.toml"
    spec.write_text("""
[models.held]
backend = "python"
warmup = false
inputs = [{ name = "x", dtype = "float32", shape = [-1, 1] }]
python = { entrypoint = "ir_test_backends:Gated", config = { name = "held" } }
[models.held.batching]
max_batch_size = 1
""")
    async with Runtime.from_spec(spec, environ={}) as rt:
        running = asyncio.ensure_future(rt.infer("held", {"x": np.zeros((1, 1), np.float32)}))
        await asyncio.to_thread(tb.entered("held").wait, 10)
        queued = asyncio.ensure_future(rt.infer("held", {"x": np.ones((1, 1), np.float32)}))
        await asyncio.sleep(0.02)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        deadline = time.monotonic() + 5
        while rt.stats("held").cancelled < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert rt.stats("held").cancelled == 1
        tb.gate("held").set()
        await running
        assert tb.CALLS["held"] == [0.0]  # the cancelled request never ran
