"""Names, versions, environments and references (``name``, ``name@1.2.0``, ``name@production``).

Versions start with a digit and environments with a letter, so the part after ``@`` is never
ambiguous. The C++ reader (``csrc/registry/reference.cpp``) implements the same grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidReferenceError

MAX_LENGTH = 128
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
VERSION_RE = re.compile(r"[0-9][A-Za-z0-9._-]*")
ENVIRONMENT_RE = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed reference: exactly one of ``version`` and ``environment`` is set, or neither
    (the latest registered version)."""

    name: str
    version: str | None = None
    environment: str | None = None

    def __str__(self) -> str:
        suffix = self.version or self.environment
        return f"{self.name}@{suffix}" if suffix else self.name


def _check(kind: str, value: str, pattern: re.Pattern[str], rule: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_LENGTH or not pattern.fullmatch(value):
        raise InvalidReferenceError(f"invalid {kind} {value!r}: {rule} (at most {MAX_LENGTH} characters)")
    return value


def check_name(name: str) -> str:
    """Returns ``name`` if it is a valid model name, else raises InvalidReferenceError."""
    return _check("model name", name, NAME_RE, "use lower-case letters, digits, '_' and '-', starting with a letter or digit")


def check_version(version: str) -> str:
    """Returns ``version`` if valid (starts with a digit: ``1``, ``1.2.0``, ``2-rc1``)."""
    return _check("version", version, VERSION_RE, "a version starts with a digit, then letters, digits, '.', '_' or '-'")


def check_environment(environment: str) -> str:
    """Returns ``environment`` if valid (starts with a letter: ``production``)."""
    return _check("environment", environment, ENVIRONMENT_RE, "an environment starts with a letter, then letters, digits, '.', '_' or '-'")


def parse_reference(text: str) -> Reference:
    """Parses ``name``, ``name@version`` or ``name@environment``.

    Raises:
        InvalidReferenceError: naming what is wrong.
    """
    if not isinstance(text, str) or not text:
        raise InvalidReferenceError(f"invalid reference {text!r}: expected name, name@version or name@environment")
    name, at, suffix = text.partition("@")
    check_name(name)
    if not at:
        return Reference(name)
    first = suffix[:1]
    if first and first in "0123456789":
        return Reference(name, version=check_version(suffix))
    if first and first.isascii() and first.isalpha():
        return Reference(name, environment=check_environment(suffix))
    raise InvalidReferenceError(f"invalid reference {text!r}: after '@' put a version (starting with a digit) or an environment (starting with a letter)")


def next_integer_version(existing: list[str]) -> str:
    """The version given when none is: one more than the largest all-digit version, or 1."""
    numbers = [int(v) for v in existing if v.isascii() and v.isdigit()]
    return str(max(numbers, default=0) + 1)


__all__ = ["Reference", "check_environment", "check_name", "check_version", "next_integer_version", "parse_reference"]
