"""The one place where a Spec becomes a running engine graph.

For every model: load its backend (reading and checking its signature), add it to the
engine with its batching policy, start the threads that feed Python-hosted backends, and
log one structured event describing what was assembled. A model that fails to load is
recorded with its reason; the caller decides whether that is fatal (``exit_on_error``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from infer_runtime._native import lib
from infer_runtime.backends.executor import PullExecutor
from infer_runtime.engine import Engine, EngineModel, ModelSignature, signature_from_specs
from infer_runtime.errors import InferRuntimeError, ModelLoadError
from infer_runtime.spec import LoadedSpec
from infer_runtime.spec.models import ModelSpec

log = structlog.get_logger("infer_runtime.assemble")


@dataclass
class AssembledModel:
    """A model as it runs: its engine handle, the executor feeding it (if any), details."""

    name: str
    backend: str
    engine_model: EngineModel
    executor: PullExecutor | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def signature(self) -> ModelSignature:
        """What the model takes and returns."""
        return self.engine_model.signature


@dataclass
class Assembly:
    """The result of assembling a spec: models that run, and models that failed."""

    models: dict[str, AssembledModel] = field(default_factory=dict)
    failures: dict[str, InferRuntimeError] = field(default_factory=dict)
    load_seconds: dict[str, float] = field(default_factory=dict)  # per model, failed ones too

    def executors(self) -> list[PullExecutor]:
        """Every executor, in assembly order."""
        return [m.executor for m in self.models.values() if m.executor is not None]


def assemble(loaded: LoadedSpec, engine: Engine) -> Assembly:
    """Builds every model of ``loaded`` into ``engine``; never raises for one model."""
    result = Assembly()
    for name, spec in loaded.spec.models.items():
        started = time.perf_counter()
        try:
            model = _assemble_model(loaded, engine, name, spec)
        except InferRuntimeError as exc:
            result.load_seconds[name] = time.perf_counter() - started
            result.failures[name] = exc
            log.error("model failed to load", model=name, backend=spec.backend, error=str(exc))
            continue
        result.models[name] = model
        result.load_seconds[name] = time.perf_counter() - started
        batching = spec.batching.model_dump() if spec.batching else None
        log.info("model assembled", model=name, backend=spec.backend, instances=spec.instances, batching=batching,
                 inputs=[t.describe() for t in model.signature.inputs or ()], **model.details)
    return result


def _assemble_model(loaded: LoadedSpec, engine: Engine, name: str, spec: ModelSpec) -> AssembledModel:
    max_batch = spec.batching.max_batch_size if spec.batching else 0
    spin = loaded.spec.runtime.idle_spin_us
    declared = signature_from_specs(spec.inputs, spec.outputs, max_batch)
    if spec.registry is not None:
        raise ModelLoadError(f"model '{name}': registry sources ({spec.registry!r}) are not supported by this build yet; use path = ...")
    if spec.backend == "identity":
        handle = engine.add_model(name, lib.IR_BACKEND_IDENTITY, declared, instances=spec.instances, batching=spec.batching, idle_spin_us=spin)
        return AssembledModel(name, spec.backend, handle, details={"native": True})
    if spec.backend == "onnxruntime":
        from infer_runtime.backends import onnxruntime as ort_backend
        from infer_runtime.spec.models import OnnxRuntimeOptions

        assert spec.path is not None  # guaranteed by the semantic checks
        backend: Any = ort_backend.load(name, loaded.resolve_path(spec.path), spec.onnxruntime or OnnxRuntimeOptions(), declared, spec.instances)
    elif spec.backend == "python":
        from infer_runtime.backends import python as py_backend

        assert spec.python is not None
        backend = py_backend.load(name, spec.python, declared, spec.instances)
    elif spec.backend == "tensorrt":
        raise ModelLoadError(f"model '{name}': the tensorrt backend needs a CUDA GPU and the [gpu] extra; none is available here")
    else:
        raise ModelLoadError(f"model '{name}': the {spec.backend} backend is not available in this build yet")
    if backend.native is not None:  # run by the engine's own threads
        try:
            handle = engine.add_model(name, lib.IR_BACKEND_NATIVE, backend.signature, instances=spec.instances, batching=spec.batching,
                                      idle_spin_us=spin, native=backend.native)
        finally:
            backend.native.free()  # a no-op once the model took it
        return AssembledModel(name, spec.backend, handle, details=dict(backend.details))
    handle = engine.add_model(name, lib.IR_BACKEND_EXTERNAL, backend.signature, instances=spec.instances, batching=spec.batching, idle_spin_us=spin)
    executor = PullExecutor(name, handle.handle, backend.instances)
    executor.start()
    return AssembledModel(name, spec.backend, handle, executor, dict(backend.details))
