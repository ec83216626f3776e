"""The pull side of Python-hosted backends: one thread per instance blocks in
``ir_model_next_batch`` (the GIL released), runs the backend on numpy views of the
gathered inputs, and hands the outputs back with ``ir_batch_complete`` (one copy into
engine memory). Batching, timers, gather, scatter and completion stay in C++.

Chosen over the callback design (a cffi ``extern "Python"`` called from C++ threads)
because no engine thread ever waits for the GIL, and a backend exception is an ordinary
Python exception on an ordinary thread.

Every cffi call releases and re-takes the GIL, and the event loop thread holds it most of
the time under load, so the loop below makes exactly two calls per batch (measured: eight
calls cost ~400 us per batch of an MLP, a third of its compute).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import structlog

from infer_runtime._native import ffi, lib, take_error
from infer_runtime.backends.base import BackendInstance
from infer_runtime.engine.bytes_codec import deserialize, is_bytes_like, serialize
from infer_runtime.engine.dtypes import CODE_TO_NUMPY, NUMPY_TO_CODE
from infer_runtime.errors import InvalidInputError

log = structlog.get_logger("infer_runtime.executor")

_MAX_TENSORS = 64


class PullExecutor:
    """Runs one Python-hosted model's instances, each on its own thread."""

    def __init__(self, model_name: str, model_handle: Any, instances: list[BackendInstance]) -> None:
        self._name = model_name
        self._handle = model_handle
        self._instances = instances
        self._threads = [
            threading.Thread(target=self._serve, args=(i,), name=f"ir-{model_name}-{i}", daemon=True) for i in range(len(instances))
        ]

    def start(self) -> None:
        """Starts one thread per instance."""
        for thread in self._threads:
            thread.start()

    def reap(self) -> bool:
        """Closes the instances once every thread has ended (its model drained and stopped);
        True when it did. Never blocks."""
        if any(t.is_alive() for t in self._threads):
            return False
        return self.join(0)

    def join(self, timeout_s: float | None = None) -> bool:
        """Waits up to ``timeout_s`` in all for the threads (they exit once their model stops),
        then closes the instances. Returns False, closing nothing, when a thread is still
        inside its backend (a hung batch): it is left to finish on its own (daemon)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            log.error("backend threads did not return; left running", model=self._name, threads=stuck)
            return False
        for instance in self._instances:
            try:
                instance.close()
            except Exception:  # closing must not hide the shutdown of the others
                log.exception("backend close failed", model=self._name)
        return True

    def _serve(self, index: int) -> None:
        backend = self._instances[index]
        out = ffi.new("ir_batch**")
        inputs_c = ffi.new("ir_tensor[]", _MAX_TENSORS)
        n_inputs = ffi.new("int32_t*")
        outputs_c = ffi.new("ir_tensor[]", _MAX_TENSORS)
        names: dict[str, Any] = {}  # output name → its C string, made once
        input_names: dict[bytes, str] = {}
        while True:
            err = lib.ir_model_next_batch(self._handle, index, -1, out, inputs_c, _MAX_TENSORS, n_inputs)
            if err != ffi.NULL:
                take_error(err)  # UNAVAILABLE: the engine stopped
                return
            batch = out[0]
            if batch == ffi.NULL:
                continue
            keep: list[Any] = []
            try:
                inputs = {}
                for i in range(n_inputs[0]):
                    t = inputs_c[i]
                    raw = ffi.string(t.name)
                    name = input_names.get(raw)
                    if name is None:
                        name = input_names[raw] = raw.decode()
                    inputs[name] = _view(t)
                outputs = backend.run(inputs)
                n = _describe_outputs(outputs, outputs_c, names, keep)
            except BaseException as exc:  # noqa: BLE001 - SystemExit too: the batch fails, the model keeps serving
                if not isinstance(exc, Exception):  # an ordinary exception is the caller's to report
                    log.error("backend raised while running a batch; the batch failed, the model serves on", model=self._name, error=f"{type(exc).__name__}: {exc}")
                if isinstance(exc, InvalidInputError):  # the backend says the request is wrong: the client's error, shown to it
                    error = lib.ir_error_new(lib.IR_ERROR_INVALID_ARGUMENT, f"model '{self._name}': {exc}".encode("utf-8", "replace"))
                else:
                    error = lib.ir_error_new(lib.IR_ERROR_BACKEND, f"{type(exc).__name__}: {exc}".encode("utf-8", "replace"))
                lib.ir_batch_finish(batch, error)
                continue
            lib.ir_batch_complete(batch, outputs_c, n)


class OutputError(Exception):
    """A backend returned something that is not a dict of supported arrays."""


def _view(tensor: Any) -> np.ndarray:
    dtype = CODE_TO_NUMPY[tensor.dtype]
    shape = tuple(ffi.unpack(tensor.shape, tensor.ndim))
    if dtype.kind == "O":  # BYTES: an object array of bytes (a copy)
        return deserialize(ffi.buffer(ffi.cast("char *", tensor.data), tensor.byte_size) if tensor.byte_size else b"", shape)
    if tensor.byte_size == 0:
        return np.empty(shape, dtype=dtype)
    array = np.ndarray(shape, dtype, ffi.buffer(ffi.cast("char *", tensor.data), tensor.byte_size))
    array.flags.writeable = False  # may be the caller's own memory
    return array


def _describe_outputs(outputs: Any, out: Any, names: dict[str, Any], keep: list[Any]) -> int:
    if not isinstance(outputs, dict):
        raise OutputError(f"backend returned {type(outputs).__name__}, expected a dict of arrays")
    if len(outputs) > _MAX_TENSORS:
        raise OutputError(f"backend returned {len(outputs)} outputs; at most {_MAX_TENSORS} are supported")
    for i, (name, value) in enumerate(outputs.items()):
        array = np.ascontiguousarray(value)
        payload: Any = array
        if is_bytes_like(array):
            try:
                payload = serialize(array)
            except TypeError as exc:
                raise OutputError(f"output '{name}': {exc}") from None
            code = lib.IR_DTYPE_BYTES
        else:
            code = NUMPY_TO_CODE.get(array.dtype)
        if code is None:
            raise OutputError(f"output '{name}' has unsupported dtype {array.dtype}")
        name_c = names.get(name)
        if name_c is None:
            name_c = names[name] = ffi.new("char[]", str(name).encode())
        shape_c = ffi.new("int64_t[]", array.shape or (0,))
        data = ffi.from_buffer(payload)
        keep += (shape_c, data, payload)
        t = out[i]
        t.name = name_c
        t.dtype = code
        t.ndim = array.ndim
        t.shape = shape_c
        t.data = data
        t.byte_size = len(payload) if isinstance(payload, bytes) else array.nbytes
    return len(outputs)
