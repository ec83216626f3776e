"""The registry reader's own SQLite declarations (csrc/registry/sqlite_api.hpp) match the
real sqlite3.h, where one is installed: the reader resolves these functions at run time, so
a wrong prototype or constant would not be caught by the build."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEADER = Path("/usr/include/sqlite3.h")

_CHECK = r"""
#include <sqlite3.h>
#include <type_traits>
#include "sqlite_api.hpp"
namespace s = ir::registry::sqlite;
#define SAME(fn, type) static_assert(std::is_same_v<decltype(&::fn), s::type>, #fn)
SAME(sqlite3_open_v2, open_v2_fn);
SAME(sqlite3_close_v2, close_v2_fn);
SAME(sqlite3_busy_timeout, busy_timeout_fn);
SAME(sqlite3_prepare_v2, prepare_v2_fn);
SAME(sqlite3_bind_text, bind_text_fn);
SAME(sqlite3_step, step_fn);
SAME(sqlite3_column_text, column_text_fn);
SAME(sqlite3_column_int64, column_int64_fn);
SAME(sqlite3_column_type, column_type_fn);
SAME(sqlite3_finalize, finalize_fn);
SAME(sqlite3_errmsg, errmsg_fn);
SAME(sqlite3_extended_errcode, errcode_fn);
SAME(sqlite3_libversion_number, libversion_number_fn);
static_assert(s::kOk == SQLITE_OK && s::kBusy == SQLITE_BUSY && s::kLocked == SQLITE_LOCKED);
static_assert(s::kCorrupt == SQLITE_CORRUPT && s::kCantOpen == SQLITE_CANTOPEN && s::kNotADb == SQLITE_NOTADB);
static_assert(s::kRow == SQLITE_ROW && s::kDone == SQLITE_DONE && s::kNull == SQLITE_NULL);
static_assert(s::kOpenReadOnly == SQLITE_OPEN_READONLY);
int main() { return s::transient() == SQLITE_TRANSIENT ? 0 : 1; }
"""


@pytest.mark.skipif(not HEADER.exists() or shutil.which("g++") is None, reason="needs sqlite3.h and g++")
def test_declarations_match_sqlite3_h(tmp_path: Path) -> None:
    src = tmp_path / "check.cpp"
    src.write_text(_CHECK, encoding="utf-8")
    exe = tmp_path / "check"
    proc = subprocess.run(
        ["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'csrc' / 'registry'}", f"-I{ROOT / 'csrc' / 'include'}", str(src), "-o", str(exe)],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert subprocess.run([str(exe)], check=False, timeout=30).returncode == 0


def test_reader_finds_sqlite_without_linking_it() -> None:
    """The extension does not link libsqlite3 (a fresh machine needs no -dev package)."""
    import infer_runtime._native._ir as ext

    out = subprocess.run(["ldd", ext.__file__], check=False, capture_output=True, text=True, timeout=30).stdout
    assert "sqlite" not in out


_PROBE = """
import sys
sys.path.insert(0, sys.argv[2])
from registry_helpers import native_resolve
print(native_resolve(sys.argv[1], "m"))
"""


@pytest.mark.parametrize(("library", "expected"), [("/nonexistent/libsqlite3.so", "UNAVAILABLE"), ("libsqlite3.so.0", "NOT_FOUND")])
def test_explicit_sqlite_library(tmp_path: Path, library: str, expected: str) -> None:
    import os
    import sys

    from infer_runtime.registry import SyncRegistry

    db = tmp_path / "r.db"
    SyncRegistry(db).close()
    env = {**os.environ, "IR_SQLITE_LIBRARY": library}  # the infer_runtime this test runs with (installed or in place)
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(db), str(ROOT / "tests")], check=False, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout
    if expected == "UNAVAILABLE":
        assert "IR_SQLITE_LIBRARY=/nonexistent" in proc.stdout


_DRIVER = r"""
// Resolves every reference given on the command line through the C ABI, many times, and
// prints "ref -> version | CODE"; built with ASan/UBSan/LSan, so a leak or overflow fails.
#include <cstdio>
#include "infer_runtime.h"
int main(int argc, char** argv) {
  for (int round = 0; round < 20; ++round) {
    for (int i = 2; i < argc; ++i) {
      ir_registry_entry* entry = nullptr;
      ir_error* err = ir_registry_resolve(argv[1], argv[i], &entry);
      if (round == 0) {
        if (err != nullptr) std::printf("%s -> %s\n", argv[i], ir_code_name(ir_error_code(err)));
        else std::printf("%s -> %s\n", argv[i], ir_registry_entry_field(entry, "version"));
      }
      ir_error_free(err);
      ir_registry_entry_free(entry);
    }
  }
  return 0;
}
"""


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_reader_under_address_sanitizer_with_leak_check(tmp_path: Path) -> None:
    """The reader and its ABI, without Python in the process, under ASan + UBSan + LSan."""
    import os

    from infer_runtime.registry import SyncRegistry

    db = tmp_path / "r.db"
    src = tmp_path / "m.onnx"
    with SyncRegistry(db) as reg:
        for content in (b"a", b"b"):
            src.write_bytes(content)
            reg.register("m", src)
        reg.promote("m", "1", "production")
        reg.promote("m", "2", "production")
        reg.rollback("m", "production")
    driver = tmp_path / "driver.cpp"
    driver.write_text(_DRIVER, encoding="utf-8")
    exe = tmp_path / "driver"
    sources = [str(p) for p in sorted((ROOT / "csrc" / "registry").glob("*.cpp"))]
    sources += [str(ROOT / "csrc" / "abi" / "registry_api.cpp"), str(ROOT / "csrc" / "abi" / "error.cpp")]
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", "-g", "-O1"]
    build = subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", *san, f"-I{ROOT / 'csrc' / 'include'}", *sources, str(driver), "-o", str(exe), "-ldl", "-pthread"], check=False, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    refs = ["m@production", "m", "m@2", "m@9", "x@production", "m@staging", "Bad@", "m@"]
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}
    env.pop("LD_PRELOAD", None)
    run = subprocess.run([str(exe), str(db), *refs], check=False, capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "m@production -> 1", "m -> 2", "m@2 -> 2", "m@9 -> NOT_FOUND", "x@production -> NOT_FOUND",
        "m@staging -> NOT_FOUND", "Bad@ -> INVALID_ARGUMENT", "m@ -> INVALID_ARGUMENT",
    ]
    missing = subprocess.run([str(exe), str(tmp_path / "none.db"), "m"], check=False, capture_output=True, text=True, env=env, timeout=120)
    assert missing.returncode == 0 and missing.stdout.strip() == "m -> NOT_FOUND", missing.stderr
