"""Guards (``{ test = "?fraud > 0.9 and ?c == 'NG'" }``): tokenizer, parser, static checks.

The grammar (DESIGN §10), loosest binding first::

    guard := or
    or    := and ("or" and)*
    and   := not ("and" not)*
    not   := "not" not | cmp
    cmp   := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)?
    sum   := prod (("+" | "-") prod)*
    prod  := unary (("*" | "/") unary)*
    unary := "-" unary | atom
    atom  := NUMBER | STRING | VARIABLE | "(" or ")"

Strings are quoted with ' or "; a backslash takes the next character as it is ('it\\'s').
Every expression is either a *value* (number or string) or a *truth* (a comparison or a
combination of them); the parser checks the kinds statically so a guard never asks whether
a number is true. String literals ('NG' or "NG") may only be compared with ``==``/``!=``.
Evaluation lives with each engine (the C++ engine, tests/reference/rules.py): an error at
run time (division by zero, arithmetic or ``<`` on a string) makes the whole guard false.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

VARIABLE = re.compile(r"\?[A-Za-z_][A-Za-z0-9_]*")
"""A variable: ``?`` then a letter or ``_``, then letters, digits and ``_``. ``?_`` is the wildcard."""

COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
ARITHMETIC = ("+", "-", "*", "/")

Kind = Literal["value", "truth"]


class GuardSyntaxError(ValueError):
    """A guard that does not parse; ``column`` is 1-based inside the guard text."""

    def __init__(self, message: str, column: int, hint: str | None = None) -> None:
        super().__init__(f"{message} at column {column}")
        self.message = message
        self.column = column
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Num:
    """A number literal (always a float, as every number in the rules language)."""

    value: float
    column: int


@dataclass(frozen=True, slots=True)
class Str:
    """A string literal."""

    value: str
    column: int


@dataclass(frozen=True, slots=True)
class Var:
    """A variable reference, ``?x``."""

    name: str
    column: int


@dataclass(frozen=True, slots=True)
class Unary:
    """``-x`` (op ``"-"``) or ``not x`` (op ``"not"``)."""

    op: str
    operand: Node
    column: int


@dataclass(frozen=True, slots=True)
class Binary:
    """Arithmetic, a comparison, ``and`` or ``or``."""

    op: str
    left: Node
    right: Node
    column: int


Node = Num | Str | Var | Unary | Binary


def variables(node: Node) -> list[Var]:
    """Every variable reference in ``node``, left to right."""
    if isinstance(node, Var):
        return [node]
    if isinstance(node, Unary):
        return variables(node.operand)
    if isinstance(node, Binary):
        return variables(node.left) + variables(node.right)
    return []


# -- tokens --------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
      | (?P<num>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
      | (?P<var>\?[A-Za-z_][A-Za-z0-9_]*)
      | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<op><=|>=|==|!=|[-+*/<>()])
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)

_WORDS = ("and", "or", "not")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)  # a backslash takes the next character as it is
_MISTAKES = {"&&": "and", "||": "or", "!": "not", "=": "==", "<>": "!=", "=<": "<=", "=>": ">="}


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # num var str op word end
    text: str
    column: int  # 1-based


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    i = 0
    while i < len(text):
        for wrong, right in sorted(_MISTAKES.items(), key=lambda kv: -len(kv[0])):
            if text.startswith(wrong, i) and not any(text.startswith(op, i) for op in ("==", "!=", "<=", ">=") if len(op) >= len(wrong)):
                raise GuardSyntaxError(f"unexpected {wrong!r}", i + 1, f"use {right!r}")
        match = _TOKEN.match(text, i)
        if match is None:
            char = text[i]
            if char == "?":
                raise GuardSyntaxError("'?' must start a variable name such as ?x", i + 1)
            if char in "'\"":
                raise GuardSyntaxError("unterminated string", i + 1, f"close it with {char}")
            raise GuardSyntaxError(f"unexpected character {char!r}", i + 1)
        kind = match.lastgroup or ""
        if kind == "num" and match.end() < len(text) and (text[match.end()].isalpha() or text[match.end()] == "_"):
            raise GuardSyntaxError(f"unexpected character {text[match.end()]!r} after a number", match.end() + 1)
        if kind == "word" and match.group() not in _WORDS:
            word = match.group()
            hint = f"use {word.lower()!r}" if word.lower() in _WORDS else "variables start with '?'; strings are quoted"
            raise GuardSyntaxError(f"unknown word {word!r}", i + 1, hint)
        if kind != "ws":
            out.append(_Tok(kind, match.group(), i + 1))
        i = match.end()
    out.append(_Tok("end", "", len(text) + 1))
    return out


# -- parser --------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def at(self, *texts: str) -> bool:
        tok = self.peek()
        return tok.kind in ("op", "word") and tok.text in texts

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise GuardSyntaxError("empty guard", 1, "write a comparison such as ?x > 0.5")
        node, kind = self.or_()
        tok = self.peek()
        if tok.kind != "end":
            raise GuardSyntaxError(f"unexpected {_show(tok)}", tok.column, "join conditions with 'and' or 'or'" if tok.kind in ("var", "num", "str") else None)
        if kind != "truth":
            raise GuardSyntaxError("a guard must be a comparison (or comparisons joined by and/or/not), not a value", 1, "compare it, e.g. ... > 0")
        return node

    def _truth(self, node: Node, kind: Kind, word: str) -> None:
        if kind != "truth":
            raise GuardSyntaxError(f"{word!r} needs comparisons on both sides, not a value", node.column)

    def or_(self) -> tuple[Node, Kind]:
        left, kind = self.and_()
        while self.at("or"):
            tok = self.take()
            self._truth(left, kind, "or")
            right, rkind = self.and_()
            self._truth(right, rkind, "or")
            left, kind = Binary("or", left, right, tok.column), "truth"
        return left, kind

    def and_(self) -> tuple[Node, Kind]:
        left, kind = self.not_()
        while self.at("and"):
            tok = self.take()
            self._truth(left, kind, "and")
            right, rkind = self.not_()
            self._truth(right, rkind, "and")
            left, kind = Binary("and", left, right, tok.column), "truth"
        return left, kind

    def not_(self) -> tuple[Node, Kind]:
        if self.at("not"):
            tok = self.take()
            operand, kind = self.not_()
            self._truth(operand, kind, "not")
            return Unary("not", operand, tok.column), "truth"
        return self.cmp()

    def cmp(self) -> tuple[Node, Kind]:
        left, kind = self.sum()
        if not self.at(*COMPARISONS):
            return left, kind
        tok = self.take()
        right, rkind = self.sum()
        for side, side_kind in ((left, kind), (right, rkind)):
            if side_kind != "value":
                raise GuardSyntaxError(f"{tok.text!r} compares values, not conditions", side.column, "use parentheses and 'and'/'or'")
            if isinstance(side, Str) and tok.text not in ("==", "!="):
                raise GuardSyntaxError(f"strings compare with == and != only, not {tok.text!r}", side.column)
        if self.at(*COMPARISONS):
            nxt = self.peek()
            raise GuardSyntaxError(f"comparisons do not chain ({tok.text} then {nxt.text})", nxt.column, "write a < b and b < c")
        return Binary(tok.text, left, right, tok.column), "truth"

    def sum(self) -> tuple[Node, Kind]:
        left, kind = self.prod()
        while self.at("+", "-"):
            tok = self.take()
            right, rkind = self.prod()
            left = self._arith(tok, left, kind, right, rkind)
            kind = "value"
        return left, kind

    def prod(self) -> tuple[Node, Kind]:
        left, kind = self.unary()
        while self.at("*", "/"):
            tok = self.take()
            right, rkind = self.unary()
            left = self._arith(tok, left, kind, right, rkind)
            kind = "value"
        return left, kind

    def _arith(self, tok: _Tok, left: Node, kind: Kind, right: Node, rkind: Kind) -> Node:
        for side, side_kind in ((left, kind), (right, rkind)):
            if side_kind != "value":
                raise GuardSyntaxError(f"{tok.text!r} needs numbers, not a condition", side.column)
            if isinstance(side, Str):
                raise GuardSyntaxError(f"{tok.text!r} needs numbers, not a string", side.column)
        return Binary(tok.text, left, right, tok.column)

    def unary(self) -> tuple[Node, Kind]:
        if self.at("-"):
            tok = self.take()
            operand, kind = self.unary()
            if kind != "value" or isinstance(operand, Str):
                raise GuardSyntaxError("'-' needs a number", operand.column)
            if isinstance(operand, Num):
                return Num(-operand.value, tok.column), "value"
            return Unary("-", operand, tok.column), "value"
        return self.atom()

    def atom(self) -> tuple[Node, Kind]:
        tok = self.take()
        if tok.kind == "num":
            return Num(float(tok.text), tok.column), "value"
        if tok.kind == "str":
            return Str(_ESCAPE.sub(r"\1", tok.text[1:-1]), tok.column), "value"
        if tok.kind == "var":
            if tok.text == "?_":
                raise GuardSyntaxError("the wildcard ?_ has no value to test", tok.column, "bind a named variable in a pattern")
            return Var(tok.text, tok.column), "value"
        if tok.kind == "op" and tok.text == "(":
            node, kind = self.or_()
            close = self.take()
            if close.kind != "op" or close.text != ")":
                raise GuardSyntaxError(f"expected ')' but found {_show(close)}", close.column, f"the '(' at column {tok.column} is not closed")
            return node, kind
        raise GuardSyntaxError(f"expected a number, a string, a variable or '(' but found {_show(tok)}", tok.column)


def _show(tok: _Tok) -> str:
    return "the end of the guard" if tok.kind == "end" else repr(tok.text)


def parse_guard(text: str) -> Node:
    """Parses a guard into its syntax tree. Raises :class:`GuardSyntaxError` (with a column)."""
    return _Parser(text).parse()


def unparse(node: Node) -> str:
    """A fully parenthesised rendering (for messages and tests)."""
    if isinstance(node, Num):
        return repr(node.value)
    if isinstance(node, Str):
        return repr(node.value)
    if isinstance(node, Var):
        return node.name
    if isinstance(node, Unary):
        return f"({node.op} {unparse(node.operand)})"
    return f"({unparse(node.left)} {node.op} {unparse(node.right)})"
