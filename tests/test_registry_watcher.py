"""RegistryWatcher: cheap polling, change reports, verification, concurrent writers."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from infer_runtime.registry import (
    RegistryFileError,
    RegistryWatcher,
    ResolvedArtifact,
    SyncRegistry,
    resolve_source,
)
from registry_helpers import artifact

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "registry.db"
    with SyncRegistry(path) as reg:
        for content in ("v1", "v2", "v3"):
            reg.register("m", artifact(tmp_path / "src", content))
        reg.register("other", artifact(tmp_path / "src", "o1"))
        reg.promote("m", "1", "production")
    return path


class Recorder:
    """An on_change that records every report and wakes waiters."""

    def __init__(self) -> None:
        self.reports: list[dict[str, ResolvedArtifact]] = []
        self.event = asyncio.Event()

    async def __call__(self, changed: dict[str, ResolvedArtifact]) -> None:
        self.reports.append(changed)
        self.event.set()

    async def next(self, timeout: float = 5.0) -> dict[str, ResolvedArtifact]:
        await asyncio.wait_for(self.event.wait(), timeout)
        self.event.clear()
        return self.reports[-1]


async def _in_thread(db: Path, fn_name: str, *args: str) -> None:
    def call() -> None:
        with SyncRegistry(db) as reg:
            getattr(reg, fn_name)(*args)

    await asyncio.to_thread(call)


def test_promotion_is_reported_within_the_poll_interval(db: Path) -> None:
    async def scenario() -> None:
        rec = Recorder()
        async with RegistryWatcher(db, "production", 0.05, rec) as watcher:
            await asyncio.sleep(0.2)
            assert rec.reports == []  # the starting point is not a change
            start = time.monotonic()
            await _in_thread(db, "promote", "m", "2", "production")
            changed = await rec.next()
            assert time.monotonic() - start < 1.0  # 50 ms interval, generous bound for a busy machine
            assert list(changed) == ["m"]
            art = changed["m"]
            assert (art.version, art.environment, art.watched, art.path.read_bytes()) == ("2", "production", True, b"v2")
            await _in_thread(db, "rollback", "m", "production")
            assert (await rec.next())["m"].version == "1"
            assert watcher.checks > 3
    asyncio.run(scenario())


def test_idle_polls_only_read_data_version(db: Path) -> None:
    async def scenario() -> None:
        rec = Recorder()
        async with RegistryWatcher(db, "production", 0.01, rec) as watcher:
            reads = watcher.reads
            await asyncio.sleep(0.3)
            assert watcher.checks >= 5 and watcher.reads == reads  # no deployment query while idle
            await _in_thread(db, "register", "other", str(artifact(db.parent / "src", "o2")))
            await _in_thread(db, "promote", "other", "1", "staging")
            await asyncio.sleep(0.3)
            assert watcher.reads > reads and rec.reports == []  # changes elsewhere: read, nothing to report
    asyncio.run(scenario())


def test_check_now_without_polling_and_model_filter(db: Path) -> None:
    async def scenario() -> None:
        rec = Recorder()
        async with RegistryWatcher(db, "production", 0, rec, models={"m"}) as watcher:
            await _in_thread(db, "promote", "other", "1", "production")
            await _in_thread(db, "promote", "m", "3", "production")
            await asyncio.sleep(0.1)
            assert rec.reports == [] and watcher.checks == 0  # no background polling
            changed = await watcher.check_now()
            assert {n: a.version for n, a in changed.items()} == {"m": "3"} and rec.reports == [changed]
            assert await watcher.check_now() == {}
    asyncio.run(scenario())


def test_baseline_catches_a_promotion_made_during_startup(db: Path) -> None:
    served = [resolve_source(db, "m@production", "production"), resolve_source(db, "other@1", "production")]
    with SyncRegistry(db) as reg:
        reg.promote("m", "2", "production")  # after startup resolved, before the watcher runs

    async def scenario() -> None:
        rec = Recorder()
        async with RegistryWatcher(db, "production", 10.0, rec, baseline=served):
            assert [{n: a.version for n, a in r.items()} for r in rec.reports] == [{"m": "2"}]
    asyncio.run(scenario())


def test_tampered_deployment_is_not_reported_and_on_change_errors_do_not_stop_it(db: Path) -> None:
    async def scenario() -> None:
        calls: list[str] = []

        async def flaky(changed: dict[str, ResolvedArtifact]) -> None:
            calls.append(changed["m"].version)
            if len(calls) == 1:
                raise RuntimeError("load failed")

        async with RegistryWatcher(db, "production", 0.02, flaky):
            with SyncRegistry(db) as reg:
                bad = reg.get("m", "2").artifact
            os.chmod(bad, 0o644)
            bad.write_bytes(b"XX")
            await _in_thread(db, "promote", "m", "2", "production")
            await asyncio.sleep(0.3)
            assert calls == []  # refused, never handed over
            await _in_thread(db, "promote", "m", "3", "production")
            for _ in range(100):
                if calls:
                    break
                await asyncio.sleep(0.02)
            await _in_thread(db, "promote", "m", "1", "production")
            for _ in range(100):
                if len(calls) == 2:
                    break
                await asyncio.sleep(0.02)
            assert calls == ["3", "1"]  # the failing callback did not stop the watcher
        with SyncRegistry(db) as reg:
            assert any(e.what == "artifact_rejected" and e.version == "2" for e in reg.events())
    asyncio.run(scenario())


_WRITER = """
import sys
from infer_runtime.registry import SyncRegistry
db, start, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with SyncRegistry(db) as reg:
    for i in range(n):
        reg.promote("m", str((start + i) % 3 + 1), "production")
"""


def test_concurrent_writers_end_on_the_final_deployment(db: Path) -> None:
    async def scenario() -> None:
        rec = Recorder()
        async with RegistryWatcher(db, "production", 0.01, rec) as watcher:
            env = {**os.environ, "PYTHONPATH": str(ROOT / "runtime")}
            procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", _WRITER, str(db), str(s), "30", env=env) for s in (0, 1)]
            assert [await p.wait() for p in procs] == [0, 0]
            await watcher.check_now()
            with SyncRegistry(db) as reg:
                final = reg.resolve("m@production")
            assert rec.reports, "no change was reported"
            last = rec.reports[-1]["m"]
            assert (last.version, last.deployment_id) == (final.model.version, final.deployment.id if final.deployment else None)
            with SyncRegistry(db) as reg:
                by_id = {d.id: d.version for d in reg.history("m")}
            for report in rec.reports:  # every report is a real deployment with its own version
                assert by_id[report["m"].deployment_id] == report["m"].version  # type: ignore[index]
            ids = [r["m"].deployment_id for r in rec.reports]
            assert ids == sorted(ids)  # never reported backwards
    asyncio.run(scenario())


def test_start_on_missing_file_and_idempotent_stop(tmp_path: Path) -> None:
    async def scenario() -> None:
        watcher = RegistryWatcher(tmp_path / "none.db", "production", 0.1, Recorder())
        with pytest.raises(RegistryFileError):
            await watcher.start()
        await watcher.stop()
        await watcher.stop()
        with pytest.raises(ValueError):
            RegistryWatcher(tmp_path / "none.db", "production", -1, Recorder())
    asyncio.run(scenario())
