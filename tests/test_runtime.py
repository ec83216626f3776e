"""The embedding API and the engine behind it: results, errors, overload, timeouts,
priorities, backend failures, shutdown, and resource hygiene."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import ir_test_backends as tb
from infer_runtime import Runtime, SyncRuntime
from infer_runtime.errors import (
    BackendError,
    DeadlineExceededError,
    InvalidInputError,
    ModelLoadError,
    ModelNotFoundError,
    QueueFullError,
    RequestCancelledError,
    SpecError,
    UnavailableError,
)

ECHO = """
[models.echo]
backend = "identity"
inputs = [{ name = "x", dtype = "float32", shape = [-1, 4] }]
[models.echo.batching]
max_batch_size = 8
max_queue_delay_us = 2000
"""


@pytest.fixture
def spec(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(text: str) -> Path:
        path = tmp_path / "spec.toml"
        path.write_text(text)
        return path

    return write


def gated(name: str, *, batching: str = "", extra: str = "") -> str:
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
{batching}
"""


async def test_identity_returns_each_caller_its_own_rows(spec) -> None:  # type: ignore[no-untyped-def]
    # The fixed window (adaptive off) is what makes the burst one batch on a loaded machine.
    async with Runtime.from_spec(spec(ECHO + "adaptive = false\n"), environ={}) as rt:
        xs = [np.full((k, 4), i, np.float32) + np.arange(4, dtype=np.float32) for i, k in enumerate([1, 3, 2, 1, 1])]
        outs = await asyncio.gather(*(rt.infer("echo", {"x": x}) for x in xs))
        for x, out in zip(xs, outs):
            assert out["x"].dtype == np.float32 and out["x"].shape == x.shape
            np.testing.assert_array_equal(out["x"], x)
        stats = rt.stats("echo")
        assert stats.succeeded == 5 + 1  # + warmup
        assert stats.batches < 6  # requests were batched together
        assert rt.model_names == ["echo"]
        sig = rt.signature("echo")
        assert sig.max_batch_size == 8 and [t.describe() for t in sig.inputs or ()] == ["x: float32[-1, 4]"]


async def test_a_batch_size_seen_once_stops_steering_the_adaptive_delay(spec) -> None:  # type: ignore[no-untyped-def]
    # The first batch (1 row) takes 20 ms, every later one (8 rows) well under a millisecond.
    # Were that first run remembered for good, the cost model would put every batch at 20 ms
    # and hold each lone 8-row request ~10 ms for a companion; it fades once 128 batches
    # went by without that size, and lone requests are answered at once again.
    text = """
[models.slow_first]
backend = "python"
warmup = false
inputs = [{ name = "x", dtype = "float32", shape = [-1, 1] }]
python = { entrypoint = "ir_test_backends:SlowFirstBatch", config = { name = "slow_first", first_ms = 20 } }
[models.slow_first.batching]
max_batch_size = 64
max_queue_delay_us = 200000
"""
    async with Runtime.from_spec(spec(text), environ={}) as rt:

        async def lone_requests(rows: int, n: int) -> list[float]:
            """Latencies of n requests of `rows` rows, one at a time."""
            x, out = np.zeros((rows, 1), np.float32), []
            for _ in range(n):
                start = time.perf_counter()
                await rt.infer("slow_first", {"x": x})
                out.append(time.perf_counter() - start)
            return out

        await lone_requests(1, 1)
        latencies = await lone_requests(8, 150)
        singles = await lone_requests(1, 10)  # their bucket starts afresh, not from the old 20 ms
        assert tb.CALLS["slow_first"] == [1] + [8] * 150 + [1] * 10  # one request per batch throughout
        held = sum(latency > 0.005 for latency in latencies[:40])
        late = sorted(latencies[-15:])[7]
        again = sorted(singles[1:])[4]
        assert held >= 10, f"the first run did not steer the delay at first (only {held} of 40 held)"
        assert late < 0.003, f"a size seen once still steers the delay ({late * 1e3:.1f} ms per lone request)"
        assert again < 0.003, f"a size back after a while brought its old average ({again * 1e3:.1f} ms per lone request)"


