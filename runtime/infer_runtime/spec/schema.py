"""The JSON Schema of the spec: generated from the pydantic models, shipped as a file.

``generate_schema()`` imports pydantic (slow); everything else here works on the packaged
JSON file (``infer-runtime.schema.json`` beside this module), so ``validate`` stays fast.
The committed ``schemas/infer-runtime.schema.json`` and the packaged copy are both checked
against ``generate_schema()`` by the test suite.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from .issues import KeyPath

SCHEMA_ID = "https://infer-runtime.dev/schemas/v1/infer-runtime.schema.json"
PACKAGED_SCHEMA = Path(__file__).with_name("infer-runtime.schema.json")

Schema = dict[str, Any]


def generate_schema() -> Schema:
    """The spec schema, freshly generated from :class:`infer_runtime.spec.models.Spec`."""
    from .models import NAME_PATTERN, Spec

    raw = Spec.model_json_schema(mode="validation")
    schema = _tidy(raw, NAME_PATTERN)
    out: Schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "infer-runtime spec",
        "description": (
            "One infer-runtime: models, pipelines, registry, monitoring and server. "
            "TOML files opt in with `#:schema <path>`, YAML files with "
            "`# yaml-language-server: $schema=<path>`."
        ),
    }
    out.update({k: v for k, v in schema.items() if k not in ("title", "description")})
    return out


def _tidy(node: Any, name_pattern: str) -> Any:
    """Drops generated titles; turns name-keyed maps into additionalProperties+propertyNames."""
    if isinstance(node, list):
        return [_tidy(item, name_pattern) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in ("properties", "$defs", "patternProperties"):
            out[key] = {name: _tidy(sub, name_pattern) for name, sub in value.items()}
        elif key == "default":
            out[key] = value
        else:
            out[key] = _tidy(value, name_pattern)
    patterned = out.pop("patternProperties", None)
    if patterned is not None:
        ((pattern, item_schema),) = patterned.items()
        names = dict(out.get("propertyNames", {}))
        names["pattern"] = pattern
        out["propertyNames"] = names
        out["additionalProperties"] = item_schema
    return out


def render_schema(schema: Schema) -> str:
    """The schema as committed: 2-space JSON, key order kept, trailing newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


@functools.lru_cache(maxsize=1)
def _packaged() -> Schema:
    return json.loads(PACKAGED_SCHEMA.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def load_schema() -> Schema:
    """The packaged schema (a deep copy; callers may not mutate the cache)."""
    return copy.deepcopy(_packaged())


def packaged_schema() -> Schema:
    """The packaged schema, shared and read-only by convention (no copy)."""
    return _packaged()


def resolve(schema: Schema, node: Schema) -> Schema:
    """Follows a local ``$ref``."""
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported (got {ref})")
        target: Any = schema
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


def non_null(schema: Schema, node: Schema) -> Schema:
    """For ``anyOf: [X, {type: null}]`` (optional fields) returns X; else the node itself."""
    node = resolve(schema, node)
    options = node.get("anyOf")
    if options:
        real = [resolve(schema, o) for o in options if o.get("type") != "null"]
        if len(real) == 1:
            merged = dict(real[0])
            for key in ("description", "default"):
                if key in node:
                    merged.setdefault(key, node[key])
            return merged
    return node


def allows_null(schema: Schema, node: Schema) -> bool:
    """Whether ``null`` is a valid value of ``node``."""
    node = resolve(schema, node)
    return node.get("type") == "null" or any(o.get("type") == "null" for o in node.get("anyOf", ()))


def child(schema: Schema, node: Schema, key: str | int) -> Schema | None:
    """The subschema for ``key`` inside ``node`` (object property, map entry or list item)."""
    node = non_null(schema, node)
    if isinstance(key, int):
        items = node.get("items")
        return resolve(schema, items) if isinstance(items, dict) else None
    props = node.get("properties", {})
    if key in props:
        return props[key]  # type: ignore[no-any-return]
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        return extra
    if extra is True:
        return {}
    return None


def schema_at(schema: Schema, path: KeyPath) -> Schema | None:
    """The subschema at ``path``, or None when the path is not part of the language."""
    node: Schema | None = schema
    for key in path:
        if node is None:
            return None
        node = child(schema, node, key)
    return node


def type_of(schema: Schema, node: Schema) -> str | None:
    """The JSON type a (non-null) value at ``node`` must have, if it has exactly one."""
    node = non_null(schema, node)
    kind = node.get("type")
    if isinstance(kind, str):
        return kind
    if "enum" in node or "const" in node:
        values = node.get("enum", [node.get("const")])
        kinds = {json_type(v) for v in values}
        return kinds.pop() if len(kinds) == 1 else None
    return None


def json_type(value: Any) -> str:
    """JSON type name of a Python value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def with_defaults(schema: Schema, data: Any, node: Schema | None = None) -> Any:
    """A copy of ``data`` with every absent property that has a schema default filled in."""
    node = non_null(schema, schema if node is None else node)
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        props = node.get("properties", {})
        for key, sub in props.items():
            if key in data:
                continue
            sub_resolved = non_null(schema, sub)
            default = sub["default"] if "default" in sub else sub_resolved.get("default")
            if default is not None:  # a null default means "absent" (optional section)
                out[key] = with_defaults(schema, copy.deepcopy(default), sub_resolved)
        for key, value in data.items():
            sub = child(schema, node, key)
            out[key] = with_defaults(schema, value, sub) if sub is not None else copy.deepcopy(value)
        ordered = [k for k in props if k in out] + [k for k in out if k not in props]
        return {k: out[k] for k in ordered}
    if isinstance(data, list):
        items = node.get("items")
        return [with_defaults(schema, v, items) if isinstance(items, dict) else copy.deepcopy(v) for v in data]
    return data
