"""Translates rule sets and facts into CLIPS 6.4 (through clipspy) and runs them.

Used by tests/test_rules_clips.py (agreement with the reference and the engine) and by
bench/rules.py. Mapping (shared/reference/RULES_SEMANTICS.md §5-§6):

* predicates become symbols ``p0, p1, ...`` and rules ``r0, r1, ...`` (our names may not be
  CLIPS symbols); variables become ``?v0, ?v1, ...``; ``?_`` becomes ``?``;
* ordered facts, no deftemplates; every number is written as a float literal and every string
  as a CLIPS STRING, on both sides, so CLIPS's INTEGER/FLOAT and STRING/SYMBOL distinctions
  never arise;
* ``{ bind = "?f", pattern = [...] }`` is ``?f <- (...)``; ``not`` is ``(not (...))``;
  guards are ``(test ...)``, with ``==`` on operands of unknown type written as
  "both numbers and ``=``, or both lexemes and ``eq``" (``=`` errors on strings);
* salience is ``(declare (salience N))``; the strategy stays CLIPS's default, depth;
* each RHS starts with ``(fired K)``, a Python callback recording the firing order.

``row_field=True`` (the benchmark's "CLIPS doing its best") adds a row id as the first field
of every fact and pattern, plus a ``(row ?r)`` pattern first in every rule, so all rows of a
batch share one environment and one ``run``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import clips

from infer_runtime.rules.guard import Binary, Node, Num, Str, Unary, Var
from infer_runtime.rules.ruleset import (
    AssertAction,
    Atom,
    NotCondition,
    PatternCondition,
    RetractAction,
    RuleSet,
    TestCondition,
)

FactTuple = tuple[Any, ...]
ROW = "row"  # the row-id fact's symbol in row_field mode (our predicates map to p<N>, never this)


def number(value: float) -> str:
    """A CLIPS FLOAT literal (``1.0``, ``1e-07``); non-finite values have no literal."""
    if not math.isfinite(value):
        raise ValueError(f"CLIPS has no literal for {value}")
    return repr(float(value) + 0.0)


def string(value: str) -> str:
    """A CLIPS STRING literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _all(*parts: str) -> str:
    """``(and ...)`` of the parts that are not ``TRUE``."""
    real = [p for p in parts if p != "TRUE"]
    return "TRUE" if not real else real[0] if len(real) == 1 else f"(and {' '.join(real)})"


def constant(value: Any) -> str:
    return string(value) if isinstance(value, str) else number(value)


@dataclass(slots=True)
class ClipsRow:
    """What CLIPS did with one row."""

    facts: list[FactTuple]
    fired: list[str]
    exhausted: bool  # activations left after the limit


