"""The registry's operations, written once against :class:`._db.Db`.

Every function runs inside a transaction its caller opened (:func:`._db.transact`); the
write operations are called under ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._db import Db, Row
from .artifacts import StoredArtifact
from .errors import RegistryConflictError, RegistryNotFoundError
from .records import Deployment, Event, ModelVersion, Resolution
from .refs import Reference, next_integer_version

_MODEL_COLS = "name, version, artifact, filename, format, backend, sha256, size, created_at, metadata"
_DEPLOY_COLS = "id, name, environment, version, action, deployed_at, note, replaced, previous, host, user"
_EVENT_COLS = "id, at, what, name, version, environment, host, user, note"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


@dataclass(frozen=True, slots=True)
class Ctx:
    """Where the registry is, and who is writing (recorded with every event)."""

    path: Path
    host: str = field(default_factory=socket.gethostname)
    user: str = field(default_factory=_user)

    @property
    def root(self) -> Path:
        """The registry's directory (artifact paths are relative to it)."""
        return self.path.resolve().parent


def now_text() -> str:
    """The current UTC time as stored: ISO 8601 with microseconds and a ``Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """A stored timestamp as an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def model_from_row(ctx: Ctx, row: Row) -> ModelVersion:
    """A ``models`` row (columns as :data:`_MODEL_COLS`) as a record."""
    name, version, artifact, filename, fmt, backend, sha, size, created, meta = row
    return ModelVersion(name, version, ctx.root / artifact, filename, fmt, backend, sha, int(size), parse_time(created), json.loads(meta))


def deployment_from_row(row: Row) -> Deployment:
    """A ``deployments`` row (columns as :data:`_DEPLOY_COLS`) as a record."""
    ident, name, env, version, action, at, note, replaced, previous, host, user = row
    return Deployment(ident, name, env, version, action, parse_time(at), note, replaced, previous, host, user)


async def log_event(db: Db, ctx: Ctx, what: str, name: str | None = None, version: str | None = None, environment: str | None = None, note: str | None = None) -> None:
    """Appends one entry to the event log."""
    await db.execute(
        "INSERT INTO events (at, what, name, version, environment, host, user, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (now_text(), what, name, version, environment, ctx.host, ctx.user, note),
    )


async def model_names(db: Db) -> list[str]:
    """Every registered model name, sorted."""
    return [r[0] for r in await db.fetchall("SELECT DISTINCT name FROM models ORDER BY name")]


async def _versions(db: Db, name: str) -> list[str]:
    return [r[0] for r in await db.fetchall("SELECT version FROM models WHERE name = ? ORDER BY id", (name,))]


def _listing(items: Sequence[str], empty: str) -> str:
    return ", ".join(items) if items else empty


async def _require_name(db: Db, ctx: Ctx, name: str) -> list[str]:
    versions = await _versions(db, name)
    if not versions:
        names = await model_names(db)
        raise RegistryNotFoundError(f"no model {name!r} in the registry {ctx.path}; models: {_listing(names, 'none registered yet')}")
    return versions


async def get(db: Db, ctx: Ctx, name: str, version: str) -> ModelVersion:
    """One version; RegistryNotFoundError lists the versions that exist."""
    rows = await db.fetchall(f"SELECT {_MODEL_COLS} FROM models WHERE name = ? AND version = ?", (name, version))
    if not rows:
        versions = await _require_name(db, ctx, name)
        raise RegistryNotFoundError(f"model {name!r} has no version {version!r}; versions: {', '.join(versions)}")
    return model_from_row(ctx, rows[0])


async def latest(db: Db, ctx: Ctx, name: str) -> ModelVersion:
    """The most recently registered version of ``name``."""
    rows = await db.fetchall(f"SELECT {_MODEL_COLS} FROM models WHERE name = ? ORDER BY id DESC LIMIT 1", (name,))
    if not rows:
        await _require_name(db, ctx, name)
    return model_from_row(ctx, rows[0])


async def list_versions(db: Db, ctx: Ctx, name: str | None = None) -> list[ModelVersion]:
    """Every version (of ``name``, or of every model), by name then registration order."""
    if name is None:
        rows = await db.fetchall(f"SELECT {_MODEL_COLS} FROM models ORDER BY name, id")
    else:
        await _require_name(db, ctx, name)
        rows = await db.fetchall(f"SELECT {_MODEL_COLS} FROM models WHERE name = ? ORDER BY id", (name,))
    return [model_from_row(ctx, r) for r in rows]


