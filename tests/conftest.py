"""Shared fixtures and helpers for the test suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
CORPUS = Path(__file__).resolve().parent / "specs"
sys.path.insert(0, str(ROOT / "examples"))  # build_models, the FastAPI app


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo and benchmark models built once per session (no downloads)."""
    from build_models import ensure_demo_models

    out = tmp_path_factory.mktemp("models")
    ensure_demo_models(out)
    return out


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs ``python -m infer_runtime ARGS`` in a subprocess (the real entry point)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("INFER_RUNTIME_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "infer_runtime", *args], capture_output=True, text=True, env=full_env, cwd=cwd or ROOT, timeout=timeout, check=False)


@pytest.fixture
def write_spec(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Writes a spec file into a temporary directory and returns its path."""

    def write(text: str, name: str = "spec.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(autouse=True)
def _no_ambient_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see INFER_RUNTIME_* variables of the shell that runs them."""
    for name in list(os.environ):
        if name.startswith("INFER_RUNTIME_"):
            monkeypatch.delenv(name)
