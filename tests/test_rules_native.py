"""The rules engine's C++ driver (tests/native/test_rules_native.cpp): golden cases of DESIGN
§10 run against csrc/rules and the rules backend directly, built here with UBSan (the full
ASan/UBSan/LSan run is tests/sanitizers/run.sh)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "tests" / "native" / "test_rules_native.cpp"
SOURCES = [ROOT / "csrc" / "common" / "json.cpp", *sorted((ROOT / "csrc" / "rules").glob("*.cpp")), ROOT / "csrc" / "backends" / "rules.cpp"]
HEADERS = [*sorted((ROOT / "csrc" / "rules").glob("*.hpp")), ROOT / "csrc" / "common" / "json.hpp", ROOT / "csrc" / "backends" / "rules.hpp",
           ROOT / "tests" / "native" / "check.hpp", ROOT / "csrc" / "include" / "infer_runtime_backend.h"]
FLAGS = ["-std=c++17", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined", "-fno-sanitize-recover=undefined"]

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler")


def build_driver() -> Path:
    """Compiles the driver once per source state (the binary's name carries their hash)."""
    digest = hashlib.sha256()
    for path in [DRIVER, *SOURCES, *HEADERS]:
        digest.update(path.read_bytes())
    digest.update(" ".join(FLAGS).encode())
    exe = ROOT / "build" / "rules-native" / f"test_rules_native-{digest.hexdigest()[:16]}"
    if not exe.exists():
        exe.parent.mkdir(parents=True, exist_ok=True)
        tmp = exe.with_suffix(".tmp")
        cmd = ["g++", *FLAGS, f"-I{ROOT / 'csrc' / 'include'}", *map(str, SOURCES), str(DRIVER), "-o", str(tmp)]
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        tmp.rename(exe)
    return exe


def test_rules_native_driver() -> None:
    proc = subprocess.run([str(build_driver())], check=False, capture_output=True, text=True, timeout=300,
                          env={"UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_rules_native: ok" in proc.stdout
