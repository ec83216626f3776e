"""The thin tier over the engine (cffi): models, submission, completions, statistics."""

from .core import BATCH_BOUNDS as BATCH_BOUNDS
from .core import DURATION_BOUNDS_S as DURATION_BOUNDS_S
from .core import Delivery as Delivery
from .core import Engine as Engine
from .core import EngineModel as EngineModel
from .core import ModelStats as ModelStats
from .core import response_outputs as response_outputs
from .core import signature_from_specs as signature_from_specs
from .native import NativeBackend as NativeBackend
from .signature import ModelSignature as ModelSignature
from .signature import TensorSignature as TensorSignature

__all__ = ["BATCH_BOUNDS", "DURATION_BOUNDS_S", "Delivery", "Engine", "EngineModel", "ModelSignature", "ModelStats", "NativeBackend", "TensorSignature", "response_outputs", "signature_from_specs"]
