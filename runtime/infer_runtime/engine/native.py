"""Native backends opened through the C ABI (``ir_backend``): they run batches on the
engine's own threads, so a batch never needs the interpreter. Opening one loads the model
and reads its signature; the handle then goes to :meth:`Engine.add_model`, which takes it
over. A handle no model took is freed with :meth:`NativeBackend.free` (or on collection).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from infer_runtime._native import check, ffi, lib

from .dtypes import CODE_TO_NUMPY
from .signature import TensorSignature


class NativeBackend:
    """An opened native backend, owned by Python until a model takes it."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    @property
    def info(self) -> str:
        """What runs the model, e.g. ``onnxruntime 1.31.1 (CPUExecutionProvider)``."""
        return str(ffi.string(lib.ir_backend_info(self._require())).decode())

    def tensors(self, outputs: bool) -> tuple[TensorSignature, ...]:
        """The signature read from the artifact (inputs, or outputs)."""
        handle = self._require()
        kind = 1 if outputs else 0
        out = ffi.new("ir_tensor*")
        found = []
        for i in range(lib.ir_backend_tensor_count(handle, kind)):
            check(lib.ir_backend_tensor(handle, kind, i, out))
            dtype = CODE_TO_NUMPY[out.dtype]
            found.append(TensorSignature(ffi.string(out.name).decode(), np.dtype(dtype), tuple(out.shape[d] for d in range(out.ndim))))
        return tuple(found)

    def take(self) -> Any:
        """Hands the handle over (to ``ir_engine_add_model``); this object forgets it."""
        handle, self._handle = self._require(), None
        return handle

    def give_back(self, handle: Any) -> None:
        """Takes the handle back after ``ir_engine_add_model`` refused it."""
        self._handle = handle

    def free(self) -> None:
        """Frees a handle no model took. Idempotent."""
        if self._handle is not None:
            lib.ir_backend_free(self._handle)
            self._handle = None

    def __del__(self) -> None:
        self.free()

    def _require(self) -> Any:
        if self._handle is None:
            raise RuntimeError("this native backend was handed to a model already")
        return self._handle


_LEVELS = {"disable": 0, "basic": 1, "extended": 2, "all": 99}


def open_onnxruntime(library: Path, model: Path, *, instances: int, intra_op_threads: int, inter_op_threads: int,
                     graph_optimization_level: str, execution_mode: str) -> NativeBackend:
    """Opens ``instances`` ONNX Runtime sessions on ``model`` through ``library``.

    Raises:
        ModelNotFoundError: the library or the model file does not exist.
        UnavailableError: the library cannot be used.
        InvalidInputError: ONNX Runtime refused the model or an option.
    """
    options = ffi.new("ir_onnxruntime_options*")
    options.struct_size = ffi.sizeof("ir_onnxruntime_options")
    library_c = ffi.new("char[]", str(library).encode())
    model_c = ffi.new("char[]", str(model).encode())
    options.library = library_c
    options.model_path = model_c
    options.instances = instances
    options.intra_op_threads = intra_op_threads
    options.inter_op_threads = inter_op_threads
    options.graph_optimization_level = _LEVELS[graph_optimization_level]
    options.parallel_execution = 1 if execution_mode == "parallel" else 0
    out = ffi.new("ir_backend**")
    check(lib.ir_onnxruntime_open(options, out))
    return NativeBackend(out[0])
