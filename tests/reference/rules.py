"""Pure-Python reference of the rules engine: DESIGN §10, one row at a time.

Written from the DESIGN text for clarity, not speed, independently of the C++ engine
(csrc/rules/). After every change (one assertion or retraction) it recomputes the matches
of every rule that mentions the changed predicate, and compares them with the live
activations:

* a match that was not live becomes a new activation, numbered when it is created; new
  activations of one change are numbered so that rules earlier in the file fire first, and,
  within one rule, in CLIPS's order for one rule (see :class:`Row`);
* a live activation whose match is gone (a fact retracted, a ``not`` that stopped holding)
  is dropped, fired or not, so a later equal match is a new activation;
* the agenda fires the unfired activation with the highest (salience, number), runs its
  whole ``then``, and repeats; each activation fires at most once (refraction).

Rules with no positive pattern are matched before the row's first fact, so their
activations are the oldest. A guard that errors is false. The row fails when activations
are left after ``max_iterations`` firings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infer_runtime.rules.guard import Binary, Node, Num, Str, Unary, Var
from infer_runtime.rules.ruleset import (
    AssertAction,
    Atom,
    NotCondition,
    PatternCondition,
    RetractAction,
    Rule,
    RuleSet,
    TestCondition,
    Value,
    normalise,
)

FactTuple = tuple[Any, ...]  # (predicate, *args)


class RowLimitError(RuntimeError):
    """Activations were left after ``max_iterations`` firings."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"max_iterations ({limit}) reached with activations left to fire")
        self.limit = limit


class RowOutputError(RuntimeError):
    """The newest fact of an output's predicate has no argument to output."""


# -- values and guards --------------------------------------------------------------------


def same(a: Value, b: Value) -> bool:
    """Pattern equality: same type and equal value (1.0 never equals "1"; NaN equals nothing)."""
    return type(a) is type(b) and a == b


class _GuardError(Exception):
    """An evaluation error: it makes the whole guard false."""


def _value(node: Node, env: Mapping[str, Value]) -> Value:
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Str):
        return node.value
    if isinstance(node, Var):
        return env[node.name]
    if isinstance(node, Unary):  # "-"
        operand = _value(node.operand, env)
        if not isinstance(operand, float):
            raise _GuardError("'-' on a string")
        return -operand
    assert isinstance(node, Binary)
    left, right = _value(node.left, env), _value(node.right, env)
    if not isinstance(left, float) or not isinstance(right, float):
        raise _GuardError(f"{node.op!r} on a string")
    if node.op == "+":
        return left + right
    if node.op == "-":
        return left - right
    if node.op == "*":
        return left * right
    if right == 0.0:
        raise _GuardError("division by zero")
    return left / right


def _truth(node: Node, env: Mapping[str, Value]) -> bool:
    if isinstance(node, Unary):  # "not"
        return not _truth(node.operand, env)
    assert isinstance(node, Binary)
    if node.op == "and":
        return _truth(node.left, env) and _truth(node.right, env)
    if node.op == "or":
        return _truth(node.left, env) or _truth(node.right, env)
    left, right = _value(node.left, env), _value(node.right, env)
    if node.op == "==":
        return same(left, right)
    if node.op == "!=":
        return not same(left, right)
    if not isinstance(left, float) or not isinstance(right, float):
        raise _GuardError(f"{node.op!r} on a string")
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[node.op]


def guard_holds(node: Node, env: Mapping[str, Value]) -> bool:
    """The guard's verdict; any evaluation error makes it false (DESIGN §10)."""
    try:
        return _truth(node, env)
    except _GuardError:
        return False


# -- working memory -------------------------------------------------------------------------


@dataclass(slots=True)
class Fact:
    """One fact instance; ``id`` is its creation index within the row."""

    id: int
    value: FactTuple
    alive: bool = True


@dataclass(slots=True)
class Activation:
    """A rule with the fact instances its positive patterns matched."""

    rule: int
    facts: tuple[int, ...]
    number: int
    env: dict[str, Value]
    fact_vars: dict[str, int]
    fired: bool = False


