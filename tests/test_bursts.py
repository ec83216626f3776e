"""Bursts: requests that arrive together in one event-loop pass are held by the runtime and
submitted in one engine call (``ir_model_submit_many``), each still a request of its own.

The reference for ``ir_model_submit_many`` is what it replaces: one ``ir_model_submit`` per request,
in order. The engine must agree with it on what is admitted, what is refused and why, on
every cookie's rows, and on the counters; the runtime must give a burst's callers exactly
what each would get alone (results, errors and their messages).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ir_test_backends as tb
from infer_runtime import Runtime
from infer_runtime._native import check, ffi, lib, take_error
from infer_runtime._native.engine import COALESCE_MAX_BYTES
from infer_runtime.engine import Delivery, Engine, ModelSignature, TensorSignature
from infer_runtime.errors import InvalidInputError, QueueFullError

WIDTH = 3


def _batching(max_batch_size: int, max_queue_size: int = 64) -> SimpleNamespace:
    return SimpleNamespace(max_batch_size=max_batch_size, max_queue_delay_us=0, preferred_batch_sizes=[], max_queue_size=max_queue_size, priority_levels=1, default_timeout_ms=0)


def _signature(max_batch_size: int, dtype: Any = np.float32) -> ModelSignature:
    return ModelSignature((TensorSignature("x", np.dtype(dtype), (-1, WIDTH)),), None, max_batch_size)


def _submit_many(model: Any, first_cookie: int, x: np.ndarray, rows: list[int], flags: int = 0) -> tuple[int, Exception | None, Any]:
    """``ir_model_submit_many`` on the model's one input: (admitted, the refusal, what to keep)."""
    buf = ffi.from_buffer(x)
    shape = ffi.new("int64_t[]", list(x.shape))
    desc = ffi.new("ir_tensor*", {"name": ffi.NULL, "dtype": lib.IR_DTYPE_FLOAT32, "ndim": x.ndim, "shape": shape, "data": buf, "byte_size": x.nbytes})
    admitted = ffi.new("int32_t*", -1)
    err = lib.ir_model_submit_many(model.handle, first_cookie, desc, 1, ffi.new("int64_t[]", rows or [0]), len(rows), 0, 0, flags, admitted)
    return admitted[0], take_error(err), (buf, shape, desc)


def _drain_all(engine: Engine, expected: int) -> list[Any]:
    """Waits (bounded) for ``expected`` completions; returns (cookie, error, rows array)."""
    buf = ffi.new("ir_completion[]", 64)
    out = []
    tensors = ffi.new("ir_tensor[]", 4)
    for _ in range(200):
        if len(out) >= expected:
            break
        for i in range(engine.wait(0.05, buf)):
            c = buf[i]
            if c.error != ffi.NULL:
                out.append((int(c.cookie), take_error(c.error), None))
                continue
            n = lib.ir_response_describe(c.response, tensors, 4)
            assert n == 1
            t = tensors[0]
            data = np.frombuffer(ffi.buffer(t.data, t.byte_size), np.float32).reshape([t.shape[d] for d in range(t.ndim)]).copy()
            lib.ir_response_release(c.response)
            out.append((int(c.cookie), None, data))
    assert len(out) == expected
    return out


def _reference_admission(rows: list[int], room: int) -> int:
    """One ir_model_submit per request, in order, into a queue with ``room`` free places."""
    return min(len(rows), room)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.integers(1, 6), min_size=1, max_size=24), max_batch=st.integers(6, 16), queue=st.integers(1, 30))
def test_submit_many_agrees_with_one_submit_per_request(rows: list[int], max_batch: int, queue: int) -> None:
    """Admission, refusals, counters and every cookie's rows: as if each request had been
    submitted alone, in order (held with NO_WAKE so the queue fills deterministically)."""
    engine = Engine()
    try:
        model = engine.add_model("m", lib.IR_BACKEND_IDENTITY, _signature(max_batch), instances=1, batching=_batching(max_batch, queue))
        x = np.arange(sum(rows) * WIDTH, dtype=np.float32).reshape(-1, WIDTH)
        admitted, refused, keep = _submit_many(model, 1000, x, rows, lib.IR_SUBMIT_NO_WAKE)
        expected = _reference_admission(rows, queue)
        assert admitted == expected
        if expected < len(rows):
            assert isinstance(refused, QueueFullError) and "queue is full" in str(refused)
        else:
            assert refused is None
        model.wake()
        done = sorted(_drain_all(engine, admitted), key=lambda c: c[0])
        starts = np.cumsum([0, *rows])
        assert [c[0] for c in done] == [1000 + k for k in range(admitted)]
        for k, (_cookie, error, data) in enumerate(done):
            assert error is None
            np.testing.assert_array_equal(data, x[starts[k] : starts[k + 1]])  # bit-exact rows
        stats = model.stats()
        assert (stats.submitted, stats.succeeded, stats.rejected_queue_full) == (len(rows), admitted, len(rows) - admitted)
        del keep
    finally:
        engine.stop(1.0)
        engine.destroy()


