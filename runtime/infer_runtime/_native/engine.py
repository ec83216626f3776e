"""The thin tier over the engine's C ABI: one engine, its model table, submission,
completions and statistics. Everything here is synchronous; the front-ends (``Runtime``,
``SyncRuntime``) decide how completions are waited for.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import numpy as np
import structlog

from infer_runtime._native import check, ffi, lib, take_error
from infer_runtime.engine.bytes_codec import deserialize, is_bytes_like, serialize, wire_form
from infer_runtime.engine.dtypes import CODE_TO_NUMPY, NUMPY_TO_CODE
from infer_runtime.engine.signature import ModelSignature, TensorSignature
from infer_runtime.errors import InternalError, InvalidInputError

from .backends import NativeBackend, signature_descriptors

log = structlog.get_logger("infer_runtime.engine")

class Runner(enum.IntEnum):
    """Who runs a model's batches (``ir_backend_kind``)."""

    IDENTITY = int(lib.IR_BACKEND_IDENTITY)  # native identity, opened by the engine itself
    EXTERNAL = int(lib.IR_BACKEND_EXTERNAL)  # pulled by host threads (Python-hosted backends)
    NATIVE = int(lib.IR_BACKEND_NATIVE)  # an opened native backend, on engine threads


DURATION_BOUNDS_S: tuple[float, ...] = tuple(1e-6 * 2**i for i in range(24))
"""Upper bounds of the engine's duration histogram buckets (the last bucket is +Inf)."""
BATCH_BOUNDS: tuple[int, ...] = tuple(2**i for i in range(17))
"""Upper bounds of the engine's batch-size histogram buckets (the last bucket is +Inf)."""


@dataclass(frozen=True, slots=True)
class ModelStats:
    """A snapshot of one model's engine counters (see ``ir_model_stats``)."""

    submitted: int
    succeeded: int
    failed_invalid: int
    rejected_queue_full: int
    timed_out: int
    failed_backend: int
    cancelled: int
    batches: int
    batches_full: int
    batches_preferred: int
    batches_delay: int
    batched_rows: int
    queue_depth: int
    in_flight: int
    queue_ns_sum: int
    compute_ns_sum: int
    request_ns_sum: int
    queue_ns_buckets: tuple[int, ...]
    compute_ns_buckets: tuple[int, ...]
    request_ns_buckets: tuple[int, ...]
    batch_rows_buckets: tuple[int, ...]
    batches_early: int = 0
    execution_timeouts: int = 0
    unhealthy_instances: int = 0

    @property
    def mean_batch_rows(self) -> float:
        """Average rows per dispatched batch."""
        return self.batched_rows / self.batches if self.batches else 0.0


_STAT_FIELDS = [f.name for f in fields(ModelStats)]


def _release_response(owner: Any, _data: Any) -> None:
    """Destructor of an output's data pointer: drops one hold on the shared response."""
    del owner


def _dtype_name(dtype: np.dtype) -> str:
    return "bytes" if dtype.kind in "OSU" else dtype.name