async def current(db: Db, name: str, environment: str) -> Deployment | None:
    """The deployment of ``name`` in ``environment`` now serving, if any."""
    rows = await db.fetchall(f"SELECT {_DEPLOY_COLS} FROM deployments WHERE name = ? AND environment = ? ORDER BY id DESC LIMIT 1", (name, environment))
    return deployment_from_row(rows[0]) if rows else None


async def _environments_of(db: Db, name: str) -> list[str]:
    rows = await db.fetchall(
        "SELECT d.environment, d.version FROM deployments d WHERE d.name = ? AND d.id = "
        "(SELECT MAX(id) FROM deployments WHERE name = d.name AND environment = d.environment) ORDER BY d.environment",
        (name,),
    )
    return [f"{env} (version {version})" for env, version in rows]


async def _not_deployed(db: Db, ctx: Ctx, name: str, environment: str) -> RegistryNotFoundError:
    envs = await _environments_of(db, name)
    where = f"deployed in: {', '.join(envs)}" if envs else "not deployed in any environment yet (promote a version first)"
    return RegistryNotFoundError(f"model {name!r} is not deployed in {environment!r}; {where}")


async def resolve(db: Db, ctx: Ctx, ref: Reference) -> Resolution:
    """What ``ref`` names now: a version, the current deployment, or the latest version."""
    if ref.version is not None:
        return Resolution(str(ref), await get(db, ctx, ref.name, ref.version))
    if ref.environment is None:
        return Resolution(str(ref), await latest(db, ctx, ref.name))
    await _require_name(db, ctx, ref.name)
    deployment = await current(db, ref.name, ref.environment)
    if deployment is None:
        raise await _not_deployed(db, ctx, ref.name, ref.environment)
    return Resolution(str(ref), await get(db, ctx, ref.name, deployment.version), ref.environment, deployment)


async def register(db: Db, ctx: Ctx, name: str, version: str | None, stored: StoredArtifact, filename: str, fmt: str, backend: str, metadata: Mapping[str, Any]) -> tuple[ModelVersion, bool]:
    """Records a new version (the artifact is already stored); returns it and whether it is
    new. Registering the same name, version and content again returns the existing record."""
    if version is None:
        version = next_integer_version(await _versions(db, name))
    rows = await db.fetchall(f"SELECT {_MODEL_COLS} FROM models WHERE name = ? AND version = ?", (name, version))
    if rows:
        existing = model_from_row(ctx, rows[0])
        if (existing.sha256, existing.filename, existing.backend) == (stored.sha256, filename, backend) and dict(existing.metadata) == dict(metadata):
            return existing, False
        raise RegistryConflictError(
            f"{name}@{version} is already registered with different content (sha256 {existing.sha256[:12]}…, backend {existing.backend}); "
            "a registered version never changes: register a new version"
        )
    created = now_text()
    await db.execute(
        f"INSERT INTO models ({_MODEL_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (name, version, stored.relative, filename, fmt, backend, stored.sha256, stored.size, created, json.dumps(dict(metadata), sort_keys=True)),
    )
    await log_event(db, ctx, "register", name, version, note=f"sha256 {stored.sha256} size {stored.size}")
    return await get(db, ctx, name, version), True


async def _insert_deployment(db: Db, ctx: Ctx, name: str, environment: str, version: str, action: str, note: str | None, replaced: int | None, previous: int | None) -> Deployment:
    ident = await db.execute(
        f"INSERT INTO deployments ({_DEPLOY_COLS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (name, environment, version, action, now_text(), note, replaced, previous, ctx.host, ctx.user),
    )
    await log_event(db, ctx, action, name, version, environment, note)
    rows = await db.fetchall(f"SELECT {_DEPLOY_COLS} FROM deployments WHERE id = ?", (ident,))
    return deployment_from_row(rows[0])


