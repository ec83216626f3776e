"""A checked rule set in typed form, and the configuration the C++ engine reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..spec.issues import SpecIssue
from .guard import Node, parse_guard
from .semantic import check_outputs

Value = float | str
"""A fact argument: a 64-bit float or a string."""


def normalise(value: Any) -> Value:
    """Numbers become floats (``1`` → ``1.0``, ``-0.0`` → ``0.0``); strings stay."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"a rules value is a number or a string (got {type(value).__name__})")
    return float(value) + 0.0


@dataclass(frozen=True, slots=True)
class Atom:
    """A fact, or a pattern over facts: predicate and arguments (constants, ``?x``, ``?_``)."""

    predicate: str
    args: tuple[Value, ...] = ()

    def as_list(self) -> list[Value]:
        """``[predicate, *args]``, the file and engine form."""
        return [self.predicate, *self.args]

    @classmethod
    def of(cls, items: list[Any] | tuple[Any, ...]) -> Atom:
        """From ``[predicate, *args]``."""
        return cls(str(items[0]), tuple(normalise(v) for v in items[1:]))


@dataclass(frozen=True, slots=True)
class PatternCondition:
    """A positive pattern; ``bind`` names the matched fact (``?f``) or is None."""

    pattern: Atom
    bind: str | None = None


@dataclass(frozen=True, slots=True)
class TestCondition:
    """A guard: its text and syntax tree."""

    source: str
    node: Node


@dataclass(frozen=True, slots=True)
class NotCondition:
    """No fact matches ``pattern`` under the earlier bindings."""

    pattern: Atom


Condition = PatternCondition | TestCondition | NotCondition


@dataclass(frozen=True, slots=True)
class AssertAction:
    """Add a fact (variables replaced by their values)."""

    pattern: Atom


@dataclass(frozen=True, slots=True)
class RetractAction:
    """Remove the fact a ``bind`` named."""

    variable: str


Action = AssertAction | RetractAction


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule, in file order within its :class:`RuleSet`."""

    name: str
    salience: int
    when: tuple[Condition, ...]
    then: tuple[Action, ...]
    description: str | None = None

    @property
    def has_positive_pattern(self) -> bool:
        """Rules without one are activated when a row starts (DESIGN §10)."""
        return any(isinstance(c, PatternCondition) for c in self.when)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A checked rules file: initial facts and rules, in file order."""

    facts: tuple[Atom, ...]
    rules: tuple[Rule, ...]
    file: str = "<rules>"
    description: str | None = None

    @classmethod
    def from_checked(cls, data: Mapping[str, Any], file: str = "<rules>") -> RuleSet:
        """Builds the typed form of a tree that :func:`check_rules` found clean (through the
        pydantic models, the language's source of truth)."""
        from .models import AssertAction as AssertModel
        from .models import BindCondition, RulesFile
        from .models import NotCondition as NotModel
        from .models import TestCondition as TestModel

        model = RulesFile.model_validate(data)
        rules = []
        for rule in model.rules:
            when: list[Condition] = []
            for cond in rule.when:
                if isinstance(cond, list):
                    when.append(PatternCondition(Atom.of(cond)))
                elif isinstance(cond, TestModel):
                    when.append(TestCondition(cond.test, parse_guard(cond.test)))
                elif isinstance(cond, NotModel):
                    when.append(NotCondition(Atom.of(cond.not_)))
                elif isinstance(cond, BindCondition):
                    when.append(PatternCondition(Atom.of(cond.pattern), cond.bind))
            then: list[Action] = [AssertAction(Atom.of(a.assert_)) if isinstance(a, AssertModel) else RetractAction(a.retract) for a in rule.then]
            rules.append(Rule(rule.name, rule.salience, tuple(when), tuple(then), rule.description))
        return cls(tuple(Atom.of(f) for f in model.facts), tuple(rules), file, model.description)

    def to_data(self) -> dict[str, Any]:
        """The rule set as a rules-file tree (``kind``, ``version``, ``facts``, ``rules``)."""
        rules = []
        for rule in self.rules:
            entry: dict[str, Any] = {"name": rule.name}
            if rule.salience:
                entry["salience"] = rule.salience
            entry["when"] = [_condition_data(c) for c in rule.when]
            entry["then"] = [{"assert": a.pattern.as_list()} if isinstance(a, AssertAction) else {"retract": a.variable} for a in rule.then]
            rules.append(entry)
        return {"kind": "rules", "version": 1, "facts": [f.as_list() for f in self.facts], "rules": rules}

    def engine_config(self, *, bindings: Mapping[str, str] | None = None, outputs: Mapping[str, str] | None = None,
                      defaults: Mapping[str, Any] | None = None, explain: bool = False, max_iterations: int = 1000,
                      trace: bool = False) -> dict[str, Any]:
        """The JSON-ready configuration of the C++ engine (see docs/rules.md, "Engine configuration").

        Raises:
            RulesError: an output reads a predicate nothing produces, a default names no
                output, or a default is neither a number nor a string.
        """
        from .errors import RulesError

        bindings = dict(bindings or {})
        outputs = dict(outputs or {})
        defaults = dict(defaults or {})
        issues = [SpecIssue(p.message, p.path, self.file, hint=p.hint) for p in check_outputs(self.to_data(), outputs, bindings)]
        clean_defaults: dict[str, Value] = {}
        for tensor, value in defaults.items():
            if tensor not in outputs:
                issues.append(SpecIssue(f"default for {tensor!r}, which is not an output", ("defaults", tensor), self.file, hint=f"outputs: {', '.join(outputs) or '(none)'}"))
                continue
            try:
                clean_defaults[tensor] = normalise(value)
            except TypeError as exc:
                issues.append(SpecIssue(str(exc), ("defaults", tensor), self.file))
        if max_iterations < 1:
            issues.append(SpecIssue(f"must be ≥ 1 (got {max_iterations})", ("max_iterations",), self.file))
        if issues:
            raise RulesError(issues, self.file)
        return {
            "ruleset": {
                "facts": [f.as_list() for f in self.facts],
                "rules": [
                    {"name": r.name, "salience": r.salience, "when": [_condition_data(c, engine=True) for c in r.when],
                     "then": [{"assert": a.pattern.as_list()} if isinstance(a, AssertAction) else {"retract": a.variable} for a in r.then]}
                    for r in self.rules
                ],
            },
            "bindings": bindings,
            "outputs": outputs,
            "defaults": clean_defaults,
            "explain": bool(explain),
            "max_iterations": int(max_iterations),
            "trace": bool(trace),
        }


def _condition_data(cond: Condition, engine: bool = False) -> Any:
    if isinstance(cond, PatternCondition):
        if engine:
            return {"pattern": cond.pattern.as_list(), "bind": cond.bind}
        return cond.pattern.as_list() if cond.bind is None else {"bind": cond.bind, "pattern": cond.pattern.as_list()}
    if isinstance(cond, TestCondition):
        return {"test": cond.source}
    return {"not": cond.pattern.as_list()}
