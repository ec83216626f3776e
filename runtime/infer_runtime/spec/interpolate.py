"""``${VAR}``, ``${VAR:-default}``, ``${VAR:?message}`` and ``$$`` inside spec strings.

Only string values are interpolated (never keys). Unlike Docker Compose, an unset variable
without a default is an error, not an empty string. A ``$`` followed by anything else is
kept as it is. When a whole value came from interpolation and the schema wants a
non-string there (``http_port = "${PORT:-8000}"``), the text is converted with the same
strict rules as environment overrides.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .issues import KeyPath

_TOKEN = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}|\$\{")


class InterpolationError(Exception):
    """A ``${...}`` could not be resolved."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def interpolate_string(text: str, environ: Mapping[str, str]) -> str:
    """Resolves every ``${...}`` in ``text``."""
    if "$" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$$":
            return "$"
        name = match.group("name")
        if name is None:
            raise InterpolationError(f"malformed '${{' in {text!r}", "write ${NAME}, ${NAME:-default} or ${NAME:?message}; $$ is a literal $")
        value = environ.get(name)
        op, arg = match.group("op"), match.group("arg")
        if value is not None and (value != "" or op is None):
            return value
        if op == ":-":
            return arg
        if op == ":?":
            raise InterpolationError(f"${{{name}}}: {arg or 'required variable is unset or empty'}")
        raise InterpolationError(f"environment variable {name} is not set", f"set it, or give a default: ${{{name}:-value}}")

    return _TOKEN.sub(replace, text)


def interpolate(data: Any, environ: Mapping[str, str], path: KeyPath = ()) -> tuple[Any, list[tuple[KeyPath, InterpolationError]], set[KeyPath]]:
    """Interpolates every string in ``data``. Returns the new tree, the errors with their
    paths, and the paths of strings that contained a variable."""
    errors: list[tuple[KeyPath, InterpolationError]] = []
    touched: set[KeyPath] = set()

    def walk(value: Any, here: KeyPath) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, here + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, here + (i,)) for i, v in enumerate(value)]
        if isinstance(value, str) and "$" in value:
            try:
                out = interpolate_string(value, environ)
            except InterpolationError as exc:
                errors.append((here, exc))
                return value
            if "${" in value:
                touched.add(here)
            return out
        return value

    return walk(data, path), errors, touched