class ClipsRules:
    """One CLIPS environment holding a translated rule set, reused for every row."""

    def __init__(self, ruleset: RuleSet, *, row_field: bool = False) -> None:
        self.ruleset = ruleset
        self.row_field = row_field
        self.env = clips.Environment()
        self.predicates: dict[str, str] = {}
        self._fired: list[int] = []
        self._fired_rows: list[tuple[int, int]] = []
        self.env.define_function(self._on_fire, name="fired")
        for fact in ruleset.facts:
            self._pred(fact.predicate)
        self.sources = [self._rule(i) for i in range(len(ruleset.rules))]
        for source in self.sources:
            self.env.build(source)

    def _back(self, symbol: str) -> str | None:
        for pred, sym in self.predicates.items():
            if sym == symbol:
                return pred
        return None

    def _on_fire(self, index: int, row: float = -1.0) -> None:
        self._fired.append(int(index))
        if self.row_field:
            self._fired_rows.append((int(row), int(index)))

    def _pred(self, predicate: str) -> str:
        return self.predicates.setdefault(predicate, f"p{len(self.predicates)}")

    # -- translation ---------------------------------------------------------------------
    def _rule(self, index: int) -> str:
        rule = self.ruleset.rules[index]
        names: dict[str, str] = {}

        def var(name: str) -> str:
            return "?" if name == "?_" else names.setdefault(name, f"?v{len(names)}")

        def arg(value: Any) -> str:
            return var(value) if isinstance(value, str) and value.startswith("?") else constant(value)

        def pattern(atom: Atom) -> str:
            head = [self._pred(atom.predicate)] + (["?row"] if self.row_field else [])
            return "(" + " ".join(head + [arg(a) for a in atom.args]) + ")"

        lhs: list[str] = ["(row ?row)"] if self.row_field else []
        for cond in rule.when:
            if isinstance(cond, PatternCondition):
                lhs.append(f"{var(cond.bind)} <- {pattern(cond.pattern)}" if cond.bind else pattern(cond.pattern))
            elif isinstance(cond, TestCondition):
                lhs.append(f"(test {self._guard(cond.node, var)})")
            else:
                assert isinstance(cond, NotCondition)
                saved = dict(names)
                lhs.append(f"(not {pattern(cond.pattern)})")
                names.clear()  # variables first seen inside the not are local to it
                names.update(saved)
        rhs = [f"(fired {index} ?row)" if self.row_field else f"(fired {index})"]
        for action in rule.then:
            if isinstance(action, AssertAction):
                rhs.append(f"(assert {pattern(action.pattern)})")
            else:
                assert isinstance(action, RetractAction)
                rhs.append(f"(retract {var(action.variable)})")
        return f"(defrule r{index} (declare (salience {rule.salience})) {' '.join(lhs)} => {' '.join(rhs)})"

    def _guard(self, node: Node, var: Any) -> str:
        """An error-free CLIPS test: ``(and OK T)``, where OK says "our evaluation would not
        error" (respecting and/or short-circuits) and T is the value. Plain translation is not
        enough: in CLIPS an evaluation error inside a test halts the run and abandons the rest
        of the RHS whose assert triggered it, where DESIGN §10 just makes the guard false."""
        ok, value = self._truth(node, var)
        return value if ok == "TRUE" else f"(and {ok} {value})"

    def _val(self, node: Node, var: Any) -> tuple[str, str]:
        """(defined, value) of a value expression."""
        if isinstance(node, Num):
            return "TRUE", number(node.value)
        if isinstance(node, Str):
            return "TRUE", string(node.value)
        if isinstance(node, Var):
            return "TRUE", str(var(node.name))
        if isinstance(node, Unary):  # "-"
            ok, inner = self._val(node.operand, var)
            return _all(ok, f"(numberp {inner})"), f"(- 0.0 {inner})"
        assert isinstance(node, Binary)
        lok, left = self._val(node.left, var)
        rok, right = self._val(node.right, var)
        ok = _all(lok, rok, f"(numberp {left})", f"(numberp {right})", f"(<> {right} 0.0)" if node.op == "/" else "TRUE")
        return ok, f"({node.op} {left} {right})"

    def _truth(self, node: Node, var: Any) -> tuple[str, str]:
        """(no error, value) of a truth expression."""
        if isinstance(node, Unary):  # "not"
            ok, inner = self._truth(node.operand, var)
            return ok, f"(not {inner})"
        assert isinstance(node, Binary)
        if node.op in ("and", "or"):
            lok, left = self._truth(node.left, var)
            rok, right = self._truth(node.right, var)
            # the right side is evaluated only when the left does not decide
            decides = f"(not {left})" if node.op == "and" else left
            ok = _all(lok, "TRUE" if rok == "TRUE" else f"(or {decides} {rok})")
            return ok, f"({node.op} {left} {right})"
        lok, left = self._val(node.left, var)
        rok, right = self._val(node.right, var)
        if node.op in ("<", "<=", ">", ">="):
            return _all(lok, rok, f"(numberp {left})", f"(numberp {right})"), f"({node.op} {left} {right})"
        if isinstance(node.left, Str) or isinstance(node.right, Str):
            equal = f"(eq {left} {right})"
        else:
            equal = f"(or (and (numberp {left}) (numberp {right}) (= {left} {right})) (and (lexemep {left}) (eq {left} {right})))"
        return _all(lok, rok), equal if node.op == "==" else f"(not {equal})"

    def fact(self, value: Sequence[Any], row: int | None = None) -> str:
        head = [self._pred(str(value[0]))] + ([number(row)] if row is not None else [])
        return "(" + " ".join(head + [constant(v) for v in value[1:]]) + ")"

    # -- running -------------------------------------------------------------------------
    def run_row(self, row_facts: Iterable[Sequence[Any]] = (), max_iterations: int = 1000) -> ClipsRow:
        """Reset, assert the rule set's facts then ``row_facts`` in order, run."""
        env = self.env
        env.reset()
        self._fired = []
        for fact in self.ruleset.facts:
            env.assert_string(self.fact(fact.as_list()))
        for value in row_facts:
            env.assert_string(self.fact(value))
        env.run(max_iterations)
        exhausted = any(True for _ in env.activations())
        facts = [(self._back(f.template.name), *list(f)) for f in env.facts()]
        names = [self.ruleset.rules[i].name for i in self._fired]
        return ClipsRow(facts, names, exhausted)

    def run_batch(self, rows: Sequence[Sequence[Sequence[Any]]], max_iterations: int = 1000) -> list[list[str]]:
        """``row_field`` mode: every row's facts in one environment, asserted by one
        ``(assert ...)`` (cheaper than one call per fact), and one run; returns the firing
        order per row."""
        assert self.row_field
        env = self.env
        env.reset()
        self._fired_rows = []
        parts = []
        for r, row in enumerate(rows):
            parts.append(f"(row {number(r)})")
            parts.extend(self.fact(fact.as_list(), r) for fact in self.ruleset.facts)
            parts.extend(self.fact(value, r) for value in row)
        if parts:
            env.eval(f"(assert {' '.join(parts)})")
        env.run(max_iterations * max(1, len(rows)))
        fired: list[list[str]] = [[] for _ in rows]
        for r, i in self._fired_rows:
            fired[r].append(self.ruleset.rules[i].name)
        return fired

    def batch_outputs(self, rows: int, outputs: dict[str, str], defaults: dict[str, Any]) -> list[dict[str, Any]]:
        """After :meth:`run_batch`: per row, the first argument of the newest fact of each
        output predicate, else the default (read with one ``find-all-facts`` per output)."""
        out: list[dict[str, Any]] = [{t: defaults.get(t) for t in outputs} for _ in range(rows)]
        for tensor, predicate in outputs.items():
            symbol = self.predicates.get(predicate)
            if symbol is None:
                continue
            for f in env_facts(self.env, symbol):  # index order: the newest last
                values = list(f)
                if len(values) > 1:
                    out[int(values[0])][tensor] = values[1]
        return out


