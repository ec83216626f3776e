"""``RegistryWatcher``: tells the runtime when deployments of its environment change.

Each poll is one ``PRAGMA data_version`` on a connection kept open (SQLite bumps it when
another connection commits), so an idle registry costs one tiny query per interval; only
after a change does the watcher read the environment's current deployments, verify the
changed artifacts, and call ``on_change``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable, Collection, Iterable
from pathlib import Path
from typing import Self

import structlog

from . import _ops
from ._core import Core
from ._db import SyncDb, run_sync, sleep_blocking
from .artifacts import check_artifact
from .errors import RegistryError
from .refs import check_environment
from .source import ResolvedArtifact, open_readonly, record_rejection

log = structlog.get_logger("infer_runtime.registry.watcher")

OnChange = Callable[[dict[str, ResolvedArtifact]], Awaitable[None]]
"""``await on_change({model name: newly deployed artifact})``."""


class RegistryWatcher:
    """Watches one environment of a registry file for new deployments.

    Args:
        path: the registry file (must exist).
        environment: the environment to follow (``production``).
        poll_interval_s: seconds between cheap checks; 0 = no background polling
            (:meth:`check_now` still works).
        on_change: awaited with every model whose current deployment changed since the last
            report, mapped to its verified artifact. A deployment whose artifact fails
            verification is logged and left out (retried on the next check); an exception
            from ``on_change`` is logged and the deployment counts as reported.
        models: report only these model names (default: every model of the environment).
        baseline: what the runtime already serves (the :func:`resolve_source` results); those
            resolved through ``environment`` set the starting point, so a promotion made
            between startup and :meth:`start` is reported by the first check. Without it,
            :meth:`start` takes the current deployments as the starting point.

    Model names here (``models``, the keys given to ``on_change``) are registry names
    (``ResolvedArtifact.name``), which may differ from the spec's model keys.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        path: str | Path,
        environment: str,
        poll_interval_s: float,
        on_change: OnChange,
        *,
        models: Collection[str] | None = None,
        baseline: Iterable[ResolvedArtifact] | None = None,
    ) -> None:
        if poll_interval_s < 0:
            raise ValueError("poll_interval_s must be >= 0")
        self.path = Path(path)
        self.environment = check_environment(environment)
        self.poll_interval_s = poll_interval_s
        self._on_change = on_change
        self._models = frozenset(models) if models is not None else None
        self._known: dict[str, int | None] = {}
        self._baseline = list(baseline) if baseline is not None else None
        self._conn: sqlite3.Connection | None = None
        self._data_version: int | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._last_problem: str | None = None
        self.checks = 0
        """Cheap checks made (``PRAGMA data_version`` reads)."""
        self.reads = 0
        """Times the deployments were actually read (after a change, or forced)."""

    async def start(self) -> None:
        """Opens the connection, sets the starting point and starts polling.

        Raises:
            RegistryError: the file is missing or not a readable registry.
        """
        if self._conn is not None:
            return
        self._conn = await asyncio.to_thread(open_readonly, self.path)
        if self._baseline is not None:
            self._known = {a.name: a.deployment_id for a in self._baseline if a.watched and a.environment == self.environment}
            await self._check(force=True)
        else:
            self._data_version = await asyncio.to_thread(self._data_version_now)
            current = await asyncio.to_thread(self._read_deployed)
            self._known = {n: a.deployment_id for n, a in current.items()}
        if self.poll_interval_s > 0:
            self._task = asyncio.create_task(self._poll(), name=f"registry-watcher-{self.environment}")

    async def stop(self) -> None:
        """Stops polling and closes the connection (idempotent)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        async with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                await asyncio.to_thread(conn.close)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def check_now(self) -> dict[str, ResolvedArtifact]:
        """Re-reads the deployments at once (Triton's ``POST /v2/repository/index``), calls
        ``on_change`` if anything changed, and returns what was reported."""
        return await self._check(force=True)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            try:
                await self._check(force=False)
                self._last_problem = None
            except Exception as exc:  # noqa: BLE001 - one failed poll must never end the watching
                if str(exc) != self._last_problem:  # log a lasting problem once, not every poll
                    log.warning("registry_watch_failed", registry=str(self.path), error=str(exc), kind=type(exc).__name__)
                    self._last_problem = str(exc)

    def _data_version_now(self) -> int:
        assert self._conn is not None
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def _read_deployed(self) -> dict[str, ResolvedArtifact]:
        assert self._conn is not None
        core = Core(SyncDb(self._conn), self.path, sleep_blocking, 10.0)
        rows = run_sync(core._tx(False, lambda db: _ops.deployed(db, core.ctx, self.environment)))
        self.reads += 1
        from .records import Resolution

        out = {}
        for name, (dep, model) in rows.items():
            if self._models is None or name in self._models:
                out[name] = ResolvedArtifact.from_resolution(Resolution(f"{name}@{self.environment}", model, self.environment, dep), self.environment)
        return out

    def _verified(self, changed: dict[str, ResolvedArtifact]) -> dict[str, ResolvedArtifact]:
        good = {}
        for name, artifact in changed.items():
            problem = check_artifact(artifact.path, artifact.sha256, artifact.size)
            if problem is None:
                good[name] = artifact
            else:
                record_rejection(self.path, artifact.name, artifact.version, problem)
        return good

    async def _check(self, force: bool) -> dict[str, ResolvedArtifact]:
        async with self._lock:
            if self._conn is None:
                raise RegistryError("the watcher is not started")
            try:
                version = await asyncio.to_thread(self._data_version_now)
            except sqlite3.Error as exc:
                from ._db import translate

                raise translate(exc, self.path) from None
            self.checks += 1
            if not force and version == self._data_version:
                return {}
            self._data_version = version
            current = await asyncio.to_thread(self._read_deployed)
            changed = {n: a for n, a in current.items() if self._known.get(n, -1) != a.deployment_id}
            if not changed:
                return {}
            good = await asyncio.to_thread(self._verified, changed)
            if not good:
                return {}
            try:
                await self._on_change(dict(good))
            except Exception:
                log.exception("registry_on_change_failed", models=sorted(good))
            for name, artifact in good.items():
                self._known[name] = artifact.deployment_id
            return good
