"""The invalid-spec corpus (tests/specs/invalid): every file gets exactly the messages in
its ``# expect:`` header; ``# env:`` and ``# set:`` headers supply overrides. Independent
validators (check-jsonschema, the pydantic models) agree with our structural verdicts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infer_runtime.spec import check_spec
from infer_runtime.spec.schema import packaged_schema
from infer_runtime.spec.sources import ParseError, read_document
from infer_runtime.spec.validator import Validator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
INVALID = sorted((HERE / "specs" / "invalid").iterdir())
VALID = sorted((HERE / "specs" / "valid").iterdir()) + sorted((ROOT / "specs").iterdir())
SCHEMA_FILE = ROOT / "schemas" / "infer-runtime.schema.json"


def headers(path: Path) -> tuple[list[str], dict[str, str], list[str]]:
    expect, env, sets = [], {}, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# expect: "):
            expect.append(line[len("# expect: "):])
        elif line.startswith("# env: "):
            key, value = line[len("# env: "):].split("=", 1)
            env[key] = value
        elif line.startswith("# set: "):
            sets.append(line[len("# set: "):])
    return expect, env, sets


def without_file(text: str, file: str) -> str:
    return text[len(file) + 1:].lstrip(":").strip() if text.startswith(file + ":") else text


def test_corpus_is_large_enough() -> None:
    assert len(INVALID) >= 30


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_spec_gets_exactly_its_messages(path: Path) -> None:
    expect, env, sets = headers(path)
    assert expect, f"{path.name} has no '# expect:' lines"
    result = check_spec(path, environ=env, sets=sets)
    got = [without_file(issue.format(), str(path)) for issue in result.issues]
    assert got == expect


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_spec_has_no_issues(path: Path) -> None:
    result = check_spec(path, environ={})
    assert [i.format() for i in result.issues] == []


def _differential_cases() -> list[Path]:
    cases = []
    for path in INVALID + VALID:
        text = path.read_text(encoding="utf-8")
        if "# env:" in text or "# set:" in text or "${" in text:
            continue  # other validators see neither overrides nor interpolation
        try:
            doc = read_document(path)
        except ParseError:
            continue  # parse-level rejections (duplicates, dates, NaN) are ours alone
        if doc.yaml_bool_words:
            continue  # YAML 1.1 (PyYAML, us) and 1.2 (ruamel) read on/off/yes/no differently
        cases.append(path)
    return cases


def _our_structural_verdict(path: Path) -> bool:
    return not Validator(packaged_schema()).problems(read_document(path).data)


def test_check_jsonschema_agrees_with_structural_verdicts() -> None:
    cases = _differential_cases()
    assert len(cases) >= 30
    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(SCHEMA_FILE), "-o", "json", *map(str, cases)],
        capture_output=True, text=True, timeout=120, check=False)
    report = json.loads(proc.stdout)
    assert report["parse_errors"] == []
    failing = {Path(e["filename"]).resolve() for e in report["errors"]}
    theirs = {p: p.resolve() not in failing for p in cases}
    ours = {p: _our_structural_verdict(p) for p in cases}
    disagreements = {p.name: (ours[p], theirs[p]) for p in cases if ours[p] != theirs[p]}
    assert disagreements == {}
    assert any(ours.values()) and not all(ours.values())


def test_pydantic_models_agree_with_structural_verdicts() -> None:
    from pydantic import ValidationError

    from infer_runtime.spec.models import Spec

    for path in _differential_cases():
        data = read_document(path).data
        try:
            Spec.model_validate(data, strict=True)
            typed_ok = True
        except ValidationError:
            typed_ok = False
        assert typed_ok == _our_structural_verdict(path), path.name
