"""Checks the schema cannot express: sources, references, cycles, backend tables.

Runs on the tree with schema defaults applied. Entities (models, pipelines) with
structural problems are still checked where they can be, and semantic problems inside a
structurally broken field are dropped (the schema's message is the useful one). Every
problem is returned, none raised.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .issues import KeyPath
from .models_meta import ARTIFACT_BACKENDS, OPTION_TABLES
from .validator import Problem, did_you_mean


def check(spec: dict[str, Any], base_dir: Path | None = None, check_files: bool = False, broken: frozenset[KeyPath] = frozenset()) -> list[Problem]:
    """All semantic problems of ``spec``; ``base_dir`` resolves relative paths.

    ``broken`` holds paths with structural problems: a model or pipeline at or under one
    is not checked here (its own problems were already reported), but references to it
    still are. When the models or pipelines tables themselves are broken, nothing is.
    """
    out: list[Problem] = []
    if broken & {(), ("models",)}:
        return out
    sick = {p[:2] for p in broken if len(p) >= 2}
    models: dict[str, Any] = {k: v for k, v in spec.get("models", {}).items() if isinstance(v, dict)}
    pipelines: dict[str, Any] = {k: v for k, v in spec.get("pipelines", {}).items() if isinstance(v, dict)}
    if ("pipelines",) in broken:
        pipelines = {}
    for name, model in models.items():
        tolerant = ("models", name) in sick
        _run(functools.partial(_model, name, model, spec, out), tolerant)
        if check_files and base_dir is not None:
            _run(functools.partial(_files, ("models", name), model, base_dir, out), tolerant)
    for name in sorted(set(models) & set(pipelines)):
        out.append(Problem(("pipelines", name), f"{name!r} names both a model and a pipeline", "model and pipeline names share one namespace; rename one"))
    checked_models = {n: m for n, m in models.items() if ("models", n) not in sick}
    for name, pipeline in pipelines.items():
        _run(functools.partial(_pipeline, name, pipeline, checked_models, models, pipelines, out), ("pipelines", name) in sick)
    _pipeline_cycles({n: p for n, p in pipelines.items() if ("pipelines", n) not in sick and n not in models}, out)
    return [p for p in out if not any(_inside_broken(p.path, b) for b in broken)]


def _inside_broken(path: KeyPath, broken: KeyPath) -> bool:
    """True when ``path`` lies in a broken subtree, or is a field holding a broken part."""
    if path[: len(broken)] == broken:
        return True
    return len(path) > 2 and broken[: len(path)] == path


def _run(check_one: Callable[[], None], tolerant: bool) -> None:
    """Runs one entity's checks. A structurally broken entity (already reported) may break
    the checks' assumptions; that must not hide the other entities' problems."""
    if not tolerant:
        check_one()
        return
    try:
        check_one()
    except (KeyError, TypeError, AttributeError, IndexError, ValueError):
        pass


def _model(name: str, model: dict[str, Any], spec: dict[str, Any], out: list[Problem]) -> None:
    here: KeyPath = ("models", name)
    backend = model["backend"]
    has_path, has_registry = model.get("path") is not None, model.get("registry") is not None
    if backend in ARTIFACT_BACKENDS:
        if has_path and has_registry:
            out.append(Problem(here + ("registry",), "set either path or registry, not both", "keep the one this deployment should load"))
        elif not has_path and not has_registry:
            out.append(Problem(here, f"backend {backend!r} needs its artifact: path or registry", f'add path = "models/{name}.onnx" or registry = "{name}@production"'))
    else:
        for key in ("path", "registry"):
            if model.get(key) is not None:
                out.append(Problem(here + (key,), f"backend {backend!r} loads no artifact, so {key} has no effect", f"remove {key}"))
    if has_registry and spec.get("registry") is None:
        out.append(Problem(here + ("registry",), "a registry source needs a [registry] section", 'add [registry] with path = "var/registry.db"'))
    for table in OPTION_TABLES:
        if model.get(table) is not None and table != backend:
            out.append(Problem(here + (table,), f"options for backend {table!r}, but this model's backend is {backend!r}", f"remove the table or set backend = {table!r}"))
    if backend == "python" and model.get("python") is None:
        out.append(Problem(here, "backend 'python' needs a python table with entrypoint", 'add python = { entrypoint = "package.module:Class" }'))
    if backend == "plugin":
        plugin = model.get("plugin")
        if plugin is None:
            out.append(Problem(here, "backend 'plugin' needs a plugin table with library or sources", 'add plugin = { library = "libmy_backend.so" }'))
        elif (plugin.get("library") is None) == (plugin.get("sources") is None):
            out.append(Problem(here + ("plugin",), "set exactly one of plugin.library and plugin.sources"))
    batching = model.get("batching")
    if batching is not None:
        _batching(here + ("batching",), batching, out)
    for kind in ("inputs", "outputs"):
        tensors = model.get(kind) or []
        seen: set[str] = set()
        for index, tensor in enumerate(tensors):
            if tensor["name"] in seen:
                out.append(Problem(here + (kind, index, "name"), f"duplicate {kind[:-1]} name {tensor['name']!r}"))
            seen.add(tensor["name"])
            if batching is not None and (not tensor["shape"] or tensor["shape"][0] != -1):
                out.append(Problem(here + (kind, index, "shape"), f"with batching, the leading dimension is the batch dimension and must be -1 (got {tensor['shape']})", f"write [-1, {', '.join(str(d) for d in tensor['shape'][1:]) or '...'}]" if tensor["shape"] else None))


def _batching(here: KeyPath, batching: dict[str, Any], out: list[Problem]) -> None:
    sizes: list[int] = batching.get("preferred_batch_sizes", [])
    limit: int = batching["max_batch_size"]
    for index, size in enumerate(sizes):
        if size > limit:
            out.append(Problem(here + ("preferred_batch_sizes", index), f"preferred size {size} exceeds max_batch_size {limit}", f"raise max_batch_size to {size} or drop {size}"))
    if sizes != sorted(set(sizes)):
        out.append(Problem(here + ("preferred_batch_sizes",), f"must be ascending without repeats (got {sizes})", f"write {sorted(set(sizes))}"))


def _parse_ref(text: str) -> tuple[str, str] | None:
    head, dot, tail = text.partition(".")
    return (head, tail) if dot and head and tail and "." not in tail else None


def _pipeline(name: str, pipeline: dict[str, Any], checked_models: dict[str, Any], models: dict[str, Any], pipelines: dict[str, Any], out: list[Problem]) -> None:
    here: KeyPath = ("pipelines", name)
    steps: list[dict[str, Any]] = pipeline["steps"]
    step_index: dict[str, int] = {}
    for index, step in enumerate(steps):
        label = step.get("name") or step["model"]
        if label == "request":
            out.append(Problem(here + ("steps", index, "name"), "'request' is reserved for the pipeline's own inputs", "give the step another name"))
        if label in step_index:
            out.append(Problem(here + ("steps", index), f"step name {label!r} is used twice", "give one of the steps a name = ..."))
        step_index.setdefault(label, index)
        target = step["model"]
        if target not in models and target not in pipelines:
            hint = did_you_mean(target, list(models) + list(pipelines)) or f"declared: {', '.join(list(models) + list(pipelines))}"
            out.append(Problem(here + ("steps", index, "model"), f"unknown model or pipeline {target!r}", hint))
    outputs_of = {label: _declared_outputs(steps[i]["model"], checked_models, pipelines) for label, i in step_index.items()}
    deps: dict[str, set[str]] = {label: set() for label in step_index}
    for index, step in enumerate(steps):
        label = step.get("name") or step["model"]
        declared_inputs = _declared_inputs(step["model"], checked_models)
        for tensor, ref in step.get("inputs", {}).items():
            path = here + ("steps", index, "inputs", tensor)
            if declared_inputs is not None and tensor not in declared_inputs:
                out.append(Problem(path, f"{step['model']!r} has no input {tensor!r}", did_you_mean(tensor, declared_inputs) or f"its inputs: {', '.join(declared_inputs)}"))
            source = _reference(path, ref, step_index, outputs_of, out)
            if source is not None and label in deps:
                deps[label].add(source)
    for tensor, ref in pipeline["outputs"].items():
        _reference(here + ("outputs", tensor), ref, step_index, outputs_of, out)
    _request_types(here, steps, checked_models, models, out)
    cycle = _find_cycle(deps) if len(step_index) == len(steps) else None  # duplicates: reported above
    if cycle:
        out.append(Problem(here + ("steps",), f"steps form a cycle: {' → '.join(cycle)}", "a step can only use outputs of steps it does not feed"))


_UNTYPED_BACKENDS = ("identity", "python")
"""Backends that take any tensors unless the spec declares their inputs (the others
describe theirs when loaded)."""


def _request_types(here: KeyPath, steps: list[dict[str, Any]], checked_models: dict[str, Any], models: dict[str, Any], out: list[Problem]) -> None:
    """A pipeline's inputs are typed by the model inputs they feed: a ``request.<t>`` that
    only reaches models taking any tensors leaves the pipeline without a signature, and the
    declared inputs it reaches must agree on the dtype."""
    consumers: dict[str, list[tuple[KeyPath, str, str | None]]] = {}  # tensor → (path, model, dtype; None = untyped)
    described: set[str] = set()  # tensors reaching a backend that describes its inputs
    for index, step in enumerate(steps):
        target = step["model"]
        model = checked_models.get(target)
        if target not in models or model is None:  # a nested pipeline (typed by its own steps), or reported
            return
        declared = model.get("inputs")
        dtypes = {t["name"]: t["dtype"] for t in declared or ()}
        for tensor, ref in step.get("inputs", {}).items():
            parsed = _parse_ref(ref) if isinstance(ref, str) else None
            if parsed is None or parsed[0] != "request":
                continue
            if declared is None and model.get("backend") not in _UNTYPED_BACKENDS:
                described.add(parsed[1])
            elif declared is None or tensor in dtypes:  # an undeclared name is reported elsewhere
                consumers.setdefault(parsed[1], []).append((here + ("steps", index, "inputs", tensor), target, dtypes.get(tensor)))
    for tensor, uses in consumers.items():
        dtypes_seen = {dtype for _, _, dtype in uses if dtype is not None}
        if not dtypes_seen and tensor not in described:
            path, model_name, _ = uses[0]
            out.append(Problem(path, f"the type of request.{tensor} is unknown: the models it feeds take any tensors", f"declare `inputs` on model {model_name!r}"))
        elif len(dtypes_seen) > 1:
            out.append(Problem(uses[0][0], f"request.{tensor} feeds inputs of different dtypes ({', '.join(sorted(dtypes_seen))})", "feed each dtype from its own request tensor"))


def _reference(path: KeyPath, ref: str, steps: dict[str, int], outputs_of: dict[str, list[str] | None], out: list[Problem]) -> str | None:
    parsed = _parse_ref(ref)
    if parsed is None:
        out.append(Problem(path, f"reference {ref!r} must look like 'request.<tensor>' or '<step>.<output>'"))
        return None
    source, tensor = parsed
    if source == "request":
        return None
    if source not in steps:
        out.append(Problem(path, f"reference {ref!r}: no step named {source!r} in this pipeline", did_you_mean(source, list(steps) + ["request"])))
        return None
    outputs = outputs_of.get(source)
    if outputs is not None and tensor not in outputs:
        out.append(Problem(path, f"reference {ref!r}: step {source!r} has no output {tensor!r}", did_you_mean(tensor, outputs) or f"its outputs: {', '.join(outputs)}"))
    return source


def _declared_inputs(target: str, models: dict[str, Any]) -> list[str] | None:
    model = models.get(target)
    if model is None or model.get("inputs") is None:
        return None
    return [t["name"] for t in model["inputs"]]


def _declared_outputs(target: str, models: dict[str, Any], pipelines: dict[str, Any]) -> list[str] | None:
    if target in models:
        declared = models[target].get("outputs")
        return None if declared is None else [t["name"] for t in declared]
    if target in pipelines:
        return list(pipelines[target]["outputs"])
    return None


def _find_cycle(deps: dict[str, set[str]]) -> list[str] | None:
    """A cycle in ``deps`` (node → nodes it depends on) as a closed walk, if any."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(deps.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt in deps and state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(deps):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _pipeline_cycles(pipelines: dict[str, Any], out: list[Problem]) -> None:
    deps = {name: {s["model"] for s in p["steps"] if s["model"] in pipelines} for name, p in pipelines.items()}
    cycle = _find_cycle(deps)
    if cycle:
        out.append(Problem(("pipelines", cycle[0]), f"pipelines call each other in a cycle: {' → '.join(cycle)}", "a pipeline cannot (indirectly) run itself"))


def _files(here: KeyPath, model: dict[str, Any], base_dir: Path, out: list[Problem]) -> None:
    candidates: list[tuple[KeyPath, str]] = []
    if model.get("path"):
        candidates.append((here + ("path",), model["path"]))
    plugin = model.get("plugin") or {}
    if plugin.get("library"):
        candidates.append((here + ("plugin", "library"), plugin["library"]))
    for index, source in enumerate(plugin.get("sources") or []):
        candidates.append((here + ("plugin", "sources", index), source))
    for path, text in candidates:
        target = Path(text) if Path(text).is_absolute() else base_dir / text
        if not target.is_file():
            out.append(Problem(path, f"file not found: {text} (looked at {target})", "paths are relative to the spec file"))