async def test_outputs_survive_the_runtime_and_are_freed_with_the_arrays(spec) -> None:  # type: ignore[no-untyped-def]
    async with Runtime.from_spec(spec(ECHO), environ={}) as rt:
        out = await rt.infer("echo", {"x": np.ones((2, 4), np.float32)})
    gc.collect()
    np.testing.assert_array_equal(out["x"], np.ones((2, 4), np.float32))  # engine memory still held
    with pytest.raises(UnavailableError, match="statistics are gone"):
        rt.stats("echo")  # never reads a freed engine


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "missing input(s) 'x'"),
        ({"x": np.ones((1, 4), np.float32), "y": np.ones(1)}, "unknown input(s) 'y'"),
        ({"y": np.ones((1, 4), np.float32)}, "missing input(s) 'x'; unknown input(s) 'y'"),
        ({"x": np.ones((1, 4), np.float64)}, "input 'x' must be float32, got float64"),
        ({"x": np.ones((1, 5), np.float32)}, "input 'x' must have shape [-1, 4], got [1, 5]"),
        ({"x": np.ones(4, np.float32)}, "input 'x' must have shape [-1, 4], got [4]"),
        ({"x": np.ones((9, 4), np.float32)}, "input 'x' has 9 rows; each request needs 1 to 8 (max_batch_size)"),
        ({"x": np.ones((0, 4), np.float32)}, "input 'x' has 0 rows"),
    ],
)
async def test_bad_inputs_are_refused_before_enqueueing(spec, inputs, message) -> None:  # type: ignore[no-untyped-def]
    async with Runtime.from_spec(spec(ECHO), environ={}) as rt:
        before = rt.stats("echo")
        with pytest.raises(InvalidInputError) as info:
            await rt.infer("echo", inputs)
        assert message in str(info.value)
        assert isinstance(info.value, ValueError)
        after = rt.stats("echo")
        assert (after.submitted - before.submitted, after.failed_invalid - before.failed_invalid) == (1, 1)
        assert (after.batches, after.in_flight, after.queue_depth) == (before.batches, 0, 0)  # never enqueued


async def test_bad_priority_timeout_and_model(spec) -> None:  # type: ignore[no-untyped-def]
    async with Runtime.from_spec(spec(ECHO), environ={}) as rt:
        x = {"x": np.ones((1, 4), np.float32)}
        with pytest.raises(InvalidInputError, match=r"priority 1 is outside \[0, 1\)"):
            await rt.infer("echo", x, priority=1)
        with pytest.raises(InvalidInputError, match="timeout_ms must be > 0"):
            await rt.infer("echo", x, timeout_ms=0)
        with pytest.raises(ModelNotFoundError, match="no model or pipeline named 'ech'"):
            await rt.infer("ech", x)
        with pytest.raises(LookupError):
            rt.stats("nope")


async def test_non_contiguous_and_list_inputs_are_accepted(spec) -> None:  # type: ignore[no-untyped-def]
    async with Runtime.from_spec(spec(ECHO), environ={}) as rt:
        base = np.arange(32, dtype=np.float32).reshape(4, 8)
        view = base[:, ::2]
        out = await rt.infer("echo", {"x": view})
        np.testing.assert_array_equal(out["x"], view)


