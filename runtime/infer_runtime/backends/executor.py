"""The pull side of Python-hosted backends: one thread per instance blocks in
``ir_model_next_batch`` (the GIL released), runs the backend on numpy views of the
gathered inputs, and hands the outputs back with ``ir_batch_set_output`` (one copy into
engine memory) and ``ir_batch_finish``. Batching, timers, gather, scatter and completion
stay in C++.

Chosen over the callback design (a cffi ``extern "Python"`` called from C++ threads)
because no engine thread ever waits for the GIL, and a backend exception is an ordinary
Python exception on an ordinary thread.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import structlog

from infer_runtime._native import ffi, lib, take_error

from .base import BackendInstance
from infer_runtime.engine.dtypes import CODE_TO_NUMPY, NUMPY_TO_CODE

log = structlog.get_logger("infer_runtime.backends.executor")


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

    def join(self, timeout_s: float | None = None) -> None:
        """Waits for the threads (they exit once the engine stops), then closes instances."""
        for thread in self._threads:
            thread.join(timeout_s)
        for instance in self._instances:
            try:
                instance.close()
            except Exception:  # closing must not hide the shutdown of the others
                log.exception("backend close failed", model=self._name)

    def _serve(self, index: int) -> None:
        backend = self._instances[index]
        out = ffi.new("ir_batch**")
        tensor = ffi.new("ir_tensor*")
        while True:
            err = lib.ir_model_next_batch(self._handle, index, -1, out)
            if err != ffi.NULL:
                take_error(err)  # UNAVAILABLE: the engine stopped
                return
            batch = out[0]
            if batch == ffi.NULL:
                continue
            failure = ffi.NULL
            try:
                inputs = {}
                for i in range(lib.ir_batch_input_count(batch)):
                    lib.ir_batch_input(batch, i, tensor)
                    inputs[ffi.string(tensor.name).decode()] = _view(tensor)
                outputs = backend.run(inputs)
                failure = _set_outputs(batch, outputs, tensor)
            except Exception as exc:  # the batch fails, the model keeps serving
                failure = lib.ir_error_new(lib.IR_ERROR_BACKEND, f"{type(exc).__name__}: {exc}".encode("utf-8", "replace"))
            lib.ir_batch_finish(batch, failure)


def _view(tensor: Any) -> np.ndarray:
    dtype = CODE_TO_NUMPY[tensor.dtype]
    shape = tuple(tensor.shape[d] for d in range(tensor.ndim))
    if tensor.byte_size == 0:
        return np.empty(shape, dtype=dtype)
    array = np.frombuffer(ffi.buffer(ffi.cast("char *", tensor.data), tensor.byte_size), dtype=dtype).reshape(shape)
    array.flags.writeable = False  # may be the caller's own memory
    return array


def _set_outputs(batch: Any, outputs: Any, tensor: Any) -> Any:
    if not isinstance(outputs, dict):
        return lib.ir_error_new(lib.IR_ERROR_BACKEND, f"backend returned {type(outputs).__name__}, expected a dict of arrays".encode())
    for name, value in outputs.items():
        array = np.ascontiguousarray(value)
        code = NUMPY_TO_CODE.get(array.dtype)
        if code is None:
            return lib.ir_error_new(lib.IR_ERROR_BACKEND, f"output '{name}' has unsupported dtype {array.dtype}".encode())
        name_c = ffi.new("char[]", str(name).encode())
        shape_c = ffi.new("int64_t[]", list(array.shape) or [0])
        tensor.name = name_c
        tensor.dtype = code
        tensor.ndim = array.ndim
        tensor.shape = shape_c
        data = ffi.from_buffer(array)
        tensor.data = data
        tensor.byte_size = array.nbytes
        err = lib.ir_batch_set_output(batch, tensor)
        if err != ffi.NULL:
            exc = take_error(err)
            return lib.ir_error_new(lib.IR_ERROR_BACKEND, f"backend output rejected: {exc}".encode())
    return ffi.NULL
