"""The one place where a Spec becomes a running engine graph.

For every model: resolve its artifact (a file, or a registry reference), load its backend
(reading and checking its signature), add it to the engine with its batching policy -- or,
for a live swap, replace the model of that name -- start the threads that feed
Python-hosted backends, and log one structured event describing what was assembled. A model
that fails to load is recorded with its reason; the caller decides whether that is fatal
(``exit_on_error``).

Backends come from one table (:data:`LOADERS`): native ones (identity, onnxruntime on the CPU,
rules, plugins) are opened through the engine's backend contract and run on engine threads;
Python-hosted ones (python, onnxruntime through its Python API) are pulled by executor threads.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from infer_runtime._native.executor import PullExecutor
from infer_runtime.backends.base import LoadedBackend, served_signature
from infer_runtime.engine import (
    Engine,
    EngineModel,
    EnginePipeline,
    ModelSignature,
    Runner,
    open_backend,
    signature_from_specs,
)
from infer_runtime.errors import InferRuntimeError, ModelLoadError
from infer_runtime.pipelines import FlatPipeline, Source, derive_signature, flatten
from infer_runtime.spec import LoadedSpec
from infer_runtime.spec.models import ModelSpec

log = structlog.get_logger("infer_runtime.assemble")

DEFAULT_VERSION = "1"
"""The version a model serves when its artifact is a plain file."""


@dataclass
class AssembledModel:
    """A model as it runs: its engine handle, the executor feeding it (if any), details."""

    name: str
    backend: str
    engine_model: EngineModel
    executor: PullExecutor | None = None
    details: dict[str, Any] = field(default_factory=dict)
    version: str = DEFAULT_VERSION
    artifact_source: Any = None  # what the registry resolved (None for a plain file)

    @property
    def signature(self) -> ModelSignature:
        """What the model takes and returns."""
        return self.engine_model.signature


@dataclass
class AssembledPipeline:
    """A pipeline as it runs: its engine handle and the flattened graph behind it."""

    name: str
    engine_model: EnginePipeline
    flat: FlatPipeline
    backend: str = "pipeline"
    executor: None = None
    version: str = DEFAULT_VERSION
    artifact_source: Any = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def signature(self) -> ModelSignature:
        """What the pipeline takes and returns (derived from its steps' models)."""
        return self.engine_model.signature


@dataclass
class Assembly:
    """The result of assembling a spec: models and pipelines that run, and those that failed."""

    models: dict[str, AssembledModel] = field(default_factory=dict)
    pipelines: dict[str, AssembledPipeline] = field(default_factory=dict)
    failures: dict[str, InferRuntimeError] = field(default_factory=dict)
    load_seconds: dict[str, float] = field(default_factory=dict)  # per model, failed ones too

    def executors(self) -> list[PullExecutor]:
        """Every executor, in assembly order."""
        return [m.executor for m in self.models.values() if m.executor is not None]


@dataclass(frozen=True)
class Artifact:
    """Where a model's artifact is, and which version it is. ``source`` is what the registry
    resolved (None for a plain file): the hot swap follows it."""

    path: Path | None
    version: str = DEFAULT_VERSION
    source: Any = None


@dataclass
class Prepared:
    """A model loaded but not yet in the engine: the slow half of assembling (files read,
    sessions opened, Python instances built and warmed), done off the serving thread."""

    name: str
    spec: ModelSpec
    backend: LoadedBackend
    artifact: Artifact

def assemble(loaded: LoadedSpec, engine: Engine) -> Assembly:
    """Builds every model of ``loaded`` into ``engine``; never raises for one model."""
    add_python_path(loaded)
    result = Assembly()
    for name, spec in loaded.spec.models.items():
        started = time.perf_counter()
        try:
            prepared = prepare_within(loaded, name, spec, loaded.spec.runtime.load_timeout_s)
            model = install(engine, prepared, replace=False, idle_spin_us=loaded.spec.runtime.idle_spin_us)
        except InferRuntimeError as exc:
            result.load_seconds[name] = time.perf_counter() - started
            result.failures[name] = exc
            log.error("model failed to load", model=name, backend=spec.backend, error=str(exc))
            continue
        result.models[name] = model
        result.load_seconds[name] = time.perf_counter() - started
    for name in loaded.spec.pipelines:
        started = time.perf_counter()
        try:
            result.pipelines[name] = assemble_pipeline(loaded, engine, name, result)
        except InferRuntimeError as exc:
            result.failures[name] = exc
            log.error("pipeline failed to assemble", pipeline=name, error=str(exc))
        result.load_seconds[name] = time.perf_counter() - started
    return result


def assemble_pipeline(loaded: LoadedSpec, engine: Engine, name: str, assembly: Assembly) -> AssembledPipeline:
    """Adds pipeline ``name`` to ``engine`` over the models of ``assembly`` (flattened: a
    nested pipeline's steps become its own). Raises when a step's model did not load."""
    flat = flatten(loaded.spec, name)
    broken = [m for m in flat.models if m not in assembly.models]
    if broken:
        reasons = "; ".join(f"{m}: {assembly.failures.get(m, 'not loaded')}" for m in broken)
        raise ModelLoadError(f"pipeline '{name}': its step model(s) did not load ({reasons})")
    signatures = {m: assembly.models[m].signature for m in flat.models}
    signature = derive_signature(flat, signatures)
    index = {step.name: i for i, step in enumerate(flat.steps)}

    def where(source: Source) -> tuple[int, str]:
        return (-1 if source.step is None else index[source.step], source.tensor)

    steps = [(step.name, step.model, {tensor: where(src) for tensor, src in step.inputs.items()}) for step in flat.steps]
    levels = max(_priority_levels(loaded.spec.models[m]) for m in flat.models)
    try:
        handle = engine.add_pipeline(name, signature, steps, {t: where(src) for t, src in flat.outputs.items()}, priority_levels=levels)
    except InferRuntimeError as exc:
        raise ModelLoadError(f"pipeline '{name}': {exc}") from exc
    pipeline = AssembledPipeline(name, handle, flat, details={"steps": [f"{s.name}={s.model}" for s in flat.steps]})
    log.info("pipeline assembled", pipeline=name, steps=[f"{s.name}={s.model}" for s in flat.steps],
             inputs=[t.describe() for t in signature.inputs or ()], outputs=[t.describe() for t in signature.outputs or ()])
    return pipeline


def _priority_levels(spec: ModelSpec) -> int:
    return spec.batching.priority_levels if spec.batching else 1


def prepare_within(loaded: LoadedSpec, name: str, spec: ModelSpec, timeout_s: float, artifact: Artifact | None = None) -> Prepared:
    """:func:`prepare`, on a thread of its own, given at most ``timeout_s``: a backend whose
    loading hangs (a constructor that never returns) fails with ModelLoadError instead of
    holding startup. Such a thread cannot be stopped; it is left behind (a daemon), and what it
    loads, if it ever finishes, is dropped."""
    outcome: list[Prepared | BaseException] = []

    def load() -> None:
        try:
            outcome.append(prepare(loaded, name, spec, artifact))
        except BaseException as exc:  # noqa: BLE001 - carried to the assembling thread
            outcome.append(exc)

    thread = threading.Thread(target=load, name=f"ir-load-{name}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if not outcome:
        raise ModelLoadError(f"model '{name}' did not load within {timeout_s:g} s (runtime.load_timeout_s); its loading was abandoned")
    result = outcome[0]
    if isinstance(result, BaseException):
        if isinstance(result, InferRuntimeError):
            raise result
        raise ModelLoadError(f"model '{name}': loading failed: {type(result).__name__}: {result}") from result
    return result


def add_python_path(loaded: LoadedSpec) -> None:
    """Puts the spec's ``runtime.python_path`` folders first on ``sys.path`` (once each)."""
    for folder in reversed(loaded.spec.runtime.python_path):
        path = str(loaded.resolve_path(folder))
        if path not in sys.path:
            sys.path.insert(0, path)


def resolve_artifact(loaded: LoadedSpec, name: str, spec: ModelSpec) -> Artifact:
    """The model's artifact: its ``path``, or what its ``registry`` reference resolves to
    (verified against its recorded hash and size)."""
    if spec.path is not None:
        return Artifact(loaded.resolve_path(spec.path))
    if spec.registry is None:
        return Artifact(None)
    registry = loaded.spec.registry
    if registry is None:  # the semantic checks refuse this; kept for direct callers
        raise ModelLoadError(f"model '{name}': registry = {spec.registry!r} needs a [registry] section")
    from infer_runtime.registry import resolve_source

    resolved = resolve_source(loaded.resolve_path(registry.path), spec.registry, registry.environment)
    return Artifact(Path(resolved.path), str(resolved.version), resolved)


def assemble_model(loaded: LoadedSpec, engine: Engine, name: str, spec: ModelSpec, *, artifact: Artifact | None = None,
                   replace: bool = False) -> AssembledModel:
    """Loads one model and adds it to ``engine`` (or, with ``replace``, swaps it in for the
    model of that name, which finishes what it admitted). Raises for this model only."""
    return install(engine, prepare(loaded, name, spec, artifact), replace=replace, idle_spin_us=loaded.spec.runtime.idle_spin_us)


def prepare(loaded: LoadedSpec, name: str, spec: ModelSpec, artifact: Artifact | None = None) -> Prepared:
    """Loads a model's backend (blocking: files, sessions, constructors). Raises for it only."""
    if artifact is None:
        artifact = resolve_artifact(loaded, name, spec)
    max_batch = spec.batching.max_batch_size if spec.batching else 0
    declared = signature_from_specs(spec.inputs, spec.outputs, max_batch)
    loader = LOADERS.get(spec.backend)
    if loader is None:
        raise ModelLoadError(f"model '{name}': the {spec.backend} backend is not available in this build")
    return Prepared(name, spec, loader(loaded, name, spec, declared, artifact), artifact)


def install(engine: Engine, prepared: Prepared, *, replace: bool, idle_spin_us: int) -> AssembledModel:
    """Adds a prepared model to ``engine``, or swaps it in for the model of that name (fast:
    no file is read; run it where submissions are serialised with it, so that every request
    is known to be served by the version it is reported with)."""
    name, spec, backend = prepared.name, prepared.spec, prepared.backend
    common: dict[str, Any] = {"instances": spec.instances, "batching": spec.batching, "idle_spin_us": idle_spin_us,
                              "execution_timeout_ms": spec.execution_timeout_ms, "replace": replace}
    executor = None
    if backend.native is not None:  # run by the engine's own threads
        try:
            handle = engine.add_model(name, Runner.NATIVE, backend.signature, native=backend.native, **common)
        finally:
            backend.native.free()  # a no-op once the model took it
    else:
        handle = engine.add_model(name, Runner.EXTERNAL, backend.signature, **common)
        executor = PullExecutor(name, handle.handle, backend.instances)
        executor.start()
    model = AssembledModel(name, spec.backend, handle, executor, dict(backend.details), prepared.artifact.version, prepared.artifact.source)
    batching = spec.batching.model_dump() if spec.batching else None
    log.info("model replaced" if replace else "model assembled", model=name, version=model.version, backend=spec.backend, instances=spec.instances,
             batching=batching, inputs=[t.describe() for t in model.signature.inputs or ()], **model.details)
    return model


Loader = Callable[[LoadedSpec, str, ModelSpec, ModelSignature, Artifact], LoadedBackend]


def _identity(loaded: LoadedSpec, name: str, spec: ModelSpec, declared: ModelSignature, artifact: Artifact) -> LoadedBackend:
    native = open_backend("identity", name, {}, instances=spec.instances, max_batch_rows=declared.max_batch_size,
                          inputs=declared.inputs, outputs=declared.outputs)
    return LoadedBackend(signature=declared, details={"native": True}, native=native)


def _onnxruntime(loaded: LoadedSpec, name: str, spec: ModelSpec, declared: ModelSignature, artifact: Artifact) -> LoadedBackend:
    from infer_runtime.backends import onnxruntime as ort_backend
    from infer_runtime.spec.models import OnnxRuntimeOptions

    assert artifact.path is not None  # the semantic checks guarantee path or registry
    return ort_backend.load(name, artifact.path, spec.onnxruntime or OnnxRuntimeOptions(), declared, spec.instances)


def _python(loaded: LoadedSpec, name: str, spec: ModelSpec, declared: ModelSignature, artifact: Artifact) -> LoadedBackend:
    from infer_runtime.backends import python as py_backend

    assert spec.python is not None
    return py_backend.load(name, spec.python, declared, spec.instances)


def _rules(loaded: LoadedSpec, name: str, spec: ModelSpec, declared: ModelSignature, artifact: Artifact) -> LoadedBackend:
    from infer_runtime.rules import RulesError, load_rules
    from infer_runtime.spec.models import RulesOptions

    assert artifact.path is not None
    options = spec.rules or RulesOptions()
    try:
        ruleset = load_rules(artifact.path)
    except RulesError as exc:
        raise ModelLoadError(f"model '{name}': {exc}") from exc
    config = ruleset.engine_config(bindings=dict(options.bindings), outputs=dict(options.outputs), defaults=dict(options.defaults),
                                   explain=options.explain, max_iterations=options.max_iterations, trace=options.trace)
    return _open_native("rules", name, spec, declared, config, details={"rules": str(artifact.path)})


def _plugin(loaded: LoadedSpec, name: str, spec: ModelSpec, declared: ModelSignature, artifact: Artifact) -> LoadedBackend:
    from infer_runtime.backends.plugin import build_plugin

    assert spec.plugin is not None
    library = build_plugin(name, spec.plugin, loaded.base_dir)
    return _open_native("plugin", name, spec, declared, dict(spec.plugin.config), library=library, details={"library": str(library)})


def _open_native(kind: str, name: str, spec: ModelSpec, declared: ModelSignature, config: dict[str, Any], *, library: Path | None = None,
                 details: dict[str, object] | None = None) -> LoadedBackend:
    try:
        native = open_backend(kind, name, config, instances=spec.instances, max_batch_rows=declared.max_batch_size,
                              inputs=declared.inputs, outputs=declared.outputs, library=library)
    except ModelLoadError:
        raise
    except InferRuntimeError as exc:
        raise ModelLoadError(f"model '{name}': {exc}") from exc
    try:
        signature = served_signature(name, declared, native.tensors(outputs=False), native.tensors(outputs=True))
    except ModelLoadError:
        native.free()
        raise
    return LoadedBackend(signature=signature, details={"runner": native.info, **(details or {})}, native=native)


def _tensorrt(loaded: LoadedSpec, name: str, spec: ModelSpec, declared: ModelSignature, artifact: Artifact) -> LoadedBackend:
    raise ModelLoadError(f"model '{name}': the tensorrt backend needs a CUDA GPU and the [gpu] extra; none is available here")


LOADERS: dict[str, Loader] = {
    "identity": _identity,
    "onnxruntime": _onnxruntime,
    "python": _python,
    "rules": _rules,
    "plugin": _plugin,
    "tensorrt": _tensorrt,
}
"""The factory table: backend name (as a spec names it) → loader."""
