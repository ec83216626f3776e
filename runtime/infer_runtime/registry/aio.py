"""``Registry``: the asyncio registry API (aiosqlite; file work runs in worker threads)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiosqlite

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
from ._db import BUSY_TIMEOUT_MS, RETRY_BUDGET_S, Row, make_parent, require_file, translate
from .artifacts import check_artifact
from .errors import RegistryError
from .records import Deployment, ModelVersion, Resolution, VerifyReport
from .refs import check_name, check_version


class _AioDb:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def fetchall(self, sql: str, params: Any = ()) -> list[Row]:
        return [tuple(r) for r in await self.conn.execute_fetchall(sql, params)]

    async def execute(self, sql: str, params: Any = ()) -> int:
        cursor = await self.conn.execute(sql, params)
        ident = cursor.lastrowid or 0
        await cursor.close()
        return ident


class Registry:
    """The model registry, asynchronously: ``async with Registry(path) as registry: ...``.

    Same arguments, methods and errors as :class:`SyncRegistry`, as coroutines. Copying and
    hashing artifacts runs in worker threads, so the event loop never blocks on a large file.

    .. versionadded:: 0.1
    """

    def __init__(self, path: str | Path, *, create: bool = True, busy_budget_s: float = RETRY_BUDGET_S) -> None:
        self.path = Path(path)
        self._create = create
        self._budget_s = busy_budget_s
        self._conn: aiosqlite.Connection | None = None
        self._core_: Core | None = None

    async def open(self) -> Self:
        """Opens the connection and upgrades an older file (``async with`` calls it)."""
        if self._create:
            make_parent(self.path)
        else:
            require_file(self.path)
        try:
            conn = await aiosqlite.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from None
        try:
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await conn.execute("PRAGMA foreign_keys = ON")
            core = Core(_AioDb(conn), self.path, asyncio.sleep, self._budget_s)
            await _retry_wal(conn, self.path)
            await core.prepare()
        except sqlite3.Error as exc:
            await conn.close()
            raise translate(exc, self.path) from None
        except BaseException:
            await conn.close()
            raise
        self._conn, self._core_ = conn, core
        return self

    async def close(self) -> None:
        """Closes the connection (idempotent)."""
        if self._conn is not None:
            await self._conn.close()
            self._conn = self._core_ = None

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    @property
    def _core(self) -> Core:
        if self._core_ is None:
            raise RegistryError("the registry is not open: use `async with Registry(path) as registry:`")
        return self._core_

    async def register(self, name: str, file: str | Path, version: str | None = None, backend: str | None = None, metadata: Mapping[str, Any] | None = None) -> ModelVersion:
        """See :meth:`SyncRegistry.register`."""
        check_name(name)
        if version is not None:
            check_version(version)
        meta = check_metadata(metadata)
        source = check_source(file)
        stored = await asyncio.to_thread(store, self._core.ctx.root, source)
        return await self._core.register(name, version, stored, source.name, backend, meta)

    async def get(self, name: str, version: str) -> ModelVersion:
        """See :meth:`SyncRegistry.get`."""
        return await self._core.get(name, version)

    async def list(self, name: str | None = None) -> Versions:
        """See :meth:`SyncRegistry.list`."""
        return await self._core.list(name)

    async def resolve(self, ref: str, environment: str | None = None, *, verify: bool = False) -> Resolution:
        """See :meth:`SyncRegistry.resolve`."""
        resolution = await self._core.resolve(ref, environment)
        if verify:
            model = resolution.model
            problem = await asyncio.to_thread(check_artifact, model.artifact, model.sha256, model.size)
            if problem is not None:
                await self._core.rejected(model, problem)
                raise integrity_error(resolution, problem)
        return resolution

    async def promote(self, name: str, version: str, environment: str, note: str | None = None) -> Deployment:
        """See :meth:`SyncRegistry.promote`."""
        return await self._core.promote(name, version, environment, note)

    async def rollback(self, name: str, environment: str, note: str | None = None) -> Deployment:
        """See :meth:`SyncRegistry.rollback`."""
        return await self._core.rollback(name, environment, note)

    async def history(self, name: str, environment: str | None = None) -> Deployments:
        """See :meth:`SyncRegistry.history`."""
        return await self._core.history(name, environment)

    async def current(self, name: str | None = None) -> Deployments:
        """See :meth:`SyncRegistry.current`."""
        return await self._core.current(name)

    async def events(self, name: str | None = None, limit: int | None = None) -> Events:
        """See :meth:`SyncRegistry.events`."""
        return await self._core.events(name, limit)

    async def deployed(self, environment: str) -> dict[str, Resolution]:
        """See :meth:`SyncRegistry.deployed`."""
        return await self._core.deployed(environment)

    async def verify(self) -> VerifyReport:
        """See :meth:`SyncRegistry.verify`."""
        integrity, versions = await self._core.integrity()
        report = await asyncio.to_thread(verify_report, integrity, versions)
        for problem in report.problems:
            await self._core.rejected(problem.model, problem.problem)
        return report


async def _retry_wal(conn: aiosqlite.Connection, path: Path) -> None:
    # Switching to WAL needs the write lock briefly; a busy file is retried like a transaction.
    from ._db import is_busy

    delay = 0.002
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RETRY_BUDGET_S
    while True:
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or loop.time() >= deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
