"""Checks a rules file's schema cannot express, each located at the key it is about.

Variables: a pattern binds ``?x`` at its first occurrence; ``?_`` matches anything; a
variable first seen inside a ``not`` is local to that ``not`` (DESIGN §10: "a not sees only
bindings from earlier conditions"); guards and asserts may use only variables bound by
earlier positive patterns; ``bind`` names a fact, which only ``retract`` may use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..spec.issues import KeyPath
from ..spec.validator import did_you_mean, show
from .guard import VARIABLE, GuardSyntaxError, parse_guard, variables

WILDCARD = "?_"


@dataclass(frozen=True, slots=True)
class RulesProblem:
    """A semantic problem; ``guard_column`` (1-based) points inside a guard's text."""

    path: KeyPath
    message: str
    hint: str | None = None
    guard_column: int | None = None


def is_variable(value: Any) -> bool:
    """Whether a pattern argument is a variable (``?x``) or the wildcard (``?_``)."""
    return isinstance(value, str) and value.startswith("?")


class _Scope:
    """What the conditions before the current one have bound."""

    def __init__(self) -> None:
        self.values: set[str] = set()
        self.facts: set[str] = set()
        self.not_locals: set[str] = set()  # seen only inside a not: explains "unbound" errors


def check_rules_tree(data: Mapping[str, Any], broken: Iterable[KeyPath] = (), outputs: Mapping[str, str] | None = None,
                     bindings: Mapping[str, str] | None = None) -> list[RulesProblem]:
    """All semantic problems of a (structurally checked) rules tree.

    ``broken`` holds paths with structural problems: a rule at or under one is skipped
    (its schema messages are the useful ones). ``outputs``/``bindings`` are the model's
    options (tensor → predicate); when given, every output predicate must be producible.
    """
    out: list[RulesProblem] = []
    broken = list(broken)
    if any(b in ((), ("rules",), ("facts",)) for b in broken):
        return out
    facts = data.get("facts") or []
    for index, fact in enumerate(facts):
        _pattern(("facts", index), fact, None, "fact", out)
    rules = data.get("rules") or []
    first_name: dict[str, int] = {}
    for index, rule in enumerate(rules):
        path: KeyPath = ("rules", index)
        if not isinstance(rule, dict):
            continue
        name = rule.get("name")
        if isinstance(name, str):
            if name in first_name:
                out.append(RulesProblem(path + ("name",), f"duplicate rule name {name!r} (first at rules[{first_name[name]}])",
                                        "rule names must be unique: `_fired` and errors name rules"))
            else:
                first_name[name] = index
        _rule(path, rule, out)
    if outputs:
        out.extend(check_outputs(data, outputs, bindings or {}))
    # A problem inside a structurally broken value repeats what the schema said.
    return [p for p in out if not any(p.path[: len(b)] == b for b in broken)]


def produced_predicates(data: Mapping[str, Any], bindings: Mapping[str, str]) -> set[str]:
    """Predicates that can exist in working memory: facts, bindings and asserts."""
    found = {f[0] for f in data.get("facts") or [] if isinstance(f, list) and f and isinstance(f[0], str)}
    found |= {p for p in bindings.values() if isinstance(p, str)}
    for rule in data.get("rules") or []:
        for action in rule.get("then") or [] if isinstance(rule, dict) else []:
            pattern = action.get("assert") if isinstance(action, dict) else None
            if isinstance(pattern, list) and pattern and isinstance(pattern[0], str):
                found.add(pattern[0])
    return found


def check_outputs(data: Mapping[str, Any], outputs: Mapping[str, str], bindings: Mapping[str, str]) -> list[RulesProblem]:
    """An output naming a predicate that nothing can produce is always its default: an error."""
    produced = produced_predicates(data, bindings)
    out: list[RulesProblem] = []
    for tensor, predicate in outputs.items():
        if predicate not in produced:
            hint = did_you_mean(predicate, produced) or (f"produced: {', '.join(sorted(produced))}" if produced else "no rule asserts anything")
            out.append(RulesProblem(("outputs", tensor), f"output {tensor!r} reads predicate {predicate!r}, which no fact, binding or rule produces", hint))
    return out


