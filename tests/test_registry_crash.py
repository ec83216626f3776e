"""Crash safety: writers killed with SIGKILL mid-operation never leave a half-done operation."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from infer_runtime.registry import RegistryConflictError, RegistryNotFoundError, SyncRegistry

KILLS = 100


def _writer(db: str, src_dir: str, seed: int, done: Any) -> None:
    """Registers, promotes and rolls back forever (until killed); counts finished rounds."""
    rng = random.Random(seed)
    src = Path(src_dir) / f"w{seed}.onnx"
    with SyncRegistry(db) as reg:
        i = 0
        while True:
            i += 1
            src.write_bytes(os.urandom(rng.randint(1, 64 * 1024)))
            model = reg.register(rng.choice(["a", "b"]), src)
            reg.promote(model.name, model.version, rng.choice(["production", "staging"]), note=f"{seed}-{i}")
            if rng.random() < 0.3:
                with contextlib.suppress(RegistryConflictError, RegistryNotFoundError):  # nothing to roll back to yet
                    reg.rollback(model.name, "production")
            done.value += 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="uses fork to keep 100 kills fast")
def test_sigkill_mid_write_leaves_consistent_registry(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(1234)
    start = time.monotonic()
    for k in range(KILLS):
        done = ctx.Value("i", 0)
        proc = ctx.Process(target=_writer, args=(str(db), str(tmp_path), k, done))
        proc.start()
        if k % 5:  # most kills land after a first whole round, so each one interrupts real work
            deadline = time.monotonic() + 10
            while done.value == 0 and time.monotonic() < deadline and proc.is_alive():
                time.sleep(0.001)
        # (every fifth kill may also land while the writer opens the file)
        time.sleep(rng.uniform(0.0, 0.03))
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        assert proc.exitcode == -signal.SIGKILL
    elapsed = time.monotonic() - start

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    n_models = conn.execute("SELECT count(*) FROM models").fetchone()[0]
    n_deploys = conn.execute("SELECT count(*) FROM deployments").fetchone()[0]
    kinds = dict(conn.execute("SELECT what, count(*) FROM events GROUP BY what").fetchall())
    conn.close()
    assert n_models >= KILLS * 3 // 4 and n_deploys >= KILLS * 3 // 4, f"too few writes ({n_models}, {n_deploys}): the test would prove little"
    # Each operation writes its row and its event in one transaction: all or nothing.
    assert kinds.get("register", 0) == n_models
    assert kinds.get("promote", 0) + kinds.get("rollback", 0) == n_deploys

    with SyncRegistry(db) as reg:
        report = reg.verify()
        assert report.ok, report.problems  # every committed version's artifact is whole
        for name in {m.name for m in reg.list()}:
            for env in ("production", "staging"):
                chain = reg.history(name, env)
                assert [d.replaced for d in chain] == ([None] + [d.id for d in chain[:-1]])[: len(chain)]
    assert elapsed < 60  # ~10 s on an idle machine; generous for a shared one