async def promote(db: Db, ctx: Ctx, name: str, version: str, environment: str, note: str | None) -> Deployment:
    """Makes ``version`` the current deployment of ``name`` in ``environment``."""
    await get(db, ctx, name, version)
    before = await current(db, name, environment)
    ident = before.id if before else None
    return await _insert_deployment(db, ctx, name, environment, version, "promote", note, ident, ident)


async def rollback(db: Db, ctx: Ctx, name: str, environment: str, note: str | None) -> Deployment:
    """Returns ``name`` in ``environment`` to the deployment before the current one."""
    await _require_name(db, ctx, name)
    now = await current(db, name, environment)
    if now is None:
        raise await _not_deployed(db, ctx, name, environment)
    if now.previous is None:
        raise RegistryConflictError(
            f"nothing to roll back to: {name} in {environment} has no deployment before the current one "
            f"(#{now.id}, version {now.version}, {now.deployed_at:%Y-%m-%d %H:%M:%S} UTC)"
        )
    rows = await db.fetchall(f"SELECT {_DEPLOY_COLS} FROM deployments WHERE id = ?", (now.previous,))
    target = deployment_from_row(rows[0])
    text = note if note is not None else f"rollback from version {now.version} to {target.version}"
    return await _insert_deployment(db, ctx, name, environment, target.version, "rollback", text, now.id, target.previous)


async def history(db: Db, ctx: Ctx, name: str, environment: str | None) -> list[Deployment]:
    """Deployments of ``name`` (in ``environment``), oldest first."""
    await _require_name(db, ctx, name)
    if environment is None:
        rows = await db.fetchall(f"SELECT {_DEPLOY_COLS} FROM deployments WHERE name = ? ORDER BY id", (name,))
    else:
        rows = await db.fetchall(f"SELECT {_DEPLOY_COLS} FROM deployments WHERE name = ? AND environment = ? ORDER BY id", (name, environment))
    return [deployment_from_row(r) for r in rows]


async def current_all(db: Db, name: str | None) -> list[Deployment]:
    """The current deployment of every (model, environment) pair (of ``name``)."""
    where, params = ("AND d.name = ?", [name]) if name is not None else ("", [])
    rows = await db.fetchall(
        f"SELECT {', '.join('d.' + c for c in _DEPLOY_COLS.split(', '))} FROM deployments d "
        f"WHERE d.id = (SELECT MAX(id) FROM deployments WHERE name = d.name AND environment = d.environment) {where} "
        "ORDER BY d.name, d.environment",
        params,
    )
    return [deployment_from_row(r) for r in rows]


async def events(db: Db, name: str | None, limit: int | None) -> list[Event]:
    """The event log (of ``name``), oldest first; ``limit`` keeps the newest entries."""
    where, params = ("WHERE name = ?", [name]) if name is not None else ("", [])
    sql = f"SELECT {_EVENT_COLS} FROM events {where} ORDER BY id DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    rows = await db.fetchall(sql, params)
    return [Event(r[0], parse_time(r[1]), *r[2:]) for r in reversed(rows)]


async def deployed(db: Db, ctx: Ctx, environment: str) -> dict[str, tuple[Deployment, ModelVersion]]:
    """Every model's current deployment in ``environment`` with its version (the watcher's
    query, run only after the file changed)."""
    rows = await db.fetchall(
        f"SELECT {', '.join('d.' + c for c in _DEPLOY_COLS.split(', '))}, {', '.join('m.' + c for c in _MODEL_COLS.split(', '))} "
        "FROM deployments d JOIN models m ON m.name = d.name AND m.version = d.version "
        "WHERE d.environment = ? AND d.id = (SELECT MAX(id) FROM deployments WHERE name = d.name AND environment = d.environment)",
        (environment,),
    )
    n = len(_DEPLOY_COLS.split(", "))
    return {r[1]: (deployment_from_row(r[:n]), model_from_row(ctx, r[n:])) for r in rows}


async def integrity(db: Db) -> str:
    """``PRAGMA integrity_check`` plus foreign-key violations, as one text (``ok``)."""
    rows = await db.fetchall("PRAGMA integrity_check")
    text = "; ".join(str(r[0]) for r in rows)
    fk = await db.fetchall("PRAGMA foreign_key_check")
    if fk:
        text = (text + "; " if text != "ok" else "") + f"{len(fk)} foreign key violation(s)"
    return text
