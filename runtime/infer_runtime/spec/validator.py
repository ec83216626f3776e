"""A JSON Schema validator for the keyword subset our spec schema uses, with messages
written for people ("unknown key 'max_batch' (did you mean 'max_batch_size'?)").

Why our own: the ``validate`` hook must start in well under 0.3 s, and the general
``jsonschema`` package costs ~0.1 s to import. The subset is exactly what the generated
schema contains (draft-07 compatible): ``$ref`` (local), ``type``, ``enum``, ``const``,
``anyOf``, ``properties``, ``required``, ``additionalProperties``, ``propertyNames``,
``minProperties``, ``items``, ``minItems``, ``maxItems``, ``minimum``, ``maximum``,
``exclusiveMinimum``, ``exclusiveMaximum``, ``minLength``, ``maxLength``, ``pattern``.
Unknown keywords are refused when the validator is built, so the schema cannot silently
outgrow it; the test suite checks our verdicts against ``check-jsonschema``.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from .issues import KeyPath
from .schema import Schema, json_type, resolve

SUPPORTED = frozenset({
    "$ref", "$defs", "$schema", "$id", "title", "description", "default", "examples",
    "type", "enum", "const", "anyOf", "properties", "required", "additionalProperties",
    "propertyNames", "minProperties", "items", "minItems", "maxItems", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern",
})


@dataclass(frozen=True, slots=True)
class Problem:
    """A structural problem: where, what, and (maybe) how to fix it."""

    path: KeyPath
    message: str
    hint: str | None = None
    keyword: str = ""


def did_you_mean(word: str, candidates: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """``"did you mean 'x'?"`` for the closest candidate, if one is close enough."""
    close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def show(value: Any) -> str:
    """A short rendering of a value for messages."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return json_type(value) == kind


_TYPE_WORDS = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
               "object": "a table", "array": "a list", "null": "null"}


def _json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: ``true`` is not ``1``, ``1.0`` is ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b and (json_type(a) == json_type(b) or {json_type(a), json_type(b)} <= {"integer", "number"})