@dataclass(slots=True)
class RowResult:
    """What one row did: final facts (creation order), firing order, outputs."""

    facts: list[FactTuple]
    fired: list[str]
    firings: list[tuple[str, tuple[int, ...]]]  # rule name and the fact ids it matched
    outputs: dict[str, Value | None] = field(default_factory=dict)


def _unify(pattern: Atom, fact: FactTuple, env: dict[str, Value]) -> dict[str, Value] | None:
    """Extends ``env`` so that ``pattern`` matches ``fact``, or None."""
    if fact[0] != pattern.predicate or len(fact) - 1 != len(pattern.args):
        return None
    out = env
    for want, have in zip(pattern.args, fact[1:]):
        if isinstance(want, str) and want.startswith("?"):
            if want == "?_":
                continue
            if want in out:
                if not same(out[want], have):
                    return None
            else:
                out = dict(out)
                out[want] = have
        elif not same(want, have):
            return None
    return out


@dataclass(frozen=True, slots=True)
class _Shape:
    """A rule as a chain of nodes (its patterns and ``not``s, in order), each followed by the
    guards written after it; ``root_guards`` come before the first node."""

    nodes: tuple[PatternCondition | NotCondition, ...]
    guards: tuple[tuple[TestCondition, ...], ...]  # guards[k]: after node k
    root_guards: tuple[TestCondition, ...]
    positives_before: tuple[int, ...]  # positives_before[k]: positive nodes among the first k

    @classmethod
    def of(cls, rule: Rule) -> _Shape:
        nodes: list[PatternCondition | NotCondition] = []
        guards: list[list[TestCondition]] = []
        root: list[TestCondition] = []
        for cond in rule.when:
            if isinstance(cond, TestCondition):
                (guards[-1] if guards else root).append(cond)
            else:
                nodes.append(cond)
                guards.append([])
        before = [0]
        for node in nodes:
            before.append(before[-1] + isinstance(node, PatternCondition))
        return cls(tuple(nodes), tuple(tuple(g) for g in guards), tuple(root), tuple(before))


Partial = tuple[int, tuple[int, ...]]  # (level, fact ids of the positive nodes before it)


