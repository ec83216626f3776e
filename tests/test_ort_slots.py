"""csrc/backends/ort_api.hpp against ONNX Runtime's official C API header.

The engine indexes ONNX Runtime's function table (OrtApi) by hand-numbered slots; a wrong
number is silent undefined behaviour. tests/native/ort_slots.cpp, built against the official
``onnxruntime_c_api.h``, checks each slot index, function type and constant. The header is
not in the repository: it comes from ``$IR_ORT_INCLUDE``, the cache that
tests/native/fetch_ort_header.sh fills, or /usr/include/onnxruntime (Debian's
libonnxruntime-dev); without one those tests skip and say so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ORT_API = ROOT / "csrc" / "backends" / "ort_api.hpp"
CHECKER = ROOT / "tests" / "native" / "ort_slots.cpp"
HEADER = "onnxruntime_c_api.h"
CACHED = ROOT / "build" / "onnxruntime-header" / "root" / "usr" / "include" / "onnxruntime"
SYSTEM = Path("/usr/include/onnxruntime")


def _enum_body(text: str, name: str) -> str:
    match = re.search(rf"enum {name} : int \{{(.*?)\}};", text, re.DOTALL)
    assert match, f"enum {name} not found in {ORT_API}"
    return match.group(1)


def slots(text: str) -> dict[str, int]:
    """ort_api.hpp's ``enum Slot``: name -> index."""
    return {k: int(v) for k, v in re.findall(r"(k\w+) = (\d+)", _enum_body(text, "Slot"))}


def constants(text: str) -> set[str]:
    """The int constants ort_api.hpp passes to ONNX Runtime (element types included)."""
    names = set(re.findall(r"constexpr int (k\w+) =", text))
    return names | set(re.findall(r"(k\w+) = \d+", _enum_body(text, "ElementType")))


def checked_types() -> dict[str, str]:
    """The checker's table: slot name -> the ort_api.hpp function type it is called through."""
    rows = re.findall(r"IR_SLOT\((k\w+), \w+, ([\w:<>]+)\);", CHECKER.read_text(encoding="utf-8"))
    return {slot: fn.replace("ort::", "") for slot, fn in rows}


def header_dir() -> Path | None:
    """Where onnxruntime_c_api.h is; an explicit IR_ORT_INCLUDE must hold it."""
    explicit = os.environ.get("IR_ORT_INCLUDE", "")
    if explicit:
        assert (Path(explicit) / HEADER).is_file(), f"IR_ORT_INCLUDE={explicit} has no {HEADER}"
        return Path(explicit)
    return next((d for d in (CACHED, SYSTEM) if (d / HEADER).is_file()), None)


