"""The Python reference of the rules engine, point by point against DESIGN §10."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings

from infer_runtime.rules import rules_from_data
from infer_runtime.rules.guard import parse_guard
from infer_runtime.rules.ruleset import RuleSet
from reference.rules import RowLimitError, RowOutputError, guard_holds, run_batch, run_row
from rules_strategies import facts, rulesets


def rules(*rule_list: dict[str, Any], facts: list[list[Any]] | None = None) -> RuleSet:
    return rules_from_data({"kind": "rules", "version": 1, "facts": facts or [], "rules": list(rule_list)})


def rule(name: str, when: list[Any], then: list[Any] | None = None, salience: int = 0) -> dict[str, Any]:
    return {"name": name, "salience": salience, "when": when, "then": then or []}


def test_design_example_blocks_high_fraud_and_reviews_risky_country() -> None:
    rs = rules(
        rule("block-very-high", [["score", "?legit", "?fraud"], {"test": "?fraud > 0.9"}], [{"assert": ["decision", "block"]}], salience=10),
        rule("review-risky-country", [["country", "?c"], ["risk_country", "?c"], {"not": ["decision", "?_"]}],
             [{"assert": ["decision", "review"]}, {"assert": ["reason", "?c"]}]),
        rule("drop-stale", [{"bind": "?f", "pattern": ["flag", "stale"]}], [{"retract": "?f"}]),
        facts=[["risk_country", "NG"], ["risk_country", "RU"]],
    )
    high = run_row(rs, [("score", 0.05, 0.95), ("country", "NG")], outputs={"decision": "decision"}, defaults={"decision": "allow"})
    assert high.fired == ["block-very-high"]  # salience 10 first; then `not decision` no longer holds
    assert high.outputs == {"decision": "block"}
    risky = run_row(rs, [("score", 0.6, 0.4), ("country", "NG"), ("flag", "stale")], outputs={"decision": "decision"})
    assert risky.fired == ["drop-stale", "review-risky-country"]  # flag is the newest change
    assert ("reason", "NG") in risky.facts and ("flag", "stale") not in risky.facts
    calm = run_row(rs, [("score", 0.9, 0.1), ("country", "FR")], outputs={"decision": "decision"}, defaults={"decision": "allow"})
    assert calm.fired == [] and calm.outputs == {"decision": "allow"}


def test_salience_beats_recency() -> None:
    rs = rules(rule("low", [["a"]], salience=-5), rule("high", [["b"]], salience=5))
    assert run_row(rs, [("b",), ("a",)]).fired == ["high", "low"]


def test_depth_newest_activation_first_across_changes() -> None:
    rs = rules(rule("ra", [["a"]]), rule("rb", [["b"]]), rule("rc", [["c"]]))
    assert run_row(rs, [("a",), ("b",), ("c",)]).fired == ["rc", "rb", "ra"]


def test_depth_activation_created_by_firing_goes_on_top() -> None:
    rs = rules(rule("start", [["a"]], [{"assert": ["x"]}]), rule("old", [["b"]]), rule("new", [["x"]]))
    # b arrives after a, so `old` fires first; then `start`, whose assert puts `new` above nothing left
    assert run_row(rs, [("a",), ("b",)]).fired == ["old", "start", "new"]
    rs2 = rules(rule("start", [["b"]], [{"assert": ["x"]}]), rule("old", [["a"]]), rule("new", [["x"]]))
    assert run_row(rs2, [("a",), ("b",)]).fired == ["start", "new", "old"]


def test_within_one_change_file_order() -> None:
    rs = rules(rule("r1", [["a", "?x"]]), rule("r2", [["a", 1]]), rule("r3", [["a", "?y"]]))
    assert run_row(rs, [("a", 1.0)]).fired == ["r1", "r2", "r3"]


def test_within_one_rule_newest_partner_first() -> None:
    rs = rules(rule("pair", [["a", "?x"], ["b", "?y"]], [{"assert": ["seen", "?x", "?y"]}]))
    result = run_row(rs, [("b", 1), ("b", 2), ("b", 3), ("a", 0)])
    assert result.firings == [("pair", (3, 2)), ("pair", (3, 1)), ("pair", (3, 0))]


def test_within_one_rule_older_partial_match_first() -> None:
    rs = rules(rule("pair", [["b", "?y"], ["a", "?x"]], [{"assert": ["seen", "?x", "?y"]}]))
    result = run_row(rs, [("b", 1), ("b", 2), ("b", 3), ("a", 0)])
    assert result.firings == [("pair", (0, 3)), ("pair", (1, 3)), ("pair", (2, 3))]
    # partial matches age by creation, not by their facts' age: (b2,c1) was made before (b1,c2)
    rs3 = rules(rule("tri", [["b", "?y"], ["c", "?z"], ["a", "?x"]]))
    result3 = run_row(rs3, [("b", 1), ("b", 2), ("c", 1), ("c", 2), ("a", 0)])
    assert result3.firings == [("tri", (1, 2, 4)), ("tri", (0, 2, 4)), ("tri", (1, 3, 4)), ("tri", (0, 3, 4))]


def test_within_one_rule_earlier_pattern_first() -> None:
    rs = rules(rule("self", [["a", "?x"], ["a", "?y"]]))
    # a2's change makes three matches; where a2 fills the earlier pattern comes first
    assert run_row(rs, [("a", 1), ("a", 2)]).firings == [("self", (1, 1)), ("self", (1, 0)), ("self", (0, 1)), ("self", (0, 0))]


def test_unblocked_not_oldest_partial_match_first() -> None:
    rs = rules(rule("wait", [["a", "?x"], {"not": ["d"]}]), rule("kill", [{"bind": "?d", "pattern": ["d"]}, ["go"]], [{"retract": "?d"}], salience=1))
    assert run_row(rs, [("d",), ("a", 1), ("a", 2), ("go",)]).firings == [("kill", (0, 3)), ("wait", (1,)), ("wait", (2,))]


def test_refraction_each_activation_fires_once() -> None:
    rs = rules(rule("loop", [["a", "?x"]], [{"assert": ["a", "?x"]}]))  # re-asserting an existing fact is no change
    assert run_row(rs, [("a", 1)]).fired == ["loop"]


def test_retract_and_reassert_equal_fact_is_a_new_activation() -> None:
    rs = rules(
        rule("see", [["a"]], [{"assert": ["count"]}]),
        rule("cycle", [{"bind": "?f", "pattern": ["a"]}, {"bind": "?g", "pattern": ["go"]}], [{"retract": "?g"}, {"retract": "?f"}, {"assert": ["a"]}], salience=-1),
    )
    result = run_row(rs, [("a",), ("go",)])
    # `see` fires on the first `a`, `cycle` replaces it with an equal fact, `see` fires again
    assert result.fired == ["see", "cycle", "see"]
    assert result.firings[0][1] != result.firings[2][1]


def test_retract_drops_pending_activations() -> None:
    rs = rules(rule("drop", [{"bind": "?f", "pattern": ["flag", "stale"]}], [{"retract": "?f"}], salience=1),
               rule("seen", [["flag", "?s"]], [{"assert": ["saw", "?s"]}]))
    result = run_row(rs, [("flag", "stale")])
    assert result.fired == ["drop"] and result.facts == []


def test_not_that_stops_holding_drops_the_activation() -> None:
    rs = rules(rule("default", [["a"], {"not": ["d"]}], [{"assert": ["defaulted"]}]), rule("decide", [["b"]], [{"assert": ["d"]}]))
    # b is newer: decide fires first and its `d` removes default's pending activation
    assert run_row(rs, [("a",), ("b",)]).fired == ["decide"]


def test_not_holding_again_reactivates() -> None:
    rs = rules(
        rule("r", [["a", "?x"], {"not": ["d", "?_"]}], [{"assert": ["fired", "?x"]}], salience=-1),
        rule("add", [["go"]], [{"assert": ["d", 2]}], salience=2),
        rule("remove", [{"bind": "?d", "pattern": ["d", 2]}, {"bind": "?g", "pattern": ["go"]}], [{"retract": "?d"}, {"retract": "?g"}], salience=1),
    )
    result = run_row(rs, [("a", 1), ("go",)])
    assert result.fired == ["add", "remove", "r"]
    rs2 = rules(
        rule("r", [["a", "?x"], {"not": ["d", "?_"]}], [{"assert": ["fired", "?x"]}], salience=3),
        rule("add", [["go"]], [{"assert": ["d", 2]}], salience=2),
        rule("remove", [{"bind": "?d", "pattern": ["d", 2]}, {"bind": "?g", "pattern": ["go"]}], [{"retract": "?d"}, {"retract": "?g"}], salience=1),
    )
    assert run_row(rs2, [("a", 1), ("go",)]).fired == ["r", "add", "remove", "r"]  # same facts, a new activation


def test_rules_without_positive_pattern_are_activated_at_row_start() -> None:
    rs = rules(rule("always", []), rule("none-yet", [{"not": ["decision", "?_"]}], [{"assert": ["decision", "allow"]}]), rule("seen", [["a"]]))
    result = run_row(rs, [("a",)])
    # `a`'s activation is newer than the row-start ones; among those, file order
    assert result.fired == ["seen", "always", "none-yet"]
    guarded = rules(rule("const", [{"test": "1 < 2"}]), rule("never", [{"test": "1 > 2"}]))
    assert run_row(guarded).fired == ["const"]


def test_not_blocked_by_initial_fact_before_it_fires() -> None:
    rs = rules(rule("none-yet", [{"not": ["decision", "?_"]}], [{"assert": ["decision", "allow"]}]))
    assert run_row(rs, [("decision", "block")]).fired == []
    assert run_row(rs, []).facts == [("decision", "allow")]


def test_asserting_an_existing_fact_is_no_change() -> None:
    rs = rules(rule("r", [["a"]]))
    assert run_row(rs, [("a",), ("a",)]).fired == ["r"]


def test_joins_wildcards_and_types() -> None:
    rs = rules(rule("join", [["p", "?x", "?_"], ["q", "?x"]], [{"assert": ["hit", "?x"]}]))
    result = run_row(rs, [("p", 1, "z"), ("p", "1", 2), ("q", 1.0), ("q", "2")])
    assert [f for f in result.facts if f[0] == "hit"] == [("hit", 1.0)]  # "1" never equals 1.0


def test_not_variables_are_local_and_see_earlier_bindings() -> None:
    local = rules(rule("r", [{"not": ["d", "?x"]}, ["a", "?x"]]))
    assert run_row(local, [("a", 1), ("d", 2)]).fired == []  # ?x inside the not is its own
    joined = rules(rule("r", [["a", "?x"], {"not": ["d", "?x"]}]))
    assert run_row(joined, [("a", 1), ("d", 2)]).fired == ["r"]
    assert run_row(joined, [("a", 1), ("d", 1)]).fired == []


@pytest.mark.parametrize(("guard", "env", "expected"), [
    ("?x > 0.5", {"?x": 0.7}, True),
    ("?x / 0 > 1", {"?x": 1.0}, False),  # division by zero: the guard is false
    ("not (?x / 0 > 1)", {"?x": 1.0}, False),  # ... even under not
    ("?s < 1", {"?s": "a"}, False),  # < on a string errors
    ("?s == 1", {"?s": "1"}, False),  # a string never equals a number
    ("?s != 1", {"?s": "1"}, True),
    ("?s == 'NG' or ?x / 0 > 1", {"?s": "NG", "?x": 1.0}, True),  # or short-circuits
    ("?x > 1 and ?x / 0 > 1", {"?x": 0.0}, False),
    ("-?x + 2 * 3 == 5", {"?x": 1.0}, True),
    ("(1 + 2) * 3 == 9 and 1 + 2 * 3 == 7", {}, True),
    ("?x != ?x", {"?x": float("nan")}, True),
])
def test_guard_semantics(guard: str, env: dict[str, Any], expected: bool) -> None:
    assert guard_holds(parse_guard(guard), env) is expected


def test_max_iterations_names_the_limit() -> None:
    rs = rules(rule("flip", [{"bind": "?f", "pattern": ["a"]}], [{"retract": "?f"}, {"assert": ["b"]}]),
               rule("flop", [{"bind": "?f", "pattern": ["b"]}], [{"retract": "?f"}, {"assert": ["a"]}]))
    with pytest.raises(RowLimitError, match=r"max_iterations \(7\)"):
        run_row(rs, [("a",)], max_iterations=7)
    finite = rules(rule("r", [["a"]]))
    assert run_row(finite, [("a",)], max_iterations=1).fired == ["r"]  # exactly the limit is fine


def test_outputs_newest_fact_else_default() -> None:
    rs = rules(rule("r1", [["a"]], [{"assert": ["decision", "review"]}], salience=1), rule("r2", [["a"]], [{"assert": ["decision", "block"]}]))
    result = run_row(rs, [("a",)], outputs={"decision": "decision", "other": "nothing"}, defaults={"other": 3})
    assert result.outputs == {"decision": "block", "other": 3.0}


def test_output_of_a_fact_without_argument_fails_the_row() -> None:
    rs = rules(rule("r", [["a"]], [{"assert": ["decision"]}]))
    with pytest.raises(RowOutputError, match="no argument"):
        run_row(rs, [("a",)], outputs={"decision": "decision"}, defaults={"decision": "allow"})
    assert run_row(rs, [], outputs={"decision": "decision"}, defaults={"decision": "allow"}).outputs == {"decision": "allow"}


def test_batch_bindings_rows_shapes_and_bytes() -> None:
    rs = rules(rule("hi", [["score", "?l", "?f"], ["country", "?c"], {"test": "?f > 0.5"}], [{"assert": ["decision", "?c"]}]),
               rule("loop", [{"bind": "?f", "pattern": ["x", "?_"]}], [{"retract": "?f"}, {"assert": ["x", "again"]}]))
    inputs = {"score": np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], np.float32), "country": np.array([b"NG", b"FR", b"DE"], object)}
    out = run_batch(rs, inputs, bindings={"score": "score", "country": "country"}, outputs={"decision": "decision"}, defaults={"decision": "allow"})
    assert [r.outputs["decision"] for r in out if not isinstance(r, Exception)] == ["NG", "allow", "DE"]
    first = out[0]
    assert not isinstance(first, Exception)
    assert first.facts[0] == ("score", float(np.float32(0.1)), float(np.float32(0.9)))
    bad = run_batch(rs, {"x": np.array([1.0, 2.0])}, bindings={"x": "x"}, outputs={}, max_iterations=5)
    assert all(isinstance(r, RowLimitError) for r in bad)


@settings(max_examples=200, deadline=None)
@given(data=rulesets(), row=facts(max_size=6))
def test_generated_rule_sets_run_and_keep_invariants(data: dict[str, Any], row: list[list[Any]]) -> None:
    rs = rules_from_data(data)
    assert rules_from_data(rs.to_data()) == rs  # the typed form round-trips
    try:
        result = run_row(rs, [tuple(f) for f in row], outputs={"a_out": "a"}, defaults={"a_out": "none"}, max_iterations=50)
    except RowLimitError as exc:
        assert exc.limit == 50
        return
    assert len(result.fired) <= 50
    assert len(set(result.facts)) == len(result.facts)  # working memory is a set
    newest_a = [f for f in result.facts if f[0] == "a"]
    assert result.outputs["a_out"] == (newest_a[-1][1] if newest_a else "none")
