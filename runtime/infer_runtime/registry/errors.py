"""The registry's exceptions: every one derives from :class:`RegistryError`.

Where a builtin fits, the class derives from it too (``LookupError`` for unknown names,
``ValueError`` for malformed input), as the rest of :mod:`infer_runtime.errors` does.
"""

from __future__ import annotations

from infer_runtime.errors import InferRuntimeError


class RegistryError(InferRuntimeError):
    """Base of every registry error; the message is meant for the user as it stands."""

    code = "UNAVAILABLE"


class RegistryNotFoundError(RegistryError, LookupError):
    """An unknown model name, version or environment; the message lists what exists."""

    code = "NOT_FOUND"


class InvalidReferenceError(RegistryError, ValueError):
    """A malformed name, version, environment or reference (``name@version|environment``)."""

    code = "INVALID_ARGUMENT"


class RegistryConflictError(RegistryError, ValueError):
    """The operation contradicts what the registry holds (a version registered twice with
    different content, a rollback past the first deployment)."""

    code = "INVALID_ARGUMENT"


class RegistryFileError(RegistryError):
    """The file is not a usable registry: corrupt, not a registry, or of a newer schema."""


class RegistryBusyError(RegistryError):
    """Other writers kept the registry locked longer than the retry budget."""


class ArtifactIntegrityError(RegistryError):
    """A stored artifact is missing, or its size or sha256 differs from what was registered:
    it is refused, never served."""


__all__ = [
    "ArtifactIntegrityError",
    "InvalidReferenceError",
    "RegistryBusyError",
    "RegistryConflictError",
    "RegistryError",
    "RegistryFileError",
    "RegistryNotFoundError",
]
