"""Connections, transactions and error translation shared by the sync and async APIs.

The registry's operations (:mod:`._ops`) are written once as coroutines against the small
:class:`Db` protocol. :class:`SyncDb` implements it with blocking ``sqlite3`` calls and
never suspends, so :func:`run_sync` drives such a coroutine to completion without an event
loop; the async API implements it over aiosqlite.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from . import _schema
from .errors import RegistryBusyError, RegistryError, RegistryFileError

T = TypeVar("T")
Row = tuple[Any, ...]

BUSY_TIMEOUT_MS = 2000
"""SQLite's own wait for a lock, per attempt."""

RETRY_BUDGET_S = 30.0
"""Total time a transaction keeps retrying on a busy database before RegistryBusyError."""

_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (primary codes)


class Db(Protocol):
    """The database operations the registry's logic needs."""

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Runs a query and returns every row."""
        ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Runs a statement and returns the last inserted rowid."""
        ...


class SyncDb:
    """:class:`Db` over a blocking ``sqlite3`` connection (its coroutines never suspend)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(self.conn.execute(sql, params).fetchall())

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.conn.execute(sql, params).lastrowid or 0


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine that never suspends (one over :class:`SyncDb`) to its result."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a synchronous registry operation suspended; this is a bug")


def is_busy(exc: BaseException) -> bool:
    """True for SQLITE_BUSY / SQLITE_LOCKED (another connection holds the lock)."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _BUSY_CODES
    text = str(exc)
    return "locked" in text or "busy" in text


def translate(exc: sqlite3.Error, path: Path) -> RegistryError:
    """A user-facing error for a sqlite3 failure that is not a registry-level condition."""
    text = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text or "corrupt" in text):
        return RegistryFileError(f"{path}: the registry file is corrupt or not a SQLite database ({text}); restore it from a backup")
    if "unable to open" in text or "readonly" in text or "read-only" in text:
        return RegistryFileError(f"{path}: cannot open the registry ({text})")
    return RegistryError(f"{path}: registry database error: {text}")


async def transact(db: Db, write: bool, body: Callable[[Db], Awaitable[T]], sleep: Callable[[float], Awaitable[None]], path: Path, budget_s: float = RETRY_BUDGET_S) -> T:
    """Runs ``body`` in one transaction, retrying the whole of it while the file is busy.

    Writes take ``BEGIN IMMEDIATE``: the write lock is held from the first read, so two
    writers never both read the same "current" state (no lost update). ``body`` must have
    no effect outside the database, since it may run more than once.
    """
    deadline = time.monotonic() + budget_s
    delay = 0.002
    while True:
        try:
            await db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                result = await body(db)
                await db.execute("COMMIT")
                return result
            except BaseException:
                try:
                    await db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # no transaction left (SQLite rolled it back itself)
                raise
        except sqlite3.Error as exc:
            if not is_busy(exc):
                raise translate(exc, path) from None
            if time.monotonic() >= deadline:
                raise RegistryBusyError(f"{path}: the registry stayed locked by other writers for {budget_s:g} s; try again") from None
        await sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.1)


def sleep_blocking(seconds: float) -> Awaitable[None]:
    """A :func:`transact` sleep for :class:`SyncDb`: blocks, and returns a finished awaitable."""
    time.sleep(seconds)
    return _done()


async def _done() -> None:
    return None


def _statements(script: str) -> list[str]:
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return [s for s in out if s]


async def migrate(db: Db, path: Path) -> None:
    """Brings the file to :data:`_schema.SCHEMA_VERSION` (inside the caller's write
    transaction), or refuses a file that is not a registry or is newer."""
    version = (await db.fetchall("PRAGMA user_version"))[0][0]
    app_id = (await db.fetchall("PRAGMA application_id"))[0][0]
    check_version(version, app_id, path)
    if version == 0:
        tables = await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
        if tables:
            raise RegistryFileError(f"{path}: a SQLite database but not a model registry (tables: {', '.join(sorted(t[0] for t in tables))})")
        await db.execute(f"PRAGMA application_id = {_schema.APPLICATION_ID}")
    for step in range(version, _schema.SCHEMA_VERSION):
        for statement in _statements(_schema.MIGRATIONS[step]):
            await db.execute(statement)
    if version != _schema.SCHEMA_VERSION:
        await db.execute(f"PRAGMA user_version = {_schema.SCHEMA_VERSION}")


def check_version(version: int, app_id: int, path: Path) -> None:
    """Refuses a newer schema, or a file marked as something other than a registry."""
    if version > _schema.SCHEMA_VERSION:
        raise RegistryFileError(
            f"{path}: registry schema version {version} is newer than this infer-runtime supports "
            f"({_schema.SCHEMA_VERSION}); upgrade infer-runtime to use it (the file is left untouched)"
        )
    if version > 0 and app_id != _schema.APPLICATION_ID:
        raise RegistryFileError(f"{path}: a SQLite database but not a model registry (application_id {app_id:#x})")


def require_file(path: Path) -> None:
    """Raises RegistryFileError when there is no registry file at ``path``."""
    if not path.is_file():
        raise RegistryFileError(f"{path}: no registry file there (register a model to create one: `infer-runtime registry --db {path} register NAME FILE`)")


def make_parent(path: Path) -> None:
    """Creates the registry file's directory; failures become RegistryFileError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RegistryFileError(f"{path}: cannot create the registry's directory ({exc.strerror or exc})") from None


def connect_sync(path: Path, *, readonly: bool = False, create: bool = True) -> sqlite3.Connection:
    """A blocking connection with the registry's pragmas (no migration).

    Read-only connections open with ``mode=ro``; neither they nor ``create=False`` ones
    create the file. Writers create its directory when missing.
    """
    if readonly or not create:
        require_file(path)
    else:
        make_parent(path)
    try:
        if readonly:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        else:
            conn = sqlite3.connect(os.fspath(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        configure(conn, readonly)
    except sqlite3.Error as exc:
        raise translate(exc, path) from None
    return conn


def configure(conn: sqlite3.Connection, readonly: bool) -> None:
    """Applies the registry's pragmas (WAL for writers, foreign keys, busy timeout)."""
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    if not readonly:
        _retry_blocking(lambda: conn.execute("PRAGMA journal_mode = WAL"))


def _retry_blocking(fn: Callable[[], object], budget_s: float = RETRY_BUDGET_S) -> None:
    deadline = time.monotonic() + budget_s
    delay = 0.002
    while True:
        try:
            fn()
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.1)
