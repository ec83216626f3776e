"""One problem found in a spec, with where it is and how to fix it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

KeyPath = tuple["str | int", ...]
"""A path into the spec tree: mapping keys and list indices."""

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def format_path(path: KeyPath) -> str:
    """``("models", "a", "inputs", 0, "dtype")`` → ``models.a.inputs[0].dtype``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]".replace("'", '"') if '"' not in part else f"[{part!r}]"
    return out or "(root)"


@dataclass(frozen=True, slots=True)
class SpecIssue:
    """A problem in a spec: what is wrong, at which key, where it came from, and a fix."""

    message: str
    path: KeyPath = ()
    file: str | None = None
    line: int | None = None
    column: int | None = None
    origin: str | None = None  # "env INFER_RUNTIME_X", "--set a.b=1", "overrides[...]"; None = the file
    hint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def where(self) -> str:
        """``FILE:LINE:COL``, or the override that introduced the value."""
        if self.origin is not None:
            return self.origin
        if self.file is None:
            return "<spec>"
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.column or 1}"

    def format(self) -> str:
        """``specs/prod.toml:23:1: error: models.a.batching.max_batch_size: must be ≥ 1 (got 0)``."""
        located = f"{format_path(self.path)}: " if self.path else ""
        text = f"{self.where}: error: {located}{self.message}"
        return f"{text} ({self.hint})" if self.hint else text

    def as_dict(self) -> dict[str, Any]:
        """The issue as JSON-ready data (``--format json``)."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "origin": self.origin,
            "path": format_path(self.path),
            "keys": list(self.path),
            "message": self.message,
            "hint": self.hint,
        }