def _static_tail(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The dims after the first when all of them are fixed and the first is variable (the
    common batched signature): checked with one tuple comparison."""
    if shape and shape[0] == -1 and all(d != -1 for d in shape[1:]):
        return tuple(shape[1:])
    return None


def _shape(dims: Any, ndim: int) -> tuple[int, ...]:
    # Direct indexing beats ffi.unpack for the usual 1-3 dimensions.
    if ndim == 2:
        return (dims[0], dims[1])
    if ndim == 1:
        return (dims[0],)
    return tuple(ffi.unpack(dims, ndim))


COALESCE_MAX_BYTES = 64 * 1024
"""Requests up to this size are coalesced by ``EngineModel.stage``; larger ones are
submitted alone (the per-request cost of the ABI call is small beside their copy)."""


@dataclass(slots=True)
class _Burst:
    """Requests held by ``EngineModel.stage`` for one (priority, timeout): per input, the
    arrays in arrival order; each request's waiter."""

    columns: list[list[np.ndarray]]
    waiters: list[Any]


class _InputCheck(NamedTuple):
    """What the checks of one declared input need, with its reused descriptor."""

    name: str
    dtype: np.dtype
    ndim: int
    tail: tuple[int, ...] | None  # required dims 1.. when all are fixed, else None
    fixed: list[tuple[int, int]]  # (dim, size) of every fixed dim, when tail is None
    desc: Any  # the ir_tensor descriptor this input is submitted with
    dims: Any  # its int64_t[] shape buffer


class CompletionColumns(NamedTuple):
    """The first ``n`` completions of a drain buffer, field by field."""

    cookies: list[int]
    responses: list[int]
    errors: list[int]
    batches: list[int]
    offsets: list[int]
    rows: list[int]
    batch_rows: list[int]


_MAX_TIMEOUT_MS = 2.0**40  # far beyond any default, and exact in an int64 of microseconds
_DEFAULT_OPTIONS = (0, 0)  # (priority, timeout_us) of a request that sets neither
_DTYPE_AND_SHAPE = operator.attrgetter("dtype", "shape")


def _concatenate(arrays: list[np.ndarray]) -> Any:
    """The arrays' bytes back to back (they are checked alike). ``bytes.join`` takes the
    arrays' buffers directly at a quarter of ``np.concatenate``'s cost per array; it refuses
    non-contiguous ones, which numpy then copies."""
    if len(arrays) == 1:
        return np.ascontiguousarray(arrays[0])
    try:
        return b"".join(arrays)  # type: ignore[arg-type]
    except TypeError:
        return np.concatenate(arrays)


def _copy_error(exc: Exception) -> Exception:
    """A fresh exception like ``exc`` (one raised object per caller, not one shared); an
    InternalError with its text when its type cannot be rebuilt from its args."""
    try:
        copy = type(exc)(*exc.args)
    except Exception:  # noqa: BLE001 - any constructor that needs more than args
        return InternalError(f"{type(exc).__name__}: {exc}")
    copy.__dict__.update(exc.__dict__)
    return copy


class EngineModel:
    """One model inside the engine: checks inputs against its signature and submits."""

    KIND = "model"  # how errors found in Python name it

    __slots__ = ("_admitted", "_bursts", "_checks", "_coalesce", "_descs", "_fixed", "_n", "_names", "_priority_levels", "_rows_limit", "_shapes", "_stats_call", "_submit_call", "_submit_many_call", "handle", "name",
                 "rejected_invalid", "signature")

    def __init__(self, name: str, handle: Any, signature: ModelSignature, priority_levels: int) -> None:
        self.name = name
        self.handle = handle
        self.signature = signature
        self._priority_levels = priority_levels
        self._rows_limit = signature.max_batch_size
        self._fixed = signature.inputs is not None
        n = len(signature.inputs) if signature.inputs is not None else 0
        self._n = n
        # Reused descriptors: prepare+submit run without yielding, and the engine copies
        # descriptors during ir_model_submit, so one set per model is enough on one thread.
        self._descs = ffi.new("ir_tensor[]", max(n, 1))
        self._shapes = [ffi.new("int64_t[]", max(len(t.shape), 1)) for t in (signature.inputs or ())]
        self._names = [ffi.new("char[]", t.name.encode()) for t in (signature.inputs or ())]
        for i, tensor in enumerate(signature.inputs or ()):
            desc = self._descs[i]
            desc.name = self._names[i]
            desc.dtype = NUMPY_TO_CODE[tensor.dtype]
            desc.ndim = len(tensor.shape)
            desc.shape = self._shapes[i]
            if _static_tail(tensor.shape) is not None:  # only the leading dim varies: written per request
                for d, size in enumerate(tensor.shape[1:], start=1):
                    self._shapes[i][d] = size
        self.rejected_invalid = 0  # refused in Python before reaching the engine
        self._checks = [
            _InputCheck(t.name, t.dtype, len(t.shape), _static_tail(t.shape), [(d, v) for d, v in enumerate(t.shape) if v != -1], self._descs[i], self._shapes[i])
            for i, t in enumerate(signature.inputs or ())
        ]
        # Coalescing (stage/flush) needs rows of one fixed size: a batching model whose
        # inputs vary only in the leading dimension and are not BYTES.
        tails = [_static_tail(t.shape) for t in signature.inputs or ()]
        self._coalesce = bool(self._rows_limit and tails and all(tail is not None for tail in tails) and all(t.dtype.kind != "O" for t in signature.inputs or ()))
        self._bursts: dict[tuple[int, int], _Burst] = {}  # (priority, timeout_us) → requests held by stage()
        self._admitted = ffi.new("int32_t*")
        self._submit_call = lib.ir_model_submit
        self._submit_many_call = lib.ir_model_submit_many
        self._stats_call = lib.ir_model_stats_get

    def submit(self, cookie: int, inputs: Mapping[str, Any], priority: int, timeout_ms: float | None, wake: bool = True) -> list[Any]:
        """Checks ``inputs`` and submits them; returns what must stay alive until the
        request completes. Raises the mapped error when the engine refuses at once.
        ``wake=False`` admits without waking idle workers (call :meth:`wake` later)."""
        try:
            if self._fixed:
                keep = self._fill_fixed(self._check_fixed(inputs)[0])
                descs, n = self._descs, self._n
            else:
                keep, descs, n = self._fill_dynamic(inputs)
            timeout_us = self._check_options(priority, timeout_ms)
        except InvalidInputError:
            self.rejected_invalid += 1  # folded into stats(); costs nothing on success
            raise
        err = self._submit_call(self.handle, cookie, descs, n, priority, timeout_us, 0 if wake else lib.IR_SUBMIT_NO_WAKE)
        if err:  # a NULL pointer is false (and cheaper to test than a comparison)
            raise take_error(err)  # type: ignore[misc]
        return keep

    def stage(self, inputs: Mapping[str, Any], priority: int, timeout_ms: float | None, waiter: Any) -> bool:
        """Holds a request for the next :meth:`flush`, which checks and submits everything
        held, in one engine call per (priority, timeout) (``ir_model_submit_many``). Returns
        False, holding nothing, when the request should go alone through :meth:`submit`:
        the model cannot coalesce (no fixed signature, no batching, variable inner dims or
        BYTES), an input is not a numpy array or a name is missing (``submit`` converts or
        reports it), or the request is larger than :data:`COALESCE_MAX_BYTES` (copying it
        once more would cost more than the call it saves)."""
        if not self._coalesce or len(inputs) != self._n:
            return False
        key = _DEFAULT_OPTIONS if priority == 0 and timeout_ms is None else self._options_key(priority, timeout_ms)
        if self._n == 1:
            arr = inputs.get(self._checks[0][0])
            if type(arr) is not np.ndarray or arr.nbytes > COALESCE_MAX_BYTES:
                return False
            burst = self._bursts.get(key)
            if burst is None:
                burst = self._bursts[key] = _Burst([[]], [])
            burst.columns[0].append(arr)
        else:
            arrays: list[Any] = [inputs.get(check[0]) for check in self._checks]
            if any(type(arr) is not np.ndarray for arr in arrays) or sum(arr.nbytes for arr in arrays) > COALESCE_MAX_BYTES:
                return False
            burst = self._bursts.get(key)
            if burst is None:
                burst = self._bursts[key] = _Burst([[] for _ in range(self._n)], [])
            for column, arr in zip(burst.columns, arrays):
                column.append(arr)
        burst.waiters.append(waiter)
        return True

    def flush(self, first_cookie: int, pending: dict[int, tuple[Any, Any]]) -> int:
        """Checks and submits what :meth:`stage` holds. The checks run per distinct (dtype,
        shape) of each input, not per request; a request that fails them gets the
        ``InvalidInputError`` that :meth:`submit` would have raised, through its waiter, and
        is not submitted. Each input is then concatenated once and the requests admitted in
        one call per group: the engine sees separate requests over consecutive rows (its
        batches then run on that memory without a gather). Like ``submit(..., wake=False)``:
        call :meth:`wake` after. Registers each admitted request in ``pending`` under its
        cookie (``first_cookie`` on) with what keeps its data alive; fails the waiters of
        refused ones. Returns the number of cookies used."""
        cookie = first_cookie
        bursts, self._bursts = self._bursts, {}
        for (priority, timeout_us), burst in bursts.items():
            n = len(burst.waiters)
            admitted = 0
            try:
                rows = self._burst_rows(burst)
                if not rows:  # every request failed the checks
                    continue
                n = len(rows)
                keep = []
                total_rows = sum(rows)
                for (_name, _dtype, _ndim, _tail, _fixed, desc, dims), column in zip(self._checks, burst.columns):
                    buf = ffi.from_buffer(_concatenate(column))
                    desc.data = buf
                    desc.byte_size = len(buf)
                    dims[0] = total_rows
                    keep.append(buf)
                err = self._submit_many_call(self.handle, cookie, self._descs, self._n, ffi.new("int64_t[]", rows), n, priority, timeout_us, lib.IR_SUBMIT_NO_WAKE, self._admitted)
                admitted = self._admitted[0]
                for i in range(admitted):
                    pending[cookie + i] = (burst.waiters[i], keep)
                if err:
                    raise take_error(err)  # type: ignore[misc]
            except Exception as refused:  # noqa: BLE001 - the engine's refusal (or no memory to join the rows) goes to every waiter
                for waiter in burst.waiters[admitted:]:
                    if not waiter.done():  # each caller gets its own exception object
                        waiter.set_exception(_copy_error(refused))
            cookie += n
        return cookie - first_cookie

    def _burst_rows(self, burst: _Burst) -> list[int]:
        """Each held request's rows, after checking the burst; drops (and fails) the requests
        that do not pass."""
        uniform = -1  # the rows of every request, when all inputs of all requests agree
        for (_name, dtype, ndim, tail, _fixed, _desc, _dims), column in zip(self._checks, burst.columns):
            layouts = set(map(_DTYPE_AND_SHAPE, column))
            for got_dtype, shape in layouts:
                if got_dtype != dtype or len(shape) != ndim or shape[1:] != tail or not 0 < shape[0] <= self._rows_limit:
                    return self._checked_one_by_one(burst)
            rows = next(iter(layouts))[1][0] if len(layouts) == 1 else 0
            uniform = rows if uniform in (-1, rows) else 0
        if uniform > 0:
            return [uniform] * len(burst.waiters)
        per_request = [arr.shape[0] for arr in burst.columns[0]]
        for column in burst.columns[1:]:
            if any(arr.shape[0] != k for arr, k in zip(column, per_request)):
                return self._checked_one_by_one(burst)
        return per_request

    def _checked_one_by_one(self, burst: _Burst) -> list[int]:
        """The slow path of :meth:`_burst_rows`: each request through the same checks as
        :meth:`submit`, to fail exactly the bad ones with exactly its messages."""
        names = [check[0] for check in self._checks]
        kept: tuple[list[list[np.ndarray]], list[Any]] = ([[] for _ in names], [])
        rows = []
        for k, waiter in enumerate(burst.waiters):
            arrays = [column[k] for column in burst.columns]
            try:
                rows.append(self._check_fixed(dict(zip(names, arrays)))[1])
            except InvalidInputError as exc:
                self.rejected_invalid += 1
                if not waiter.done():
                    waiter.set_exception(exc)
                continue
            for column, arr in zip(kept[0], arrays):
                column.append(arr)
            kept[1].append(waiter)
        burst.columns, burst.waiters = kept
        return rows

    def _options_key(self, priority: int, timeout_ms: float | None) -> tuple[int, int]:
        try:
            return priority, self._check_options(priority, timeout_ms)
        except InvalidInputError:
            self.rejected_invalid += 1
            raise

    def _check_options(self, priority: int, timeout_ms: float | None) -> int:
        """The engine's timeout (µs, 0 = the model's default) after checking both options."""
        if not 0 <= priority < self._priority_levels:
            raise InvalidInputError(f"{self.KIND} '{self.name}': priority {priority} is outside [0, {self._priority_levels})")
        if timeout_ms is None:
            return 0
        if not timeout_ms > 0:  # NaN included
            raise InvalidInputError(f"{self.KIND} '{self.name}': timeout_ms must be > 0 (got {timeout_ms})")
        # A timeout only ever shortens the model's default, so any huge value means "keep it".
        return max(1, int(min(timeout_ms, _MAX_TIMEOUT_MS) * 1000))

    def wake(self) -> None:
        """Wakes the model's idle workers (after ``submit(..., wake=False)``)."""
        lib.ir_model_wake(self.handle)

    def cancel(self, cookie: int) -> bool:
        """Cancels the request submitted with ``cookie`` if it is still queued (it completes
        with CANCELLED); False when it is running or done."""
        return bool(lib.ir_model_cancel(self.handle, cookie))

    def release(self) -> None:
        """Drops this handle on the engine's model (after the engine is gone, or when the
        model was replaced and drained). Idempotent."""
        if self.handle is not None:
            lib.ir_model_release(self.handle)
            self.handle = None

    def _check_fixed(self, inputs: Mapping[str, Any]) -> tuple[list[np.ndarray], int]:
        """The inputs in signature order, checked against it (C-contiguous; BYTES as object
        arrays), and their rows (-1 without batching)."""
        if len(inputs) != self._n:
            self._name_error(inputs)
        arrays = []
        rows = -1
        limit = self._rows_limit
        for name, dtype, ndim, tail, fixed, _desc, _dims in self._checks:
            arr = inputs.get(name)
            if arr is None:
                self._name_error(inputs)
            if type(arr) is not np.ndarray:
                arr = np.asarray(arr)
            if arr.dtype != dtype and not (dtype.kind == "O" and is_bytes_like(arr)):
                raise InvalidInputError(f"{self.KIND} '{self.name}': input '{name}' must be {_dtype_name(dtype)}, got {_dtype_name(arr.dtype)}")
            shape = arr.shape
            if len(shape) != ndim or (shape[1:] != tail if tail is not None else any(shape[d] != v for d, v in fixed)):
                self._shape_error(name, shape)
            if limit:
                k = shape[0]
                if not 0 < k <= limit:
                    raise InvalidInputError(f"{self.KIND} '{self.name}': input '{name}' has {k} rows; each request needs 1 to {limit} (max_batch_size)")
                if rows != k and rows != -1:
                    raise InvalidInputError(f"{self.KIND} '{self.name}': inputs disagree on the batch dimension ({rows} vs {k})")
                rows = k
            if not arr.flags.c_contiguous:
                arr = np.ascontiguousarray(arr)
            arrays.append(arr)
        return arrays, rows

    def _fill_fixed(self, arrays: list[np.ndarray]) -> list[Any]:
        """Points the model's reused descriptors at checked ``arrays``; returns the cffi
        buffers that must outlive the request."""
        keep = []
        for (name, dtype, ndim, tail, _fixed, desc, dims), arr in zip(self._checks, arrays):
            if dtype.kind == "O":  # BYTES: the engine takes the serialized form
                try:
                    raw: Any = wire_form(arr)  # decoded from the wire: its bytes as they came
                    if raw is None:
                        raw = serialize(arr)
                except (TypeError, ValueError) as exc:
                    raise InvalidInputError(f"{self.KIND} '{self.name}': input '{name}': {exc}") from None
                buf = ffi.from_buffer(raw)
                desc.byte_size = len(raw)
            else:
                buf = ffi.from_buffer(arr)
                desc.byte_size = arr.nbytes
            desc.data = buf
            shape = arr.shape
            if tail is not None:  # the rest was written once, at construction
                dims[0] = shape[0]
            else:
                for d in range(ndim):
                    dims[d] = shape[d]
            keep.append(buf)
        return keep

    def _shape_error(self, name: str, shape: tuple[int, ...]) -> None:
        spec = next(t for t in self.signature.inputs or () if t.name == name)
        raise InvalidInputError(f"{self.KIND} '{self.name}': input '{name}' must have shape [{', '.join(str(d) for d in spec.shape)}], got [{', '.join(str(d) for d in shape)}]")

    def _fill_dynamic(self, inputs: Mapping[str, Any]) -> tuple[list[Any], Any, int]:
        if not inputs:
            raise InvalidInputError(f"{self.KIND} '{self.name}': a request needs at least one input")
        n = len(inputs)
        descs = ffi.new("ir_tensor[]", n)
        keep: list[Any] = [descs]
        for i, (name, value) in enumerate(sorted(inputs.items())):
            arr = np.ascontiguousarray(value)
            if is_bytes_like(arr):
                try:
                    payload: Any = wire_form(arr)
                    if payload is None:
                        payload = serialize(arr)
                except (TypeError, ValueError) as exc:
                    raise InvalidInputError(f"{self.KIND} '{self.name}': input '{name}': {exc}") from None
                code, nbytes = lib.IR_DTYPE_BYTES, len(payload)
            else:
                code = NUMPY_TO_CODE.get(arr.dtype)
                if code is None:
                    raise InvalidInputError(f"{self.KIND} '{self.name}': input '{name}' has unsupported dtype {arr.dtype}")
                payload, nbytes = arr, arr.nbytes
            name_c = ffi.new("char[]", name.encode())
            shape_c = ffi.new("int64_t[]", list(arr.shape) or [0])
            buf = ffi.from_buffer(payload)
            descs[i] = {"name": name_c, "dtype": code, "ndim": arr.ndim, "shape": shape_c, "data": buf, "byte_size": nbytes}
            keep += [name_c, shape_c, buf]
        return keep, descs, n

    def _name_error(self, inputs: Mapping[str, Any]) -> None:
        expected = [t.name for t in self.signature.inputs or ()]
        missing = [n for n in expected if n not in inputs]
        extra = [n for n in inputs if n not in expected]
        parts = []
        if missing:
            parts.append(f"missing input(s) {', '.join(repr(m) for m in missing)}")
        if extra:
            parts.append(f"unknown input(s) {', '.join(repr(e) for e in extra)}")
        raise InvalidInputError(f"{self.KIND} '{self.name}': {'; '.join(parts)} (expects {', '.join(repr(e) for e in expected)})")

    def stats(self) -> ModelStats:
        """A snapshot of the engine's counters for this model. Requests refused by the
        checks in Python count as submitted and ``failed_invalid``, exactly like those the
        engine refuses itself."""
        stats = _read_stats(self._stats_call, self.handle)
        refused = self.rejected_invalid
        if refused:
            stats = dataclasses.replace(stats, submitted=stats.submitted + refused, failed_invalid=stats.failed_invalid + refused)
        return stats


def _read_stats(get: Any, handle: Any) -> ModelStats:
    out = ffi.new("ir_model_stats*")
    out.struct_size = ffi.sizeof("ir_model_stats")
    check(get(handle, out))
    values: list[Any] = []
    for name in _STAT_FIELDS:
        value = getattr(out, name)
        values.append(tuple(value) if name.endswith("_buckets") else int(value))
    return ModelStats(*values)


@dataclass(frozen=True, slots=True)
class StepStats:
    """A snapshot of one pipeline step's counters (see ``ir_pipeline_step_stats``)."""

    submitted: int
    succeeded: int
    failed: int  # refused, failed, timed out or cancelled
    step_ns_sum: int  # submission to completion, successes
    step_ns_buckets: tuple[int, ...]


class EnginePipeline(EngineModel):
    """One pipeline inside the engine, called like a model: the same checks against its
    (derived) signature and the same burst coalescing, then ``ir_pipeline_submit`` (or
    ``ir_pipeline_submit_many`` for a burst)."""

    KIND = "pipeline"
    __slots__ = ("steps",)

    def __init__(self, name: str, handle: Any, signature: ModelSignature, priority_levels: int, steps: tuple[str, ...]) -> None:
        super().__init__(name, handle, signature, priority_levels)
        self._submit_call = lib.ir_pipeline_submit
        self._submit_many_call = lib.ir_pipeline_submit_many  # bursts are held and joined as for a model
        self._stats_call = lib.ir_pipeline_stats_get  # its counters as a whole; batch and queue fields stay 0
        self.steps = steps

    def wake(self) -> None:
        """Wakes the models of the first steps (after ``submit(..., wake=False)``)."""
        lib.ir_pipeline_wake(self.handle)

    def cancel(self, cookie: int) -> bool:
        """Cancels request ``cookie``: its queued steps never run; it completes CANCELLED."""
        return bool(lib.ir_pipeline_cancel(self.handle, cookie))

    def release(self) -> None:
        """Drops this handle on the engine's pipeline. Idempotent."""
        if self.handle is not None:
            lib.ir_pipeline_release(self.handle)
            self.handle = None

    def step_stats(self) -> dict[str, StepStats]:
        """Counters per step, by step name (in dependency order)."""
        out = ffi.new("ir_pipeline_step_stats*")
        out.struct_size = ffi.sizeof("ir_pipeline_step_stats")
        result = {}
        for index, step in enumerate(self.steps):
            check(lib.ir_pipeline_step_stats_get(self.handle, index, out))
            result[step] = StepStats(int(out.submitted), int(out.succeeded), int(out.failed), int(out.step_ns_sum), tuple(out.step_ns_buckets))
        return result


def response_outputs(response: Any, tensors: Any, whole_batch: bool = False) -> dict[str, np.ndarray]:
    """Numpy arrays over a response's engine-owned outputs (no copy); with ``whole_batch``,
    over the outputs of the whole batch it belongs to. The response is released when the
    last of these arrays (or of views of them) is garbage collected. ``tensors`` is a
    scratch ``ir_tensor[]`` owned by the calling thread, with room for every output."""
    describe = lib.ir_response_describe_batch if whole_batch else lib.ir_response_describe
    n = describe(response, tensors, len(tensors))
    if n == 1:  # the common case: the array's data pointer owns the response directly
        t = tensors[0]
        return {ffi.string(t.name).decode(): _array(t, lambda _p, r=response: lib.ir_response_release(r))}
    owner = ffi.gc(response, lib.ir_response_release)
    release = functools.partial(_release_response, owner)
    return {ffi.string(t.name).decode(): _array(t, release) for t in (tensors[i] for i in range(n))}


_COMPLETION_WORDS = 7
"""``ir_completion`` is seven 8-byte words: cookie, response, error, batch, row_offset,
rows, batch_rows (all non-negative, so one uint64 view reads them all)."""


class Delivery:
    """Turns completions into results for one consumer thread.

    Owns the drain buffer. The completions of one batch arrive consecutively and share its
    output buffers: the first of a run wraps them in numpy arrays once (its response now
    owned by those arrays), the others' responses are released in one call, and every
    request gets row views of the arrays, the way a hand-written batcher splits its result.
    A batch split across two drains is remembered until its last request is seen.
    """

    def __init__(self, capacity: int, max_outputs: int = 64) -> None:
        assert ffi.sizeof("ir_completion") == 8 * _COMPLETION_WORDS
        self.buffer = ffi.new("ir_completion[]", capacity)
        self._words = np.frombuffer(ffi.buffer(self.buffer), np.uint64).reshape(capacity, _COMPLETION_WORDS)
        self._tensors = ffi.new("ir_tensor[]", max_outputs)
        self._batches: dict[int, tuple[tuple[str, np.ndarray], ...]] = {}  # batch key → (name, array over it)

    def columns(self, n: int) -> CompletionColumns:
        """The first ``n`` completions of the buffer, field by field: seven lists of ints in
        one call, cheaper than a cffi attribute read per field per completion."""
        return CompletionColumns(*self._words[:n].T.tolist())

    def resolve(self, columns: CompletionColumns, waiters: list[Any]) -> None:
        """Resolves ``waiters[k]`` (a future, or None when nobody waits any more) with
        completion ``k`` of the buffer; takes care of every response and error either way.
        Never raises: a failure here must not strand the other completions of the drain."""
        batches, rows, batch_rows = columns.batches, columns.rows, columns.batch_rows
        n = len(batches)
        i = 0
        while i < n:
            batch = batches[i]
            if not batch or rows[i] == batch_rows[i]:  # failed, not batched, or alone in its batch
                self._resolve_one(i, waiters[i])
                i += 1
                continue
            j = i + 1
            while j < n and batches[j] == batch:
                j += 1
            self._resolve_run(columns, waiters, i, j)
            i = j

    def _resolve_one(self, i: int, waiter: Any) -> None:
        c = self.buffer[i]
        try:
            if c.error:  # not NULL
                error = take_error(c.error)
                c.error = ffi.NULL
                if waiter is not None and not waiter.done():
                    waiter.set_exception(error)
            elif waiter is not None and not waiter.done():
                response, c.response = c.response, ffi.NULL
                waiter.set_result(response_outputs(response, self._tensors))
            else:
                lib.ir_completions_release(self.buffer + i, 1)
        except Exception as exc:  # noqa: BLE001  # pragma: no cover - a bug; reported to the caller, not lost
            lib.ir_completions_release(self.buffer + i, 1)
            _fail(waiter, exc)

    def _resolve_run(self, columns: CompletionColumns, waiters: list[Any], i: int, j: int) -> None:
        """Completions i..j-1: consecutive requests of one batch."""
        _, _, _, batches, offsets, rows, batch_rows = columns
        batch = batches[i]
        first = i
        try:
            pairs = self._batches.get(batch)
            if pairs is None:  # the batch's first request: its response now belongs to the arrays
                response, self.buffer[i].response = self.buffer[i].response, ffi.NULL
                first = i + 1
                pairs = tuple(response_outputs(response, self._tensors, whole_batch=True).items())
            if offsets[j - 1] + rows[j - 1] == batch_rows[j - 1]:  # the batch's last request
                self._batches.pop(batch, None)
            else:
                self._batches[batch] = pairs
        except Exception as exc:  # noqa: BLE001  # pragma: no cover - a bug; reported to the callers, not lost
            lib.ir_completions_release(self.buffer + first, j - first)
            for k in range(i, j):
                _fail(waiters[k], exc)
            return
        if j > first:
            lib.ir_completions_release(self.buffer + first, j - first)
        if len(pairs) == 1:  # most models: a dict display costs a quarter of a comprehension
            name, array = pairs[0]
            for waiter, start, count in zip(waiters[i:j], offsets[i:j], rows[i:j]):
                if waiter is not None and not waiter.done():
                    waiter.set_result({name: array[start : start + count]})
            return
        for waiter, start, count in zip(waiters[i:j], offsets[i:j], rows[i:j]):
            if waiter is not None and not waiter.done():
                waiter.set_result({name: array[start : start + count] for name, array in pairs})


def _fail(waiter: Any, exc: Exception) -> None:
    log.exception("completion delivery failed")
    if waiter is not None and not waiter.done():
        waiter.set_exception(InternalError(f"delivering the result failed: {type(exc).__name__}: {exc}"))


def _array(t: Any, release: Any) -> np.ndarray:
    shape = _shape(t.shape, t.ndim)
    dtype = CODE_TO_NUMPY[t.dtype]
    nbytes = t.byte_size
    if dtype.kind == "O":  # BYTES become a (copied) object array; the engine memory goes now
        array = deserialize(ffi.buffer(ffi.cast("char *", t.data), nbytes) if nbytes else b"", shape)
        release(None)
        return array
    if not nbytes:
        release(None)
        return np.empty(shape, dtype=dtype)
    data = ffi.gc(ffi.cast("char *", t.data), release)
    return np.ndarray(shape, dtype, ffi.buffer(data, nbytes))


class Engine:
    """Owns one ``ir_engine``: models, completion delivery, shutdown."""

    def __init__(self) -> None:
        out = ffi.new("ir_engine**")
        check(lib.ir_engine_create(out))
        self._handle = out[0]
        self.models: dict[str, EngineModel] = {}
        self.retired: list[EngineModel] = []  # replaced or retired: handles released at destroy
        self.pipelines: dict[str, EnginePipeline] = {}
        self._destroyed = False

    @property
    def handle(self) -> Any:
        """The raw ``ir_engine*``."""
        return self._handle

    def event_fd(self) -> int:
        """The eventfd that becomes readable when completions wait."""
        return int(lib.ir_engine_event_fd(self._handle))

    def add_model(self, name: str, backend: int, signature: ModelSignature, *, instances: int, batching: Any | None, default_timeout_ms: int = 0,
                  idle_spin_us: int = 0, native: NativeBackend | None = None, execution_timeout_ms: int = 0, replace: bool = False) -> EngineModel:
        """Adds a model (native workers start at once; external ones wait to be pulled), or
        with ``replace`` swaps it in for the model of that name: the new one admits at once,
        the old one finishes what it admitted (its handle stays usable: submissions through
        it reach the new model). ``native`` (for ``IR_BACKEND_NATIVE``) is taken over on
        success and left to the caller on failure."""
        cfg = ffi.new("ir_model_config*")
        cfg.struct_size = ffi.sizeof("ir_model_config")
        name_c = ffi.new("char[]", name.encode())
        cfg.name = name_c
        cfg.backend = backend
        cfg.instances = instances
        cfg.idle_spin_us = idle_spin_us
        cfg.execution_timeout_us = execution_timeout_ms * 1000
        keep: list[Any] = [name_c]
        priority_levels = 1
        if batching is not None:
            cfg.batching = 1
            cfg.max_batch_size = batching.max_batch_size
            cfg.max_queue_delay_us = batching.max_queue_delay_us
            preferred = ffi.new("int64_t[]", list(batching.preferred_batch_sizes) or [0])
            keep.append(preferred)
            cfg.preferred_batch_sizes = preferred
            cfg.n_preferred = len(batching.preferred_batch_sizes)
            cfg.max_queue_size = batching.max_queue_size
            cfg.priority_levels = priority_levels = batching.priority_levels
            cfg.adaptive = 1 if getattr(batching, "adaptive", False) else 0
            default_timeout_ms = batching.default_timeout_ms
        else:
            cfg.max_queue_size = 1024
            cfg.priority_levels = 1
        cfg.default_timeout_us = default_timeout_ms * 1000
        cfg.inputs, cfg.n_inputs = signature_descriptors(signature.inputs, keep)
        cfg.outputs, cfg.n_outputs = signature_descriptors(signature.outputs, keep)
        out = ffi.new("ir_model**")
        if native is not None:
            cfg.native = native.take()
        add = lib.ir_engine_replace_model if replace else lib.ir_engine_add_model
        error = add(self._handle, cfg, out)
        if error != ffi.NULL and native is not None:
            native.give_back(cfg.native)
        check(error)
        model = EngineModel(name, out[0], signature, priority_levels)
        previous = self.models.get(name)
        self.models[name] = model
        if previous is not None:
            self.retired.append(previous)
        return model

    def add_pipeline(self, name: str, signature: ModelSignature, steps: Sequence[tuple[str, str, Mapping[str, tuple[int, str]]]],
                     outputs: Mapping[str, tuple[int, str]], *, priority_levels: int, default_timeout_ms: int = 0) -> EnginePipeline:
        """Adds a pipeline over models already added. ``steps``: (step name, model name,
        {model input: (source step index or -1 for the request, tensor)}), in dependency
        order; ``outputs``: {pipeline output: (source step index or -1, tensor)}. The
        request's inputs are ``signature.inputs``, in order."""
        keep: list[Any] = []

        def text(value: str) -> Any:
            c = ffi.new("char[]", value.encode())
            keep.append(c)
            return c

        def bindings(mapping: Mapping[str, tuple[int, str]]) -> Any:
            array = ffi.new("ir_pipeline_binding[]", max(len(mapping), 1))
            keep.append(array)
            for i, (tensor, (source, source_tensor)) in enumerate(mapping.items()):
                array[i].tensor = text(tensor)
                array[i].source_step = source
                array[i].source_tensor = text(source_tensor)
            return array

        cfg = ffi.new("ir_pipeline_config*")
        cfg.struct_size = ffi.sizeof("ir_pipeline_config")
        cfg.name = text(name)
        cfg.inputs, cfg.n_inputs = signature_descriptors(signature.inputs or (), keep)
        step_array = ffi.new("ir_pipeline_step[]", max(len(steps), 1))
        keep.append(step_array)
        for i, (step, model, inputs) in enumerate(steps):
            step_array[i].name = text(step)
            step_array[i].model = text(model)
            step_array[i].inputs = bindings(inputs)
            step_array[i].n_inputs = len(inputs)
        cfg.steps, cfg.n_steps = step_array, len(steps)
        cfg.outputs, cfg.n_outputs = bindings(outputs), len(outputs)
        cfg.default_timeout_us = default_timeout_ms * 1000
        cfg.priority_levels = priority_levels
        out = ffi.new("ir_pipeline**")
        check(lib.ir_engine_add_pipeline(self._handle, cfg, out))
        pipeline = EnginePipeline(name, out[0], signature, priority_levels, tuple(step for step, _, _ in steps))
        self.pipelines[name] = pipeline
        return pipeline

    def release_retired(self, keep_latest: int = 1) -> None:
        """Releases the handles of replaced or retired models that have nothing in flight,
        except the ``keep_latest`` most recent (a caller may still submit through them for a
        moment; they hand submissions on to their successor)."""
        keep = self.retired[len(self.retired) - keep_latest :] if keep_latest else []
        for model in self.retired[: len(self.retired) - len(keep)]:
            if model.handle is not None and model.stats().in_flight == 0:
                model.release()
        self.retired = [m for m in self.retired if m.handle is not None]

    def retire_model(self, name: str) -> None:
        """Takes a model out of service: it stops admitting and drains in the background."""
        check(lib.ir_engine_retire_model(self._handle, name.encode()))
        self.retired.append(self.models.pop(name))

    def drain_into(self, buf: Any, capacity: int) -> int:
        """Moves up to ``capacity`` waiting completions into ``buf``; returns how many."""
        return int(lib.ir_engine_drain(self._handle, buf, capacity))

    def poll_into(self, buf: Any, capacity: int, spin_us: int) -> int:
        """Like :meth:`drain_into`, after busy-waiting up to ``spin_us`` for a completion."""
        return int(lib.ir_engine_poll(self._handle, spin_us, buf, capacity))

    def wait(self, timeout_s: float | None, buf: Any) -> int:
        """Blocks (without the GIL) until completions wait; fills ``buf``; returns how many."""
        timeout_us = -1 if timeout_s is None else int(timeout_s * 1e6)
        return int(lib.ir_engine_wait(self._handle, timeout_us, buf, len(buf)))

    def stop(self, timeout_s: float) -> None:
        """Refuses new work, drains up to ``timeout_s``, cancels the rest (blocking)."""
        if not self._destroyed:
            lib.ir_engine_stop(self._handle, int(timeout_s * 1e6))

    def destroy(self) -> None:
        """Frees the engine. Call after every external worker thread has returned."""
        if not self._destroyed:
            self._destroyed = True
            lib.ir_engine_destroy(self._handle)
            self._handle = ffi.NULL
            for model in [*self.models.values(), *self.retired, *self.pipelines.values()]:
                model.release()


def signature_from_specs(inputs: Any, outputs: Any, max_batch_size: int) -> ModelSignature:
    """A signature from the spec's declared tensors (None when not declared)."""
    from infer_runtime.engine.dtypes import SPEC_TO_NUMPY

    def conv(tensors: Any) -> tuple[TensorSignature, ...] | None:
        if tensors is None:
            return None
        out = []
        for t in tensors:
            if t.dtype not in SPEC_TO_NUMPY:
                raise InvalidInputError(f"tensor '{t.name}': dtype {t.dtype} is not supported by the engine yet")
            out.append(TensorSignature(t.name, SPEC_TO_NUMPY[t.dtype], tuple(t.shape)))
        return tuple(out)

    return ModelSignature(conv(inputs), conv(outputs), max_batch_size)