def _rule(path: KeyPath, rule: Mapping[str, Any], out: list[RulesProblem]) -> None:
    scope = _Scope()
    for index, cond in enumerate(rule.get("when") or []):
        where = path + ("when", index)
        if isinstance(cond, list):
            _pattern(where, cond, scope, "positive", out)
        elif isinstance(cond, dict) and "test" in cond:
            _guard(where + ("test",), cond["test"], scope, out)
        elif isinstance(cond, dict) and "not" in cond:
            _pattern(where + ("not",), cond["not"], scope, "not", out)
        elif isinstance(cond, dict) and "bind" in cond:
            name = cond["bind"]
            _pattern(where + ("pattern",), cond.get("pattern") or [], scope, "positive", out)
            if name == WILDCARD:
                out.append(RulesProblem(where + ("bind",), "the wildcard ?_ cannot name a fact", 'use a name such as "?f"'))
            elif name in scope.values or name in scope.facts:
                out.append(RulesProblem(where + ("bind",), f"{name} is already bound by an earlier condition", "give the fact a name of its own"))
            else:
                scope.facts.add(name)
    for index, action in enumerate(rule.get("then") or []):
        where = path + ("then", index)
        if not isinstance(action, dict):
            continue
        if "assert" in action:
            _pattern(where + ("assert",), action["assert"], scope, "assert", out)
        elif "retract" in action:
            _retract(where + ("retract",), action["retract"], scope, out)


def _unbound(name: str, scope: _Scope) -> tuple[str, str]:
    message = f"{name} is not bound by an earlier pattern"
    if name in scope.not_locals:
        return message, "a variable first seen inside a `not` is local to it; bind it in a pattern before"
    hint = did_you_mean(name, scope.values)
    if hint is None and scope.values:
        hint = f"bound so far: {', '.join(sorted(scope.values))}"
    return message, hint or "bind it in a pattern of `when` before this point"


def _pattern(path: KeyPath, pattern: Any, scope: _Scope | None, mode: str, out: list[RulesProblem]) -> None:
    """``mode``: ``fact`` (constants only), ``positive`` (binds), ``not`` (locals), ``assert`` (uses)."""
    if not isinstance(pattern, list) or not pattern:
        return
    head = pattern[0]
    if not isinstance(head, str) or not head or head.startswith("?"):
        out.append(RulesProblem(path + (0,), f"the first item must be the predicate, a name (got {show(head)})",
                                'write ["predicate", arg, ...]; predicates are constants, never variables'))
    locals_here: set[str] = set()
    for index, arg in enumerate(pattern[1:], start=1):
        if not is_variable(arg):
            continue
        where = path + (index,)
        if arg != WILDCARD and not VARIABLE.fullmatch(arg):
            out.append(RulesProblem(where, f"{show(arg)} is not a variable name", "variables are ? then a letter or _, then letters, digits and _; strings may not start with '?'"))
            continue
        if mode == "fact":
            out.append(RulesProblem(where, f"facts hold constants, not variables (got {arg})", "facts are asserted as written at the start of every row"))
            continue
        assert scope is not None
        if arg == WILDCARD:
            if mode == "assert":
                out.append(RulesProblem(where, "the wildcard ?_ has no value to assert", "assert a constant or a bound variable"))
            continue
        if arg in scope.facts:
            out.append(RulesProblem(where, f"{arg} names a fact (bind), not a value", "only `retract` takes a fact variable"))
        elif mode == "positive":
            scope.values.add(arg)
        elif mode == "not":
            if arg not in scope.values:
                locals_here.add(arg)
        elif arg not in scope.values:
            message, hint = _unbound(arg, scope)
            out.append(RulesProblem(where, f"assert: {message}", hint))
    if mode == "not" and scope is not None:
        scope.not_locals |= locals_here - scope.values


def _guard(path: KeyPath, text: Any, scope: _Scope, out: list[RulesProblem]) -> None:
    if not isinstance(text, str):
        return
    try:
        node = parse_guard(text)
    except GuardSyntaxError as exc:
        out.append(RulesProblem(path, f"guard: {exc.message} (column {exc.column} of the guard)", exc.hint, exc.column))
        return
    for var in variables(node):
        if var.name in scope.facts:
            out.append(RulesProblem(path, f"guard: {var.name} names a fact (bind), not a value (column {var.column} of the guard)",
                                    "bind a value in the pattern, e.g. [\"p\", \"?x\"]", var.column))
        elif var.name not in scope.values:
            message, hint = _unbound(var.name, scope)
            out.append(RulesProblem(path, f"guard: {message} (column {var.column} of the guard)", hint, var.column))


def _retract(path: KeyPath, name: Any, scope: _Scope, out: list[RulesProblem]) -> None:
    if name in scope.facts:
        return
    if name in scope.values:
        out.append(RulesProblem(path, f"{name} is bound to a value, not a fact", f'name the fact: {{ bind = "{name}_fact", pattern = [...] }}, then retract that'))
    else:
        hint = did_you_mean(name, scope.facts) or 'name the fact in `when` with { bind = "?f", pattern = [...] }'
        out.append(RulesProblem(path, f"retract of {name}, which no `bind` condition names", hint))
