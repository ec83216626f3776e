"""From a rules file to a checked tree (``check_rules``, import-light) and a :class:`RuleSet`.

Order, as for specs: parse (TOML or YAML, positions kept) → JSON Schema (the packaged copy,
with did-you-mean) → semantic checks. Every problem is collected and located.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..spec.issues import KeyPath, SpecIssue
from ..spec.schema import Schema, resolve
from ..spec.sources import Document, ParseError, read_document
from ..spec.validator import Problem, Validator, did_you_mean, show
from .schema import packaged_rules_schema
from .semantic import RulesProblem, check_rules_tree

if TYPE_CHECKING:
    from .ruleset import RuleSet

_KIND = re.compile(r"""^\s*["']?kind["']?\s*[=:]\s*["']?rules\b""", re.MULTILINE)


class _RulesValidator(Validator):
    """The spec validator, with one refinement for the language's unions of tables: a
    table in ``when``/``then`` is checked against the one alternative its key selects, so
    ``{ tset = "..." }`` gets "unknown key 'tset' (did you mean 'test'?)" and not a
    bare "expected a list or a table"."""

    def _any_of(self, value: Any, node: Schema, path: KeyPath, out: list[Problem]) -> None:
        options = [resolve(self.schema, o) for o in node["anyOf"]]
        tables = [o for o in options if o.get("type") == "object"]
        if not isinstance(value, dict) or not tables or any(self.is_valid(value, o) for o in options):
            super()._any_of(value, node, path, out)
            return
        chosen = [o for o in tables if set(o.get("required", ())) & set(value)]
        if len(chosen) == 1:
            self._check(value, chosen[0], path, out)
            return
        keys = sorted({k for o in tables for k in o.get("properties", {})})
        if len(chosen) > 1:
            clash = sorted({k for o in chosen for k in o.get("required", ()) if k in value})
            out.append(Problem(path, f"one condition or action per table (got {', '.join(clash)})", "split it into separate list items", "anyOf"))
            return
        if not value:
            out.append(Problem(path, "empty table", f"use one of the keys {', '.join(keys)}", "anyOf"))
        for key in value:
            out.append(Problem(path + (key,), f"unknown key {key!r}", did_you_mean(key, keys) or f"allowed keys: {', '.join(keys)}", "additionalProperties"))


_VALIDATOR: _RulesValidator | None = None


def _validator() -> _RulesValidator:
    global _VALIDATOR
    if _VALIDATOR is None:
        _VALIDATOR = _RulesValidator(packaged_rules_schema())
    return _VALIDATOR


@dataclass(slots=True)
class RulesCheck:
    """What checking one rules file found (the counterpart of the spec's ``CheckResult``)."""

    file: str
    document: Document | None = None
    data: dict[str, Any] | None = None
    issues: list[SpecIssue] = field(default_factory=list)
    text: str | None = None

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.issues

    def locate(self, path: KeyPath) -> tuple[int | None, int | None]:
        """Line and column of ``path`` (or its nearest located ancestor)."""
        return self.document.locate(path) if self.document else (None, None)

    def issue(self, path: KeyPath, message: str, hint: str | None, keyword: str = "") -> SpecIssue:
        """A located issue; YAML 1.1 boolean words get the "quote it" hint."""
        line, column = self.locate(path)
        if self.document is not None and path in self.document.yaml_bool_words and keyword in ("type", "enum", "pattern", "anyOf", "const"):
            word = self.document.yaml_bool_words[path]
            hint = f"YAML 1.1 reads {word} as a boolean; quote it: '{word}'"
        return SpecIssue(message, path, self.file, line, column, None, hint)

    def guard_issue(self, problem: RulesProblem) -> SpecIssue:
        """An issue inside a guard, located at the offending character where the guard's
        text appears verbatim after its key (no escapes, one line)."""
        line, column = self.locate(problem.path)
        guard = self.data_at(problem.path)
        if self.text is not None and line is not None and column is not None and isinstance(guard, str) and problem.guard_column is not None:
            lines = self.text.splitlines()
            if line - 1 < len(lines):
                found = lines[line - 1].find(guard, column - 1)
                if found >= 0:
                    column = found + problem.guard_column
        return SpecIssue(problem.message, problem.path, self.file, line, column, None, problem.hint)

    def data_at(self, path: KeyPath) -> Any:
        """The raw value at ``path`` (None if absent)."""
        node: Any = self.data
        for key in path:
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                return None
        return node


def looks_like_rules(text: str) -> bool:
    """Cheap pre-test for ``validate``'s dispatch: a top-level-looking ``kind = "rules"``."""
    return _KIND.search(text) is not None


def is_rules_document(data: Any) -> bool:
    """Whether a parsed document declares itself a rules file."""
    return isinstance(data, dict) and data.get("kind") == "rules"


def check_rules(path: str | os.PathLike[str], *, text: str | None = None, outputs: Mapping[str, str] | None = None,
                bindings: Mapping[str, str] | None = None) -> RulesCheck:
    """Checks one rules file and returns every problem found (never raises for file errors).

    Args:
        path: the rules file (``.toml``, ``.yaml`` or ``.yml``).
        text: the file's content, if already read.
        outputs: the model's ``rules.outputs`` (tensor → predicate): each predicate must be
            produced by a fact, a binding or an ``assert``.
        bindings: the model's ``rules.bindings`` (tensor → predicate), for that check.
    """
    name = os.fspath(path)
    result = RulesCheck(name)
    if text is None:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except FileNotFoundError:
            result.issues.append(SpecIssue("file not found", (), name))
            return result
        except (OSError, UnicodeDecodeError) as exc:
            result.issues.append(SpecIssue(f"cannot read file: {exc}", (), name))
            return result
    result.text = text
    try:
        result.document = read_document(name, text)
    except ParseError as exc:
        result.issues.append(exc.issue)
        return result
    _check_tree(result, result.document.data, outputs, bindings)
    return result


def check_rules_data(data: Mapping[str, Any], name: str = "<rules>", *, outputs: Mapping[str, str] | None = None,
                     bindings: Mapping[str, str] | None = None) -> RulesCheck:
    """Checks an in-memory rules tree (no positions): for generated rule sets and tests."""
    result = RulesCheck(name)
    _check_tree(result, dict(data), outputs, bindings)
    return result


def _check_tree(result: RulesCheck, data: dict[str, Any], outputs: Mapping[str, str] | None, bindings: Mapping[str, str] | None) -> None:
    result.data = data
    structural = _validator().problems(data)
    result.issues.extend(result.issue(p.path, p.message, p.hint, p.keyword) for p in structural)
    broken = [p.path for p in structural]
    for problem in check_rules_tree(data, broken, outputs, bindings):
        if problem.guard_column is not None:
            result.issues.append(result.guard_issue(problem))
        else:
            result.issues.append(result.issue(problem.path, problem.message, problem.hint))
    result.issues.sort(key=lambda i: (i.line or 0, i.column or 0))


def check_rules_for_model(rules_path: str | os.PathLike[str], options: Mapping[str, Any], *, spec_file: str,
                          options_path: KeyPath, locate: Callable[[KeyPath], tuple[int | None, int | None]] | None = None) -> list[SpecIssue]:
    """Every problem of a spec's ``rules`` model, for the spec-level check.

    The rules file's own problems are located in the rules file; problems of the model's
    options (an output reading a predicate nothing produces, a default naming no output) are
    located in the spec, at ``options_path`` (e.g. ``("models", "policy", "rules")``) through
    ``locate`` (the spec document's ``locate``).
    """
    outputs = dict(options.get("outputs") or {})
    bindings = dict(options.get("bindings") or {})
    result = check_rules(rules_path, outputs=outputs, bindings=bindings)

    def at_spec(path: KeyPath, message: str, hint: str | None) -> SpecIssue:
        full = options_path + path
        line, column = locate(full) if locate is not None else (None, None)
        return SpecIssue(message, full, spec_file, line, column, None, hint)

    out = []
    for issue in result.issues:
        if issue.path[:1] == ("outputs",) and issue.line is None:
            out.append(at_spec(issue.path, issue.message, issue.hint))
        else:
            out.append(issue)
    for tensor in options.get("defaults") or {}:
        if tensor not in outputs:
            out.append(at_spec(("defaults", tensor), f"default for {tensor!r}, which is not an output", f"outputs: {', '.join(outputs) or '(none)'}"))
    return out


def load_rules(path: str | os.PathLike[str], *, text: str | None = None) -> RuleSet:
    """Loads and checks a rules file into a :class:`RuleSet`.

    Raises:
        RulesError: with every problem found (``.issues``, as :class:`SpecError`).
    """
    from .errors import RulesError
    from .ruleset import RuleSet

    result = check_rules(path, text=text)
    if not result.ok or result.data is None:
        raise RulesError(result.issues, os.fspath(path))
    return RuleSet.from_checked(result.data, os.fspath(path))


def rules_from_data(data: Mapping[str, Any], name: str = "<rules>") -> RuleSet:
    """A :class:`RuleSet` from an in-memory tree (raises :class:`RulesError`)."""
    from .errors import RulesError
    from .ruleset import RuleSet

    result = check_rules_data(data, name)
    if not result.ok:
        raise RulesError(result.issues, name)
    return RuleSet.from_checked(dict(data), name)


__all__ = ["RulesCheck", "check_rules", "check_rules_data", "check_rules_for_model", "is_rules_document", "load_rules", "looks_like_rules", "rules_from_data", "show"]
