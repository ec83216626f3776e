"""Pipelines as the engine runs them: a spec's pipeline flattened into steps over models.

A step may run another pipeline; :func:`flatten` inlines it (its steps are named
``<step>/<inner step>``), so the engine only ever sees steps over models, in an order where
every step comes after the steps it reads. :func:`derive_signature` gives the pipeline the
signature a client sees: its inputs are the ``request.<tensor>`` values its steps read (typed
by the model input each one fills), its outputs the tensors it names (typed by the model
output each one comes from).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from infer_runtime.engine import ModelSignature, TensorSignature
from infer_runtime.errors import ModelLoadError
from infer_runtime.spec.models import PipelineSpec, PipelineStep, Spec

T = TypeVar("T")

REQUEST = "request"
"""The source name of a pipeline's own inputs in references (``request.<tensor>``)."""


@dataclass(frozen=True)
class Source:
    """Where a value comes from: a step's output, or (``step`` None) the request."""

    step: str | None
    tensor: str


@dataclass(frozen=True)
class FlatStep:
    """One step over one model; ``inputs`` maps the model's input names to sources."""

    name: str
    model: str
    inputs: dict[str, Source]


@dataclass(frozen=True)
class FlatPipeline:
    """A pipeline with nested pipelines inlined, steps in dependency order."""

    name: str
    steps: tuple[FlatStep, ...]
    outputs: dict[str, Source]

    @property
    def models(self) -> list[str]:
        """The models its steps run (each once, in step order)."""
        return list(dict.fromkeys(step.model for step in self.steps))

    def request_inputs(self) -> list[str]:
        """The request tensors it reads, in order of first use."""
        seen: dict[str, None] = {}
        for step in self.steps:
            for source in step.inputs.values():
                if source.step is None:
                    seen.setdefault(source.tensor)
        for source in self.outputs.values():
            if source.step is None:
                seen.setdefault(source.tensor)
        return list(seen)


def _parse(ref: str) -> Source:
    head, _, tail = ref.partition(".")
    return Source(None if head == REQUEST else head, tail)


def flatten(spec: Spec, name: str) -> FlatPipeline:
    """The pipeline ``name`` of ``spec`` over models only (the spec is assumed valid: the
    semantic checks refuse unknown references and cycles)."""
    steps, outputs = _inline(spec, spec.pipelines[name], prefix="", request={})
    return FlatPipeline(name, tuple(_ordered(steps)), outputs)


def _inline(spec: Spec, pipeline: PipelineSpec, prefix: str, request: Mapping[str, Source]) -> tuple[list[FlatStep], dict[str, Source]]:
    """Steps and outputs of ``pipeline`` with step names prefixed, its ``request.*`` values
    replaced by ``request`` (the sources the calling step feeds it; identity at the top)."""
    produced: dict[str, dict[str, Source]] = {}  # nested step → its outputs' real sources
    steps: list[FlatStep] = []

    def resolve(ref: str) -> Source:
        source = _parse(ref)
        if source.step is None:
            return request.get(source.tensor, source) if prefix else source
        if source.step in produced:
            return produced[source.step][source.tensor]
        return Source(prefix + source.step, source.tensor)

    # Nested pipelines are expanded in dependency order so their outputs resolve.
    for step in _ordered_spec_steps(pipeline):
        label = step.name or step.model
        if step.model in spec.pipelines:
            inner_request = {tensor: resolve(ref) for tensor, ref in step.inputs.items()}
            inner_steps, inner_outputs = _inline(spec, spec.pipelines[step.model], prefix + label + "/", inner_request)
            steps += inner_steps
            produced[label] = inner_outputs
        else:
            steps.append(FlatStep(prefix + label, step.model, {tensor: resolve(ref) for tensor, ref in step.inputs.items()}))
    return steps, {tensor: resolve(ref) for tensor, ref in pipeline.outputs.items()}


def _in_order(items: list[T], label: Callable[[T], str], reads: Callable[[T], set[str | None]]) -> list[T]:
    """``items`` in dependency order (stable: given order among ready ones); ``reads`` names
    the items one reads (None: the request)."""
    out: list[T] = []
    done: set[str | None] = {None}
    pending = list(items)
    while pending:
        ready = [item for item in pending if reads(item) <= done]
        if not ready:  # the semantic checks refuse cycles; kept for direct callers
            raise ModelLoadError(f"pipeline steps {', '.join(label(item) for item in pending)} form a cycle")
        out += ready
        done.update(label(item) for item in ready)
        pending = [item for item in pending if item not in ready]
    return out


def _ordered_spec_steps(pipeline: PipelineSpec) -> list[PipelineStep]:
    """The spec's steps in dependency order."""
    return _in_order(list(pipeline.steps), lambda step: step.name or step.model, lambda step: {_parse(ref).step for ref in step.inputs.values()})


