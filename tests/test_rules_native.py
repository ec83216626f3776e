"""The rules engine (csrc/rules) without the runtime around it, built here with UBSan (the
full ASan/UBSan/LSan run of the driver is tests/sanitizers/run.sh):

* the C++ driver tests/native/test_rules_native.cpp: golden cases of DESIGN §10 and the rules
  backend through a fake host;
* tests/native/rules_cli.cpp, the engine as a filter (:class:`Engine`), which
  tests/test_rules_engine_reference.py holds against the Python reference."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "tests" / "native" / "test_rules_native.cpp"
CLI = ROOT / "tests" / "native" / "rules_cli.cpp"
SOURCES = [ROOT / "csrc" / "common" / "json.cpp", *sorted((ROOT / "csrc" / "rules").glob("*.cpp")), ROOT / "csrc" / "backends" / "rules.cpp"]
HEADERS = [*sorted((ROOT / "csrc" / "rules").glob("*.hpp")), ROOT / "csrc" / "common" / "json.hpp", ROOT / "csrc" / "backends" / "rules.hpp",
           ROOT / "tests" / "native" / "check.hpp", ROOT / "csrc" / "include" / "infer_runtime_backend.h"]
FLAGS = ["-std=c++17", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined", "-fno-sanitize-recover=undefined"]

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler")


def build(main: Path) -> Path:
    """Compiles ``main`` with the engine's rules sources once per source state (the binary's
    name carries their hash)."""
    digest = hashlib.sha256()
    for path in [main, *SOURCES, *HEADERS]:
        digest.update(path.read_bytes())
    digest.update(" ".join(FLAGS).encode())
    exe = ROOT / "build" / "rules-native" / f"{main.stem}-{digest.hexdigest()[:16]}"
    if not exe.exists():
        exe.parent.mkdir(parents=True, exist_ok=True)
        tmp = exe.with_suffix(".tmp")
        cmd = ["g++", *FLAGS, f"-I{ROOT / 'csrc' / 'include'}", *map(str, SOURCES), str(main), "-o", str(tmp)]
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        tmp.rename(exe)
    return exe


def test_rules_native_driver() -> None:
    proc = subprocess.run([str(build(DRIVER))], check=False, capture_output=True, text=True, timeout=300,
                          env={"UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_rules_native: ok" in proc.stdout


class Engine:
    """rules_cli as a long-lived filter: one JSON line in, one out."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([str(build(CLI))], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env={"UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"})

    def run(self, ruleset: dict[str, Any], rows: list[list[list[Any]]], max_iterations: int) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"ruleset": ruleset, "rows": rows, "max_iterations": max_iterations}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"rules_cli exited ({self.proc.poll()})"
        return json.loads(line)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        assert self.proc.wait(timeout=30) == 0


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """One rules_cli process for the module's tests."""
    cli = Engine()
    yield cli
    cli.close()


def test_cli_answers(engine: Engine) -> None:
    rules = {"rules": [{"name": "r", "when": [["a", "?x"]], "then": [{"assert": ["b", "?x"]}]}]}
    assert engine.run(rules, [[["a", 1.0]], [["a", "s"]]], 10) == [
        {"fired": ["r"], "facts": [["a", 1], ["b", 1]], "error": None},
        {"fired": ["r"], "facts": [["a", "s"], ["b", "s"]], "error": None},
    ]
    assert "compile_error" in engine.run({"rules": [{"name": "r", "when": [{"test": "?x >"}]}]}, [], 10)