def env_facts(env: Any, symbol: str) -> list[Any]:
    """Every fact of one predicate, in creation order."""
    return list(env.eval(f"(find-all-facts ((?f {symbol})) TRUE)"))


# -- lockstep (RULES_SEMANTICS.md §8 A) ------------------------------------------------------


class _Capture(clips.Router):
    """Collects CLIPS's watch output (facts and activations) line by line."""

    def __init__(self) -> None:
        super().__init__("rules-lockstep", 30)
        self.buffer = ""

    def query(self, name: str) -> bool:
        return name in ("stdout", "wtrace")

    def write(self, name: str, message: str) -> None:
        self.buffer += message

    def take(self) -> list[str]:
        *lines, self.buffer = self.buffer.split("\n")
        return lines


ActivationKey = tuple[int, tuple[int, ...]]  # rule index, CLIPS fact indices of its positive patterns


@dataclass(slots=True)
class LockstepResult:
    """A row run in lockstep: the firings both made, and the final facts of each."""

    fired: list[str]
    ours: list[FactTuple]
    theirs: list[FactTuple]
    limit_reached: bool


class Lockstep:
    """Runs our reference and CLIPS side by side on one row. Before each firing, the
    reference's choice must be in CLIPS's top group: the activations of the top salience that
    the newest change created (CLIPS orders them "arbitrarily"); CLIPS is then steered to fire
    exactly that activation. This checks everything CLIPS's depth strategy defines (salience,
    recency across changes, refraction, which activations exist and when they are dropped)
    and nothing it leaves open."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.clips = ClipsRules(ruleset)
        self.capture = _Capture()
        env = self.clips.env
        env.add_router(self.capture)
        env.eval("(watch facts)")
        env.eval("(watch activations)")
        self.change = 0
        self.created: dict[ActivationKey, int] = {}

    @staticmethod
    def _key(text: str) -> ActivationKey:
        """``"r2: f-1,*,f-3"`` → ``(2, (1, 3))``."""
        rule, _, basis = text.strip().partition(":")
        facts = tuple(int(part.strip()[2:]) for part in basis.split(",") if part.strip().startswith("f-"))
        return int(rule.strip()[1:]), facts

    def _read_watch(self) -> None:
        for line in self.capture.take():
            text = line.strip()
            if text.startswith(("==> f-", "<== f-")):
                self.change += 1
            elif text.startswith("==> Activation"):
                self.created[self._key(text.split(None, 3)[3])] = self.change
            elif text.startswith("<== Activation"):
                self.created.pop(self._key(text.split(None, 3)[3]), None)

    def run(self, row: Iterable[Sequence[Any]], max_steps: int = 60) -> LockstepResult:
        from reference.rules import Row  # the tests' reference (tests/ is on sys.path there)

        env = self.clips.env
        ours = Row(self.clips.ruleset)
        initial = [tuple(f.as_list()) for f in self.clips.ruleset.facts] + [tuple(f) for f in row]
        env.reset()
        self._read_watch()
        ours.start(initial)
        for value in initial:
            env.assert_string(self.clips.fact(value))
            self._read_watch()
        fired: list[str] = []
        for _ in range(max_steps):
            act = ours.next_activation()
            agenda = list(env.activations())
            if act is None:
                assert agenda == [], f"CLIPS has activations left that we do not: {[str(a) for a in agenda]}"
                break
            want: ActivationKey = (act.rule, tuple(i + 1 for i in act.facts))  # CLIPS numbers facts from 1
            keys = [self._key(str(a).split(None, 1)[1]) for a in agenda]
            assert agenda, f"we fire {want}, CLIPS's agenda is empty"
            top_salience, top_change = agenda[0].salience, self.created.get(keys[0])
            group = {k for a, k in zip(agenda, keys) if a.salience == top_salience and self.created.get(k) == top_change}
            assert want in group, f"we fire {want}; CLIPS's top group is {sorted(group)} (agenda {[str(a) for a in agenda]}), after {fired}"
            target = agenda[keys.index(want)]
            target.salience = 10000  # steer CLIPS to our choice; the group's order is CLIPS's own
            env.reorder()
            ours.fire(act)
            env.run(1)
            self._read_watch()
            fired.append(self.clips.ruleset.rules[act.rule].name)
        limit = ours.next_activation() is not None
        theirs = [(self.clips._back(f.template.name), *list(f)) for f in env.facts()]
        return LockstepResult(fired, ours.alive(), theirs, limit)