class Row:
    """One working memory and its agenda.

    Matches are tracked as *partial matches*: a rule's match through its first k nodes is a
    partial match at level k (level 0: nothing matched yet; the last level: an activation).
    A partial match lives from the change that creates it until one that removes it, and is
    stamped, like an activation, when created. The stamps order the new activations of one
    change (DESIGN §10 leaves this to the engine; ours is CLIPS's for one rule):

    * rules earlier in the file fire first;
    * a change enters a rule at a node (where the asserted fact fills a pattern, or the
      ``not`` a retraction unblocked); entries at earlier nodes fire first (a fact filling two
      patterns fires first where it fills the earlier one);
    * at the entry node, the older partial match before it fires first;
    * at each later pattern, the newest partner fact fires first.
    """

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.facts: list[Fact] = []
        self.index: dict[FactTuple, Fact] = {}
        self.shapes = [_Shape.of(rule) for rule in ruleset.rules]
        self.partials: list[dict[Partial, int]] = [{} for _ in ruleset.rules]  # → stamp
        self.activations: dict[tuple[int, tuple[int, ...]], Activation] = {}
        self.counter = 0
        self.firings: list[tuple[str, tuple[int, ...]]] = []
        self.mentions = [self._predicates(rule) for rule in ruleset.rules]

    @staticmethod
    def _predicates(rule: Rule) -> set[str]:
        return {c.pattern.predicate for c in rule.when if isinstance(c, (PatternCondition, NotCondition))}

    # -- matching ----------------------------------------------------------------------
    def matches(self, r: int) -> dict[Partial, tuple[dict[str, Value], dict[str, int]]]:
        """Every partial match of rule ``r`` now, with its values and fact names."""
        shape = self.shapes[r]
        out: dict[Partial, tuple[dict[str, Value], dict[str, int]]] = {}
        if not all(guard_holds(g.node, {}) for g in shape.root_guards):
            return out
        frontier: list[tuple[tuple[int, ...], dict[str, Value], dict[str, int]]] = [((), {}, {})]
        out[(0, ())] = ({}, {})
        for k, node in enumerate(shape.nodes):
            grown = []
            for ids, env, fvars in frontier:
                if isinstance(node, PatternCondition):
                    for fact in self.facts:
                        bound = _unify(node.pattern, fact.value, env) if fact.alive else None
                        if bound is not None:
                            grown.append((ids + (fact.id,), bound, {**fvars, node.bind: fact.id} if node.bind else fvars))
                elif not any(fact.alive and _unify(node.pattern, fact.value, env) is not None for fact in self.facts):
                    grown.append((ids, env, fvars))
            frontier = [(ids, env, fvars) for ids, env, fvars in grown if all(guard_holds(g.node, env) for g in shape.guards[k])]
            for ids, env, fvars in frontier:
                out[(k + 1, ids)] = (env, fvars)
        return out

    def _creation_key(self, r: int, key: Partial, old: dict[Partial, int]) -> tuple[int, int, int, tuple[int, ...]]:
        """Sorts one change's new partial matches into the order they are created: rules last
        to first, entry nodes last to first, older partial match at the entry first... read
        backwards (the last created fires first), this is the order of the class docstring."""
        shape = self.shapes[r]
        level, ids = key
        entry, parent_stamp = -1, 0
        for k in range(level - 1, -1, -1):  # the deepest prefix that existed before the change
            prefix = (k, ids[: shape.positives_before[k]])
            if prefix in old:
                entry, parent_stamp = k, old[prefix]
                break
        choices = []
        rest = iter(ids[shape.positives_before[max(entry, 0)]:])
        for node in shape.nodes[max(entry, 0):level]:
            choices.append(next(rest) if isinstance(node, PatternCondition) else -1)
        return (-r, -entry, -parent_stamp, tuple(choices))

    def update(self, changed: str | None) -> None:
        """Brings partial matches and the agenda up to date after one change to predicate
        ``changed`` (None: the row start, every rule)."""
        created: list[tuple[tuple[int, int, int, tuple[int, ...]], int, Partial, dict[str, Value], dict[str, int]]] = []
        for r in range(len(self.ruleset.rules)):
            if changed is not None and changed not in self.mentions[r]:
                continue
            now = self.matches(r)
            old = self.partials[r]
            last = len(self.shapes[r].nodes)
            for key in [k for k in old if k not in now]:
                del old[key]
                self.activations.pop((r, key[1]), None) if key[0] == last else None
            for key, (env, fvars) in now.items():
                if key not in old:
                    created.append((self._creation_key(r, key, old), r, key, env, fvars))
        created.sort(key=lambda c: (c[0], c[2][0]))
        for _, r, key, env, fvars in created:
            self.counter += 1
            self.partials[r][key] = self.counter
            if key[0] == len(self.shapes[r].nodes):
                self.activations[(r, key[1])] = Activation(r, key[1], self.counter, env, fvars)

    # -- changes -----------------------------------------------------------------------
    def assert_fact(self, value: FactTuple) -> bool:
        """Adds a fact; False (no change) when an equal fact exists."""
        value = (value[0], *(normalise(v) for v in value[1:]))
        if value in self.index:
            return False
        fact = Fact(len(self.facts), value)
        self.facts.append(fact)
        self.index[value] = fact
        self.update(value[0])
        return True

    def retract_fact(self, fact_id: int) -> bool:
        """Removes a fact; False (no change) when it is already gone."""
        fact = self.facts[fact_id]
        if not fact.alive:
            return False
        fact.alive = False
        del self.index[fact.value]
        self.update(fact.value[0])
        return True

    # -- the cycle ---------------------------------------------------------------------
    def start(self, initial: Iterable[FactTuple]) -> None:
        """Row start (activating rules with no positive pattern), then the facts in order."""
        self.update(None)
        for value in initial:
            self.assert_fact(value)

    def next_activation(self) -> Activation | None:
        """The activation the agenda fires next: highest (salience, number), unfired."""
        pending = [a for a in self.activations.values() if not a.fired]
        if not pending:
            return None
        return max(pending, key=lambda a: (self.ruleset.rules[a.rule].salience, a.number))

    def fire(self, act: Activation) -> None:
        """Fires one activation: marks it (refraction) and runs its whole ``then``."""
        act.fired = True
        rule = self.ruleset.rules[act.rule]
        self.firings.append((rule.name, act.facts))
        for action in rule.then:
            if isinstance(action, AssertAction):
                args = [act.env[a] if isinstance(a, str) and a in act.env else a for a in action.pattern.args]
                self.assert_fact((action.pattern.predicate, *args))
            else:
                assert isinstance(action, RetractAction)
                self.retract_fact(act.fact_vars[action.variable])

    def run(self, initial: Iterable[FactTuple], max_iterations: int) -> None:
        """Starts the row, then fires until the agenda is empty. Raises :class:`RowLimitError`
        when activations are left after ``max_iterations`` firings."""
        self.start(initial)
        fired = 0
        while (act := self.next_activation()) is not None:
            if fired >= max_iterations:
                raise RowLimitError(max_iterations)
            self.fire(act)
            fired += 1

    def alive(self) -> list[FactTuple]:
        """The working memory, in creation order."""
        return [f.value for f in self.facts if f.alive]


