"""Registry model sources for the runtime: resolve a reference to a verified artifact.

:func:`resolve_source` is what assembly calls for a model with ``registry = "..."``; errors
are :class:`~infer_runtime.errors.ModelLoadError` naming the reference and what the registry
holds. The connection is read-only: resolving never writes the file (except to log a
refused artifact, best effort).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from infer_runtime.errors import ModelLoadError

from . import _ops
from ._core import Core, not_a_registry
from ._db import SyncDb, check_version, connect_sync, run_sync, sleep_blocking
from .artifacts import check_artifact
from .errors import RegistryError
from .records import Resolution
from .refs import check_environment, parse_reference

log = structlog.get_logger("infer_runtime.registry")


@dataclass(frozen=True, slots=True)
class ResolvedArtifact:
    """A verified artifact a reference resolved to, ready for a backend to open.

    Attributes:
        reference: the reference as given (``scorer@production``).
        name, version: the version it resolved to.
        environment: the environment resolved through (None for ``name@1.2``/``name``).
        path: absolute path of the stored artifact (its bytes were just verified).
        watched: True when a :class:`RegistryWatcher` of the runtime's environment reports
            changes of this reference (it is ``name@<that environment>``); pinned versions
            and bare names are not swapped by the watcher.
        deployment_id: the deployment resolved through, if any (identifies a change).
    """

    reference: str
    name: str
    version: str
    environment: str | None
    path: Path
    filename: str
    format: str
    backend: str
    sha256: str
    size: int
    created_at: datetime
    metadata: Mapping[str, Any] = field(default_factory=dict)
    watched: bool = False
    deployment_id: int | None = None

    @classmethod
    def from_resolution(cls, resolution: Resolution, watched_environment: str | None) -> ResolvedArtifact:
        """Flattens a :class:`Resolution`; ``watched_environment`` is the runtime's environment."""
        m = resolution.model
        watched = resolution.environment is not None and resolution.environment == watched_environment
        dep = resolution.deployment.id if resolution.deployment else None
        return cls(resolution.reference, m.name, m.version, resolution.environment, m.artifact, m.filename, m.format, m.backend, m.sha256, m.size, m.created_at, m.metadata, watched, dep)


def open_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to an existing registry of a schema this build reads."""
    conn = connect_sync(path, readonly=True)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        check_version(version, app_id, path)
        error = not_a_registry(path, version)
        if error is not None:
            raise error
    except sqlite3.Error as exc:
        conn.close()
        from ._db import translate

        raise translate(exc, path) from None
    except BaseException:
        conn.close()
        raise
    return conn


def record_rejection(path: Path, name: str, version: str, problem: str) -> None:
    """Logs a refused artifact: a structlog error, and an ``artifact_rejected`` event in the
    registry when the file is writable (best effort, never raises)."""
    log.error("registry_artifact_rejected", registry=str(path), model=name, version=version, problem=problem)
    try:
        conn = connect_sync(path, create=False)
    except RegistryError:
        return
    try:
        run_sync(Core(SyncDb(conn), path, sleep_blocking, 2.0)._tx(True, lambda db: _ops.log_event(db, _ops.Ctx(path), "artifact_rejected", name, version, note=problem)))
    except RegistryError:
        pass
    finally:
        conn.close()


def resolve_source(registry_path: Path, ref: str, environment: str) -> ResolvedArtifact:
    """Resolves a model source ``ref`` (``name@environment``, ``name@1.2``, ``name``) and
    verifies the artifact's size and sha256.

    Args:
        registry_path: the registry file (``[registry].path`` made absolute).
        ref: the model's ``registry =`` reference; a bare name is the latest version.
        environment: the runtime's ``[registry].environment`` (sets ``watched``; named in
            errors).

    Raises:
        ModelLoadError: the file is missing or unusable, the reference is malformed or names
            nothing (the message lists what the registry holds), or the artifact is missing
            or tampered with (refused, and logged).
    """
    path = Path(registry_path)
    where = f"registry reference {ref!r} (registry {path}, environment {environment!r})"
    try:
        check_environment(environment)
        parsed = parse_reference(ref)
        conn = open_readonly(path)
        try:
            core = Core(SyncDb(conn), path, sleep_blocking, 10.0)
            resolution = run_sync(core._tx(False, lambda db: _ops.resolve(db, core.ctx, parsed)))
        finally:
            conn.close()
    except RegistryError as exc:
        raise ModelLoadError(f"{where}: {exc}") from None
    artifact = ResolvedArtifact.from_resolution(resolution, environment)
    problem = check_artifact(artifact.path, artifact.sha256, artifact.size)
    if problem is not None:
        record_rejection(path, artifact.name, artifact.version, problem)
        raise ModelLoadError(f"{where}: {artifact.name}@{artifact.version}: artifact refused, never served ({problem})")
    return artifact
