"""The infer-runtime command line: validate, schema, config."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

from conftest import ROOT, run_cli
from infer_runtime.cli import main
from infer_runtime.spec.schema import generate_schema


def test_validate_shipped_specs_exit_0() -> None:
    proc = run_cli("validate", "specs/demo.toml", "specs/prod.toml", "specs/prod.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""


def test_validate_reports_located_problems_and_exits_1(write_spec) -> None:  # type: ignore[no-untyped-def]
    good = write_spec('[models.a]\nbackend = "identity"\n', "good.toml")
    bad = write_spec('[models.a]\nbackend = "identity"\n[models.a.batching]\nmax_batch_size = 0\n', "bad.toml")
    proc = run_cli("validate", str(good), str(bad))
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [f"{bad}:4:1: error: models.a.batching.max_batch_size: must be ≥ 1 (got 0)"]
    assert "1 of 2 spec file(s) invalid, 1 problem(s)" in proc.stderr


def test_validate_usage_errors_exit_2() -> None:
    assert run_cli("validate").returncode == 2
    assert run_cli("validate", "--bogus", "specs/demo.toml").returncode == 2
    assert run_cli().returncode == 2


def test_validate_json_format(write_spec) -> None:  # type: ignore[no-untyped-def]
    bad = write_spec("models:\n  a:\n    backend: identiti\n", "bad.yaml")
    proc = run_cli("validate", "--format", "json", str(bad), "specs/demo.toml")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["valid"] is False
    assert [f["valid"] for f in report["files"]] == [False, True]
    (issue,) = report["files"][0]["issues"]
    assert issue["line"] == 3 and issue["column"] == 5
    assert issue["path"] == "models.a.backend"
    assert issue["keys"] == ["models", "a", "backend"]
    assert issue["hint"] == "did you mean 'identity'?"


def test_validate_check_files(write_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec('[models.a]\nbackend = "onnxruntime"\npath = "models/a.onnx"\n')
    assert run_cli("validate", str(spec)).returncode == 0
    proc = run_cli("validate", "--check-files", str(spec))
    assert proc.returncode == 1
    assert f"{spec}:3:1: error: models.a.path: file not found: models/a.onnx" in proc.stdout
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "a.onnx").write_bytes(b"x")
    assert run_cli("validate", "--check-files", str(spec)).returncode == 0


def test_validate_env_and_set_flags(write_spec) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec('[models.a]\nbackend = "identity"\n')
    env = {"INFER_RUNTIME_MODELS__A__INSTANCES": "0"}
    assert run_cli("validate", str(spec), env=env).returncode == 0  # env ignored without --env
    proc = run_cli("validate", "--env", str(spec), env=env)
    assert proc.returncode == 1
    assert "env INFER_RUNTIME_MODELS__A__INSTANCES: error: models.a.instances: must be ≥ 1 (got 0)" in proc.stdout
    assert run_cli("validate", "--set", "models.a.instances=0", str(spec)).returncode == 1


def test_validate_imports_nothing_heavy() -> None:
    code = (
        "import sys; from infer_runtime.cli import main; rc = main(['validate', 'specs/prod.toml', 'specs/prod.yaml']);"
        "heavy = {'numpy', 'onnxruntime', 'infer_runtime._native', 'pydantic', 'jsonschema', 'cffi'} & set(sys.modules);"
        "print(rc, sorted(heavy))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert proc.stdout.strip() == "0 []", proc.stderr


def test_schema_command_prints_the_generated_schema() -> None:
    proc = run_cli("schema")
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == generate_schema()


def test_config_prints_effective_toml_with_overrides() -> None:
    proc = run_cli("config", "specs/demo.toml", "--set", "models.digits.instances=3", env={"INFER_RUNTIME_SERVER__HTTP_PORT": "9000"})
    assert proc.returncode == 0, proc.stderr
    data = tomllib.loads(proc.stdout)
    assert data["models"]["digits"]["instances"] == 3
    assert data["server"]["http_port"] == 9000
    assert data["server"]["max_request_bytes"] == 67108864  # defaults filled in
    assert "registry" not in data  # absent optional sections stay absent


def test_config_json_and_no_env() -> None:
    proc = run_cli("config", "specs/demo.toml", "--format", "json", "--no-env", env={"INFER_RUNTIME_SERVER__HTTP_PORT": "9000"})
    assert json.loads(proc.stdout)["server"]["http_port"] == 8000


def test_config_sources() -> None:
    proc = run_cli("config", "specs/demo.toml", "--sources", "--set", "models.digits.instances=3", env={"INFER_RUNTIME_SERVER__GRPC_PORT": "0"})
    assert proc.returncode == 0, proc.stderr
    lines = {line.split(" = ")[0]: line for line in proc.stdout.splitlines()}
    assert lines["models.digits.instances"].endswith("# --set models.digits.instances")
    assert lines["server.grpc_port"].endswith("# env INFER_RUNTIME_SERVER__GRPC_PORT")
    assert lines["server.http_port"].endswith("# specs/demo.toml:19")
    assert lines["server.shutdown_timeout_s"].endswith("# default")
    as_json = json.loads(run_cli("config", "specs/demo.toml", "--sources", "--format", "json").stdout)
    assert as_json["models.digits.inputs[0].dtype"] == {"value": "float32", "source": "specs/demo.toml:28"}


def test_config_invalid_spec_exits_1(write_spec) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec("[models.a]\n")
    proc = run_cli("config", str(spec))
    assert proc.returncode == 1
    assert "missing required key 'backend'" in proc.stderr


def test_version(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("infer-runtime ")


def test_console_script_is_installed() -> None:
    script = shutil.which("infer-runtime", path=os.path.dirname(sys.executable)) or shutil.which("infer-runtime")
    assert script, "the infer-runtime console script is not on PATH"
    proc = subprocess.run([script, "validate", "specs/demo.toml"], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
