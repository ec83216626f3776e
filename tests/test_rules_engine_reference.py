"""The C++ rules engine (csrc/rules, through tests/native/rules_cli.cpp, no runtime around it)
against the Python reference (tests/reference/rules.py) on generated rule sets and rows (the
generators of tests/rules_strategies.py: joins, guards, negation, retract, salience): the same
firing order and the same final working memory, row by row, with one engine session reused
across the rows of a batch. Skipped, with the reason, where the rules language or the
reference is not in the tree."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_rules_native import Engine

_strategies = pytest.importorskip("rules_strategies", reason="the rule set generators (tests/rules_strategies.py) are not here")
_reference = pytest.importorskip("reference.rules", reason="the Python reference (tests/reference/rules.py) is not here")
_ruleset = pytest.importorskip("infer_runtime.rules.ruleset", reason="the rules language (infer_runtime.rules) is not here")


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """One rules_cli process for the module."""
    cli = Engine()
    yield cli
    cli.close()


def _numbers_as_floats(facts: list[list[Any]]) -> list[list[Any]]:
    return [[f[0], *(a if isinstance(a, str) else float(a) for a in f[1:])] for f in facts]


_strategies = pytest.importorskip("rules_strategies", reason="the rule set generators (tests/rules_strategies.py) are not here")
_reference = pytest.importorskip("reference.rules", reason="the Python reference (tests/reference/rules.py) is not here")
_ruleset = pytest.importorskip("infer_runtime.rules.ruleset", reason="the rules language (infer_runtime.rules) is not here")


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=_strategies.rulesets(), rows=st.lists(_strategies.facts(max_size=5), min_size=1, max_size=3), max_iterations=st.sampled_from([5, 50]))
def test_engine_agrees_with_reference(engine: Engine, data: dict[str, Any], rows: list[list[list[Any]]], max_iterations: int) -> None:
    ruleset = _ruleset.RuleSet.from_checked(data)
    got = engine.run(ruleset.engine_config()["ruleset"], rows, max_iterations)
    assert isinstance(got, list), got
    for row, answer in zip(rows, got, strict=True):
        try:
            want = _reference.run_row(ruleset, row, max_iterations=max_iterations)
        except _reference.RowLimitError:
            assert answer["error"] is not None and f"max_iterations ({max_iterations})" in answer["error"]
            continue
        assert answer["error"] is None
        assert answer["fired"] == want.fired
        assert _numbers_as_floats(answer["facts"]) == _numbers_as_floats([list(f) for f in want.facts])
