"""The engine as the rest of the package sees it: signatures, dtypes and the BYTES codec
(pure Python, here), and the thin tier over the C ABI -- models, submission, completions,
statistics, native backends -- which lives in :mod:`infer_runtime._native`, the only code that
touches cffi, and is re-exported here on first use (so that importing the pure parts never
loads the engine, and the two packages import each other without a cycle).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .signature import ModelSignature as ModelSignature
from .signature import TensorSignature as TensorSignature

if TYPE_CHECKING:
    from infer_runtime._native.backends import NativeBackend as NativeBackend
    from infer_runtime._native.backends import open_backend as open_backend
    from infer_runtime._native.engine import BATCH_BOUNDS as BATCH_BOUNDS
    from infer_runtime._native.engine import DURATION_BOUNDS_S as DURATION_BOUNDS_S
    from infer_runtime._native.engine import Delivery as Delivery
    from infer_runtime._native.engine import Engine as Engine
    from infer_runtime._native.engine import EngineModel as EngineModel
    from infer_runtime._native.engine import EnginePipeline as EnginePipeline
    from infer_runtime._native.engine import ModelStats as ModelStats
    from infer_runtime._native.engine import Runner as Runner
    from infer_runtime._native.engine import StepStats as StepStats
    from infer_runtime._native.engine import response_outputs as response_outputs
    from infer_runtime._native.engine import signature_from_specs as signature_from_specs

_FROM_NATIVE = {
    "NativeBackend": "backends", "open_backend": "backends",
    "BATCH_BOUNDS": "engine", "DURATION_BOUNDS_S": "engine", "Delivery": "engine", "Engine": "engine", "EngineModel": "engine", "EnginePipeline": "engine", "StepStats": "engine",
    "ModelStats": "engine", "Runner": "engine", "response_outputs": "engine", "signature_from_specs": "engine",
}


def __getattr__(name: str) -> Any:
    module = _FROM_NATIVE.get(name)
    if module is None:
        raise AttributeError(f"module 'infer_runtime.engine' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"infer_runtime._native.{module}"), name)


__all__ = ["BATCH_BOUNDS", "DURATION_BOUNDS_S", "Delivery", "Engine", "EngineModel", "EnginePipeline", "ModelSignature", "ModelStats", "NativeBackend",
           "Runner", "StepStats", "TensorSignature", "open_backend", "response_outputs", "signature_from_specs"]
