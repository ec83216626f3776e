"""Per-deployment overrides: ``INFER_RUNTIME_*`` variables, ``--set path=value`` flags and
the Python API's ``overrides={...}`` dict, all converted strictly by the schema type found
at the addressed path.

Rules (DESIGN §3): ``__`` separates path segments; a segment matches a key when both
normalise alike (upper-case, runs of non-alphanumerics → ``_``); list items are addressed
by index or, for lists of named tables (inputs, outputs, steps), by name; overrides address
keys that exist or fields of the schema, and never invent a model or pipeline.
"""

from __future__ import annotations

import copy
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .issues import KeyPath
from .schema import Schema, allows_null, child, non_null, schema_at, type_of
from .validator import did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV_PREFIX = "INFER_RUNTIME_"
RESERVED_ENV = frozenset({"INFER_RUNTIME_SPEC", "INFER_RUNTIME_PLUGIN_CACHE"})
"""Prefixed variables that are not spec paths (``INFER_RUNTIME_SPEC``: default spec file;
``INFER_RUNTIME_PLUGIN_CACHE``: where compiled plugins are cached)."""

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_INT = re.compile(r"^[+-]?[0-9]+$")
_NUMBER = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")


class OverrideError(Exception):
    """An override cannot be applied; ``message`` and ``hint`` say why and how to fix it."""

    def __init__(self, message: str, hint: str | None = None, path: KeyPath = (), *, unknown_name: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.path = path
        self.unknown_name = unknown_name  # a segment named no field or item: a variable-name hint helps


@dataclass(frozen=True, slots=True)
class Override:
    """One leaf (or subtree) replaced by a deployment, and who asked for it."""

    path: KeyPath
    value: Any
    origin: str  # "env INFER_RUNTIME_X", "--set a.b", "overrides['a.b']"


def normalise(key: str) -> str:
    """``resnet-50`` → ``RESNET_50``: how env segments and keys are compared."""
    return re.sub(r"[^A-Z0-9]+", "_", key.upper()).strip("_")


# -- conversion -------------------------------------------------------------------------


def coerce(text: str, node: Schema | None, schema: Schema) -> Any:
    """Converts override text to the schema type at ``node``, strictly."""
    if node is None:
        return text
    if text.strip() == "null" and allows_null(schema, node):
        return None
    kind = type_of(schema, node)
    if kind == "string":
        return text
    if kind == "integer":
        if not _INT.match(text.strip()):
            raise OverrideError(f"expected an integer, got {text!r}", "write a base-10 integer such as 8")
        return int(text)
    if kind == "number":
        if not _NUMBER.match(text.strip()):
            raise OverrideError(f"expected a number, got {text!r}", "write a decimal number such as 0.5")
        value = float(text)
        if not math.isfinite(value):
            raise OverrideError(f"expected a finite number, got {text!r}")
        return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value
    if kind == "boolean":
        word = text.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise OverrideError(f"expected a boolean, got {text!r}", "use true/false, 1/0, yes/no or on/off")
    if kind in ("array", "object"):
        value = _literal(text)
        wanted = list if kind == "array" else dict
        if not isinstance(value, wanted):
            example = '[16, 32]' if kind == "array" else '{"key": "value"}'
            raise OverrideError(f"expected a {'list' if kind == 'array' else 'table'} as JSON or TOML, got {text!r}", f"for example {example}")
        return value
    try:  # free-form (config tables): JSON if it parses, else the text itself
        return json.loads(text)
    except ValueError:
        return text


def _coerce_at(text: str, path: KeyPath, schema: Schema) -> Any:
    try:
        return coerce(text, schema_at(schema, path), schema)
    except OverrideError as exc:
        raise OverrideError(exc.message, exc.hint, path) from None


def _literal(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return tomllib.loads("v = " + text)["v"]
    except tomllib.TOMLDecodeError:
        return None


# -- addressing -------------------------------------------------------------------------


def _named_items(items: list[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for index, item in enumerate(items):
        if isinstance(item, dict):
            label = item.get("name") or item.get("model")
            if isinstance(label, str):
                out.setdefault(normalise(label), index)
    return out


def resolve_env_path(segments: Sequence[str], data: Any, schema: Schema) -> KeyPath:
    """Env segments → a concrete key path, matching normalised names against the document
    and the schema. Raises :class:`OverrideError` for segments that match nothing."""
    path: list[str | int] = []
    node: Schema | None = schema
    here: Any = data
    for seg in segments:
        if not seg:
            raise OverrideError("empty path segment (three or more underscores in a row?)", path=tuple(path))
        if node is None:
            raise OverrideError("this is a value, not a table: nothing below it to address", path=tuple(path))
        resolved = non_null(schema, node)
        if type_of(schema, resolved) == "array" or "items" in resolved:
            items = here if isinstance(here, list) else []
            if seg.isdigit():
                index = int(seg)
                if index >= len(items):
                    raise OverrideError(f"the list has {len(items)} item(s); index {index} does not exist", "overrides never append to lists; set the whole list instead", tuple(path))
            else:
                named = _named_items(items)
                if normalise(seg) not in named:
                    raise OverrideError(f"no item named {seg.lower()!r}", did_you_mean(normalise(seg), list(named)), tuple(path), unknown_name=True)
                index = named[normalise(seg)]
            path.append(index)
            here = items[index]
            node = child(schema, resolved, index)
            continue
        present = list(here) if isinstance(here, dict) else []
        props = list(resolved.get("properties", {}))
        is_map = not props and isinstance(resolved.get("additionalProperties"), dict)
        candidates = present if is_map else list(dict.fromkeys(props + present))
        matches = [k for k in candidates if normalise(k) == normalise(seg)]
        if len(matches) > 1:
            raise OverrideError(f"{seg!r} matches several keys: {', '.join(repr(m) for m in matches)}", "rename one of them or use --set with the exact key", tuple(path))
        if not matches:
            if is_map:
                maps: dict[tuple[str | int, ...], str] = {("models",): "model", ("pipelines",): "pipeline"}
                what = maps.get(tuple(path), "entry")
                close = did_you_mean(normalise(seg), [normalise(k) for k in present])
                listed = f"declared: {', '.join(present)}; " if present else ""
                raise OverrideError(f"no {what} named like {seg.lower()!r}", close or f"{listed}overrides never add entries, declare it in the spec file", tuple(path))
            raise OverrideError(f"no field {seg.lower()!r}", did_you_mean(seg.lower(), props), tuple(path), unknown_name=True)
        key = matches[0]
        path.append(key)
        here = here.get(key) if isinstance(here, dict) else None
        node = child(schema, resolved, key)
    return tuple(path)


_SET_TOKEN = re.compile(r"""\.?(?:([A-Za-z0-9_-]+)|\[(\d+)\]|\["([^"]*)"\]|\['([^']*)'\])""")


def parse_key_path(text: str) -> KeyPath:
    """``models["resnet-50"].inputs[0].shape`` → ``("models", "resnet-50", "inputs", 0, "shape")``."""
    path: list[str | int] = []
    pos = 0
    while pos < len(text):
        match = _SET_TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise OverrideError(f"cannot read key path {text!r} at {text[pos:]!r}", 'use dots and brackets: models.scorer.batching.max_batch_size or models["resnet-50"].instances')
        bare, index, dq, sq = match.groups()
        path.append(int(index) if index is not None else (bare if bare is not None else (dq if dq is not None else sq)))
        pos = match.end()
    if not path:
        raise OverrideError("empty key path")
    return tuple(path)


def check_exact_path(path: KeyPath, data: Any, schema: Schema) -> None:
    """Checks an exact key path (``--set``, the API dict) against the document and schema."""
    node: Schema | None = schema
    here: Any = data
    for depth, key in enumerate(path):
        prefix = path[:depth]
        if node is None:
            raise OverrideError("this is a value, not a table: nothing below it to address", path=prefix)
        resolved = non_null(schema, node)
        if isinstance(key, int):
            if not isinstance(here, list) or key >= len(here):
                raise OverrideError(f"the list has no item {key}", "overrides never append to lists; set the whole list instead", prefix)
            here, node = here[key], child(schema, resolved, key)
            continue
        props = resolved.get("properties", {})
        is_map = not props and isinstance(resolved.get("additionalProperties"), dict)
        present = here if isinstance(here, dict) else {}
        if is_map and key not in present:
            raise OverrideError(f"no entry {key!r}", did_you_mean(key, list(present)) or "overrides never add new entries; declare it in the spec file", prefix)
        if not is_map and key not in props and resolved.get("additionalProperties") is not True:
            raise OverrideError(f"no field {key!r}", did_you_mean(key, list(props)), prefix)
        here, node = present.get(key), child(schema, resolved, key)


# -- collecting -------------------------------------------------------------------------


def env_overrides(environ: Mapping[str, str], data: Any, schema: Schema) -> tuple[list[Override], list[tuple[str, OverrideError]]]:
    """Overrides from ``INFER_RUNTIME_*`` variables, plus an error per unusable variable."""
    found: list[Override] = []
    errors: list[tuple[str, OverrideError]] = []
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX) or name.upper() in RESERVED_ENV:
            continue
        origin = f"env {name}"
        try:
            path = resolve_env_path(name[len(ENV_PREFIX):].split("__"), data, schema)
            found.append(Override(path, _coerce_at(environ[name], path, schema), origin))
        except OverrideError as exc:
            if exc.unknown_name or exc.hint is None:
                exc.hint = did_you_mean(name.upper(), env_names(data, schema)) or exc.hint
            errors.append((origin, exc))
    return found, errors


def set_overrides(assignments: Sequence[str], data: Any, schema: Schema) -> tuple[list[Override], list[tuple[str, OverrideError]]]:
    """Overrides from ``--set path=value`` flags (value text converted by schema type)."""
    found: list[Override] = []
    errors: list[tuple[str, OverrideError]] = []
    for text in assignments:
        origin = f"--set {text.split('=', 1)[0]}"
        try:
            if "=" not in text:
                raise OverrideError(f"--set needs path=value (got {text!r})", "for example --set models.scorer.instances=2")
            key, value = text.split("=", 1)
            path = parse_key_path(key.strip())
            check_exact_path(path, data, schema)
            found.append(Override(path, _coerce_at(value, path, schema), origin))
        except OverrideError as exc:
            errors.append((origin, exc))
    return found, errors


def dict_overrides(overrides: Mapping[str, Any], data: Any, schema: Schema) -> tuple[list[Override], list[tuple[str, OverrideError]]]:
    """Overrides from the Python API: ``{"models.digits.instances": 2}``; string values for
    non-string fields are converted like ``--set`` values."""
    found: list[Override] = []
    errors: list[tuple[str, OverrideError]] = []
    for key, value in overrides.items():
        origin = f"overrides[{key!r}]"
        try:
            path = parse_key_path(key)
            check_exact_path(path, data, schema)
            if isinstance(value, str):
                value = _coerce_at(value, path, schema)
            found.append(Override(path, copy.deepcopy(value), origin))
        except OverrideError as exc:
            errors.append((origin, exc))
    return found, errors


def apply(data: dict[str, Any], override: Override) -> None:
    """Sets one override in place, creating intermediate tables for schema fields."""
    here: Any = data
    for key, nxt in zip(override.path, override.path[1:]):
        if isinstance(key, int):
            here = here[key]
            continue
        if not isinstance(here.get(key), (dict, list)):
            here[key] = [] if isinstance(nxt, int) else {}
        here = here[key]
    last = override.path[-1]
    here[last] = override.value


def env_names(data: Any, schema: Schema, max_depth: int = 6) -> list[str]:
    """Every variable name that addresses a leaf of the document or schema (for hints)."""
    names: list[str] = []

    def walk(node: Schema | None, here: Any, segs: list[str]) -> None:
        if node is None or len(segs) > max_depth:
            return
        resolved = non_null(schema, node)
        props = resolved.get("properties", {})
        keys = list(props) + ([k for k in here if k not in props] if isinstance(here, dict) else [])
        if not keys:
            if segs:
                names.append(ENV_PREFIX + "__".join(segs))
            return
        for key in keys:
            walk(child(schema, resolved, key), here.get(key) if isinstance(here, dict) else None, segs + [normalise(key)])

    walk(schema, data, [])
    return names