async def test_overload_is_rejected_at_once(spec) -> None:  # type: ignore[no-untyped-def]
    text = gated("held", batching="[models.held.batching]\nmax_batch_size = 1\nmax_queue_size = 2\n")
    async with Runtime.from_spec(spec(text), environ={}) as rt:
        x = {"x": np.ones((1, 1), np.float32)}
        running = asyncio.ensure_future(rt.infer("held", x))  # taken by the only instance
        await asyncio.to_thread(tb.entered("held").wait, 10)
        queued = [asyncio.ensure_future(rt.infer("held", x)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(QueueFullError, match="queue is full"):
            await rt.infer("held", x)
        assert rt.stats("held").rejected_queue_full == 1
        tb.gate("held").set()
        for fut in [running, *queued]:
            np.testing.assert_array_equal((await fut)["x"], x["x"])


async def test_queued_requests_time_out_and_never_run(spec) -> None:  # type: ignore[no-untyped-def]
    text = gated("slow", batching="[models.slow.batching]\nmax_batch_size = 1\ndefault_timeout_ms = 60000\n")
    async with Runtime.from_spec(spec(text), environ={}) as rt:
        first = asyncio.ensure_future(rt.infer("slow", {"x": np.full((1, 1), 1, np.float32)}))
        await asyncio.to_thread(tb.entered("slow").wait, 10)
        late = asyncio.ensure_future(rt.infer("slow", {"x": np.full((1, 1), 2, np.float32)}, timeout_ms=20))
        await asyncio.sleep(0.1)
        tb.gate("slow").set()
        await first
        with pytest.raises(DeadlineExceededError, match="timed out in the queue") as info:
            await late
        assert isinstance(info.value, TimeoutError)
        assert tb.CALLS["slow"] == [1.0]  # the expired request never reached the backend
        assert rt.stats("slow").timed_out == 1


async def test_higher_priority_is_served_first(spec) -> None:  # type: ignore[no-untyped-def]
    text = gated("prio", batching="[models.prio.batching]\nmax_batch_size = 1\npriority_levels = 3\n")
    async with Runtime.from_spec(spec(text), environ={}) as rt:
        def req(v: float, p: int):  # type: ignore[no-untyped-def]
            return asyncio.ensure_future(rt.infer("prio", {"x": np.full((1, 1), v, np.float32)}, priority=p))

        first = req(0, 0)
        await asyncio.to_thread(tb.entered("prio").wait, 10)
        rest = [req(1, 0), req(2, 2), req(3, 1), req(4, 2)]
        await asyncio.sleep(0.05)
        tb.gate("prio").set()
        await asyncio.gather(first, *rest)
        assert tb.CALLS["prio"] == [0.0, 2.0, 4.0, 3.0, 1.0]


async def test_backend_exception_fails_that_batch_only(spec) -> None:  # type: ignore[no-untyped-def]
    text = """
[models.picky]
backend = "python"
inputs = [{ name = "x", dtype = "float32", shape = [-1, 2] }]
python = { entrypoint = "ir_test_backends:Failing" }
"""
    async with Runtime.from_spec(spec(text), environ={}) as rt:
        with pytest.raises(BackendError, match="ValueError: negative input is not allowed"):
            await rt.infer("picky", {"x": -np.ones((1, 2), np.float32)})
        out = await rt.infer("picky", {"x": np.ones((1, 2), np.float32)})  # still serving
        np.testing.assert_array_equal(out["x"], np.ones((1, 2), np.float32))
        assert rt.stats("picky").failed_backend == 1


@pytest.mark.parametrize(("mode", "message"), [("list", "backend returned list, expected a dict of arrays"), ("rows", "output 'x' has shape [3, 1] but the batch has 2 rows")])
async def test_backend_returning_garbage_is_a_backend_error(spec, mode, message) -> None:  # type: ignore[no-untyped-def]
    text = f"""
[models.bad]
backend = "python"
warmup = false
python = {{ entrypoint = "ir_test_backends:BadOutput", config = {{ mode = "{mode}" }} }}
[models.bad.batching]
max_batch_size = 4
"""
    async with Runtime.from_spec(spec(text), environ={}) as rt:
        with pytest.raises(BackendError, match=message.replace("[", r"\[").replace("]", r"\]")):
            await rt.infer("bad", {"x": np.ones((2, 1), np.float32)})


async def test_stop_drains_in_flight_work(spec) -> None:  # type: ignore[no-untyped-def]
    text = gated("drain", batching="[models.drain.batching]\nmax_batch_size = 1\n")
    rt = await Runtime.from_spec(spec(text), environ={}).start()
    futures = [asyncio.ensure_future(rt.infer("drain", {"x": np.full((1, 1), i, np.float32)})) for i in range(5)]
    await asyncio.to_thread(tb.entered("drain").wait, 10)
    threading.Timer(0.1, tb.gate("drain").set).start()
    await rt.stop(timeout_s=10)
    results = await asyncio.gather(*futures)
    assert [float(r["x"][0, 0]) for r in results] == [0, 1, 2, 3, 4]
    with pytest.raises(UnavailableError):
        await rt.infer("drain", {"x": np.ones((1, 1), np.float32)})


async def test_stop_timeout_cancels_what_is_still_queued(spec) -> None:  # type: ignore[no-untyped-def]
    text = gated("stuck", batching="[models.stuck.batching]\nmax_batch_size = 1\n")
    rt = await Runtime.from_spec(spec(text), environ={}).start()
    running = asyncio.ensure_future(rt.infer("stuck", {"x": np.zeros((1, 1), np.float32)}))
    await asyncio.to_thread(tb.entered("stuck").wait, 10)
    queued = [asyncio.ensure_future(rt.infer("stuck", {"x": np.ones((1, 1), np.float32)})) for _ in range(3)]
    await asyncio.sleep(0.01)
    threading.Timer(0.3, tb.gate("stuck").set).start()  # the running batch finishes later
    await rt.stop(timeout_s=0.05)
    for fut in queued:
        with pytest.raises(RequestCancelledError, match="shutting down"):
            await fut
    np.testing.assert_array_equal((await running)["x"], np.zeros((1, 1), np.float32))  # never lost


def test_sync_stop_timeout_still_delivers_the_running_batch(spec) -> None:  # type: ignore[no-untyped-def]
    """SyncRuntime: a batch still running when the drain timeout expires completes after
    the dispatcher has seen the engine stop; its result must still reach the caller (it
    was once cancelled instead)."""
    text = gated("late", batching="[models.late.batching]\nmax_batch_size = 1\n")
    rt = SyncRuntime.from_spec(spec(text), environ={}).start()
    got: dict[str, object] = {}

    def call() -> None:
        try:
            got["result"] = rt.infer("late", {"x": np.full((1, 1), 7, np.float32)})
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion below
            got["error"] = exc

    caller = threading.Thread(target=call)
    caller.start()
    assert tb.entered("late").wait(10)
    threading.Timer(0.3, tb.gate("late").set).start()  # finishes long after the 50 ms drain
    rt.stop(timeout_s=0.05)
    caller.join(10)
    assert "error" not in got, got
    np.testing.assert_array_equal(got["result"]["x"], np.full((1, 1), 7, np.float32))  # type: ignore[index]


def _threads_and_fds() -> tuple[list[str], int]:
    # The loop's default executor (asyncio.to_thread) starts its workers lazily, up to a
    # fixed cap: those are not ours and not a leak. Everything else is counted.
    ours = sorted(t.name for t in threading.enumerate() if not t.name.startswith("asyncio_"))
    return ours, len(os.listdir("/proc/self/fd"))


async def test_no_thread_or_fd_leaks_across_100_start_stop_cycles(spec) -> None:  # type: ignore[no-untyped-def]
    text = ECHO + """
[models.affine]
backend = "python"
instances = 2
inputs = [{ name = "x", dtype = "float32", shape = [-1, 4] }]
python = { entrypoint = "ir_test_backends:Affine", config = { name = "cycles" } }
"""
    path = spec(text)
    async def cycle() -> None:
        async with Runtime.from_spec(path, environ={}) as rt:
            await rt.infer("echo", {"x": np.ones((1, 4), np.float32)})
            await rt.infer("affine", {"x": np.ones((1, 4), np.float32)})

    await cycle()
    gc.collect()
    before = _threads_and_fds()
    for _ in range(100):
        await cycle()
    gc.collect()
    assert _threads_and_fds() == before


async def test_exit_on_error_false_serves_the_others(spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = ECHO + """
[server]
exit_on_error = false
[models.broken]
backend = "python"
python = { entrypoint = "ir_test_backends:BrokenInit" }
[models.missing]
backend = "onnxruntime"
path = "nope.onnx"
"""
    async with Runtime.from_spec(spec(text), environ={}, overrides=None) as rt:
        assert rt.model_names == ["echo"]
        assert "RuntimeError: cannot initialise" in rt.failed_models["broken"]
        assert "file not found" in rt.failed_models["missing"]
        with pytest.raises(UnavailableError, match="model 'broken' is not available"):
            await rt.infer("broken", {"x": np.ones((1, 4), np.float32)})
        await rt.infer("echo", {"x": np.ones((1, 4), np.float32)})


async def test_missing_artifact_fails_that_model_at_load(spec) -> None:  # type: ignore[no-untyped-def]
    text = ECHO + '[models.missing]\nbackend = "onnxruntime"\npath = "nope.onnx"\n'
    with pytest.raises(ModelLoadError, match="model 'missing': file not found: .*nope.onnx"):
        await Runtime.from_spec(spec(text), environ={}).start()


def test_invalid_spec_raises_spec_error_with_every_issue(spec) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError) as info:
        Runtime.from_spec(spec(ECHO + "[models.echo.onnxruntime]\n[runtime]\nworker_threads = 0\n"), environ={})
    assert [i.format().split(": error: ")[1] for i in info.value.issues] == [
        "models.echo.onnxruntime: options for backend 'onnxruntime', but this model's backend is 'identity' (remove the table or set backend = 'onnxruntime')",
        "runtime.worker_threads: must be ≥ 1 (got 0)",
    ]


async def test_exit_on_error_true_fails_startup(spec) -> None:  # type: ignore[no-untyped-def]
    text = ECHO + '[models.broken]\nbackend = "python"\npython = { entrypoint = "ir_test_backends:BrokenInit" }\n'
    with pytest.raises(ModelLoadError, match="1 model\\(s\\) failed to load: model 'broken'"):
        async with Runtime.from_spec(spec(text), environ={}):
            pass


async def test_unimplemented_backends_fail_clearly(spec) -> None:  # type: ignore[no-untyped-def]
    text = ECHO + '[server]\nexit_on_error = false\n[models.rt]\nbackend = "tensorrt"\npath = "spec.toml"\n'
    async with Runtime.from_spec(spec(text), environ={}) as rt:
        assert "needs a CUDA GPU" in rt.failed_models["rt"]


def test_sync_runtime_from_many_threads(spec) -> None:  # type: ignore[no-untyped-def]
    with SyncRuntime.from_spec(spec(ECHO), environ={}) as rt:
        results: dict[int, np.ndarray] = {}

        def work(i: int) -> None:
            for j in range(20):
                x = np.full((1, 4), i * 100 + j, np.float32)
                results[i * 100 + j] = rt.infer("echo", {"x": x})["x"]

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 160
        assert all(float(v[0, 0]) == k for k, v in results.items())
        with pytest.raises(InvalidInputError):
            rt.infer("echo", {"x": np.ones((1, 3), np.float32)})
    with pytest.raises(UnavailableError):
        rt.infer("echo", {"x": np.ones((1, 4), np.float32)})


async def test_warmup_runs_before_the_runtime_is_ready(spec) -> None:  # type: ignore[no-untyped-def]
    tb.CALLS.pop("warm", None)
    text = """
[models.warm]
backend = "python"
inputs = [{ name = "x", dtype = "float32", shape = [-1, 3] }]
python = { entrypoint = "ir_test_backends:Affine", config = { name = "warm" } }
"""
    async with Runtime.from_spec(spec(text), environ={}):
        assert tb.CALLS["warm"] == [1]


async def test_overrides_reach_the_engine(spec) -> None:  # type: ignore[no-untyped-def]
    async with Runtime.from_spec(spec(ECHO), environ={}, overrides={"models.echo.batching.max_batch_size": 2}) as rt:
        assert rt.signature("echo").max_batch_size == 2
        with pytest.raises(InvalidInputError, match="needs 1 to 2"):
            await rt.infer("echo", {"x": np.ones((3, 4), np.float32)})


def test_quiet_admission_waits_for_the_doorbell_unless_it_fills_a_batch() -> None:
    """IR_SUBMIT_NO_WAKE: staged requests are invisible to the batcher until ir_model_wake,
    except that staged rows reaching max_batch_size are handed over at once."""
    from types import SimpleNamespace

    from infer_runtime._native import check, ffi, lib
    from infer_runtime.engine import Engine, ModelSignature, TensorSignature

    engine = Engine()
    try:
        signature = ModelSignature((TensorSignature("x", np.dtype(np.float32), (-1, 2)),), None, 4)
        batching = SimpleNamespace(max_batch_size=4, max_queue_delay_us=0, preferred_batch_sizes=[], max_queue_size=16, priority_levels=1, default_timeout_ms=0)
        model = engine.add_model("m", lib.IR_BACKEND_EXTERNAL, signature, instances=1, batching=batching)
        out = ffi.new("ir_batch**")

        def next_batch_rows() -> int:
            check(lib.ir_model_next_batch(model.handle, 0, 2000, out, ffi.NULL, 0, ffi.NULL))
            if out[0] == ffi.NULL:
                return 0
            t = ffi.new("ir_tensor*")
            lib.ir_batch_input(out[0], 0, t)
            rows = int(t.shape[0])
            lib.ir_batch_finish(out[0], ffi.NULL)
            return rows

        keep = [model.submit(i, {"x": np.zeros((k, 2), np.float32)}, 0, None, wake=False) for i, k in enumerate((2, 1))]
        assert next_batch_rows() == 0  # staged: not visible yet
        model.wake()
        assert next_batch_rows() == 3
        keep += [model.submit(10 + i, {"x": np.zeros((k, 2), np.float32)}, 0, None, wake=False) for i, k in enumerate((1, 3, 1))]
        assert next_batch_rows() == 4  # 1 + 3 rows filled a batch: handed over without a wake
        assert next_batch_rows() == 0  # the last row still waits for the doorbell
        model.wake()
        assert next_batch_rows() == 1
        del keep
    finally:
        engine.stop(1.0)
        engine.destroy()


async def test_lone_requests_poll_with_backoff_after_a_miss(spec) -> None:  # type: ignore[no-untyped-def]
    """A lone request busy-waits (in C) for its completion up to runtime.idle_spin_us. After
    a miss (a slower model) the next 1, 2, 4, ... (at most 128) lone requests go the eventfd
    way, then one polls again; a hit resets the backoff. Results are the same either way.
    (Polling once stayed off for good after a burst on a slow machine.)"""
    path = spec('[runtime]\nidle_spin_us = 200\n[models.fast]\nbackend = "identity"\ninputs = [{ name = "x", dtype = "float32", shape = [-1, 2] }]\n'
                + gated("slow", batching="[models.slow.batching]\nmax_batch_size = 4"))
    tb.gate("slow").set()
    async with Runtime.from_spec(path, environ={}) as rt:
        x = np.arange(2, dtype=np.float32).reshape(1, 2)
        one = np.ones((1, 1), np.float32)

        async def fast_until_polling_hits() -> None:
            for _ in range(1000):  # bounded: a busy machine may miss a few 200 us polls (each miss skips up to 128)
                np.testing.assert_array_equal((await rt.infer("fast", {"x": x}))["x"], x)
                if (rt._poll_skip, rt._poll_backoff) == (0, 1):
                    return
            raise AssertionError("polling never re-armed")

        async def slow_miss() -> None:
            # From the task that got the last answer (a closed loop: it may poll), held far
            # longer than the 200 us poll: the poll misses (or it is left to the eventfd).
            tb.gate("slow").clear()
            asyncio.get_running_loop().call_later(0.01, tb.gate("slow").set)
            np.testing.assert_array_equal((await rt.infer("slow", {"x": one}))["x"], one)

        await fast_until_polling_hits()
        await slow_miss()
        assert (rt._poll_skip, rt._poll_backoff) == (1, 2)
        await slow_miss()  # skipped: the eventfd way, no poll
        assert (rt._poll_skip, rt._poll_backoff) == (0, 2)
        await slow_miss()  # polls, misses again: the backoff doubles
        assert (rt._poll_skip, rt._poll_backoff) == (2, 4)
        rt._poll_skip, rt._poll_backoff = 0, 128
        await slow_miss()
        assert (rt._poll_skip, rt._poll_backoff) == (128, 128)  # capped
        rt._poll_skip = 3
        await fast_until_polling_hits()  # three the eventfd way, then a hit resets it


async def test_only_a_closed_loop_polls_for_its_answer(spec, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The task that got the last answer asking again polls; a lone request from another task
    (an open loop's arrival, a new connection) does not: it would keep the loop spinning while
    other arrivals wait."""
    from infer_runtime._native.engine import Engine as NativeEngine

    polls: list[int] = []
    real_poll = NativeEngine.poll_into

    def counting_poll(self: NativeEngine, buffer: object, capacity: int, spin_us: int) -> int:
        polls.append(spin_us)
        return real_poll(self, buffer, capacity, spin_us)

    monkeypatch.setattr(NativeEngine, "poll_into", counting_poll)
    path = spec('[runtime]\nidle_spin_us = 200\n[models.fast]\nbackend = "identity"\ninputs = [{ name = "x", dtype = "float32", shape = [-1, 2] }]\n')
    async with Runtime.from_spec(path, environ={}) as rt:
        x = np.arange(2, dtype=np.float32).reshape(1, 2)
        polls.clear()
        for _ in range(20):  # one task, one request at a time: a closed loop
            np.testing.assert_array_equal((await rt.infer("fast", {"x": x}))["x"], x)
        assert len(polls) >= 10  # all but the first (no answer yet), unless misses backed off
        polls.clear()
        for _ in range(20):  # each request from a task of its own, one at a time
            out = await asyncio.get_running_loop().create_task(rt.infer("fast", {"x": x}))
            np.testing.assert_array_equal(out["x"], x)
        # Open-loop arrivals: fire-and-forget tasks spawned by a callback, each freed before
        # the next is made (a new task often gets the old one's address, so ids would match).
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        answers: list[np.ndarray] = []

        async def arrival() -> None:
            answers.append((await rt.infer("fast", {"x": x}))["x"])
            if len(answers) == 20:
                done.set()

        fired = 0

        def fire() -> None:
            nonlocal fired
            fired += 1
            tasks.add(task := loop.create_task(arrival()))
            task.add_done_callback(tasks.discard)
            if fired < 20:
                loop.call_later(0.002, fire)

        tasks: set[asyncio.Task[None]] = set()  # asyncio holds tasks weakly; dropped when done
        fire()
        await asyncio.wait_for(done.wait(), 10)
        assert len(answers) == 20 and polls == []


def test_engine_poll_returns_a_completion_or_nothing_after_the_spin() -> None:
    import time as _time

    from infer_runtime._native import ffi, lib
    from infer_runtime.engine import Engine, ModelSignature, TensorSignature

    engine = Engine()
    try:
        signature = ModelSignature((TensorSignature("x", np.dtype(np.float32), (-1, 2)),), None, 0)
        model = engine.add_model("m", lib.IR_BACKEND_IDENTITY, signature, instances=1, batching=None)
        buf = ffi.new("ir_completion[]", 4)
        started = _time.perf_counter()
        assert engine.poll_into(buf, 4, 2000) == 0  # nothing submitted: gives up after ~2 ms
        assert _time.perf_counter() - started >= 0.0015
        keep = model.submit(7, {"x": np.ones((3, 2), np.float32)}, 0, None)
        n = 0
        for _ in range(1000):  # bounded: each poll spins at most 1 ms
            n = engine.poll_into(buf, 4, 1000)
            if n:
                break
        assert n == 1 and buf[0].cookie == 7 and buf[0].error == ffi.NULL
        lib.ir_response_release(buf[0].response)
        del keep
    finally:
        engine.stop(1.0)
        engine.destroy()


async def test_requests_refused_in_python_count_in_stats(spec) -> None:  # type: ignore[no-untyped-def]
    path = spec('[models.m]\nbackend = "identity"\ninputs = [{ name = "x", dtype = "float32", shape = [-1, 2] }]\n[models.m.batching]\nmax_batch_size = 4\n')
    async with Runtime.from_spec(path, environ={}) as rt:
        before = rt.stats("m")
        with pytest.raises(InvalidInputError):
            await rt.infer("m", {"x": np.zeros((1, 3), np.float32)})
        await rt.infer("m", {"x": np.zeros((1, 2), np.float32)})
        after = rt.stats("m")
        assert set(rt.load_seconds) == {"m"} and rt.load_seconds["m"] >= 0
    assert after.failed_invalid - before.failed_invalid == 1
    assert after.submitted - before.submitted == 2
    assert after.succeeded - before.succeeded == 1


async def test_models_without_a_signature_gather_batches(spec) -> None:  # type: ignore[no-untyped-def]
    """A batching model with no declared inputs learns them from its requests: several
    requests gathered into one batch (this once indexed gather buffers sized for zero
    inputs; the sanitizer run catches any relapse)."""
    path = spec('[models.anyb]\nbackend = "identity"\n[models.anyb.batching]\nmax_batch_size = 16\nmax_queue_delay_us = 20000\npreferred_batch_sizes = [6]\nadaptive = false\n')
    async with Runtime.from_spec(path, environ={}) as rt:
        xs = [np.full((k, 3), i, np.float16) for i, k in enumerate((1, 2, 1, 1, 1))]
        outs = await asyncio.gather(*(rt.infer("anyb", {"t": x, "u": x.astype(np.int32)}) for x in xs))
        stats = rt.stats("anyb")
    for x, out in zip(xs, outs):
        np.testing.assert_array_equal(out["t"], x)
        np.testing.assert_array_equal(out["u"], x.astype(np.int32))
    assert stats.batches == 1 and stats.batched_rows == 6
