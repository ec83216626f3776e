"""The JSON Schema of rules files: generated from the pydantic models, shipped as a file.

As for the spec schema, ``generate_rules_schema()`` imports pydantic; validation reads the
packaged copy (``infer-runtime-rules.schema.json`` beside this module) so ``validate`` stays
fast. The committed ``schemas/infer-runtime-rules.schema.json`` and the packaged copy are
checked against ``generate_rules_schema()`` by tests/test_rules_language.py.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from ..spec.schema import Schema, _tidy

RULES_SCHEMA_ID = "https://infer-runtime.dev/schemas/v1/infer-runtime-rules.schema.json"
PACKAGED_RULES_SCHEMA = Path(__file__).with_name("infer-runtime-rules.schema.json")


def generate_rules_schema() -> Schema:
    """The rules schema, freshly generated from :class:`infer_runtime.rules.models.RulesFile`."""
    from .models import RulesFile

    raw = RulesFile.model_json_schema(mode="validation")
    schema = _tidy(raw, "")
    out: Schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": RULES_SCHEMA_ID,
        "title": "infer-runtime rules",
        "description": (
            "A rules file for the `rules` backend: facts asserted at the start of every row and "
            "forward-chaining rules (DESIGN §10). TOML files opt in with `#:schema <path>`, YAML "
            "files with `# yaml-language-server: $schema=<path>`."
        ),
    }
    out.update({k: v for k, v in schema.items() if k not in ("title", "description")})
    return out


@functools.lru_cache(maxsize=1)
def packaged_rules_schema() -> Schema:
    """The packaged rules schema, shared and read-only by convention (no copy)."""
    return json.loads(PACKAGED_RULES_SCHEMA.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def rules_schema_node(name: str) -> dict[str, Any]:
    """One ``$defs`` entry of the packaged schema."""
    return packaged_rules_schema()["$defs"][name]  # type: ignore[no-any-return]