def test_consecutive_parts_run_on_the_callers_memory() -> None:
    """A batch made of consecutive parts of one submission is handed to the backend as that
    memory (no gather); requests from separate buffers are gathered."""
    engine = Engine()
    try:
        model = engine.add_model("m", lib.IR_BACKEND_EXTERNAL, _signature(8), instances=1, batching=_batching(8))
        batch = ffi.new("ir_batch**")
        seen = ffi.new("ir_tensor*")

        def pull() -> tuple[int, int]:
            check(lib.ir_model_next_batch(model.handle, 0, 2_000_000, batch, ffi.NULL, 0, ffi.NULL))
            assert batch[0] != ffi.NULL
            lib.ir_batch_input(batch[0], 0, seen)
            address, rows = int(ffi.cast("uintptr_t", seen.data)), int(seen.shape[0])
            check(lib.ir_batch_set_output(batch[0], seen))
            lib.ir_batch_finish(batch[0], ffi.NULL)
            return address, rows

        x = np.arange(6 * WIDTH, dtype=np.float32).reshape(6, WIDTH)
        admitted, refused, keep = _submit_many(model, 1, x, [2, 1, 3])
        assert (admitted, refused) == (3, None)
        assert pull() == (int(ffi.cast("uintptr_t", ffi.from_buffer(x))), 6)
        done = sorted(_drain_all(engine, 3), key=lambda c: c[0])
        np.testing.assert_array_equal(np.concatenate([d for _, _, d in done]), x)

        a, b = np.ones((1, WIDTH), np.float32), np.zeros((2, WIDTH), np.float32)
        kept = [model.submit(10, {"x": a}, 0, None, wake=False), model.submit(11, {"x": b}, 0, None, wake=False)]
        model.wake()
        address, rows = pull()
        assert rows == 3 and address not in (int(ffi.cast("uintptr_t", ffi.from_buffer(a))), int(ffi.cast("uintptr_t", ffi.from_buffer(b))))
        _drain_all(engine, 2)
        del keep, kept
    finally:
        engine.stop(1.0)
        engine.destroy()


@pytest.mark.parametrize(
    ("rows", "dtype", "batching", "message"),
    [
        ([2, 1], np.float32, True, "the requests' rows add up to 3, the inputs have 4"),
        ([2, 0, 2], np.float32, True, "request 1 has 0 rows; each needs 1 to 4"),
        ([4, 0], np.float32, True, "request 1 has 0 rows"),
        ([], np.float32, True, "no requests to submit"),
        ([1, 3], np.float32, False, "does not batch: submit its requests one at a time"),
        ([1, 3], object, True, "BYTES inputs cannot be split into requests by rows"),
    ],
)
def test_submit_many_refuses_a_bad_split_whole(rows: list[int], dtype: Any, batching: bool, message: str) -> None:
    engine = Engine()
    try:
        signature = ModelSignature((TensorSignature("x", np.dtype(dtype), (-1, WIDTH)),), None, 4 if batching else 0)
        model = engine.add_model("m", lib.IR_BACKEND_IDENTITY, signature, instances=1, batching=_batching(4) if batching else None)
        x = np.zeros((4, WIDTH), np.float32)
        buf = ffi.from_buffer(x)
        shape = ffi.new("int64_t[]", [4, WIDTH])
        code = lib.IR_DTYPE_BYTES if dtype is object else lib.IR_DTYPE_FLOAT32
        payload = ffi.new("char[]", b"\x00\x00\x00\x00" * 12) if dtype is object else buf
        desc = ffi.new("ir_tensor*", {"name": ffi.NULL, "dtype": code, "ndim": 2, "shape": shape, "data": payload, "byte_size": 48})
        admitted = ffi.new("int32_t*", -1)
        err = lib.ir_model_submit_many(model.handle, 1, desc, 1, ffi.new("int64_t[]", rows or [0]), len(rows), 0, 0, 0, admitted)
        with pytest.raises(InvalidInputError) as info:
            check(err)
        assert message in str(info.value)
        assert admitted[0] == 0
        stats = model.stats()
        assert (stats.submitted, stats.failed_invalid, stats.in_flight, stats.queue_depth) == (len(rows), len(rows), 0, 0)
    finally:
        engine.stop(1.0)
        engine.destroy()


