"""Hypothesis strategies for rule sets and rows (shared by the agreement tests).

Rule sets are small on purpose: a few predicates with fixed arities, a handful of values and
variables, so that patterns join, guards pass and fail, negations flip and retracts cascade.
Every generated set is valid (checked by ``rules_from_data``).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

ARITY = {"a": 1, "b": 2, "c": 1, "e": 0}
VALUES: list[Any] = [0.0, 1.0, 2.0, -1.5, "x", "y"]
VARIABLES = ["?x", "?y", "?z"]
NUMBERS: list[Any] = [0.0, 1.0, 2.0, -1.5]
STRINGS: list[Any] = ["x", "y"]
TYPED = {"a": NUMBERS, "b": NUMBERS, "c": STRINGS, "e": []}
"""With ``typed=True`` each predicate holds one type, so outputs have one dtype."""


def _values(pred: str, typed: bool) -> list[Any]:
    return TYPED[pred] if typed else VALUES


@st.composite
def facts(draw: st.DrawFn, max_size: int = 5, typed: bool = False) -> list[list[Any]]:
    """Ground facts over the predicates."""
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        pred = draw(st.sampled_from(sorted(ARITY)))
        out.append([pred, *[draw(st.sampled_from(_values(pred, typed))) for _ in range(ARITY[pred])]])
    return out


@st.composite
def _guard(draw: st.DrawFn, bound: list[str]) -> str:
    def operand() -> str:
        if bound and draw(st.booleans()):
            return draw(st.sampled_from(bound))
        return repr(draw(st.sampled_from([0.0, 1.0, 2.0, 0.5])))

    def comparison() -> str:
        kind = draw(st.integers(0, 3))
        if kind == 0 and bound:
            return f"{draw(st.sampled_from(bound))} {draw(st.sampled_from(['==', '!=']))} '{draw(st.sampled_from(['x', 'y']))}'"
        left = operand()
        if kind == 1:
            left = f"{left} {draw(st.sampled_from(['+', '-', '*', '/']))} {operand()}"
        return f"{left} {draw(st.sampled_from(['<', '<=', '>', '>=', '==', '!=']))} {operand()}"

    text = comparison()
    if draw(st.booleans()):
        text = f"{text} {draw(st.sampled_from(['and', 'or']))} {comparison()}"
    if draw(st.integers(0, 4)) == 0:
        text = f"not ({text})"
    return text


@st.composite
def rule(draw: st.DrawFn, name: str, negation: bool, retract: bool, typed: bool = False) -> dict[str, Any]:
    """One valid rule; ``negation``/``retract`` allow ``not`` conditions and retracts."""
    bound: list[str] = []
    kinds: dict[str, str] = {}  # variable → "num"/"str" of its first binding (typed mode)
    facts_named: list[str] = []
    when: list[Any] = []
    for index in range(draw(st.integers(0, 3))):
        pred = draw(st.sampled_from(sorted(ARITY)))
        args = []
        for _ in range(ARITY[pred]):
            choice = draw(st.integers(0, 3))
            if choice == 0:
                args.append(draw(st.sampled_from(_values(pred, typed))))
            elif choice == 1:
                args.append("?_")
            else:
                var = draw(st.sampled_from(VARIABLES))
                args.append(var)
                if var not in bound:
                    bound.append(var)
                    kinds[var] = "str" if pred == "c" else "num"
        pattern = [pred, *args]
        if retract and draw(st.integers(0, 2)) == 0:
            name_f = f"?f{index}"
            facts_named.append(name_f)
            when.append({"bind": name_f, "pattern": pattern})
        else:
            when.append(pattern)
        if draw(st.integers(0, 3)) == 0:
            when.append({"test": draw(_guard(bound))})
        if negation and draw(st.integers(0, 3)) == 0:
            npred = draw(st.sampled_from(sorted(ARITY)))
            nargs = [draw(st.sampled_from([*bound, "?_", "?local", *VALUES[:3], "x"])) for _ in range(ARITY[npred])]
            when.append({"not": [npred, *nargs]})
    if not when and negation and draw(st.booleans()):
        when.append({"not": ["e"]})
    then: list[Any] = []
    for _ in range(draw(st.integers(1, 2))):
        pred = draw(st.sampled_from(sorted(ARITY)))
        usable = [v for v in bound if not typed or kinds[v] == ("str" if pred == "c" else "num")]
        then.append({"assert": [pred, *[draw(st.sampled_from([*usable, *_values(pred, typed)])) for _ in range(ARITY[pred])]]})
    if facts_named and draw(st.booleans()):
        then.insert(draw(st.integers(0, len(then))), {"retract": draw(st.sampled_from(facts_named))})
    return {"name": name, "salience": draw(st.sampled_from([-1, 0, 0, 1])), "when": when, "then": then}


@st.composite
def rulesets(draw: st.DrawFn, negation: bool = True, retract: bool = True, max_rules: int = 5, typed: bool = False) -> dict[str, Any]:
    """A rules-file tree."""
    n = draw(st.integers(1, max_rules))
    return {"kind": "rules", "version": 1, "facts": draw(facts(max_size=2, typed=typed)),
            "rules": [draw(rule(f"r{i}", negation, retract, typed)) for i in range(n)]}
