"""The content-addressed artifact store beside the registry file.

``<registry dir>/artifacts/<sha256>/<filename>``: a file is copied to a temporary name in
the same directory tree, fsynced, then renamed into place, so a crash never leaves a
half-written artifact under a final name, and a registered version's bytes never change.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 1 << 20
ARTIFACTS_DIR = "artifacts"


@dataclass(frozen=True, slots=True)
class StoredArtifact:
    """An artifact in the store: ``relative`` is relative to the registry's directory."""

    relative: str
    sha256: str
    size: int


def file_digest(path: Path) -> tuple[str, int]:
    """The sha256 (hex) and size in bytes of ``path``."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_STALE_S = 3600.0


def _remove_stale_incoming(store: Path) -> None:
    # A writer killed mid-copy leaves its temporary file; one older than an hour is no
    # copy in progress, so it goes (another writer may remove it at the same time).
    now = time.time()
    for leftover in store.glob(".incoming-*"):
        with contextlib.suppress(OSError):
            if now - leftover.stat().st_mtime > _STALE_S:
                leftover.unlink()


def ingest(root: Path, source: Path, filename: str | None = None) -> StoredArtifact:
    """Copies ``source`` into the store under ``root`` (the registry's directory).

    Hashing and copying happen in one pass. An artifact already stored with the same
    content is kept (a damaged one is replaced).
    """
    filename = filename or source.name
    store = root / ARTIFACTS_DIR
    store.mkdir(parents=True, exist_ok=True)
    _remove_stale_incoming(store)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=store)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        sha = digest.hexdigest()
        final_dir = store / sha
        final = final_dir / filename
        if final.exists() and check_artifact(final, sha, size) is None:
            tmp.unlink()
        else:
            final_dir.mkdir(exist_ok=True)
            os.chmod(tmp, 0o444)  # a stored artifact is not edited in place
            os.replace(tmp, final)
            _fsync_dir(final_dir)
            _fsync_dir(store)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return StoredArtifact(f"{ARTIFACTS_DIR}/{sha}/{filename}", sha, size)


def check_artifact(path: Path, sha256: str, size: int) -> str | None:
    """None when ``path`` holds exactly the registered bytes, else what is wrong.

    The size is compared first (a stat), so a truncated file is refused without hashing.
    """
    try:
        actual_size = path.stat().st_size
    except FileNotFoundError:
        return f"missing: {path} does not exist"
    except OSError as exc:
        return f"unreadable: {path}: {exc.strerror}"
    if actual_size != size:
        return f"size mismatch: {path} has {actual_size} bytes, {size} registered"
    try:
        actual_sha, _ = file_digest(path)
    except OSError as exc:
        return f"unreadable: {path}: {exc.strerror}"
    if actual_sha != sha256:
        return f"sha256 mismatch: {path} hashes to {actual_sha}, {sha256} registered"
    return None


__all__ = ["ARTIFACTS_DIR", "StoredArtifact", "check_artifact", "file_digest", "ingest"]
