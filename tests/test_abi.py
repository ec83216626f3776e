"""The C ABI seam: version handshake, error objects, exceptions never crossing."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from infer_runtime import _native, errors
from infer_runtime._native import ffi, lib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import build

CODES = {
    "INVALID_ARGUMENT": (lib.IR_ERROR_INVALID_ARGUMENT, errors.InvalidInputError),
    "NOT_FOUND": (lib.IR_ERROR_NOT_FOUND, errors.ModelNotFoundError),
    "UNAVAILABLE": (lib.IR_ERROR_UNAVAILABLE, errors.UnavailableError),
    "RESOURCE_EXHAUSTED": (lib.IR_ERROR_RESOURCE_EXHAUSTED, errors.QueueFullError),
    "DEADLINE_EXCEEDED": (lib.IR_ERROR_DEADLINE_EXCEEDED, errors.DeadlineExceededError),
    "INTERNAL": (lib.IR_ERROR_INTERNAL, errors.InternalError),
    "CANCELLED": (lib.IR_ERROR_CANCELLED, errors.RequestCancelledError),
    "BACKEND": (lib.IR_ERROR_BACKEND, errors.BackendError),
    "UNKNOWN": (lib.IR_ERROR_UNKNOWN, errors.InternalError),
}


def test_abi_version_matches_header() -> None:
    header = (ROOT / "csrc" / "include" / "infer_runtime.h").read_text()
    major = int(re.search(r"#define IR_ABI_VERSION_MAJOR (\d+)", header).group(1))  # type: ignore[union-attr]
    minor = int(re.search(r"#define IR_ABI_VERSION_MINOR (\d+)", header).group(1))  # type: ignore[union-attr]
    assert _native.abi_version() == (major, minor)
    assert (_native.ABI_MAJOR, _native.ABI_MINOR) == (major, minor)


def test_every_declared_function_is_reachable() -> None:
    code = re.sub(r"/\*.*?\*/", "", build.cdef_text(), flags=re.DOTALL)
    declared = re.findall(r"\b(ir_[a-z0-9_]+)\s*\(", code)
    assert declared, "no prototypes found in the cdef region"
    missing = [name for name in declared if not hasattr(lib, name)]
    assert missing == []


@pytest.mark.parametrize("name", sorted(CODES))
def test_status_error_surfaces_with_code_and_message(name: str) -> None:
    code, exc_type = CODES[name]
    with pytest.raises(exc_type) as info:
        _native.check(lib.ir_selftest_fail(lib.IR_SELFTEST_STATUS, code, f"boom {name} ✓".encode()))
    assert str(info.value) == f"boom {name} ✓"
    assert info.value.code == name
    assert isinstance(info.value, errors.InferRuntimeError)


def test_success_returns_null() -> None:
    assert lib.ir_selftest_fail(lib.IR_SELFTEST_OK, lib.IR_ERROR_INTERNAL, b"x") == ffi.NULL
    _native.check(ffi.NULL)


def test_std_exception_becomes_internal_error() -> None:
    with pytest.raises(errors.InternalError, match="internal error: kaboom") as info:
        _native.check(lib.ir_selftest_fail(lib.IR_SELFTEST_THROW_STD, 0, b"kaboom"))
    assert info.value.code == "INTERNAL"


def test_bad_alloc_becomes_resource_exhausted() -> None:
    with pytest.raises(errors.QueueFullError, match="out of memory") as info:
        _native.check(lib.ir_selftest_fail(lib.IR_SELFTEST_THROW_BAD_ALLOC, 0, b""))
    assert info.value.code == "RESOURCE_EXHAUSTED"


def test_non_std_exception_becomes_internal_error() -> None:
    with pytest.raises(errors.InternalError, match="unknown exception"):
        _native.check(lib.ir_selftest_fail(lib.IR_SELFTEST_THROW_OTHER, 0, b""))


def test_unknown_selftest_mode_is_invalid_argument() -> None:
    with pytest.raises(errors.InvalidInputError, match="unknown selftest mode 99"):
        _native.check(lib.ir_selftest_fail(99, 0, b""))


def test_error_new_clamps_unknown_codes_and_null_message() -> None:
    err = lib.ir_error_new(12345, ffi.NULL)
    try:
        assert lib.ir_error_code(err) == lib.IR_ERROR_UNKNOWN
        assert ffi.string(lib.ir_error_message(err)) == b""
    finally:
        lib.ir_error_free(err)


def test_error_free_accepts_null() -> None:
    lib.ir_error_free(ffi.NULL)


def test_code_names_are_stable() -> None:
    for name, (code, _) in CODES.items():
        assert _native.code_name(code) == name
    assert ffi.string(lib.ir_code_name(999)) == b"UNKNOWN"


def test_python_code_table_covers_every_engine_code() -> None:
    assert set(errors.BY_CODE) == set(CODES)


def test_builtin_bases() -> None:
    assert issubclass(errors.InvalidInputError, ValueError)
    assert issubclass(errors.ModelNotFoundError, LookupError)
    assert issubclass(errors.DeadlineExceededError, TimeoutError)
    assert issubclass(errors.SpecError, errors.InferRuntimeError)
