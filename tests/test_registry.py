"""The model registry: store, references, Python APIs, integrity, concurrency, CLI."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from infer_runtime.errors import ModelLoadError
from infer_runtime.registry import (
    ArtifactIntegrityError,
    InvalidReferenceError,
    Reference,
    Registry,
    RegistryBusyError,
    RegistryConflictError,
    RegistryError,
    RegistryFileError,
    RegistryNotFoundError,
    SyncRegistry,
    _schema,
    parse_reference,
    resolve_source,
)
from registry_helpers import artifact

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def reg(tmp_path: Path) -> SyncRegistry:
    registry = SyncRegistry(tmp_path / "var" / "registry.db")
    yield registry  # type: ignore[misc]
    registry.close()


# ---- references ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("scorer", Reference("scorer")),
        ("scorer@1", Reference("scorer", version="1")),
        ("scorer@1.2.0", Reference("scorer", version="1.2.0")),
        ("scorer@2-rc1", Reference("scorer", version="2-rc1")),
        ("scorer@production", Reference("scorer", environment="production")),
        ("a-b_c@Staging.eu", Reference("a-b_c", environment="Staging.eu")),
    ],
)
def test_references_parse_without_ambiguity(text: str, expected: Reference) -> None:
    assert parse_reference(text) == expected
    assert str(parse_reference(text)) == text


@pytest.mark.parametrize("text", ["", "Scorer", "scorer@", "scorer@@1", "scorer@-x", "scorer@1 2", "@1", "scorer@prod/uction", "x" * 129, "s@²"])
def test_malformed_references_are_refused(text: str) -> None:
    with pytest.raises(InvalidReferenceError):
        parse_reference(text)


# ---- register / get / list ------------------------------------------------------------


def test_register_copies_into_content_addressed_store(reg: SyncRegistry, tmp_path: Path) -> None:
    src = artifact(tmp_path, b"onnx-bytes")
    m = reg.register("scorer", src, metadata={"auc": 0.91, "tags": ["a"]})
    assert (m.name, m.version, m.backend, m.format, m.size) == ("scorer", "1", "onnxruntime", "onnx", 10)
    assert m.artifact == (tmp_path / "var" / "artifacts" / m.sha256 / "model.onnx").resolve()
    assert m.artifact.read_bytes() == b"onnx-bytes"
    assert dict(m.metadata) == {"auc": 0.91, "tags": ["a"]}
    src.write_bytes(b"changed later")  # the registered copy does not follow the source
    assert reg.get("scorer", "1").artifact.read_bytes() == b"onnx-bytes"
    assert not list((tmp_path / "var" / "artifacts").glob(".incoming-*"))


def test_stale_incoming_copies_are_cleaned_up(reg: SyncRegistry, tmp_path: Path) -> None:
    store = tmp_path / "var" / "artifacts"
    store.mkdir(parents=True)
    old, fresh = store / ".incoming-old", store / ".incoming-fresh"
    old.write_bytes(b"half")
    fresh.write_bytes(b"in progress")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    reg.register("m", artifact(tmp_path, "a"))
    assert not old.exists() and fresh.exists()


def test_versions_default_to_next_integer(reg: SyncRegistry, tmp_path: Path) -> None:
    assert reg.register("m", artifact(tmp_path, "a")).version == "1"
    assert reg.register("m", artifact(tmp_path, "b"), version="1.5.0").version == "1.5.0"
    assert reg.register("m", artifact(tmp_path, "c")).version == "2"
    assert [v.version for v in reg.list("m")] == ["1", "1.5.0", "2"]
    assert reg.resolve("m").model.version == "2"  # bare name = latest registered


def test_register_same_content_is_idempotent_different_content_conflicts(reg: SyncRegistry, tmp_path: Path) -> None:
    a = reg.register("m", artifact(tmp_path, "a"), version="3")
    assert reg.register("m", artifact(tmp_path, "a"), version="3") == a
    with pytest.raises(RegistryConflictError, match="never changes"):
        reg.register("m", artifact(tmp_path, "b"), version="3")
    assert len(reg.list("m")) == 1


def test_backend_from_suffix_or_explicit(reg: SyncRegistry, tmp_path: Path) -> None:
    assert reg.register("policy", artifact(tmp_path, "[rules]", "p.toml")).backend == "rules"
    with pytest.raises(InvalidReferenceError, match="backend"):
        reg.register("x", artifact(tmp_path, "z", "x.bin"))
    assert reg.register("x", artifact(tmp_path, "z", "x.bin"), backend="python").format == "bin"


def test_register_rejects_bad_input(reg: SyncRegistry, tmp_path: Path) -> None:
    with pytest.raises(InvalidReferenceError):
        reg.register("Bad", artifact(tmp_path, "a"))
    with pytest.raises(InvalidReferenceError):
        reg.register("m", artifact(tmp_path, "a"), version="v1")
    with pytest.raises(InvalidReferenceError, match="JSON"):
        reg.register("m", artifact(tmp_path, "a"), metadata={"x": object()})
    with pytest.raises(Exception, match="no such file"):
        reg.register("m", tmp_path / "missing.onnx")


def test_unknown_names_and_versions_list_what_exists(reg: SyncRegistry, tmp_path: Path) -> None:
    reg.register("scorer", artifact(tmp_path, "a"))
    reg.register("policy", artifact(tmp_path, "p", "p.toml"))
    with pytest.raises(RegistryNotFoundError, match="models: policy, scorer"):
        reg.resolve("fraud")
    with pytest.raises(RegistryNotFoundError, match="no version '9'; versions: 1"):
        reg.resolve("scorer@9")
    with pytest.raises(RegistryNotFoundError, match="not deployed in any environment"):
        reg.resolve("scorer@production")
    reg.promote("scorer", "1", "staging")
    with pytest.raises(RegistryNotFoundError, match=r"deployed in: staging \(version 1\)"):
        reg.resolve("scorer@production")


# ---- promote / rollback / history ---------------------------------------------------------


def test_promote_and_rollback_step_back_through_deployments(reg: SyncRegistry, tmp_path: Path) -> None:
    for content in "abc":
        reg.register("m", artifact(tmp_path, content))
    for v in "123":
        reg.promote("m", v, "production", note=f"ship {v}")
    assert reg.resolve("m@production").model.version == "3"
    assert reg.rollback("m", "production").version == "2"
    assert reg.rollback("m", "production").version == "1"
    with pytest.raises(RegistryConflictError, match="nothing to roll back to"):
        reg.rollback("m", "production")
    assert reg.resolve("m@production").model.version == "1"
    hist = reg.history("m", "production")
    assert [(d.action, d.version) for d in hist] == [("promote", "1"), ("promote", "2"), ("promote", "3"), ("rollback", "2"), ("rollback", "1")]
    assert [d.replaced for d in hist] == [None, hist[0].id, hist[1].id, hist[2].id, hist[3].id]
    assert hist[0].note == "ship 1" and hist[3].note == "rollback from version 3 to 2"


def test_rollback_after_a_new_promotion_returns_to_what_it_replaced(reg: SyncRegistry, tmp_path: Path) -> None:
    for content in "abc":
        reg.register("m", artifact(tmp_path, content))
    reg.promote("m", "1", "production")
    reg.promote("m", "2", "production")
    reg.rollback("m", "production")  # → 1
    reg.promote("m", "3", "production")
    assert reg.rollback("m", "production").version == "1"
    with pytest.raises(RegistryConflictError):
        reg.rollback("m", "production")


def test_environments_are_independent(reg: SyncRegistry, tmp_path: Path) -> None:
    reg.register("m", artifact(tmp_path, "a"))
    reg.register("m", artifact(tmp_path, "b"))
    reg.promote("m", "1", "production")
    reg.promote("m", "2", "staging")
    assert reg.resolve("m@production").model.version == "1"
    assert reg.resolve("m@staging").model.version == "2"
    assert reg.resolve("m", environment="staging").model.version == "2"
    with pytest.raises(InvalidReferenceError):
        reg.resolve("m@1", environment="staging")
    assert [(d.environment, d.version) for d in reg.current("m")] == [("production", "1"), ("staging", "2")]
    assert len(reg.history("m")) == 2 and len(reg.history("m", "staging")) == 1
    with pytest.raises(RegistryNotFoundError):
        reg.rollback("m", "canary")
    with pytest.raises(RegistryNotFoundError, match="versions: 1, 2"):
        reg.promote("m", "7", "production")


def test_events_log_every_operation_and_is_append_only(reg: SyncRegistry, tmp_path: Path) -> None:
    reg.register("m", artifact(tmp_path, "a"))
    reg.promote("m", "1", "production", note="go")
    events = reg.events()
    assert [e.what for e in events] == ["register", "promote"]
    assert events[1].note == "go" and events[1].environment == "production" and events[1].host and events[1].user
    conn = sqlite3.connect(reg.path)
    for sql in ("UPDATE events SET note = 'x'", "DELETE FROM events", "DELETE FROM deployments", "UPDATE models SET size = 0"):
        with pytest.raises(sqlite3.DatabaseError):
            conn.execute(sql)
    conn.close()


# ---- the file: WAL, schema version, migrations, damage --------------------------------------


def test_file_is_wal_with_foreign_keys_and_schema_version(reg: SyncRegistry) -> None:
    conn = sqlite3.connect(reg.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == _schema.SCHEMA_VERSION
    assert conn.execute("PRAGMA application_id").fetchone()[0] == _schema.APPLICATION_ID
    conn.close()
    with pytest.raises(RegistryNotFoundError):  # foreign keys on: no deployment of an unknown version
        reg.promote("ghost", "1", "production")


def test_older_file_is_upgraded_in_place(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript(_schema.MIGRATIONS[0])
    conn.execute(f"PRAGMA application_id = {_schema.APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO models (name, version, artifact, filename, format, backend, sha256, size, created_at) VALUES ('m', '1', 'artifacts/x/m.onnx', 'm.onnx', 'onnx', 'onnxruntime', 'x', 1, '2026-01-01T00:00:00.000000Z')")
    conn.commit()
    conn.close()
    with SyncRegistry(db) as reg:
        assert reg.get("m", "1").size == 1
        assert reg.events() == []
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == _schema.SCHEMA_VERSION
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").fetchone()[0] > 0
    conn.close()


def test_newer_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    SyncRegistry(db).close()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(RegistryFileError, match="schema version 99 is newer"):
        SyncRegistry(db)
    with pytest.raises(ModelLoadError, match="newer"):
        resolve_source(db, "m@production", "production")
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 99
    conn.close()


def test_other_sqlite_files_and_garbage_are_clear_errors(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(RegistryFileError, match="not a model registry"):
        SyncRegistry(other)
    garbage = tmp_path / "corrupt.db"
    garbage.write_bytes(b"this is not sqlite " * 500)
    with pytest.raises(RegistryFileError, match="corrupt or not a SQLite database"):
        SyncRegistry(garbage)
    with pytest.raises(ModelLoadError, match="corrupt or not a SQLite database"):
        resolve_source(garbage, "m", "production")
    with pytest.raises(RegistryFileError, match="no registry file"):
        SyncRegistry(tmp_path / "absent.db", create=False)
    with pytest.raises(ModelLoadError, match="no registry file"):
        resolve_source(tmp_path / "absent.db", "m", "production")
    assert not (tmp_path / "absent.db").exists()


def test_file_system_failures_are_registry_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    with pytest.raises(RegistryFileError, match="cannot create the registry's directory"):
        SyncRegistry(blocker / "registry.db")
    with SyncRegistry(tmp_path / "r.db") as reg:
        (tmp_path / "artifacts").write_text("in the way")
        with pytest.raises(RegistryError, match="cannot copy .* into the artifact store"):
            reg.register("m", artifact(tmp_path / "src", "x"))
        assert reg.list() == []


def test_damaged_file_page_is_reported_by_verify_or_refused(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with SyncRegistry(db) as reg:
        for i in range(30):
            reg.register(f"m{i}", artifact(tmp_path, f"{i}" * 2000))
    data = bytearray(db.read_bytes())
    data[4096 * 2 : 4096 * 2 + 200] = b"\xff" * 200  # scribble over a b-tree page
    db.write_bytes(bytes(data))
    try:
        with SyncRegistry(db) as reg:
            report = reg.verify()
        assert not report.ok and report.integrity != "ok"
    except RegistryFileError as exc:  # damage SQLite notices on open is as good
        assert "corrupt" in str(exc)


# ---- artifact integrity -------------------------------------------------------------------


def _tamper(path: Path, data: bytes) -> None:
    os.chmod(path, 0o644)
    path.write_bytes(data)


def test_tampered_and_missing_artifacts_are_refused_and_logged(reg: SyncRegistry, tmp_path: Path) -> None:
    a = reg.register("m", artifact(tmp_path, "good bytes"))
    b = reg.register("n", artifact(tmp_path, "other bytes"))
    reg.promote("m", "1", "production")
    assert reg.resolve("m@production", verify=True).model == a
    _tamper(a.artifact, b"evil bytes")  # same size: only the hash can tell
    with pytest.raises(ArtifactIntegrityError, match="sha256 mismatch"):
        reg.resolve("m@production", verify=True)
    with pytest.raises(ModelLoadError, match=r"m@production.*sha256 mismatch"):
        resolve_source(reg.path, "m@production", "production")
    b.artifact.unlink()
    with pytest.raises(ModelLoadError, match="missing"):
        resolve_source(reg.path, "n@1", "production")
    report = reg.verify()
    assert not report.ok and report.integrity == "ok" and report.checked == 2
    assert sorted(p.problem.split(":")[0] for p in report.problems) == ["missing", "sha256 mismatch"]
    rejected = [e for e in reg.events() if e.what == "artifact_rejected"]
    assert {e.name for e in rejected} == {"m", "n"}


def test_truncated_artifact_is_refused_by_size(reg: SyncRegistry, tmp_path: Path) -> None:
    a = reg.register("m", artifact(tmp_path, "0123456789"))
    _tamper(a.artifact, b"01234")
    with pytest.raises(ArtifactIntegrityError, match="size mismatch: .* 5 bytes, 10 registered"):
        reg.resolve("m", verify=True)


def test_reregistering_restores_a_damaged_store_file(reg: SyncRegistry, tmp_path: Path) -> None:
    src = artifact(tmp_path, "payload")
    a = reg.register("m", src)
    _tamper(a.artifact, b"garbage")
    reg.register("m2", src)  # same content: the store heals the shared file
    assert reg.resolve("m", verify=True).model.artifact.read_bytes() == b"payload"


# ---- resolve_source -----------------------------------------------------------------------


def test_resolve_source_forms_and_watched_flag(reg: SyncRegistry, tmp_path: Path) -> None:
    reg.register("m", artifact(tmp_path, "a"))
    reg.register("m", artifact(tmp_path, "b"), version="1.2")
    reg.promote("m", "1", "production")
    reg.promote("m", "1.2", "staging")
    env = resolve_source(reg.path, "m@production", "production")
    assert (env.version, env.environment, env.watched, env.path.read_bytes()) == ("1", "production", True, b"a")
    assert env.deployment_id == reg.history("m", "production")[-1].id
    other = resolve_source(reg.path, "m@staging", "production")
    assert (other.version, other.watched) == ("1.2", False)
    pinned = resolve_source(reg.path, "m@1", "production")
    assert (pinned.version, pinned.environment, pinned.watched, pinned.deployment_id) == ("1", None, False, None)
    assert resolve_source(reg.path, "m", "production").version == "1.2"
    with pytest.raises(ModelLoadError, match=r"registry reference 'q@production'.*models: m"):
        resolve_source(reg.path, "q@production", "production")
    with pytest.raises(ModelLoadError, match="invalid reference"):
        resolve_source(reg.path, "m@", "production")


# ---- concurrency --------------------------------------------------------------------------


def test_a_held_lock_is_waited_for_then_reported_clearly(reg: SyncRegistry, tmp_path: Path) -> None:
    reg.register("m", artifact(tmp_path, "a"))
    holder = sqlite3.connect(reg.path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    with SyncRegistry(reg.path, busy_budget_s=0.5) as impatient:
        start = time.monotonic()
        with pytest.raises(RegistryBusyError, match="locked by other writers"):
            impatient.promote("m", "1", "production")
        assert 0.4 < time.monotonic() - start < 5.0
    releaser = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    releaser.start()
    assert reg.promote("m", "1", "production").version == "1"  # retried until the lock went
    releaser.join()
    holder.close()


_PROMOTER = """
import sys
from infer_runtime.registry import SyncRegistry
db, version, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with SyncRegistry(db) as reg:
    for i in range(n):
        reg.promote("m", version, "production", note=f"p{version}-{i}")
