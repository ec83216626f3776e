"""The error a rules file raises when it cannot be loaded."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import SpecError
from ..spec.issues import SpecIssue


class RulesError(SpecError):
    """A rules file (or the model options that use it) is invalid; ``issues`` lists every
    problem, located as ``FILE:LINE:COL``. A :class:`SpecError`, so callers that catch spec
    problems catch these too."""

    def __init__(self, issues: Sequence[SpecIssue], file: str | None = None) -> None:
        super().__init__(issues)
        self.file = file
        lines = [issue.format() for issue in self.issues]
        where = f" in rules file {file}" if file else " in the rules"
        head = f"{len(lines)} problem{'s' if len(lines) != 1 else ''}{where}"
        self.args = (head + ":\n" + "\n".join(lines),)