def test_submit_many_after_stop_is_unavailable() -> None:
    engine = Engine()
    model = engine.add_model("m", lib.IR_BACKEND_IDENTITY, _signature(4), instances=1, batching=_batching(4))
    engine.stop(1.0)
    try:
        admitted, refused, _keep = _submit_many(model, 1, np.zeros((2, WIDTH), np.float32), [1, 1])
        assert admitted == 0 and refused is not None and "shutting down" in str(refused)
    finally:
        engine.destroy()


def test_completions_release_frees_each_and_tolerates_null() -> None:
    """The sanitizer run checks that nothing leaks or is freed twice."""
    lib.ir_completions_release(ffi.NULL, 3)
    buf = ffi.new("ir_completion[]", 2)
    buf[0].error = lib.ir_error_new(lib.IR_ERROR_INTERNAL, b"x")
    lib.ir_completions_release(buf, 2)
    assert buf[0].error == ffi.NULL and buf[1].response == ffi.NULL


def test_a_batch_split_across_drains_is_delivered_whole() -> None:
    """Delivery remembers a batch whose completions span two drains (capacity 3, batch 8)."""
    import concurrent.futures

    engine = Engine()
    try:
        model = engine.add_model("m", lib.IR_BACKEND_IDENTITY, _signature(8), instances=1, batching=_batching(8))
        x = np.arange(8 * WIDTH, dtype=np.float32).reshape(8, WIDTH)
        waiters = {1 + k: concurrent.futures.Future() for k in range(8)}
        admitted, refused, keep = _submit_many(model, 1, x, [1] * 8)
        assert (admitted, refused) == (8, None)
        delivery = Delivery(3)
        resolved = 0
        for _ in range(200):
            n = engine.wait(0.05, delivery.buffer) if resolved == 0 else engine.drain_into(delivery.buffer, 3)
            if n:
                columns = delivery.columns(n)
                delivery.resolve(columns, [waiters[c] for c in columns[0]])
                resolved += n
            if resolved == 8:
                break
        assert resolved == 8
        for k in range(8):
            np.testing.assert_array_equal(waiters[1 + k].result(0)["x"], x[k : k + 1])
        assert delivery._batches == {}  # forgotten after its last request
        del keep
    finally:
        engine.stop(1.0)
        engine.destroy()


# ---- The runtime: a burst's callers get what each would get alone -------------------------

ECHO = """
[runtime]
idle_spin_us = 0
[models.echo]
backend = "identity"
inputs = [{ name = "x", dtype = "float32", shape = [-1, 4] }]
[models.echo.batching]
max_batch_size = 8
priority_levels = 3
"""


