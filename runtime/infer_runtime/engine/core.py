"""The thin tier over the engine's C ABI: one engine, its models, submission, completions
and statistics. Everything here is synchronous; the front-ends (``Runtime``,
``SyncRuntime``) decide how completions are waited for.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from infer_runtime._native import check, ffi, lib, take_error
from infer_runtime.errors import InvalidInputError

from .bytes_codec import deserialize, is_bytes_like, serialize
from .dtypes import CODE_TO_NUMPY, NUMPY_TO_CODE
from .native import NativeBackend
from .signature import ModelSignature, TensorSignature

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


class EngineModel:
    """One model inside the engine: checks inputs against its signature and submits."""

    __slots__ = ("name", "handle", "signature", "_n", "_descs", "_shapes", "_names", "_rows_limit", "_fixed", "_priority_levels", "_checks", "rejected_invalid")

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
        # descriptors during ir_submit, so one set per model is enough on one thread.
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
        # Per input: (name, dtype, ndim, required tail (dims 1..) or None, [(dim, size)]
        # checks when the tail has variable dims, descriptor, shape buffer).
        self.rejected_invalid = 0  # refused in Python before reaching the engine
        self._checks = [
            (t.name, t.dtype, len(t.shape), _static_tail(t.shape), [(d, v) for d, v in enumerate(t.shape) if v != -1], self._descs[i], self._shapes[i])
            for i, t in enumerate(signature.inputs or ())
        ]

    def submit(self, cookie: int, inputs: Mapping[str, Any], priority: int, timeout_ms: float | None, wake: bool = True) -> list[Any]:
        """Checks ``inputs`` and submits them; returns what must stay alive until the
        request completes. Raises the mapped error when the engine refuses at once.
        ``wake=False`` admits without waking idle workers (call :meth:`wake` later)."""
        try:
            if self._fixed:
                keep = self._fill_fixed(inputs)
                descs, n = self._descs, self._n
            else:
                keep, descs, n = self._fill_dynamic(inputs)
            if not 0 <= priority < self._priority_levels:
                raise InvalidInputError(f"model '{self.name}': priority {priority} is outside [0, {self._priority_levels})")
            timeout_us = 0 if timeout_ms is None else int(timeout_ms * 1000)
            if timeout_ms is not None and timeout_us <= 0:
                raise InvalidInputError(f"model '{self.name}': timeout_ms must be > 0 (got {timeout_ms})")
        except InvalidInputError:
            self.rejected_invalid += 1  # folded into stats(); costs nothing on success
            raise
        err = lib.ir_submit(self.handle, cookie, descs, n, priority, timeout_us, 0 if wake else lib.IR_SUBMIT_NO_WAKE)
        if err:  # a NULL pointer is false (and cheaper to test than a comparison)
            raise take_error(err)  # type: ignore[misc]
        return keep

    def wake(self) -> None:
        """Wakes the model's idle workers (after ``submit(..., wake=False)``)."""
        lib.ir_model_wake(self.handle)

    def _fill_fixed(self, inputs: Mapping[str, Any]) -> list[Any]:
        if len(inputs) != self._n:
            self._name_error(inputs)
        keep = []
        rows = -1
        limit = self._rows_limit
        for name, dtype, ndim, tail, fixed, desc, dims in self._checks:
            arr = inputs.get(name)
            if arr is None:
                self._name_error(inputs)
            if type(arr) is not np.ndarray:
                arr = np.asarray(arr)
            if arr.dtype != dtype:
                if not (dtype.kind == "O" and is_bytes_like(arr)):
                    raise InvalidInputError(f"model '{self.name}': input '{name}' must be {_dtype_name(dtype)}, got {_dtype_name(arr.dtype)}")
            shape = arr.shape
            if len(shape) != ndim or (shape[1:] != tail if tail is not None else any(shape[d] != v for d, v in fixed)):
                self._shape_error(name, shape)
            if limit:
                k = shape[0]
                if not 0 < k <= limit:
                    raise InvalidInputError(f"model '{self.name}': input '{name}' has {k} rows; each request needs 1 to {limit} (max_batch_size)")
                if rows != k and rows != -1:
                    raise InvalidInputError(f"model '{self.name}': inputs disagree on the batch dimension ({rows} vs {k})")
                rows = k
            if dtype.kind == "O":  # BYTES: the engine takes the serialized form
                try:
                    raw = serialize(arr)
                except TypeError as exc:
                    raise InvalidInputError(f"model '{self.name}': input '{name}': {exc}") from None
                buf = ffi.from_buffer(raw)
                desc.byte_size = len(raw)
            else:
                if not arr.flags.c_contiguous:
                    arr = np.ascontiguousarray(arr)
                buf = ffi.from_buffer(arr)
                desc.byte_size = arr.nbytes
            desc.data = buf
            if tail is not None:  # the rest was written once, at construction
                dims[0] = shape[0]
            else:
                for d in range(ndim):
                    dims[d] = shape[d]
            keep.append(buf)
        return keep

    def _shape_error(self, name: str, shape: tuple[int, ...]) -> None:
        spec = next(t for t in self.signature.inputs or () if t.name == name)
        raise InvalidInputError(f"model '{self.name}': input '{name}' must have shape [{', '.join(str(d) for d in spec.shape)}], got [{', '.join(str(d) for d in shape)}]")

    def _fill_dynamic(self, inputs: Mapping[str, Any]) -> tuple[list[Any], Any, int]:
        if not inputs:
            raise InvalidInputError(f"model '{self.name}': a request needs at least one input")
        n = len(inputs)
        descs = ffi.new("ir_tensor[]", n)
        keep: list[Any] = [descs]
        for i, (name, value) in enumerate(sorted(inputs.items())):
            arr = np.ascontiguousarray(value)
            if is_bytes_like(arr):
                try:
                    payload: Any = serialize(arr)
                except TypeError as exc:
                    raise InvalidInputError(f"model '{self.name}': input '{name}': {exc}") from None
                code, nbytes = lib.IR_DTYPE_BYTES, len(payload)
            else:
                code = NUMPY_TO_CODE.get(arr.dtype)
                if code is None:
                    raise InvalidInputError(f"model '{self.name}': input '{name}' has unsupported dtype {arr.dtype}")
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
        raise InvalidInputError(f"model '{self.name}': {'; '.join(parts)} (expects {', '.join(repr(e) for e in expected)})")

    def stats(self) -> ModelStats:
        """A snapshot of the engine's counters for this model. Requests refused by the
        checks in Python count as submitted and ``failed_invalid``, exactly like those the
        engine refuses itself."""
        out = ffi.new("ir_model_stats*")
        out.struct_size = ffi.sizeof("ir_model_stats")
        check(lib.ir_model_stats_get(self.handle, out))
        values = []
        for name in _STAT_FIELDS:
            value = getattr(out, name)
            values.append(tuple(value) if name.endswith("_buckets") else int(value))
        stats = ModelStats(*values)
        refused = self.rejected_invalid
        if refused:
            stats = dataclasses.replace(stats, submitted=stats.submitted + refused, failed_invalid=stats.failed_invalid + refused)
        return stats


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