def _ordered(steps: list[FlatStep]) -> list[FlatStep]:
    """Flat steps in dependency order."""
    return _in_order(steps, lambda step: step.name, lambda step: {src.step for src in step.inputs.values()})


def derive_signature(flat: FlatPipeline, models: Mapping[str, ModelSignature]) -> ModelSignature:
    """The pipeline's signature from its steps' models' signatures.

    Raises:
        ModelLoadError: a request value feeds model inputs of different types, or only
            inputs of models that do not declare them.
    """
    step_model = {step.name: step.model for step in flat.steps}
    inputs: dict[str, TensorSignature] = {}
    for step in flat.steps:
        declared = {t.name: t for t in models[step.model].inputs or ()}
        for tensor, source in step.inputs.items():
            if source.step is not None:
                continue
            target = declared.get(tensor)
            if target is None:
                continue
            found = TensorSignature(source.tensor, target.dtype, target.shape)
            known = inputs.setdefault(source.tensor, found)
            if known.dtype != found.dtype or len(known.shape) != len(found.shape):
                raise ModelLoadError(f"pipeline '{flat.name}': request.{source.tensor} feeds inputs of different types ({known.describe()} and {found.describe()})")
            if known.shape != found.shape:  # dimensions the consumers disagree on vary
                inputs[source.tensor] = TensorSignature(source.tensor, known.dtype, tuple(a if a == b else -1 for a, b in zip(known.shape, found.shape)))
    missing = [t for t in flat.request_inputs() if t not in inputs]
    if missing:
        raise ModelLoadError(f"pipeline '{flat.name}': the type of request input(s) {', '.join(missing)} is unknown: declare `inputs` on the models they feed")
    ordered_inputs = tuple(inputs[t] for t in flat.request_inputs())
    outputs: list[TensorSignature] | None = []
    for tensor, source in flat.outputs.items():
        if source.step is None:
            found_out: TensorSignature | None = inputs[source.tensor]
        else:
            produced = {t.name: t for t in models[step_model[source.step]].outputs or ()}
            found_out = produced.get(source.tensor)
        if found_out is None or outputs is None:
            outputs = None  # not known before the first response, like a model's
            continue
        outputs.append(TensorSignature(tensor, found_out.dtype, found_out.shape))
    batch_sizes = [models[model].max_batch_size for model in flat.models]
    max_batch = min(batch_sizes) if all(batch_sizes) else 0
    return ModelSignature(ordered_inputs, None if outputs is None else tuple(outputs), max_batch)


def replacement_problem(flat: FlatPipeline, model: str, models: Mapping[str, ModelSignature], new: ModelSignature) -> str | None:
    """Why a new version of ``model`` (signature ``new``) would break pipeline ``flat``,
    whose steps run on ``models`` now, or None: every input a step fills and every output a
    step (or the pipeline) reads must still exist with its dtype, and the pipeline's own
    signature must not change (its clients rely on it)."""
    old = models[model]
    runs = {step.name for step in flat.steps if step.model == model}
    if not runs:
        return None

    def tensors(ts: tuple[TensorSignature, ...] | None) -> dict[str, TensorSignature] | None:
        return None if ts is None else {t.name: t for t in ts}

    old_in, new_in, old_out, new_out = tensors(old.inputs), tensors(new.inputs), tensors(old.outputs), tensors(new.outputs)
    for step in flat.steps:
        if step.name not in runs or new_in is None:
            continue
        for tensor in step.inputs:
            if tensor not in new_in:
                return f"step '{step.name}' fills input '{tensor}', which the new version of '{model}' does not take"
            if old_in is not None and tensor in old_in and old_in[tensor].dtype != new_in[tensor].dtype:
                return f"step '{step.name}' fills input '{tensor}' with {old_in[tensor].dtype}; the new version takes {new_in[tensor].dtype}"
    read = [src for step in flat.steps for src in step.inputs.values()] + list(flat.outputs.values())
    for source in read:
        if source.step not in runs or new_out is None:
            continue
        if source.tensor not in new_out:
            return f"step '{source.step}' output '{source.tensor}' is read, and the new version of '{model}' does not produce it"
        if old_out is not None and source.tensor in old_out and old_out[source.tensor].dtype != new_out[source.tensor].dtype:
            return f"step '{source.step}' output '{source.tensor}' would change from {old_out[source.tensor].dtype} to {new_out[source.tensor].dtype}"
    try:
        after = derive_signature(flat, {**models, model: new})
    except ModelLoadError as exc:
        return str(exc)
    before = derive_signature(flat, models)
    if after.inputs != before.inputs or (before.outputs is not None and after.outputs != before.outputs):
        return "the pipeline's own signature would change"
    return None


__all__ = ["REQUEST", "FlatPipeline", "FlatStep", "Source", "derive_signature", "flatten", "replacement_problem"]
