"""The registry API's body, shared by :class:`SyncRegistry` and the async :class:`Registry`.

:class:`Core` turns arguments into checked values, runs :mod:`._ops` inside retried
transactions and returns records. File work (copying, hashing) is left to the two front
classes, which do it blocking or in a worker thread.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import structlog

from . import _ops, _schema
from ._db import Db, check_version, migrate, transact
from .artifacts import StoredArtifact, check_artifact, ingest
from .errors import ArtifactIntegrityError, InvalidReferenceError, RegistryError, RegistryFileError
from .records import ArtifactProblem, Deployment, Event, ModelVersion, Resolution, VerifyReport
from .refs import check_environment, check_name, parse_reference
from .refs import check_version as check_version_text

T = TypeVar("T")
log = structlog.get_logger("infer_runtime.registry")

_FORMATS = {".onnx": "onnx", ".ort": "ort", ".plan": "tensorrt", ".engine": "tensorrt", ".toml": "toml", ".clp": "clips"}
_DEFAULT_BACKEND = {"onnx": "onnxruntime", "ort": "onnxruntime", "tensorrt": "tensorrt", "toml": "rules", "clips": "rules"}
_BACKEND_RE = re.compile(r"[a-z][a-z0-9_]*")

Versions = list[ModelVersion]
Deployments = list[Deployment]
Events = list[Event]


def detect(filename: str, backend: str | None) -> tuple[str, str]:
    """The artifact's format (from its suffix) and backend (given, or the format's usual one)."""
    suffix = Path(filename).suffix.lower()
    fmt = _FORMATS.get(suffix, suffix.lstrip(".") or "bin")
    if backend is None:
        if fmt not in _DEFAULT_BACKEND:
            raise InvalidReferenceError(f"cannot tell the backend of {filename!r} from its suffix; give one (--backend onnxruntime|tensorrt|rules|...)")
        return fmt, _DEFAULT_BACKEND[fmt]
    if not _BACKEND_RE.fullmatch(backend):
        raise InvalidReferenceError(f"invalid backend {backend!r}: lower-case letters, digits and '_'")
    return fmt, backend


def check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """``metadata`` as a JSON-serialisable dict with string keys (else InvalidReferenceError)."""
    data = dict(metadata or {})
    if not all(isinstance(k, str) for k in data):
        raise InvalidReferenceError("metadata keys must be strings")
    try:
        return dict(json.loads(json.dumps(data, allow_nan=False)))
    except (TypeError, ValueError) as exc:
        raise InvalidReferenceError(f"metadata must be JSON-serialisable: {exc}") from None


def check_source(file: str | Path) -> Path:
    """The file to register, checked to be a readable regular file."""
    source = Path(file)
    if not source.is_file():
        raise RegistryError(f"{source}: no such file to register" if not source.exists() else f"{source}: not a regular file")
    return source


def store(root: Path, source: Path) -> StoredArtifact:
    """Copies ``source`` into the artifact store; file-system failures become RegistryError."""
    try:
        return ingest(root, source)
    except OSError as exc:
        raise RegistryError(f"cannot copy {source} into the artifact store {root / 'artifacts'}: {exc.strerror or exc}") from None


class Core:
    """Registry logic over one :class:`._db.Db` (one connection)."""

    def __init__(self, db: Db, path: Path, sleep: Callable[[float], Awaitable[None]], budget_s: float) -> None:
        self.db = db
        self.ctx = _ops.Ctx(path)
        self._sleep = sleep
        self._budget_s = budget_s

    async def _tx(self, write: bool, body: Callable[[Db], Awaitable[T]]) -> T:
        return await transact(self.db, write, body, self._sleep, self.ctx.path, self._budget_s)

    async def prepare(self) -> None:
        """Checks the schema version and upgrades an older file."""

        async def read(db: Db) -> tuple[int, int]:
            return (await db.fetchall("PRAGMA user_version"))[0][0], (await db.fetchall("PRAGMA application_id"))[0][0]

        version, app_id = await self._tx(False, read)
        check_version(version, app_id, self.ctx.path)
        if version < _schema.SCHEMA_VERSION:
            await self._tx(True, lambda db: migrate(db, self.ctx.path))

    async def register(self, name: str, version: str | None, stored: StoredArtifact, filename: str, backend: str | None, metadata: dict[str, Any]) -> ModelVersion:
        fmt, backend_name = detect(filename, backend)
        model, new = await self._tx(True, lambda db: _ops.register(db, self.ctx, name, version, stored, filename, fmt, backend_name, metadata))
        if new:
            log.info("registry_register", model=name, version=model.version, sha256=stored.sha256, size=stored.size)
        return model

    async def get(self, name: str, version: str) -> ModelVersion:
        check_name(name)
        check_version_text(version)
        return await self._tx(False, lambda db: _ops.get(db, self.ctx, name, version))

    async def list(self, name: str | None) -> Versions:
        if name is not None:
            check_name(name)
        return await self._tx(False, lambda db: _ops.list_versions(db, self.ctx, name))

    async def resolve(self, ref: str, environment: str | None) -> Resolution:
        parsed = parse_reference(ref)
        if environment is not None:
            check_environment(environment)
            if parsed.version is not None or (parsed.environment not in (None, environment)):
                raise InvalidReferenceError(f"reference {ref!r} already says what it names; pass environment={environment!r} only with a bare name")
            parsed = type(parsed)(parsed.name, environment=environment)
        return await self._tx(False, lambda db: _ops.resolve(db, self.ctx, parsed))

    async def promote(self, name: str, version: str, environment: str, note: str | None) -> Deployment:
        check_name(name)
        check_version_text(version)
        check_environment(environment)
        deployment = await self._tx(True, lambda db: _ops.promote(db, self.ctx, name, version, environment, note))
        log.info("registry_promote", model=name, version=version, environment=environment, deployment=deployment.id)
        return deployment

    async def rollback(self, name: str, environment: str, note: str | None) -> Deployment:
        check_name(name)
        check_environment(environment)
        deployment = await self._tx(True, lambda db: _ops.rollback(db, self.ctx, name, environment, note))
        log.info("registry_rollback", model=name, version=deployment.version, environment=environment, deployment=deployment.id)
        return deployment

    async def history(self, name: str, environment: str | None) -> Deployments:
        check_name(name)
        if environment is not None:
            check_environment(environment)
        return await self._tx(False, lambda db: _ops.history(db, self.ctx, name, environment))

    async def current(self, name: str | None) -> Deployments:
        if name is not None:
            check_name(name)
        return await self._tx(False, lambda db: _ops.current_all(db, name))

    async def events(self, name: str | None, limit: int | None) -> Events:
        return await self._tx(False, lambda db: _ops.events(db, name, limit))

    async def deployed(self, environment: str) -> dict[str, Resolution]:
        check_environment(environment)
        rows = await self._tx(False, lambda db: _ops.deployed(db, self.ctx, environment))
        return {name: Resolution(f"{name}@{environment}", model, environment, dep) for name, (dep, model) in rows.items()}

    async def integrity(self) -> tuple[str, Versions]:
        async def body(db: Db) -> tuple[str, Versions]:
            return await _ops.integrity(db), await _ops.list_versions(db, self.ctx)

        return await self._tx(False, body)

    async def rejected(self, model: ModelVersion, problem: str) -> None:
        """Logs a refused artifact (structlog and, best effort, the event log)."""
        log.error("registry_artifact_rejected", model=model.name, version=model.version, problem=problem)
        try:
            await self._tx(True, lambda db: _ops.log_event(db, self.ctx, "artifact_rejected", model.name, model.version, note=problem))
        except RegistryError:
            pass  # e.g. a read-only file: the structlog line above still records it


def verify_report(integrity: str, versions: Versions) -> VerifyReport:
    """Checks every artifact against its record (blocking: hashes every file)."""
    problems = tuple(ArtifactProblem(m, p) for m in versions if (p := check_artifact(m.artifact, m.sha256, m.size)) is not None)
    return VerifyReport(integrity, len(versions), problems)


def integrity_error(resolution: Resolution, problem: str) -> ArtifactIntegrityError:
    """The error raised when a resolved artifact fails its check."""
    m = resolution.model
    return ArtifactIntegrityError(f"{resolution.reference} → {m.name}@{m.version}: artifact refused ({problem}); it is never served — re-register the model")


def not_a_registry(path: Path, version: int) -> RegistryFileError | None:
    """For read-only opens: an error when the file holds no registry schema yet."""
    if version < _schema.MIN_READABLE:
        return RegistryFileError(f"{path}: not a model registry (empty, or created by something else)")
    return None
