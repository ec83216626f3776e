"""The C++ registry reader (ir_registry_resolve) agrees with the Python resolver.

Random histories of register / promote / rollback, then every reference one can write for
them (each name alone, at each version, at each environment, plus unknown ones) resolves
to the same entry, or fails with the same kind of error, in both languages.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infer_runtime.registry import (
    InvalidReferenceError,
    RegistryConflictError,
    RegistryError,
    RegistryNotFoundError,
    SyncRegistry,
)
from registry_helpers import artifact, native_resolve

NAMES = st.sampled_from(["a", "scorer", "m-2"])
VERSIONS = st.one_of(st.none(), st.sampled_from(["1", "2", "1.2.0", "3-rc1", "10"]))
ENVS = st.sampled_from(["production", "staging", "Canary"])

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("register"), NAMES, VERSIONS, st.binary(min_size=0, max_size=8)),
        st.tuples(st.just("promote"), NAMES, st.integers(0, 9), ENVS),
        st.tuples(st.just("rollback"), NAMES, ENVS),
    ),
    max_size=25,
)

_CODES = {RegistryNotFoundError: "NOT_FOUND", InvalidReferenceError: "INVALID_ARGUMENT"}


def _python(reg: SyncRegistry, ref: str) -> dict[str, str] | str:
    try:
        res = reg.resolve(ref)
    except RegistryError as exc:
        return next(code for cls, code in _CODES.items() if isinstance(exc, cls))
    m = res.model
    return {
        "name": m.name, "version": m.version, "environment": res.environment or "", "artifact": str(m.artifact),
        "filename": m.filename, "format": m.format, "backend": m.backend, "sha256": m.sha256, "size": str(m.size),
        "created_at": m.as_dict()["created_at"], "metadata": m.metadata,  # type: ignore[dict-item]
    }


def _native(db: Path, ref: str) -> dict[str, str] | str:
    out = native_resolve(db, ref)
    if isinstance(out, tuple):
        return out[0]
    out = dict(out)
    out["metadata"] = json.loads(out["metadata"])
    return out


def _apply(reg: SyncRegistry, tmp: Path, ops: list[tuple[object, ...]]) -> None:
    for op in ops:
        try:
            if op[0] == "register":
                _, name, version, content = op
                reg.register(str(name), artifact(tmp, bytes(content)), version=version, metadata={"n": len(bytes(content))})  # type: ignore[arg-type]
            elif op[0] == "promote":
                _, name, index, env = op
                mine = [v.version for v in reg.list() if v.name == name] or ["1"]  # none: an unknown-name error
                reg.promote(str(name), mine[int(index) % len(mine)], str(env))  # type: ignore[call-overload]
            else:
                _, name, env = op
                reg.rollback(str(name), str(env))
        except (RegistryNotFoundError, RegistryConflictError):
            pass  # part of a random history: unknown names, rollback past the first


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_native_resolver_equals_python(ops: list[tuple[object, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        db = tmp / "reg" / "registry.db"
        with SyncRegistry(db) as reg:
            _apply(reg, tmp / "src", ops)
            refs = {"a", "scorer", "m-2", "nope", "nope@1", "a@99", "a@nowhere", "a@", "A", "a@-1"}
            for v in reg.list():
                refs |= {v.name, f"{v.name}@{v.version}"}
            for name in ("a", "scorer", "m-2"):
                refs |= {f"{name}@{env}" for env in ("production", "staging", "Canary")}
            for ref in sorted(refs):
                assert _native(db, ref) == _python(reg, ref), ref


def test_native_errors_name_what_exists(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with SyncRegistry(db) as reg:
        reg.register("scorer", artifact(tmp_path, "a"))
        reg.promote("scorer", "1", "production")
    assert native_resolve(db, "fraud@production") == ("NOT_FOUND", f"no model 'fraud' in the registry {db}; models: scorer")
    assert native_resolve(db, "scorer@2") == ("NOT_FOUND", "model 'scorer' has no version '2'; versions: 1")
    assert native_resolve(db, "scorer@staging") == ("NOT_FOUND", "model 'scorer' is not deployed in 'staging'; deployed in: production (version 1)")
    assert native_resolve(tmp_path / "none.db", "scorer")[0] == "NOT_FOUND"
    code, message = native_resolve(db, "scorer@")  # type: ignore[misc]
    assert code == "INVALID_ARGUMENT" and "invalid reference" in message


def test_native_refuses_newer_corrupt_and_foreign_files(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "r.db"
    SyncRegistry(db).close()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    code, message = native_resolve(db, "m")  # type: ignore[misc]
    assert code == "INVALID_ARGUMENT" and "schema version 7 is newer" in message
    garbage = tmp_path / "g.db"
    garbage.write_bytes(b"nope" * 1024)
    code, message = native_resolve(garbage, "m")  # type: ignore[misc]
    assert code == "UNAVAILABLE" and "corrupt or not a SQLite database" in message
    other = tmp_path / "o.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    code, message = native_resolve(other, "m")  # type: ignore[misc]
    assert code == "UNAVAILABLE" and "not a model registry" in message


def test_native_abi_null_safety() -> None:
    from infer_runtime._native import ffi, lib

    out = ffi.new("ir_registry_entry**")
    for db, ref, o in ((ffi.NULL, b"m", out), (b"x.db", ffi.NULL, out), (b"x.db", b"m", ffi.NULL)):
        err = lib.ir_registry_resolve(db, ref, o)
        assert err != ffi.NULL and ffi.string(lib.ir_code_name(lib.ir_error_code(err))) == b"INVALID_ARGUMENT"
        lib.ir_error_free(err)
    assert lib.ir_registry_entry_field(ffi.NULL, b"name") == ffi.NULL
    lib.ir_registry_entry_free(ffi.NULL)
