"""The model registry: versions, environments, promote and rollback in one SQLite file.

* :class:`SyncRegistry` (blocking) and :class:`Registry` (asyncio) manage the file.
* :func:`resolve_source` and :class:`RegistryWatcher` are what the runtime uses to load
  ``registry = "name@environment"`` models and to follow new deployments.
* The C++ engine reads the same file (``ir_registry_resolve``).

See docs/registry.md. ``Registry`` and ``RegistryWatcher`` (asyncio, aiosqlite) are
imported on first use, so the CLI's argument parsing stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ArtifactIntegrityError as ArtifactIntegrityError
from .errors import InvalidReferenceError as InvalidReferenceError
from .errors import RegistryBusyError as RegistryBusyError
from .errors import RegistryConflictError as RegistryConflictError
from .errors import RegistryError as RegistryError
from .errors import RegistryFileError as RegistryFileError
from .errors import RegistryNotFoundError as RegistryNotFoundError
from .records import ArtifactProblem as ArtifactProblem
from .records import Deployment as Deployment
from .records import Event as Event
from .records import ModelVersion as ModelVersion
from .records import Resolution as Resolution
from .records import VerifyReport as VerifyReport
from .refs import Reference as Reference
from .refs import parse_reference as parse_reference

if TYPE_CHECKING:
    from .aio import Registry as Registry
    from .source import ResolvedArtifact as ResolvedArtifact
    from .source import resolve_source as resolve_source
    from .sync import SyncRegistry as SyncRegistry
    from .watcher import OnChange as OnChange
    from .watcher import RegistryWatcher as RegistryWatcher

_LAZY = {
    "Registry": "aio",
    "SyncRegistry": "sync",
    "ResolvedArtifact": "source",
    "resolve_source": "source",
    "RegistryWatcher": "watcher",
    "OnChange": "watcher",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'infer_runtime.registry' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "ArtifactIntegrityError",
    "ArtifactProblem",
    "Deployment",
    "Event",
    "InvalidReferenceError",
    "ModelVersion",
    "OnChange",
    "Reference",
    "Registry",
    "RegistryBusyError",
    "RegistryConflictError",
    "RegistryError",
    "RegistryFileError",
    "RegistryNotFoundError",
    "RegistryWatcher",
    "Resolution",
    "ResolvedArtifact",
    "SyncRegistry",
    "VerifyReport",
    "parse_reference",
    "resolve_source",
]