def outputs_of(facts: Sequence[FactTuple], outputs: Mapping[str, str], defaults: Mapping[str, Any]) -> dict[str, Value | None]:
    """Per output tensor: the first argument of the newest fact of its predicate, else the
    default (None when there is neither). Raises :class:`RowOutputError` when that newest
    fact has no argument. (Whether the value fits the output's dtype is the engine's check.)"""
    out: dict[str, Value | None] = {}
    for tensor, predicate in outputs.items():
        newest = [f for f in facts if f[0] == predicate]
        if newest and len(newest[-1]) == 1:
            raise RowOutputError(f"output {tensor!r}: the newest fact of its predicate has no argument")
        default = defaults.get(tensor)
        out[tensor] = newest[-1][1] if newest else (None if default is None else normalise(default))
    return out


def run_row(ruleset: RuleSet, row_facts: Iterable[Sequence[Any]] = (), *, outputs: Mapping[str, str] | None = None,
            defaults: Mapping[str, Any] | None = None, max_iterations: int = 1000) -> RowResult:
    """Runs one row: the rule set's facts, then ``row_facts`` (the bindings, in spec order)."""
    row = Row(ruleset)
    initial = [tuple(f.as_list()) for f in ruleset.facts] + [tuple(f) for f in row_facts]
    row.run(initial, max_iterations)
    final = row.alive()
    return RowResult(final, [name for name, _ in row.firings], row.firings, outputs_of(final, outputs or {}, defaults or {}))


def binding_facts(inputs: Mapping[str, Any], bindings: Mapping[str, str], row: int) -> list[FactTuple]:
    """Row ``row`` of each bound input as a fact, in binding order: shape [N] gives one
    argument, [N, k] gives k; bytes become strings (UTF-8)."""
    out: list[FactTuple] = []
    for tensor, predicate in bindings.items():
        value = inputs[tensor][row]
        items = list(value) if hasattr(value, "__len__") and not isinstance(value, (str, bytes)) else [value]
        out.append((predicate, *(_arg(v) for v in items)))
    return out


def _arg(value: Any) -> Value:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, str):
        return value
    return float(value) + 0.0


def run_batch(ruleset: RuleSet, inputs: Mapping[str, Any], *, bindings: Mapping[str, str], outputs: Mapping[str, str],
              defaults: Mapping[str, Any] | None = None, max_iterations: int = 1000) -> list[RowResult | RowLimitError | RowOutputError]:
    """Every row of a batch; a row that fails gives its error instead of a result."""
    rows = len(next(iter(inputs.values()))) if inputs else 1
    results: list[RowResult | RowLimitError | RowOutputError] = []
    for r in range(rows):
        try:
            results.append(run_row(ruleset, binding_facts(inputs, bindings, r), outputs=outputs, defaults=defaults, max_iterations=max_iterations))
        except (RowLimitError, RowOutputError) as exc:
            results.append(exc)
    return results
