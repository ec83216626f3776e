"""Agreement with CLIPS 6.4 (clipspy), the reference forward-chaining engine.

* Generated rule sets without negation and retract: the final fact sets, and the rules
  fired (as a multiset), agree exactly with the reference; the closure is order-independent.
* Hand-written sets with negation and retract: the firing order agrees wherever DESIGN §10's
  order and CLIPS's depth strategy coincide; each documented difference (docs/rules.md,
  "Differences from CLIPS") has a test here that shows it.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from infer_runtime.rules import rules_from_data
from infer_runtime.rules.ruleset import RuleSet
from reference.rules import run_row
from rules_strategies import facts, rulesets

clips = pytest.importorskip("clips", reason="clipspy is a test dependency")
from rules_clips import ClipsRules, Lockstep  # after importorskip: needs clipspy


def rules(*rule_list: dict[str, Any], facts: list[list[Any]] | None = None) -> RuleSet:
    return rules_from_data({"kind": "rules", "version": 1, "facts": facts or [], "rules": list(rule_list)})


def rule(name: str, when: list[Any], then: list[Any] | None = None, salience: int = 0) -> dict[str, Any]:
    return {"name": name, "salience": salience, "when": when, "then": then or []}


def both(rs: RuleSet, row: list[tuple[Any, ...]]) -> tuple[list[str], list[str]]:
    """Firing order: (reference, CLIPS)."""
    ours = run_row(rs, row)
    theirs = ClipsRules(rs).run_row(row)
    assert sorted(map(repr, ours.facts)) == sorted(map(repr, theirs.facts))
    return ours.fired, theirs.fired


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=rulesets(negation=False, retract=False), row=facts(max_size=5))
def test_generated_monotonic_rule_sets_reach_the_same_facts(data: dict[str, Any], row: list[list[Any]]) -> None:
    rs = rules_from_data(data)
    ours = run_row(rs, [tuple(f) for f in row], max_iterations=10_000)
    theirs = ClipsRules(rs).run_row([tuple(f) for f in row], max_iterations=10_000)
    assert not theirs.exhausted
    assert sorted(map(repr, ours.facts)) == sorted(map(repr, theirs.facts))
    assert sorted(ours.fired) == sorted(theirs.fired)


# -- hand-written sets where the two orders coincide -------------------------------------

FRAUD = rules(
    rule("block-very-high", [["score", "?legit", "?fraud"], {"test": "?fraud > 0.9"}], [{"assert": ["decision", "block"]}], salience=10),
    rule("review-risky-country", [["country", "?c"], ["risk_country", "?c"], {"not": ["decision", "?_"]}],
         [{"assert": ["decision", "review"]}, {"assert": ["reason", "?c"]}]),
    rule("drop-stale", [{"bind": "?f", "pattern": ["flag", "stale"]}], [{"retract": "?f"}]),
    facts=[["risk_country", "NG"], ["risk_country", "RU"]],
)


@pytest.mark.parametrize("row", [
    [("score", 0.05, 0.95), ("country", "NG")],
    [("score", 0.6, 0.4), ("country", "NG"), ("flag", "stale")],
    [("flag", "stale"), ("score", 0.6, 0.4), ("country", "RU")],
    [("score", 0.9, 0.1), ("country", "FR")],
])
def test_design_example(row: list[tuple[Any, ...]]) -> None:
    ours, theirs = both(FRAUD, row)
    assert ours == theirs


def test_depth_and_salience() -> None:
    rs = rules(rule("ra", [["a"]]), rule("rb", [["b"]], [{"assert": ["c"]}]), rule("rc", [["c"]]), rule("urgent", [["a"]], salience=5))
    ours, theirs = both(rs, [("a",), ("b",)])
    assert ours == theirs == ["urgent", "rb", "rc", "ra"]


def test_retract_drops_pending_activations() -> None:
    rs = rules(rule("drop", [{"bind": "?f", "pattern": ["flag", "?s"]}], [{"retract": "?f"}], salience=1),
               rule("seen", [["flag", "?s"]], [{"assert": ["saw", "?s"]}]))
    ours, theirs = both(rs, [("flag", "stale"), ("other",)])
    assert ours == theirs == ["drop"]


def test_not_that_stops_holding_drops_and_reactivates() -> None:
    rs = rules(
        rule("r", [["a", "?x"], {"not": ["d", "?_"]}], [{"assert": ["fired", "?x"]}], salience=3),
        rule("add", [["go"]], [{"assert": ["d", 2]}], salience=2),
        rule("remove", [{"bind": "?d", "pattern": ["d", 2]}, {"bind": "?g", "pattern": ["go"]}], [{"retract": "?d"}, {"retract": "?g"}], salience=1),
    )
    ours, theirs = both(rs, [("a", 1), ("go",)])
    assert ours == theirs == ["r", "add", "remove", "r"]


def test_retract_and_reassert_fires_again() -> None:
    rs = rules(
        rule("see", [["a"]], [{"assert": ["count"]}]),
        rule("cycle", [{"bind": "?f", "pattern": ["a"]}, {"bind": "?g", "pattern": ["go"]}], [{"retract": "?g"}, {"retract": "?f"}, {"assert": ["a"]}], salience=-1),
    )
    ours, theirs = both(rs, [("a",), ("go",)])
    assert ours == theirs == ["see", "cycle", "see"]


def test_guard_errors_are_false_in_both() -> None:
    rs = rules(rule("div", [["a", "?x"], {"test": "1 / ?x > 0"}], [{"assert": ["ok", "?x"]}]),
               rule("str", [["a", "?x"], {"test": "?x < 1 or ?x == 'x'"}], [{"assert": ["small", "?x"]}]))
    ours, theirs = both(rs, [("a", 0.0), ("a", "x"), ("a", 2.0), ("a", 0.5)])
    assert sorted(ours) == sorted(theirs)


def test_not_variables_are_local_in_both() -> None:
    rs = rules(rule("r", [{"not": ["d", "?x"]}, ["a", "?x"]], [{"assert": ["hit"]}]))
    ours, theirs = both(rs, [("a", 1), ("d", 2)])
    assert ours == theirs == []


# -- documented differences ----------------------------------------------------------------


def test_difference_shared_network_structure() -> None:
    """One change, three rules: we fire in file order; CLIPS's shared pattern network puts
    the rule whose constant test differs last (RULES_SEMANTICS.md §2)."""
    rs = rules(rule("r1", [["a", "?x"]]), rule("r2", [["a", 1]]), rule("r3", [["a", "?y"]]))
    ours, theirs = both(rs, [("a", 1.0)])
    assert ours == ["r1", "r2", "r3"]
    assert theirs == ["r1", "r3", "r2"]


@pytest.mark.parametrize(("when", "row"), [
    ([["a", "?x"], ["b", "?y"]], [("b", 1), ("b", 2), ("b", 3), ("a", 0)]),  # partners newest first
    ([["b", "?y"], ["a", "?x"]], [("b", 1), ("b", 2), ("b", 3), ("a", 0)]),  # partial matches oldest first
    ([["b", "?y"], ["c", "?z"], ["a", "?x"]], [("b", 1), ("b", 2), ("c", 1), ("c", 2), ("a", 0)]),  # by creation
    ([["a", "?x"], ["a", "?y"]], [("a", 1), ("a", 2)]),  # a fact filling two patterns
])
def test_one_rule_several_matches_in_one_change(when: list[Any], row: list[tuple[Any, ...]]) -> None:
    """One change, one rule, several matches: the same order as CLIPS (RULES_SEMANTICS.md §2)."""
    variables = sorted({a for p in when for a in p[1:]})
    rs = rules(rule("r", when, [{"assert": ["seen", *variables]}]))
    ours = run_row(rs, row)
    theirs = ClipsRules(rs).run_row(row)
    assert [f for f in ours.facts if f[0] == "seen"] == [f for f in theirs.facts if f[0] == "seen"]
    assert len([f for f in ours.facts if f[0] == "seen"]) >= 2


def test_difference_rules_without_positive_patterns() -> None:
    """Rules with no positive pattern: we activate them in file order at row start; CLIPS
    primes only-`not` rules above rules with no pattern at all."""
    rs = rules(rule("e1", []), rule("n1", [{"not": ["d"]}]), rule("e2", []), rule("n2", [{"not": ["d"]}]))
    ours, theirs = both(rs, [])
    assert ours == ["e1", "n1", "e2", "n2"]
    assert theirs == ["n1", "n2", "e1", "e2"]


def test_difference_retraction_ties() -> None:
    """A retraction that unblocks several `not`s at once: we fire in file order; CLIPS
    follows its blocking history."""
    rs = rules(rule("r1", [["a"], {"not": ["d"]}]), rule("r2", [["b"], {"not": ["d"]}]), rule("r3", [["a"], {"not": ["d"]}]),
               rule("r4", [{"not": ["d"]}]), rule("kill", [{"bind": "?d", "pattern": ["d"]}, ["go"]], [{"retract": "?d"}], salience=10))
    ours, theirs = both(rs, [("a",), ("b",), ("d",), ("go",)])
    assert ours == ["kill", "r1", "r2", "r3", "r4"]
    assert theirs[0] == "kill" and theirs != ours and sorted(theirs) == sorted(ours)


def test_difference_what_a_change_is_initial_fact_order() -> None:
    """Facts of a row are separate changes in both; the newest fact's rules fire first. This
    is the same in both engines, shown because it surprises: the fact listed later wins."""
    rs = rules(rule("r1", [["risk_country", "?c"]]), rule("r2", [["country", "?c"]]))
    ours, theirs = both(rs, [("risk_country", "NG"), ("country", "NG")])
    assert ours == theirs == ["r2", "r1"]


def test_difference_clips_guard_error_halts_the_run() -> None:
    """In CLIPS an evaluation error in a test (here `+` on a string) makes the test false
    but also halts `run` and abandons the rest of the RHS whose assert caused it; DESIGN §10
    only makes the guard false. The translator therefore emits error-free tests."""
    env = clips.Environment()
    env.build('(defrule r0 => (assert (c "x")) (assert (d 1.0)))')
    env.build("(defrule r4 (c ?x) (test (< (+ ?x ?x) 0.0)) => (assert (e)))")
    env.reset()
    env.run(100)
    assert [f.template.name for f in env.facts()] == ["c"]  # (d 1.0) was never asserted
    rs = rules(rule("r0", [], [{"assert": ["c", "x"]}, {"assert": ["d", 1]}]), rule("r4", [["c", "?x"], {"test": "?x + ?x < 0"}], [{"assert": ["e"]}]))
    ours, theirs = both(rs, [])
    assert ours == theirs == ["r0"]
    assert run_row(rs, []).facts == [("c", "x"), ("d", 1.0)]


# -- lockstep on generated sets with negation and retract ------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=rulesets(negation=True, retract=True), row=facts(max_size=5))
def test_generated_rule_sets_in_lockstep_with_clips(data: dict[str, Any], row: list[list[Any]]) -> None:
    """At every firing our choice is one CLIPS's depth strategy could make (top salience,
    newest change); steered to it, CLIPS ends with the same facts."""
    result = Lockstep(rules_from_data(data)).run([tuple(f) for f in row], max_steps=40)
    assert sorted(map(repr, result.ours)) == sorted(map(repr, result.theirs))


@pytest.mark.parametrize("row", [[("score", 0.05, 0.95), ("country", "NG")], [("score", 0.6, 0.4), ("country", "NG"), ("flag", "stale")]])
def test_design_example_in_lockstep(row: list[tuple[Any, ...]]) -> None:
    result = Lockstep(FRAUD).run(row)
    assert result.fired == run_row(FRAUD, row).fired and not result.limit_reached
