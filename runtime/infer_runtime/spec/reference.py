"""Renders docs/spec-reference.md (every field, type, default, description) from the schema.

The committed file is checked against this renderer by the test suite, so the reference
can never drift from the models.
"""

from __future__ import annotations

import json
from typing import Any

from .schema import Schema, non_null, resolve


def _type(schema: Schema, node: Schema) -> str:
    node = non_null(schema, node)
    if "enum" in node:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    kind = str(node.get("type", "any"))
    if kind == "array":
        item = resolve(schema, node.get("items", {}))
        return "list of tables (below)" if item.get("properties") else f"list of {_type(schema, item)}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        item = resolve(schema, node["additionalProperties"])
        return "table: name → table (below)" if item.get("properties") else f"table: key → {_type(schema, item)}"
    if kind == "object" and node.get("properties"):
        return "table (below)"
    if kind == "object" and node.get("additionalProperties") is True:
        return "table (free-form)"
    bounds = []
    for key, sign in (("minimum", "≥"), ("maximum", "≤"), ("minLength", "length ≥"), ("minItems", "items ≥"), ("minProperties", "entries ≥")):
        if key in node:
            bounds.append(f"{sign} {node[key]}")
    return kind + (f" ({', '.join(bounds)})" if bounds else "")


def _default(prop: Schema) -> str:
    if "default" not in prop:
        return "**required**"
    value = prop["default"]
    if value is None:
        return "absent"
    if isinstance(value, dict) and value:
        return "see below"
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def render_reference(schema: Schema) -> str:
    """The markdown field reference of the spec language."""
    lines = [
        "# Spec field reference",
        "",
        "<!-- Generated from the pydantic models by `python -m infer_runtime.spec.reference`; do not edit. -->",
        "",
        "Every field of the spec language, its type, default and meaning. The guide is",
        "[spec.md](spec.md); the machine-readable form is `schemas/infer-runtime.schema.json`.",
        "",
    ]

    def section(title: str, node: Schema) -> None:
        node = non_null(schema, node)
        props: dict[str, Any] = node.get("properties", {})
        if not props:
            return
        lines.extend([f"## `{title}`", ""])
        if node.get("description"):
            lines.extend([node["description"], ""])
        lines.extend(["| key | type | default | description |", "|---|---|---|---|"])
        nested: list[tuple[str, Schema]] = []
        for name, prop in props.items():
            target = non_null(schema, prop)
            desc = (prop.get("description") or target.get("description") or "").replace("|", "\\|")
            lines.append(f"| `{name}` | {_type(schema, prop)} | {_default(prop)} | {desc} |")
            if target.get("properties"):
                nested.append((f"{title}.{name}" if title != "(top level)" else name, target))
            elif isinstance(target.get("additionalProperties"), dict) and resolve(schema, target["additionalProperties"]).get("properties"):
                nested.append((f"{name}.<name>" if title == "(top level)" else f"{title}.{name}.<name>", resolve(schema, target["additionalProperties"])))
            elif target.get("type") == "array" and resolve(schema, target.get("items", {})).get("properties"):
                nested.append((f"{title}.{name}[]", resolve(schema, target["items"])))
        lines.append("")
        for sub_title, sub in nested:
            section(sub_title, sub)

    section("(top level)", schema)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":  # pragma: no cover
    import sys
    from pathlib import Path

    from .schema import generate_schema

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/spec-reference.md")
    target.write_text(render_reference(generate_schema()), encoding="utf-8")
    print(f"wrote {target}")
