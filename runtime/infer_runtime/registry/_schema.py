"""The registry's SQLite schema and its forward migrations (``PRAGMA user_version``).

Each migration moves the file from version ``i`` to ``i + 1`` inside one write transaction,
so an older file is upgraded on open and a crash mid-upgrade leaves it at the old version.
A file of a newer version than :data:`SCHEMA_VERSION` is refused (never downgraded). The
C++ reader (csrc/registry/) reads every version from :data:`MIN_READABLE` up.
"""

from __future__ import annotations

APPLICATION_ID = 0x49525247  # "IRRG": marks the file as an infer-runtime registry
SCHEMA_VERSION = 2
MIN_READABLE = 1

_V1 = """
CREATE TABLE models (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    artifact    TEXT NOT NULL,              -- relative to the registry's directory
    filename    TEXT NOT NULL,
    format      TEXT NOT NULL,
    backend     TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL CHECK (size >= 0),
    created_at  TEXT NOT NULL,              -- ISO 8601, UTC
    metadata    TEXT NOT NULL DEFAULT '{}', -- JSON object
    UNIQUE (name, version)
);
CREATE TABLE deployments (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    environment  TEXT NOT NULL,
    version      TEXT NOT NULL,
    action       TEXT NOT NULL CHECK (action IN ('promote', 'rollback')),
    deployed_at  TEXT NOT NULL,
    note         TEXT,
    replaced     INTEGER REFERENCES deployments(id),  -- current before this one
    previous     INTEGER REFERENCES deployments(id),  -- where a rollback from this one goes
    host         TEXT NOT NULL,
    user         TEXT NOT NULL,
    FOREIGN KEY (name, version) REFERENCES models(name, version)
);
CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    what         TEXT NOT NULL,
    name         TEXT,
    version      TEXT,
    environment  TEXT,
    host         TEXT NOT NULL,
    user         TEXT NOT NULL,
    note         TEXT
);
"""

# v2: lookups by name/environment use indexes, and the history tables refuse edits.
_V2 = """
CREATE INDEX deployments_current ON deployments (name, environment, id);
CREATE INDEX events_by_name ON events (name, id);
CREATE TRIGGER events_append_only_u BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the events log is append-only'); END;
CREATE TRIGGER events_append_only_d BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the events log is append-only'); END;
CREATE TRIGGER deployments_append_only_u BEFORE UPDATE ON deployments
    BEGIN SELECT RAISE(ABORT, 'deployments are append-only'); END;
CREATE TRIGGER deployments_append_only_d BEFORE DELETE ON deployments
    BEGIN SELECT RAISE(ABORT, 'deployments are append-only'); END;
CREATE TRIGGER models_immutable_u BEFORE UPDATE ON models
    BEGIN SELECT RAISE(ABORT, 'a registered version never changes'); END;
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2)
"""``MIGRATIONS[i]`` upgrades a file from schema version ``i`` to ``i + 1``."""

assert len(MIGRATIONS) == SCHEMA_VERSION