def run_checker(tmp_path: Path, api_hpp: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Builds tests/native/ort_slots.cpp (against ``api_hpp`` instead of ort_api.hpp if
    given) and runs it; skips where there is no header or no compiler."""
    include = header_dir()
    if include is None:
        pytest.skip(f"no {HEADER}: set IR_ORT_INCLUDE or run tests/native/fetch_ort_header.sh "
                    f"(looked in {CACHED} and {SYSTEM})")
    if shutil.which("g++") is None:
        pytest.skip("no g++")
    exe = tmp_path / "ort_slots"
    cmd = ["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", f"-I{include}", str(CHECKER), "-o", str(exe)]
    if api_hpp is not None:
        cmd.insert(1, f'-DIR_ORT_API_HPP="{api_hpp}"')
    built = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, f"{' '.join(cmd)}\n{built.stderr}"
    return subprocess.run([str(exe)], check=False, capture_output=True, text=True, timeout=30)


def checked(stdout: str, kind: str) -> dict[str, str]:
    """The checker's lines of one kind: our name -> "ok" or "FAIL"."""
    return {m[1]: m[0] for m in re.findall(rf"^(ok|FAIL) {kind} (\S+)", stdout, re.MULTILINE)}


def test_every_slot_and_constant_matches_the_official_header(tmp_path: Path) -> None:
    result = run_checker(tmp_path)
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert result.returncode == 0 and not failed, "ort_api.hpp disagrees with ONNX Runtime's header:\n" + "\n".join(failed)
    text = ORT_API.read_text(encoding="utf-8")
    # Every slot and constant of ort_api.hpp was checked: one added there must be added to the checker.
    ours = slots(text)
    assert set(checked(result.stdout, "slot")) == set(ours), "tests/native/ort_slots.cpp must IR_SLOT every ort::Slot"
    assert set(checked(result.stdout, "type")) >= set(ours)
    consts = {name.removeprefix("ort::") for name in checked(result.stdout, "const")}
    assert consts >= constants(text), "tests/native/ort_slots.cpp must IR_CONST every constant of ort_api.hpp"
    assert checked(result.stdout, "version") == {"kApiVersion": "ok"}


def test_a_wrong_slot_type_or_constant_is_reported(tmp_path: Path) -> None:
    """The check can fail: a copy of ort_api.hpp with one slot, one function type and one
    constant wrong is reported on exactly those three lines."""
    text = ORT_API.read_text(encoding="utf-8")
    wrong = text.replace("kRun = 9,", "kRun = 10,")
    wrong = wrong.replace("using GetDimensionsFn = Status* (*)(const TensorInfo*, int64_t* dims, size_t n);",
                          "using GetDimensionsFn = Status* (*)(const TensorInfo*, int32_t* dims, size_t n);")
    wrong = wrong.replace("constexpr int kMemTypeDefault = 0;", "constexpr int kMemTypeDefault = 1;")
    assert wrong.count("kRun = 10,") == 1 and "int32_t* dims" in wrong and "kMemTypeDefault = 1;" in wrong
    copy = tmp_path / "ort_api.hpp"
    copy.write_text(wrong, encoding="utf-8")
    result = run_checker(tmp_path, copy)
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL ")]
    assert result.returncode == 1
    assert failed == ["FAIL slot kRun 10 OrtApi::Run 9",
                      "FAIL type kGetDimensions GetDimensionsFn OrtApi::GetDimensions",
                      "FAIL const ort::kMemTypeDefault 1 OrtMemTypeDefault 0"]
    assert re.search(r"^FAIL: 3 failure\(s\) against ONNX Runtime C API \d+$", result.stdout, re.MULTILINE)


# How csrc calls a slot, by the helper it goes through: fn<ort::T>(...), release(...) (a
# ReleaseFn of the object's type) and onnxruntime.cpp's set(...) lambda (SetIntOptionFn).
_CALLS = [
    (re.compile(r"fn<ort::([\w<>:]+)>\(([^()]*)\)"), None),
    (re.compile(r"\brelease\((ort::k\w+)"), "ReleaseFn<"),
    (re.compile(r"\bset\((ort::k\w+)"), "SetIntOptionFn"),
]


def test_each_call_site_uses_the_checked_type() -> None:
    """Needs no header: every use of a slot in csrc calls it through the function type the
    checker proves for that slot, so a proven type cannot be bypassed by a wrong cast."""
    table = checked_types()
    assert set(table) == set(slots(ORT_API.read_text(encoding="utf-8"))), "ort_slots.cpp must IR_SLOT every ort::Slot"
    paired = 0
    wrong: list[str] = []
    for path in sorted((ROOT / "csrc").rglob("*.[ch]pp")):
        if path == ORT_API:
            continue
        text = path.read_text(encoding="utf-8")
        seen: set[str] = set()
        for pattern, fixed in _CALLS:
            for match in pattern.finditer(text):
                fn = fixed or match.group(1)
                for slot in re.findall(r"ort::(k\w+)", match.group(match.lastindex or 1)):
                    if slot in table:
                        seen.add(slot)
                        paired += 1
                        if not (table[slot] == fn or (fn.endswith("<") and table[slot].startswith(fn))):
                            line = text.count("\n", 0, match.start()) + 1
                            wrong.append(f"{path.relative_to(ROOT)}:{line}: {slot} called as {fn}, checked as {table[slot]}")
        used = {s for s in re.findall(r"ort::(k\w+)", text) if s in table}
        unpaired = used - seen
        assert not unpaired, f"{path.relative_to(ROOT)} uses {sorted(unpaired)} through a call this test does not know: add it to _CALLS"
    assert not wrong, "\n".join(wrong)
    assert paired, "no call site found: the patterns no longer match csrc"
