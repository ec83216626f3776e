"""Native backends opened through the C ABI (``ir_backend_open``): a built-in backend found
by name (identity, onnxruntime, rules) or a plugin library, run on the engine's own threads
through the backend contract (``infer_runtime_backend.h``), so a batch never needs the
interpreter. Opening one creates its instances and reads its signature; the handle then goes
to :meth:`Engine.add_model`, which takes it over. A handle no model took is freed with
:meth:`NativeBackend.free` (or on collection).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from infer_runtime._native import check, ffi, lib
from infer_runtime.engine.dtypes import CODE_TO_NUMPY, NUMPY_TO_CODE
from infer_runtime.engine.signature import TensorSignature


class NativeBackend:
    """An opened native backend, owned by Python until a model takes it."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    @property
    def info(self) -> str:
        """What runs the model, e.g. ``onnxruntime 1.31.1 (CPUExecutionProvider)``."""
        return str(ffi.string(lib.ir_backend_info(self._require())).decode())

    def tensors(self, outputs: bool) -> tuple[TensorSignature, ...] | None:
        """The signature the backend reports (inputs, or outputs); None when it takes any
        tensors (identity)."""
        handle = self._require()
        kind = 1 if outputs else 0
        count = lib.ir_backend_tensor_count(handle, kind)
        if count < 0:
            return None
        out = ffi.new("ir_tensor*")
        found = []
        for i in range(count):
            check(lib.ir_backend_tensor(handle, kind, i, out))
            dtype = CODE_TO_NUMPY[out.dtype]
            found.append(TensorSignature(ffi.string(out.name).decode(), np.dtype(dtype), tuple(out.shape[d] for d in range(out.ndim))))
        return tuple(found)

    def batch_range(self) -> tuple[int, int]:
        """The batch rows the backend accepts, (min, max)."""
        lo, hi = ffi.new("int64_t*"), ffi.new("int64_t*")
        lib.ir_backend_batch_range(self._require(), lo, hi)
        return int(lo[0]), int(hi[0])

    def warm(self, inputs: Mapping[str, np.ndarray]) -> None:
        """Runs one request of ``inputs`` (in the backend's input order) on every instance,
        dropping the outputs: a new version's first-run costs are paid before it serves."""
        handle = self._require()
        keep: list[Any] = []
        arrays = [np.ascontiguousarray(a) for a in inputs.values()]
        descs = ffi.new("ir_tensor[]", max(len(arrays), 1))
        for i, (name, arr) in enumerate(zip(inputs, arrays)):
            c_name = ffi.new("char[]", name.encode())
            c_shape = ffi.new("int64_t[]", list(arr.shape) or [0])
            data = ffi.from_buffer(arr)
            keep += [c_name, c_shape, data]
            descs[i] = {"name": c_name, "dtype": NUMPY_TO_CODE[arr.dtype], "ndim": arr.ndim, "shape": c_shape, "data": data, "byte_size": arr.nbytes}
        check(lib.ir_backend_warm(handle, descs, len(arrays)))

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


def signature_descriptors(tensors: tuple[TensorSignature, ...] | None, keep: list[Any]) -> tuple[Any, int]:
    """An ``ir_tensor[]`` describing a signature (NULL and -1 when not declared); what it
    points to is appended to ``keep``, which must outlive its use."""
    if tensors is None:
        return ffi.NULL, -1
    descs = ffi.new("ir_tensor[]", max(len(tensors), 1))
    keep.append(descs)
    for i, t in enumerate(tensors):
        name = ffi.new("char[]", t.name.encode())
        shape = ffi.new("int64_t[]", list(t.shape) or [0])
        keep += [name, shape]
        descs[i] = {"name": name, "dtype": NUMPY_TO_CODE[t.dtype], "ndim": len(t.shape), "shape": shape}
    return descs, len(tensors)


def open_backend(kind: str, model: str, config: Mapping[str, Any], *, instances: int, max_batch_rows: int,
                 inputs: tuple[TensorSignature, ...] | None = None, outputs: tuple[TensorSignature, ...] | None = None,
                 library: Path | None = None) -> NativeBackend:
    """Opens ``instances`` instances of the backend ``kind`` ("plugin" with ``library``) for
    ``model``, given its options (sent as JSON) and its declared signature.

    Raises:
        ModelNotFoundError: unknown kind, or a library or file that does not exist.
        InvalidInputError: the backend refused its config or signature; a plugin without the
            entry symbol or built for another contract version.
        UnavailableError: a library that cannot be loaded.
    """
    options = ffi.new("ir_backend_options*")
    options.struct_size = ffi.sizeof("ir_backend_options")
    keep: list[Any] = []
    strings = {"kind": kind, "model_name": model, "config_json": json.dumps(dict(config), allow_nan=False)}
    if library is not None:
        strings["library"] = str(library)
    for field, text in strings.items():
        c_text = ffi.new("char[]", text.encode())
        keep.append(c_text)
        setattr(options, field, c_text)
    options.inputs, options.n_inputs = signature_descriptors(inputs, keep)
    options.outputs, options.n_outputs = signature_descriptors(outputs, keep)
    options.instances = instances
    options.max_batch_rows = max_batch_rows
    out = ffi.new("ir_backend**")
    check(lib.ir_backend_open(options, out))
    return NativeBackend(out[0])