class _CountingStage:
    """Wraps an engine model to count the requests its ``stage`` held."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.held = 0

    def stage(self, *args: Any) -> bool:
        held = bool(self._model.stage(*args))
        self.held += held
        return held

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def _count_staging(rt: Runtime, name: str) -> _CountingStage:
    counter = _CountingStage(rt._serving[name])
    rt._serving[name] = counter
    return counter


async def _burst(rt: Runtime, calls: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[Any]:
    """Starts every call in one loop pass; returns each result or exception."""
    return await asyncio.gather(*(rt.infer("echo", inputs, **options) for inputs, options in calls), return_exceptions=True)


@pytest.fixture
def echo(tmp_path: Path) -> Path:
    path = tmp_path / "echo.toml"
    path.write_text(ECHO)
    return path


BAD = [
    ({"x": np.ones((1, 4), np.float64)}, "input 'x' must be float32, got float64"),
    ({"x": np.ones((1, 5), np.float32)}, "input 'x' must have shape [-1, 4], got [1, 5]"),
    ({"x": np.ones(4, np.float32)}, "input 'x' must have shape [-1, 4], got [4]"),
    ({"x": np.ones((9, 4), np.float32)}, "input 'x' has 9 rows; each request needs 1 to 8 (max_batch_size)"),
    ({"x": np.ones((0, 4), np.float32)}, "input 'x' has 0 rows"),
    ({"y": np.ones((1, 4), np.float32)}, "missing input(s) 'x'; unknown input(s) 'y'"),
    ({"x": [[1.0, 2.0, 3.0, 4.0]]}, "input 'x' must be float32, got float64"),  # a list goes alone
]


async def test_bad_requests_in_a_burst_fail_alone_with_their_own_message(echo: Path) -> None:
    async with Runtime.from_spec(echo, environ={}) as rt:
        counter = _count_staging(rt, "echo")
        good = [np.full((k, 4), k, np.float32) for k in (1, 2, 3, 1)]
        calls = [({"x": good[0]}, {}), *[(inputs, {}) for inputs, _ in BAD], *[({"x": g}, {}) for g in good[1:]]]
        before = rt.stats("echo")
        results = await _burst(rt, calls)
        assert counter.held >= len(calls) - 3  # all but the first, the list and the misnamed one were held
        for (_, message), got in zip(BAD, results[1 : 1 + len(BAD)]):
            assert isinstance(got, InvalidInputError) and message in str(got)
        for g, got in zip(good, [results[0], *results[1 + len(BAD) :]]):
            np.testing.assert_array_equal(got["x"], g)
        after = rt.stats("echo")
        assert after.submitted - before.submitted == len(calls)
        assert after.failed_invalid - before.failed_invalid == len(BAD)
        assert after.succeeded - before.succeeded == len(good)


async def test_a_burst_mixes_priorities_timeouts_and_strided_inputs(echo: Path) -> None:
    """Held per (priority, timeout) group; non-contiguous requests come back exact too
    (the concatenation copies them)."""
    async with Runtime.from_spec(echo, environ={}) as rt:
        counter = _count_staging(rt, "echo")
        rng = np.random.default_rng(3)
        strided = rng.random((6, 8), dtype=np.float32)[:, ::2]
        calls: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for i in range(24):
            k = 1 + i % 4
            x = rng.random((k, 4), dtype=np.float32)
            options = [{}, {"priority": 2}, {"timeout_ms": 5000}, {"priority": 1, "timeout_ms": 3000}][i % 4]
            calls.append(({"x": x}, options))
        calls += [({"x": strided[:3]}, {}), ({"x": strided[3:5]}, {"priority": 1})]
        results = await _burst(rt, calls)
        for (inputs, _), got in zip(calls, results):
            assert not isinstance(got, BaseException), got
            np.testing.assert_array_equal(got["x"], np.asarray(inputs["x"], np.float32))
        assert counter.held >= len(calls) - 1  # all but the first were held


async def test_requests_over_the_coalescing_limit_go_alone(tmp_path: Path) -> None:
    width = COALESCE_MAX_BYTES // 4  # one float32 row is exactly the limit: two rows exceed it
    path = tmp_path / "wide.toml"
    path.write_text(f'[runtime]\nidle_spin_us = 0\n[models.echo]\nbackend = "identity"\ninputs = [{{ name = "x", dtype = "float32", shape = [-1, {width}] }}]\n[models.echo.batching]\nmax_batch_size = 4\n')
    async with Runtime.from_spec(path, environ={}) as rt:
        counter = _count_staging(rt, "echo")
        xs = [np.full((k, width), k, np.float32) for k in (1, 1, 2, 1, 2)]
        results = await asyncio.gather(*(rt.infer("echo", {"x": x}) for x in xs))
        for x, got in zip(xs, results):
            np.testing.assert_array_equal(got["x"], x)
        assert counter.held == 2  # the one-row requests after the first; the two-row ones went alone


async def test_a_full_queue_refuses_the_tail_of_a_burst(tmp_path: Path) -> None:
    text = """
