"""From a spec file to a checked tree (fast path) and to a typed :class:`Spec`.

Order (DESIGN §3): parse → interpolate ``${VAR}`` → overrides (env, then ``--set``, then
the API dict) → JSON Schema → semantic checks → (``load_spec`` only) typed pydantic model.
Every problem is collected; nothing stops at the first one unless the file cannot be parsed
or the structure is broken (semantic checks need a structurally valid tree).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import overrides as ov
from . import semantic
from .interpolate import interpolate
from .issues import KeyPath, SpecIssue
from .schema import packaged_schema, schema_at, type_of, with_defaults
from .sources import Document, ParseError, read_document
from .validator import Problem, Validator

if TYPE_CHECKING:
    from .models import Spec

_VALIDATOR: Validator | None = None


def _validator() -> Validator:
    global _VALIDATOR
    if _VALIDATOR is None:
        _VALIDATOR = Validator(packaged_schema())
    return _VALIDATOR


@dataclass(slots=True)
class CheckResult:
    """What checking one spec file found."""

    file: str
    document: Document | None = None
    data: dict[str, Any] | None = None  # after interpolation and overrides, no defaults
    effective: dict[str, Any] | None = None  # with schema defaults (None if structurally invalid)
    origins: dict[KeyPath, str] = field(default_factory=dict)  # override origin per path
    issues: list[SpecIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.issues

    def origin_of(self, path: KeyPath) -> str | None:
        """The override that set ``path`` (or one of its ancestors), if any."""
        for depth in range(len(path), -1, -1):
            found = self.origins.get(path[:depth])
            if found is not None:
                return found
        return None

    def issue(self, problem: Problem) -> SpecIssue:
        """Locates a problem: in the file, or at the override that introduced the value."""
        origin = self.origin_of(problem.path)
        line, column = self.document.locate(problem.path) if self.document else (None, None)
        hint = problem.hint
        if self.document is not None and problem.path in self.document.yaml_bool_words and problem.keyword in ("type", "enum", "pattern", "anyOf"):
            word = self.document.yaml_bool_words[problem.path]
            hint = f"YAML 1.1 reads {word} as a boolean; quote it: '{word}'"
        if origin is not None:
            return SpecIssue(problem.message, problem.path, self.file, None, None, origin, hint)
        return SpecIssue(problem.message, problem.path, self.file, line, column, None, hint)

    def sources(self) -> dict[KeyPath, str]:
        """For every leaf of the effective spec: ``default``, ``FILE:LINE``, or the override."""
        out: dict[KeyPath, str] = {}
        if self.effective is None:
            return out
        file_data = self.document.data if self.document else {}

        def walk(value: Any, path: KeyPath, in_file: Any) -> None:
            if isinstance(value, dict) and value:
                for key, item in value.items():
                    walk(item, path + (key,), in_file.get(key, _MISSING) if isinstance(in_file, dict) else _MISSING)
                return
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                for index, item in enumerate(value):
                    sub = in_file[index] if isinstance(in_file, list) and index < len(in_file) else _MISSING
                    walk(item, path + (index,), sub)
                return
            origin = self.origin_of(path)
            if origin is not None:
                out[path] = origin
            elif in_file is not _MISSING and self.document is not None:
                line, _ = self.document.locate(path)
                out[path] = f"{self.file}:{line}" if line else self.file
            else:
                out[path] = "default"

        walk(self.effective, (), file_data)
        return out


_MISSING = object()


def check_spec(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    use_env: bool = True,
    sets: Sequence[str] = (),
    overrides: Mapping[str, Any] | None = None,
    check_files: bool = False,
    text: str | None = None,
) -> CheckResult:
    """Checks one spec file and returns every problem found (never raises for spec errors).

    Args:
        path: the spec file (``.toml``, ``.yaml`` or ``.yml``).
        environ: variables for ``${VAR}`` and ``INFER_RUNTIME_*``; default ``os.environ``.
        use_env: apply ``INFER_RUNTIME_*`` overrides from ``environ``.
        sets: ``path=value`` overrides (the CLI's ``--set``), applied after the environment.
        overrides: the Python API's ``{"dotted.path": value}``, applied last.
        check_files: also check that referenced files exist (relative to the spec file).
        text: the file's content, if already read.
    """
    env = os.environ if environ is None else environ
    name = os.fspath(path)
    result = CheckResult(name)
    try:
        doc = read_document(name, text)
    except ParseError as exc:
        result.issues.append(exc.issue)
        return result
    result.document = doc
    schema = packaged_schema()

    data, interp_errors, touched = interpolate(doc.data, env)
    for where, err in interp_errors:
        result.issues.append(doc.issue(where, err.message, err.hint))
    reported: set[KeyPath] = {where for where, _ in interp_errors}
    for where in sorted(touched, key=str):
        node = schema_at(schema, where)
        if node is not None and type_of(schema, node) not in (None, "string"):
            try:
                _set(data, where, ov.coerce(_get(data, where), node, schema))
            except ov.OverrideError as exc:
                reported.add(where)
                result.issues.append(doc.issue(where, f"after interpolation: {exc.message}", exc.hint))

    layers: list[Callable[[dict[str, Any]], tuple[list[ov.Override], list[tuple[str, ov.OverrideError]]]]] = []
    if use_env:
        layers.append(lambda d: ov.env_overrides(env, d, schema))
    layers.append(lambda d: ov.set_overrides(sets, d, schema))
    layers.append(lambda d: ov.dict_overrides(overrides or {}, d, schema))
    for layer in layers:  # lowest precedence first: env < --set < API dict
        found, errors = layer(data)
        for origin, problem in errors:
            result.issues.append(SpecIssue(problem.message, problem.path, name, None, None, origin, problem.hint))
        for item in found:
            ov.apply(data, item)
            result.origins = {p: o for p, o in result.origins.items() if p[: len(item.path)] != item.path}
            result.origins[item.path] = item.origin
    result.data = data

    structural = _validator().problems(data)
    result.issues.extend(result.issue(p) for p in structural if p.path not in reported)
    effective = with_defaults(schema, data)
    broken = frozenset(p.path for p in structural)
    base_dir = Path(name).resolve().parent
    result.issues.extend(result.issue(p) for p in semantic.check(effective, base_dir, check_files, broken))
    if not structural:
        result.issues.extend(_rules_issues(effective, base_dir, name, doc))
        result.effective = effective
    result.issues.sort(key=lambda i: (i.origin is None, i.line or 0, i.column or 0))
    return result


def _rules_issues(effective: dict[str, Any], base_dir: Path, spec_file: str, doc: Any) -> list[SpecIssue]:
    """The problems of every rules file a model names by ``path`` (when it exists): located in
    the rules file, or in the spec for the model's own rules options."""
    out: list[SpecIssue] = []
    for name, model in effective.get("models", {}).items():
        if not isinstance(model, dict) or model.get("backend") != "rules" or not isinstance(model.get("path"), str):
            continue
        rules_path = base_dir / model["path"]
        if not rules_path.is_file():
            continue  # --check-files reports a missing file
        from infer_runtime.rules import check_rules_for_model

        raw = model.get("rules")
        options: dict[str, Any] = raw if isinstance(raw, dict) else {}
        out.extend(check_rules_for_model(rules_path, options, spec_file=spec_file, options_path=("models", name, "rules"), locate=doc.locate))
    return out


def _get(data: Any, path: KeyPath) -> Any:
    for key in path:
        data = data[key]
    return data


def _set(data: Any, path: KeyPath, value: Any) -> None:
    _get(data, path[:-1])[path[-1]] = value


@dataclass(frozen=True, slots=True)
class LoadedSpec:
    """A typed spec and where it came from."""

    spec: Spec
    path: Path
    check: CheckResult

    @property
    def base_dir(self) -> Path:
        """The directory relative artifact paths are resolved against."""
        return self.path.resolve().parent

    def resolve_path(self, relative: str) -> Path:
        """An artifact path from the spec, made absolute against the spec's directory."""
        candidate = Path(relative)
        return candidate if candidate.is_absolute() else (self.base_dir / candidate).resolve()


def load_spec(
    path: str | os.PathLike[str],
    *,
    overrides: Mapping[str, Any] | None = None,
    sets: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    use_env: bool = True,
    check_files: bool = False,
) -> LoadedSpec:
    """Loads, overrides and validates a spec into a typed :class:`Spec`.

    Missing artifact files are not spec errors here (``check_files=False``): the runtime
    reports them per model when it loads, so ``exit_on_error = false`` can keep the other
    models serving. ``infer-runtime validate --check-files`` checks them up front.

    Raises:
        SpecError: with every problem found (``.issues``).
    """
    from pydantic import ValidationError

    from ..errors import SpecError
    from .models import Spec

    result = check_spec(path, environ=environ, use_env=use_env, sets=sets, overrides=overrides, check_files=check_files)
    if not result.ok:
        raise SpecError(result.issues)
    try:
        spec = Spec.model_validate(result.effective)
    except ValidationError as exc:  # the schema and the models disagree: report, don't crash
        issues = [result.issue(Problem(tuple(e["loc"]), e["msg"])) for e in exc.errors()]
        raise SpecError(issues) from None
    return LoadedSpec(spec, Path(path), result)
