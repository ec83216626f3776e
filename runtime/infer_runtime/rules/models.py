"""The rules language as pydantic models: the single source of truth of its structure.

``schemas/infer-runtime-rules.schema.json`` is generated from :class:`RulesFile` (see
:mod:`infer_runtime.rules.schema`). What a schema cannot say (variables bound before use,
guard syntax, retract targets, duplicate names) is checked by :mod:`infer_runtime.rules.semantic`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

RULE_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$"
"""Rule names appear comma-separated in ``_fired``: letters, digits, ``_ . : -``."""

VARIABLE_PATTERN = r"^\?[A-Za-z_][A-Za-z0-9_]*$"

Value = Annotated[str | float, Field(description="A string or a number (numbers are 64-bit floats).")]
Pattern = Annotated[
    list[Value],
    Field(min_length=1, description="A predicate (a string), then its arguments: constants, `?x` variables or the wildcard `?_`."),
]
Variable = Annotated[str, StringConstraints(pattern=VARIABLE_PATTERN)]


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class TestCondition(_Node):
    """A guard over variables bound by earlier patterns."""

    test: str = Field(..., min_length=1, description="An expression: numbers, variables, quoted strings, `+ - * /`, `< <= > >= == !=`, `and or not`, parentheses.", examples=["?fraud > 0.9"])


class NotCondition(_Node):
    """Holds when no fact matches the pattern under the bindings of earlier conditions."""

    not_: Pattern = Field(..., alias="not", description="The pattern that must match no fact; variables first seen here are local to it.")


class BindCondition(_Node):
    """A pattern whose matched fact is named, so that `then` can retract it."""

    bind: Variable = Field(..., description="The variable naming the matched fact, e.g. `?f`.", examples=["?f"])
    pattern: Pattern = Field(..., description="The pattern, as in a plain pattern condition.")


Condition = Annotated[
    Pattern | TestCondition | NotCondition | BindCondition,
    Field(description="A pattern (a list), or a table with `test`, `not`, or `bind` and `pattern`."),
]


class AssertAction(_Node):
    """Adds a fact (nothing happens if an equal fact exists)."""

    assert_: Pattern = Field(..., alias="assert", description="The fact to add; a string that is exactly a bound variable takes its value.")


class RetractAction(_Node):
    """Removes the fact a `bind` condition named."""

    retract: Variable = Field(..., description="A variable bound by `bind` in this rule's `when`.", examples=["?f"])


Action = Annotated[AssertAction | RetractAction, Field(description="`{ assert = [...] }` or `{ retract = \"?f\" }`.")]


class Rule(_Node):
    """One rule: when every condition holds, run the actions."""

    name: str = Field(..., pattern=RULE_NAME_PATTERN, max_length=128, description="Unique name, reported in `_fired` and errors.")
    description: str | None = Field(None, description="Free text for people.")
    salience: int = Field(0, ge=-10000, le=10000, description="Priority: higher fires first (CLIPS's range, -10000 to 10000).")
    when: list[Condition] = Field(default_factory=list, description="Conditions, in order; a rule with no positive pattern is activated when the row starts.", json_schema_extra={"default": []})
    then: list[Action] = Field(default_factory=list, description="Actions, run in order when the rule fires.", json_schema_extra={"default": []})


class RulesFile(_Node):
    """A rules file: facts asserted at the start of every row, and rules."""

    kind: Literal["rules"] = Field(..., description='Always "rules": what tells a rules file from a spec.')
    version: Literal[1] = Field(..., description="Version of the rules language.")
    description: str | None = Field(None, description="Free text for people.")
    facts: list[Pattern] = Field(default_factory=list, description="Facts asserted, in order, at the start of every row (constants only).", json_schema_extra={"default": []})
    rules: list[Rule] = Field(..., min_length=1, description="The rules, in priority order for ties (earlier fires first within one change).")


__all__ = ["AssertAction", "BindCondition", "NotCondition", "RetractAction", "Rule", "RulesFile", "TestCondition"]
