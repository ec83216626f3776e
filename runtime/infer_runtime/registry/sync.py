"""``SyncRegistry``: the blocking registry API for scripts and the CLI."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from ._core import (
    Core,
    Deployments,
    Events,
    Versions,
    check_metadata,
    check_source,
    integrity_error,
    store,
    verify_report,
)
from ._db import RETRY_BUDGET_S, SyncDb, connect_sync, run_sync, sleep_blocking
from .artifacts import check_artifact
from .records import Deployment, ModelVersion, Resolution, VerifyReport
from .refs import check_name, check_version


class SyncRegistry:
    """A model registry file, opened for reading and writing (blocking calls).

    Args:
        path: the SQLite file; created (with its directory) on first use unless ``create``
            is false.
        create: create a missing file; false raises RegistryFileError instead.
        busy_budget_s: how long a call retries while other processes hold the write lock
            before it raises RegistryBusyError.

    Raises:
        RegistryFileError: the file is corrupt, not a registry, or of a newer schema.

    Use as a context manager, or call :meth:`close`. Safe to use from several processes at
    once; one instance belongs to one thread at a time.

    .. versionadded:: 0.1
    """

    def __init__(self, path: str | Path, *, create: bool = True, busy_budget_s: float = RETRY_BUDGET_S) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection = connect_sync(self.path, create=create)
        self._core = Core(SyncDb(self._conn), self.path, sleep_blocking, busy_budget_s)
        try:
            run_sync(self._core.prepare())
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        """Closes the connection (idempotent)."""
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def register(self, name: str, file: str | Path, version: str | None = None, backend: str | None = None, metadata: Mapping[str, Any] | None = None) -> ModelVersion:
        """Copies ``file`` into the artifact store and records it as ``name@version``.

        Args:
            name: model name (lower-case letters, digits, '_' and '-').
            file: the artifact to register (copied; later edits to it do not matter).
            version: starts with a digit; omitted = one more than the largest integer version.
            backend: what serves it; default from the suffix (.onnx → onnxruntime,
                .plan/.engine → tensorrt, .toml/.clp → rules).
            metadata: JSON object stored with the version.

        Returns:
            The new version, or the existing one when exactly this content is already
            registered under ``name@version``.

        Raises:
            InvalidReferenceError: bad name, version, backend or metadata.
            RegistryConflictError: ``name@version`` exists with different content.
        """
        check_name(name)
        if version is not None:
            check_version(version)
        meta = check_metadata(metadata)
        source = check_source(file)
        stored = store(self._core.ctx.root, source)
        return run_sync(self._core.register(name, version, stored, source.name, backend, meta))

    def get(self, name: str, version: str) -> ModelVersion:
        """The version ``name@version``; RegistryNotFoundError lists what exists."""
        return run_sync(self._core.get(name, version))

    def list(self, name: str | None = None) -> Versions:
        """Every registered version (of ``name``), by name then registration order."""
        return run_sync(self._core.list(name))

    def resolve(self, ref: str, environment: str | None = None, *, verify: bool = False) -> Resolution:
        """Resolves ``name``, ``name@version`` or ``name@environment``.

        Args:
            ref: the reference; a bare ``name`` is the latest registered version.
            environment: resolve a bare ``name`` in this environment instead.
            verify: also check the artifact's size and sha256 (ArtifactIntegrityError, and
                an ``artifact_rejected`` event, when it fails).
        """
        resolution = run_sync(self._core.resolve(ref, environment))
        if verify:
            model = resolution.model
            problem = check_artifact(model.artifact, model.sha256, model.size)
            if problem is not None:
                run_sync(self._core.rejected(model, problem))
                raise integrity_error(resolution, problem)
        return resolution

    def promote(self, name: str, version: str, environment: str, note: str | None = None) -> Deployment:
        """Deploys ``name@version`` to ``environment`` (it becomes ``name@environment``)."""
        return run_sync(self._core.promote(name, version, environment, note))

    def rollback(self, name: str, environment: str, note: str | None = None) -> Deployment:
        """Returns ``name@environment`` to the deployment before the current one, recorded as
        a new deployment; repeated rollbacks step further back. Rolling back past the first
        deployment raises RegistryConflictError."""
        return run_sync(self._core.rollback(name, environment, note))

    def history(self, name: str, environment: str | None = None) -> Deployments:
        """Deployments of ``name`` (in ``environment``), oldest first."""
        return run_sync(self._core.history(name, environment))

    def current(self, name: str | None = None) -> Deployments:
        """The deployment now current in each environment (of ``name``), by name and environment."""
        return run_sync(self._core.current(name))

    def events(self, name: str | None = None, limit: int | None = None) -> Events:
        """The append-only event log (of ``name``), oldest first; ``limit`` keeps the newest."""
        return run_sync(self._core.events(name, limit))

    def deployed(self, environment: str) -> dict[str, Resolution]:
        """Every model's current deployment in ``environment``."""
        return run_sync(self._core.deployed(environment))

    def verify(self) -> VerifyReport:
        """Checks the database (``integrity_check``, foreign keys) and every artifact's size
        and sha256; refused artifacts are logged as ``artifact_rejected`` events."""
        integrity, versions = run_sync(self._core.integrity())
        report = verify_report(integrity, versions)
        for problem in report.problems:
            run_sync(self._core.rejected(problem.model, problem.problem))
        return report