[runtime]
idle_spin_us = 0
[models.held]
backend = "python"
warmup = false
inputs = [{ name = "x", dtype = "float32", shape = [-1, 1] }]
python = { entrypoint = "ir_test_backends:Gated", config = { name = "held" } }
[models.held.batching]
max_batch_size = 1
max_queue_size = 3
"""
    for name in ("held",):
        tb.GATES.pop(name, None)
        tb.ENTERED.pop(name, None)
        tb.CALLS.pop(name, None)
    path = tmp_path / "held.toml"
    path.write_text(text)
    async with Runtime.from_spec(path, environ={}) as rt:
        running = asyncio.ensure_future(rt.infer("held", {"x": np.zeros((1, 1), np.float32)}))
        await asyncio.to_thread(tb.entered("held").wait, 10)
        burst = [asyncio.ensure_future(rt.infer("held", {"x": np.full((1, 1), i, np.float32)})) for i in range(1, 7)]
        await asyncio.sleep(0.05)
        refused = [f for f in burst if f.done() and isinstance(f.exception(), QueueFullError)]
        assert len(refused) == 3 and all(f is b for f, b in zip(refused, burst[3:]))  # in order: the tail
        assert len({id(f.exception()) for f in refused}) == 3  # one exception object per caller
        tb.gate("held").set()
        await running
        assert [float((await f)["x"][0, 0]) for f in burst[:3]] == [1.0, 2.0, 3.0]
        assert rt.stats("held").rejected_queue_full == 3


async def test_stop_admits_and_drains_a_burst_still_held(echo: Path) -> None:
    """Requests accepted by infer() before stop() are served even if the doorbell that
    would have submitted them has not rung yet."""
    rt = await Runtime.from_spec(echo, environ={}).start()
    xs = [np.full((1, 4), i, np.float32) for i in range(10)]
    futures = [asyncio.ensure_future(rt.infer("echo", {"x": x})) for x in xs]
    await asyncio.sleep(0)  # every infer ran: the first was submitted, the rest are held
    assert not all(f.done() for f in futures)
    await rt.stop(timeout_s=10)
    for x, f in zip(xs, futures):
        np.testing.assert_array_equal((await f)["x"], x)


async def test_a_burst_for_a_model_with_several_inputs(tmp_path: Path) -> None:
    """Each input is concatenated on its own; a request whose inputs disagree on rows, or
    whose second input is wrong while the first varies, fails alone."""
    path = tmp_path / "pair.toml"
    path.write_text('[runtime]\nidle_spin_us = 0\n[models.pair]\nbackend = "identity"\ninputs = [{ name = "a", dtype = "float32", shape = [-1, 2] }, { name = "b", dtype = "int64", shape = [-1, 3] }]\n[models.pair.batching]\nmax_batch_size = 6\n')
    async with Runtime.from_spec(path, environ={}) as rt:
        counter = _count_staging(rt, "pair")

        def pair(k: int, kb: int | None = None, b_dtype: Any = np.int64) -> dict[str, np.ndarray]:
            return {"a": np.full((k, 2), k, np.float32), "b": np.full((kb or k, 3), 10 * k, b_dtype)}

        calls = [pair(1), pair(2), pair(3), pair(2, kb=1), pair(1, b_dtype=np.int32), pair(1), pair(3)]
        results = await asyncio.gather(*(rt.infer("pair", c) for c in calls), return_exceptions=True)
        assert counter.held == len(calls) - 1
        assert isinstance(results[3], InvalidInputError) and "inputs disagree on the batch dimension (2 vs 1)" in str(results[3])
        assert isinstance(results[4], InvalidInputError) and "input 'b' must be int64, got int32" in str(results[4])
        for i in (0, 1, 2, 5, 6):
            assert set(results[i]) == {"a", "b"}
            for name in ("a", "b"):
                np.testing.assert_array_equal(results[i][name], calls[i][name])
        uniform = [pair(2) for _ in range(5)]  # every request alike: the fast path of the checks
        for c, got in zip(uniform, await asyncio.gather(*(rt.infer("pair", c) for c in uniform))):
            np.testing.assert_array_equal(got["b"], c["b"])


async def test_a_caller_cancelled_while_held_does_not_disturb_the_burst(echo: Path) -> None:
    """Its request still runs (the engine has no per-request cancellation), its result is
    dropped and its engine memory released; the others get theirs."""
    async with Runtime.from_spec(echo, environ={}) as rt:
        xs = [np.full((1, 4), i, np.float32) for i in range(6)]
        tasks = [asyncio.ensure_future(rt.infer("echo", {"x": x})) for x in xs]
        await asyncio.sleep(0)  # all submitted or held
        tasks[3].cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(done[3], asyncio.CancelledError)
        for i in (0, 1, 2, 4, 5):
            np.testing.assert_array_equal(done[i]["x"], xs[i])
        assert rt._core.pending == {}
        assert rt.stats("echo").in_flight == 0


def test_each_refused_caller_gets_its_own_exception_object() -> None:
    from infer_runtime._native.engine import _copy_error
    from infer_runtime.errors import InternalError

    original = QueueFullError("model 'm' queue is full (3 requests)")
    original.code = "RESOURCE_EXHAUSTED"
    copy = _copy_error(original)
    assert copy is not original and type(copy) is QueueFullError
    assert (str(copy), copy.code) == (str(original), "RESOURCE_EXHAUSTED")

    class Picky(Exception):
        def __init__(self, a: str, b: str) -> None:
            super().__init__(f"{a}/{b}")

    fallback = _copy_error(Picky("x", "y"))
    assert isinstance(fallback, InternalError) and "Picky: x/y" in str(fallback)