class Delivery:
    """Turns completions into results for one consumer thread.

    The requests of one batch share its output buffers: the first completion of a batch
    wraps them in numpy arrays once (owning that response), and every request of the batch
    gets row views of those arrays, the way a hand-written batcher splits its result. The
    completions of a batch arrive consecutively, so the cache holds at most a batch or two.
    """

    def __init__(self, max_outputs: int = 64) -> None:
        self._tensors = ffi.new("ir_tensor[]", max_outputs)
        self._batches: dict[Any, tuple[tuple[str, np.ndarray], ...]] = {}  # batch key → (name, array over it)

    def outputs(self, c: Any, wanted: bool) -> dict[str, np.ndarray] | None:
        """The outputs of successful completion ``c`` (None when not ``wanted``); takes
        care of the response either way."""
        key = c.batch
        rows = c.rows
        batch_rows = c.batch_rows
        if not key or rows == batch_rows:  # not batched, or alone in its batch
            if wanted:
                return response_outputs(c.response, self._tensors)
            lib.ir_response_release(c.response)
            return None
        pairs = self._batches.get(key)
        owned = pairs is None
        if owned:  # the first of the batch: its response now belongs to these arrays
            pairs = self._batches[key] = tuple(response_outputs(c.response, self._tensors, whole_batch=True).items())
        start = c.row_offset
        stop = start + rows
        if stop == batch_rows:  # the batch's last request: nothing else will look it up
            del self._batches[key]
        if not owned:
            lib.ir_response_release(c.response)
        if not wanted:
            return None
        if len(pairs) == 1:  # most models: a dict display costs a quarter of a comprehension
            name, array = pairs[0]
            return {name: array[start:stop]}
        return {name: array[start:stop] for name, array in pairs}


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
        self._destroyed = False

    @property
    def handle(self) -> Any:
        """The raw ``ir_engine*``."""
        return self._handle

    def event_fd(self) -> int:
        """The eventfd that becomes readable when completions wait."""
        return int(lib.ir_engine_event_fd(self._handle))

    def add_model(self, name: str, backend: int, signature: ModelSignature, *, instances: int, batching: Any | None, default_timeout_ms: int = 0,
                  idle_spin_us: int = 0, native: NativeBackend | None = None) -> EngineModel:
        """Adds a model (native workers start at once; external ones wait to be pulled).
        ``native`` (for ``IR_BACKEND_NATIVE``) is taken over on success and left to the
        caller on failure."""
        cfg = ffi.new("ir_model_config*")
        cfg.struct_size = ffi.sizeof("ir_model_config")
        name_c = ffi.new("char[]", name.encode())
        cfg.name = name_c
        cfg.backend = backend
        cfg.instances = instances
        cfg.idle_spin_us = idle_spin_us
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
            default_timeout_ms = batching.default_timeout_ms
        else:
            cfg.max_queue_size = 1024
            cfg.priority_levels = 1
        cfg.default_timeout_us = default_timeout_ms * 1000
        if signature.inputs is None:
            cfg.n_inputs = -1
        else:
            descs = ffi.new("ir_tensor[]", max(len(signature.inputs), 1))
            keep.append(descs)
            for i, t in enumerate(signature.inputs):
                t_name = ffi.new("char[]", t.name.encode())
                t_shape = ffi.new("int64_t[]", list(t.shape) or [0])
                keep += [t_name, t_shape]
                descs[i] = {"name": t_name, "dtype": NUMPY_TO_CODE[t.dtype], "ndim": len(t.shape), "shape": t_shape}
            cfg.inputs = descs
            cfg.n_inputs = len(signature.inputs)
        out = ffi.new("ir_model**")
        if native is not None:
            cfg.native = native.take()
        error = lib.ir_engine_add_model(self._handle, cfg, out)
        if error != ffi.NULL and native is not None:
            native.give_back(cfg.native)
        check(error)
        model = EngineModel(name, out[0], signature, priority_levels)
        self.models[name] = model
        return model

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


def signature_from_specs(inputs: Any, outputs: Any, max_batch_size: int) -> ModelSignature:
    """A signature from the spec's declared tensors (None when not declared)."""
    from .dtypes import SPEC_TO_NUMPY

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
