"""The published pre-commit hook, run for real with `pre-commit try-repo`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _pre_commit() -> list[str]:
    exe = shutil.which("pre-commit", path=os.path.dirname(sys.executable)) or shutil.which("pre-commit")
    return [exe] if exe else [sys.executable, "-m", "pre_commit"]


def test_manifest_is_valid() -> None:
    proc = subprocess.run([*_pre_commit(), "validate-manifest", str(ROOT / ".pre-commit-hooks.yaml")], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _hook_repo(tmp_path: Path) -> Path:
    """A committed snapshot of this working tree (try-repo reads a git repository)."""
    snapshot = tmp_path / "hook-repo"
    ignore = shutil.ignore_patterns(".git", "build", "*.so", "*.o", "__pycache__", "*.egg-info", ".hypothesis", ".pytest_cache", "var", ".venv*")
    shutil.copytree(ROOT, snapshot, ignore=ignore)
    _git(snapshot, "init", "-q")
    _git(snapshot, "add", "-A")
    _git(snapshot, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "snapshot")
    return snapshot


@pytest.mark.timeout(1200)  # pre-commit installs the package, compiling the whole engine
def test_try_repo_passes_good_and_fails_bad_specs(tmp_path: Path) -> None:
    hook_repo = _hook_repo(tmp_path)
    user = tmp_path / "user"
    (user / "specs").mkdir(parents=True)
    (user / "specs" / "good.toml").write_text('version = 1\n[models.a]\nbackend = "identity"\n')
    (user / "specs" / "bad.yaml").write_text("models:\n  a:\n    backend: identity\n    instances: 0\n")
    (user / "notes.toml").write_text("not = 'a spec'\n")  # outside specs/: not a spec, not checked
    _git(user, "init", "-q")
    _git(user, "add", "-A")
    env = dict(os.environ, PRE_COMMIT_HOME=str(tmp_path / "pc-home"))
    cmd = [*_pre_commit(), "try-repo", str(hook_repo), "infer-runtime-validate", "--all-files", "--color", "never"]
    proc = subprocess.run(cmd, cwd=user, capture_output=True, text=True, env=env, timeout=900, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "validate infer-runtime specs" in out and "Failed" in out
    assert "specs/bad.yaml:4:5: error: models.a.instances: must be ≥ 1 (got 0)" in out
    assert "good.toml" not in out.split("Failed", 1)[1]
    assert "notes.toml" not in out

    (user / "specs" / "bad.yaml").write_text("models:\n  a:\n    backend: identity\n    instances: 2\n")
    _git(user, "add", "-A")
    proc = subprocess.run(cmd, cwd=user, capture_output=True, text=True, env=env, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Passed" in proc.stdout
