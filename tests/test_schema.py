"""The JSON Schema: generated from the models, committed, complete, and in agreement
with the pydantic models and with independent validators."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infer_runtime.spec.models import Spec
from infer_runtime.spec.schema import (
    PACKAGED_SCHEMA,
    generate_schema,
    render_schema,
    resolve,
    with_defaults,
)
from infer_runtime.spec.validator import SUPPORTED, Validator

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "schemas" / "infer-runtime.schema.json"
DRAFT7_UNSAFE = {"prefixItems", "unevaluatedProperties", "dependentRequired", "dependentSchemas", "$dynamicRef", "$anchor", "deprecated"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return generate_schema()


def test_committed_schema_is_current(schema: dict[str, Any]) -> None:
    expected = render_schema(schema)
    assert COMMITTED.read_text(encoding="utf-8") == expected, "run: infer-runtime schema -o schemas/infer-runtime.schema.json"


def test_packaged_schema_is_current(schema: dict[str, Any]) -> None:
    expected = render_schema(schema)
    assert PACKAGED_SCHEMA.read_text(encoding="utf-8") == expected, f"run: infer-runtime schema -o {PACKAGED_SCHEMA}"


def test_schema_header(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("https://") and "/v1/" in schema["$id"]


def _objects(node: Any, path: str = "#"):  # type: ignore[no-untyped-def]
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield path, node
        for key, value in node.items():
            if key in ("default", "examples", "enum", "const"):
                continue
            yield from _objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _objects(item, f"{path}/{index}")


FREE_FORM = {"#/$defs/PythonOptions/properties/config", "#/$defs/PluginOptions/properties/config"}


def test_every_object_is_closed(schema: dict[str, Any]) -> None:
    for path, node in _objects(schema):
        if path in FREE_FORM:
            assert node.get("additionalProperties") is True, path  # documented free-form tables
            continue
        assert "additionalProperties" in node, path
        if "properties" in node:
            assert node["additionalProperties"] is False, path


def test_every_field_has_description_and_optional_fields_a_default(schema: dict[str, Any]) -> None:
    for path, node in _objects(schema):
        required = set(node.get("required", ()))
        for name, prop in node.get("properties", {}).items():
            target = resolve(schema, prop)
            assert prop.get("description") or target.get("description"), f"{path}.{name} has no description"
            if name not in required:
                assert "default" in prop, f"{path}.{name} is optional but has no default"


def test_schema_uses_only_draft7_compatible_keywords(schema: dict[str, Any]) -> None:
    text = json.dumps(schema)
    for keyword in DRAFT7_UNSAFE:
        assert f'"{keyword}"' not in text
    Validator(schema)  # raises if the schema outgrew the in-house validator
    assert "anyOf" in SUPPORTED


def test_schema_defaults_equal_model_defaults(schema: dict[str, Any]) -> None:
    minimal = {"models": {"a": {"backend": "identity", "batching": {}, "onnxruntime": {}}}}
    via_schema = with_defaults(schema, minimal)
    via_models = Spec.model_validate(minimal).model_dump(exclude_none=True)
    assert via_schema == via_models


def test_cli_schema_output_equals_generated(tmp_path: Path, schema: dict[str, Any]) -> None:
    from infer_runtime.cli import main

    out = tmp_path / "s.json"
    assert main(["schema", "--output", str(out)]) == 0
    assert json.loads(out.read_text()) == schema


def test_schema_is_valid_2020_12_and_draft7(schema: dict[str, Any]) -> None:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema)
    draft7 = dict(schema, **{"$schema": "http://json-schema.org/draft-07/schema#"})
    draft7["definitions"] = draft7.pop("$defs")
    jsonschema.Draft7Validator.check_schema(json.loads(json.dumps(draft7).replace("#/$defs/", "#/definitions/")))


def test_field_reference_doc_is_current(schema: dict[str, Any]) -> None:
    from infer_runtime.spec.reference import render_reference

    committed = (ROOT / "docs" / "spec-reference.md").read_text(encoding="utf-8")
    assert committed == render_reference(schema), "run: python -m infer_runtime.spec.reference"
