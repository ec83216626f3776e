"""The exception tree of infer-runtime.

Every error the runtime raises derives from :class:`InferRuntimeError`. Where a builtin
exception fits, the class also derives from it, so callers may catch either
(``except ValueError`` catches bad input, ``except TimeoutError`` catches deadlines).
Engine error codes (``ir_code`` in the C ABI) map to these classes in :data:`BY_CODE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infer_runtime.spec.issues import SpecIssue


class InferRuntimeError(Exception):
    """Base of every infer-runtime error. ``code`` is the engine's code name, if any."""

    code: str = "UNKNOWN"


class SpecError(InferRuntimeError, ValueError):
    """A spec file (or its overrides) is invalid. ``issues`` lists every problem found."""

    code = "INVALID_ARGUMENT"

    def __init__(self, issues: Sequence[SpecIssue]) -> None:
        self.issues: tuple[SpecIssue, ...] = tuple(issues)
        lines = [issue.format() for issue in self.issues]
        head = f"{len(lines)} problem{'s' if len(lines) != 1 else ''} in the spec"
        super().__init__(head + ":\n" + "\n".join(lines))


class InvalidInputError(InferRuntimeError, ValueError):
    """A request's inputs are wrong: unknown or missing tensor, dtype or shape mismatch."""

    code = "INVALID_ARGUMENT"


class ModelNotFoundError(InferRuntimeError, LookupError):
    """No model or pipeline of that name (or version) is served."""

    code = "NOT_FOUND"


class UnavailableError(InferRuntimeError):
    """The model is not ready, or the runtime is shutting down."""

    code = "UNAVAILABLE"


class QueueFullError(InferRuntimeError):
    """The model's queue is full: the request was rejected at once (overload)."""

    code = "RESOURCE_EXHAUSTED"


class DeadlineExceededError(InferRuntimeError, TimeoutError):
    """The request stayed queued past its timeout and never ran."""

    code = "DEADLINE_EXCEEDED"


class RequestCancelledError(InferRuntimeError):
    """The request was cancelled before it completed (by the caller or by shutdown)."""

    code = "CANCELLED"


class BackendError(InferRuntimeError):
    """The backend failed while running the batch that held this request."""

    code = "BACKEND"


class ModelLoadError(InferRuntimeError):
    """A model could not be loaded or assembled (missing file, signature mismatch, ...)."""

    code = "UNAVAILABLE"


class InternalError(InferRuntimeError):
    """An engine invariant broke; this is a bug worth reporting."""

    code = "INTERNAL"


BY_CODE: dict[str, type[InferRuntimeError]] = {
    "UNKNOWN": InternalError,
    "INVALID_ARGUMENT": InvalidInputError,
    "NOT_FOUND": ModelNotFoundError,
    "UNAVAILABLE": UnavailableError,
    "RESOURCE_EXHAUSTED": QueueFullError,
    "DEADLINE_EXCEEDED": DeadlineExceededError,
    "INTERNAL": InternalError,
    "CANCELLED": RequestCancelledError,
    "BACKEND": BackendError,
}
"""Engine code name → exception class raised for it."""

__all__ = [
    "BY_CODE",
    "BackendError",
    "DeadlineExceededError",
    "InferRuntimeError",
    "InternalError",
    "InvalidInputError",
    "ModelLoadError",
    "ModelNotFoundError",
    "QueueFullError",
    "RequestCancelledError",
    "SpecError",
    "UnavailableError",
]