def _quoted_scalar(text: str, kind: str) -> bool:
    """Whether a string would have been valid as ``kind`` without its quotes."""
    word = text.strip()
    if kind == "integer":
        return re.fullmatch(r"[+-]?[0-9]+", word) is not None
    if kind == "number":
        return re.fullmatch(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", word) is not None
    return kind == "boolean" and word in ("true", "false")


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class Validator:
    """Validates instances against one schema document."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        unknown = _keywords(schema) - SUPPORTED
        if unknown:
            raise ValueError(f"schema uses keywords the spec validator does not implement: {sorted(unknown)}")

    def problems(self, instance: Any) -> list[Problem]:
        """Every structural problem of ``instance``, in document order."""
        out: list[Problem] = []
        self._check(instance, self.schema, (), out)
        return out

    def is_valid(self, instance: Any, node: Schema) -> bool:
        """Whether ``instance`` satisfies ``node``."""
        sink: list[Problem] = []
        self._check(instance, node, (), sink)
        return not sink

    # -- the walk ----------------------------------------------------------------------
    def _check(self, value: Any, node: Schema, path: KeyPath, out: list[Problem]) -> None:
        node = resolve(self.schema, node)
        if "anyOf" in node:
            self._any_of(value, node, path, out)
        kind = node.get("type")
        if kind is not None and not _is_type(value, kind):
            hint = "remove the quotes" if isinstance(value, str) and _quoted_scalar(value, kind) else None
            out.append(Problem(path, f"expected {_TYPE_WORDS.get(kind, kind)}, got {json_type(value)} {show(value)}", hint, "type"))
            return
        if "const" in node and not _json_equal(value, node["const"]):
            out.append(Problem(path, f"must be {show(node['const'])} (got {show(value)})", keyword="const"))
            return
        if "enum" in node and not any(_json_equal(value, choice) for choice in node["enum"]):
            choices = ", ".join(show(v) for v in node["enum"])
            hint = did_you_mean(value, [v for v in node["enum"] if isinstance(v, str)]) if isinstance(value, str) else None
            out.append(Problem(path, f"must be one of {choices} (got {show(value)})", hint, "enum"))
            return
        if isinstance(value, dict):
            self._object(value, node, path, out)
        elif isinstance(value, list):
            self._array(value, node, path, out)
        elif isinstance(value, str):
            self._string(value, node, path, out)
        elif _is_type(value, "number"):
            self._number(value, node, path, out)

    def _any_of(self, value: Any, node: Schema, path: KeyPath, out: list[Problem]) -> None:
        options = [resolve(self.schema, o) for o in node["anyOf"]]
        if any(self.is_valid(value, o) for o in options):
            return
        typed = [o for o in options if "type" not in o or _is_type(value, o["type"])]
        if len(typed) == 1:
            self._check(value, typed[0], path, out)
            return
        kinds = [o["type"] for o in options if "type" in o and o["type"] != "null"]
        out.append(Problem(path, f"expected {' or '.join(_TYPE_WORDS.get(k, k) for k in kinds)}, got {json_type(value)} {show(value)}", keyword="anyOf"))

    def _object(self, value: dict[str, Any], node: Schema, path: KeyPath, out: list[Problem]) -> None:
        props: dict[str, Any] = node.get("properties", {})
        for key in node.get("required", ()):
            if key not in value:
                out.append(Problem(path, f"missing required key {key!r}", self._add_hint(key, props.get(key, {})), "required"))
        if len(value) < node.get("minProperties", 0):
            n = node["minProperties"]
            out.append(Problem(path, f"must have at least {n} entr{'y' if n == 1 else 'ies'}", keyword="minProperties"))
        names = node.get("propertyNames")
        extra = node.get("additionalProperties", True)
        for key, item in value.items():
            if names is not None:
                out.extend(self._name_problems(key, names, path))
            if key in props:
                self._check(item, props[key], path + (key,), out)
            elif extra is False:
                hint = did_you_mean(key, list(props)) or f"allowed keys: {', '.join(props)}"
                out.append(Problem(path + (key,), f"unknown key {key!r}", hint, "additionalProperties"))
            elif isinstance(extra, dict):
                self._check(item, extra, path + (key,), out)

    def _add_hint(self, key: str, node: Schema) -> str | None:
        sub = resolve(self.schema, node)
        if "enum" in sub:
            return f"add {key} = one of {', '.join(show(v) for v in sub['enum'])}"
        desc = node.get("description") or sub.get("description")
        return f"add {key} — {desc[0].lower()}{desc[1:]}" if desc else f"add {key}"

    def _name_problems(self, key: str, names: Schema, path: KeyPath) -> list[Problem]:
        pattern = names.get("pattern")
        if pattern is not None and not _regex(pattern).search(key):
            suggestion = re.sub(r"[^a-z0-9_-]", "-", key.lower()).lstrip("_-") or "name"
            return [Problem(path + (key,), f"invalid name {key!r}: names use lower-case letters, digits, '_' and '-', starting with a letter or digit",
                            f"rename it, e.g. {suggestion!r}", "propertyNames")]
        if len(key) > names.get("maxLength", len(key)):
            return [Problem(path + (key,), f"name longer than {names['maxLength']} characters", keyword="propertyNames")]
        return []

    def _array(self, value: list[Any], node: Schema, path: KeyPath, out: list[Problem]) -> None:
        if len(value) < node.get("minItems", 0):
            n = node["minItems"]
            out.append(Problem(path, f"must have at least {n} item{'s' if n != 1 else ''} (got {len(value)})", keyword="minItems"))
        if "maxItems" in node and len(value) > node["maxItems"]:
            out.append(Problem(path, f"must have at most {node['maxItems']} items (got {len(value)})", keyword="maxItems"))
        items = node.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                self._check(item, items, path + (index,), out)

    def _string(self, value: str, node: Schema, path: KeyPath, out: list[Problem]) -> None:
        if len(value) < node.get("minLength", 0):
            out.append(Problem(path, "must not be empty" if node["minLength"] == 1 else f"must be at least {node['minLength']} characters", keyword="minLength"))
        if "maxLength" in node and len(value) > node["maxLength"]:
            out.append(Problem(path, f"must be at most {node['maxLength']} characters", keyword="maxLength"))
        pattern = node.get("pattern")
        if pattern is not None and not _regex(pattern).search(value):
            examples = node.get("examples")
            hint = f"for example {show(examples[0])}" if examples else None
            out.append(Problem(path, f"{show(value)} does not match the pattern {pattern}", hint, "pattern"))

    def _number(self, value: float, node: Schema, path: KeyPath, out: list[Problem]) -> None:
        if "minimum" in node and value < node["minimum"]:
            out.append(Problem(path, f"must be ≥ {node['minimum']} (got {show(value)})", keyword="minimum"))
        if "maximum" in node and value > node["maximum"]:
            out.append(Problem(path, f"must be ≤ {node['maximum']} (got {show(value)})", keyword="maximum"))
        if "exclusiveMinimum" in node and value <= node["exclusiveMinimum"]:
            out.append(Problem(path, f"must be > {node['exclusiveMinimum']} (got {show(value)})", keyword="exclusiveMinimum"))
        if "exclusiveMaximum" in node and value >= node["exclusiveMaximum"]:
            out.append(Problem(path, f"must be < {node['exclusiveMaximum']} (got {show(value)})", keyword="exclusiveMaximum"))


def _keywords(node: Any, inside_values: bool = False) -> set[str]:
    """All keywords used anywhere in a schema (skipping names under properties/$defs)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if not inside_values:
                found.add(key)
            if key in ("properties", "$defs"):
                for sub in value.values():
                    found |= _keywords(sub)
            elif key in ("default", "examples", "enum", "const", "description", "title"):
                continue
            else:
                found |= _keywords(value)
    elif isinstance(node, list):
        for item in node:
            found |= _keywords(item)
    return found
