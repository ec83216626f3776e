"""Typed, immutable records returned by the registry API (never raw rows)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

JSONValue = Any
"""A value of the JSON ``metadata`` object (str, number, bool, None, list or dict)."""


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered version of a model; it never changes once registered.

    ``artifact`` is the absolute path of the stored copy
    (``<registry dir>/artifacts/<sha256>/<filename>``).
    """

    name: str
    version: str
    artifact: Path
    filename: str
    format: str
    backend: str
    sha256: str
    size: int
    created_at: datetime
    metadata: Mapping[str, JSONValue] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    def as_dict(self) -> dict[str, JSONValue]:
        """The stable JSON form (``--format json``; keys documented in docs/registry.md)."""
        return {
            "name": self.name,
            "version": self.version,
            "artifact": str(self.artifact),
            "filename": self.filename,
            "format": self.format,
            "backend": self.backend,
            "sha256": self.sha256,
            "size": self.size,
            "created_at": _iso(self.created_at),
            "metadata": dict(self.metadata),
        }


@dataclass(frozen=True, slots=True)
class Deployment:
    """One promotion or rollback of ``name`` in ``environment`` (the log never changes).

    ``replaced`` is the id of the deployment that was current before this one; ``previous``
    is the one a rollback from this deployment returns to (None: this is the first).
    """

    id: int
    name: str
    environment: str
    version: str
    action: str
    deployed_at: datetime
    note: str | None
    replaced: int | None
    previous: int | None
    host: str
    user: str

    def as_dict(self) -> dict[str, JSONValue]:
        """The stable JSON form."""
        return {
            "id": self.id,
            "name": self.name,
            "environment": self.environment,
            "version": self.version,
            "action": self.action,
            "deployed_at": _iso(self.deployed_at),
            "note": self.note,
            "replaced": self.replaced,
            "previous": self.previous,
            "host": self.host,
            "user": self.user,
        }


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the append-only event log (``register``, ``promote``, ``rollback``,
    ``artifact_rejected``, ``migrate``)."""

    id: int
    at: datetime
    what: str
    name: str | None
    version: str | None
    environment: str | None
    host: str
    user: str
    note: str | None

    def as_dict(self) -> dict[str, JSONValue]:
        """The stable JSON form."""
        return {
            "id": self.id,
            "at": _iso(self.at),
            "what": self.what,
            "name": self.name,
            "version": self.version,
            "environment": self.environment,
            "host": self.host,
            "user": self.user,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a reference resolved to: the version, and the deployment when resolved through
    an environment (``name@production``)."""

    reference: str
    model: ModelVersion
    environment: str | None = None
    deployment: Deployment | None = None

    def as_dict(self) -> dict[str, JSONValue]:
        """The stable JSON form: the version's keys plus ``reference``, ``environment`` and
        ``deployment``."""
        out = self.model.as_dict()
        out["reference"] = self.reference
        out["environment"] = self.environment
        out["deployment"] = self.deployment.as_dict() if self.deployment else None
        return out


@dataclass(frozen=True, slots=True)
class ArtifactProblem:
    """A stored artifact that fails verification (``problem``: missing, size or sha256)."""

    model: ModelVersion
    problem: str

    def as_dict(self) -> dict[str, JSONValue]:
        """The stable JSON form."""
        return {"name": self.model.name, "version": self.model.version, "artifact": str(self.model.artifact), "problem": self.problem}


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of :meth:`SyncRegistry.verify`: database integrity and every artifact."""

    integrity: str
    checked: int
    problems: tuple[ArtifactProblem, ...]

    @property
    def ok(self) -> bool:
        """True when the database is intact and every artifact matches its record."""
        return self.integrity == "ok" and not self.problems

    def as_dict(self) -> dict[str, JSONValue]:
        """The stable JSON form."""
        return {"ok": self.ok, "integrity": self.integrity, "checked": self.checked, "problems": [p.as_dict() for p in self.problems]}


__all__ = ["ArtifactProblem", "Deployment", "Event", "JSONValue", "ModelVersion", "Resolution", "VerifyReport"]