"""


def test_concurrent_promoters_lose_no_update(reg: SyncRegistry, tmp_path: Path) -> None:
    reg.register("m", artifact(tmp_path, "a"))
    reg.register("m", artifact(tmp_path, "b"))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "runtime")}
    procs = [subprocess.Popen([sys.executable, "-c", _PROMOTER, str(reg.path), v, "25"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL) for v in ("1", "2")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    hist = reg.history("m", "production")
    assert len(hist) == 50
    assert {d.note for d in hist} == {f"p{v}-{i}" for v in "12" for i in range(25)}
    # Every deployment replaced exactly the one before it: no writer read a stale "current".
    assert [d.replaced for d in hist] == [None] + [d.id for d in hist[:-1]]
    assert reg.verify().ok


# ---- async API ----------------------------------------------------------------------------


def test_async_registry_matches_sync(tmp_path: Path) -> None:
    db = tmp_path / "a.db"

    async def scenario() -> None:
        async with Registry(db) as reg:
            m = await reg.register("m", artifact(tmp_path, "a"), metadata={"k": "v"})
            await reg.register("m", artifact(tmp_path, "b"))
            await reg.promote("m", "1", "production")
            await reg.promote("m", "2", "production")
            assert (await reg.rollback("m", "production")).version == "1"
            assert (await reg.resolve("m@production", verify=True)).model == m
            assert [v.version for v in await reg.list()] == ["1", "2"]
            assert len(await reg.history("m")) == 3
            assert (await reg.get("m", "2")).version == "2"
            assert (await reg.verify()).ok
            assert set(await reg.deployed("production")) == {"m"}
            with pytest.raises(RegistryNotFoundError):
                await reg.resolve("x")
        with pytest.raises(RegistryFileError):
            await Registry(tmp_path / "none.db", create=False).open()

    asyncio.run(scenario())
    with SyncRegistry(db) as reg:
        assert reg.resolve("m@production").model.version == "1"
        assert [e.what for e in reg.events()] == ["register", "register", "promote", "promote", "rollback"]


# ---- CLI ----------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Runs ``infer-runtime ARGS`` in-process; returns (exit code, stdout, stderr)."""
    import infer_runtime.monitoring.logging as logging_mod
    from infer_runtime.cli import main

    monkeypatch.setattr(logging_mod, "configure_logging", lambda *a, **k: None)  # keep global logging as the suite set it

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_cli_register_promote_show_list_history(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = str(tmp_path / "r.db")
    model = artifact(tmp_path, "v1")
    code, out, _ = cli("registry", "--db", db, "register", "scorer", str(model), "--meta", "auc=0.9", "--meta", "by=me", "--promote", "production")
    assert code == 0 and "registered scorer@1" in out and "promoted scorer@1 in production" in out
    artifact(tmp_path, "v2")
    assert cli("registry", "--db", db, "register", "scorer", str(model), "--version", "2.0")[0] == 0
    code, out, _ = cli("registry", "--db", db, "promote", "scorer@2.0", "production", "--note", "better")
    assert code == 0 and "deployment #2" in out

    code, out, _ = cli("registry", "--db", db, "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["NAME", "VERSION", "BACKEND", "SIZE", "SHA256", "CREATED", "(UTC)", "DEPLOYED"]
    assert lines[2].split()[:2] == ["scorer", "2.0"] and lines[2].split()[-1] == "production"
    assert len({line.index("VERSION") if "VERSION" in line else lines[0].index("VERSION") for line in lines}) == 1  # aligned

    code, out, _ = cli("registry", "--db", db, "list", "--format", "json")
    data = json.loads(out)
    assert [m["version"] for m in data["models"]] == ["1", "2.0"]
    assert data["models"][0]["metadata"] == {"auc": 0.9, "by": "me"} and data["models"][1]["deployed"] == ["production"]
    assert set(data["models"][0]) == {"name", "version", "artifact", "filename", "format", "backend", "sha256", "size", "created_at", "metadata", "deployed"}

    code, out, _ = cli("registry", "--db", db, "show", "scorer@production", "--format", "json")
    shown = json.loads(out)
    assert code == 0 and shown["version"] == "2.0" and shown["environment"] == "production" and shown["deployment"]["id"] == 2
    code, out, _ = cli("registry", "--db", db, "show", "scorer@1")
    assert code == 0 and "reference" in out and "scorer@1" in out

    code, out, _ = cli("registry", "--db", db, "rollback", "scorer", "production")
    assert code == 0 and "rolled back scorer@1" in out
    code, out, _ = cli("registry", "--db", db, "history", "scorer", "--format", "json")
    assert [d["action"] for d in json.loads(out)["deployments"]] == ["promote", "promote", "rollback"]
    code, out, _ = cli("registry", "--db", db, "history", "scorer", "--env", "production")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["ID", "WHEN", "(UTC)"] and len(out.splitlines()) == 4

    code, out, _ = cli("registry", "--db", db, "verify", "--format", "json")
    assert code == 0 and json.loads(out)["ok"] is True


def test_cli_failures_and_usage_errors(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = str(tmp_path / "r.db")
    assert cli("registry", "--db", db, "register", "m", str(artifact(tmp_path, "a")))[0] == 0
    code, _, err = cli("registry", "--db", db, "show", "nope")
    assert code == 1 and "models: m" in err and "Traceback" not in err
    code, _, err = cli("registry", "--db", db, "rollback", "m", "production")
    assert code == 1 and "not deployed" in err
    assert cli("registry", "--db", db, "show", "m@@")[0] == 2
    assert cli("registry", "--db", db, "promote", "m@production", "staging")[0] == 2
    assert cli("registry", "--db", db, "register", "m", "x.onnx", "--meta", "novalue")[0] == 2
    assert cli("registry", "list")[0] == 2  # neither --db nor --spec
    assert cli("registry", "--db", db, "--spec", "s.toml", "list")[0] == 2
    code, _, err = cli("registry", "--db", str(tmp_path / "absent.db"), "list")
    assert code == 1 and "no registry file" in err and not (tmp_path / "absent.db").exists()
    garbage = tmp_path / "g.db"
    garbage.write_bytes(b"junk" * 1000)
    code, _, err = cli("registry", "--db", str(garbage), "list")
    assert code == 1 and "corrupt" in err and "Traceback" not in err
    stored = Path(json.loads(cli("registry", "--db", db, "show", "m", "--format", "json")[1])["artifact"])
    _tamper(stored, b"b")
    code, out, _ = cli("registry", "--db", db, "verify")
    assert code == 1 and "m@1: sha256 mismatch" in out


def test_cli_spec_takes_registry_path_relative_to_the_spec(cli, tmp_path: Path, write_spec) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec('[registry]\npath = "${DB_DIR:-state}/reg.db"\n[models.a]\nbackend = "identity"\n')
    model = artifact(tmp_path, "m")
    assert cli("registry", "--spec", str(spec), "register", "a", str(model), "--backend", "onnxruntime")[0] == 0
    assert (tmp_path / "state" / "reg.db").is_file()
    assert cli("registry", "--spec", str(spec), "--set", "registry.path=other.db", "register", "a", str(model))[0] == 0
    assert (tmp_path / "other.db").is_file()
    no_registry = write_spec('[models.a]\nbackend = "identity"\n', name="plain.toml")
    code, _, err = cli("registry", "--spec", str(no_registry), "list")
    assert code == 2 and "no [registry] section" in err
    assert cli("registry", "--spec", str(spec), "--set", "registry.nope=1", "list")[0] == 2


def test_cli_one_command_from_trained_model_to_serving(tmp_path: Path) -> None:
    """The documented path: prod.toml's registry, one command, then the runtime's resolver."""
    from conftest import run_cli

    db = tmp_path / "registry.db"
    model = artifact(tmp_path, "trained", "model.onnx")
    proc = run_cli("registry", "--spec", "specs/prod.toml", "register", "scorer", str(model), "--promote", "production", env={"REGISTRY_DB": str(db)})
    assert proc.returncode == 0, proc.stderr
    assert "promoted scorer@1 in production" in proc.stdout and proc.stdout.count("\n") == 2  # no log noise on stdout
    resolved = resolve_source(db, "scorer@production", "production")
    assert resolved.path.read_bytes() == b"trained" and resolved.watched


def test_cli_parser_stays_import_light() -> None:
    code = "import sys; from infer_runtime.cli import _parser; _parser(); print(sorted(m for m in ('aiosqlite', 'structlog', 'sqlite3', 'pydantic') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "runtime")}, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr
