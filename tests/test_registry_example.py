"""examples/prod_setup.py fills the registry prod.toml serves from, idempotently."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from infer_runtime.registry import SyncRegistry, resolve_source

ROOT = Path(__file__).resolve().parent.parent

_TWICE = """
import sys
sys.path.insert(0, sys.argv[3])
from prod_setup import main
args = ["--db", sys.argv[1], "--work", sys.argv[2]]
assert main(args) == 0
print("--- second run ---")
assert main(args) == 0
"""


def test_prod_setup_registers_and_promotes_once(tmp_path: Path) -> None:
    db = tmp_path / "var" / "registry.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "runtime")}
    proc = subprocess.run([sys.executable, "-c", _TWICE, str(db), str(tmp_path / "work"), str(ROOT / "examples")], check=False, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    second = proc.stdout.split("--- second run ---")[1]
    assert "scorer: unchanged, version 1 already registered" in second
    assert "production already serves version 1" in second and "promoted" not in second

    with SyncRegistry(db, create=False) as reg:
        assert [(v.name, v.version, v.backend) for v in reg.list()] == [("policy", "1", "rules"), ("scorer", "1", "onnxruntime")]
        assert [len(reg.history(n)) for n in ("policy", "scorer")] == [1, 1]
        assert reg.verify().ok
        assert reg.get("scorer", "1").metadata["features"] == 64

    import onnxruntime as ort

    scorer = resolve_source(db, "scorer@production", "production")
    session = ort.InferenceSession(str(scorer.path), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type, i.shape[1]) for i in session.get_inputs()] == [("features", "tensor(float)", 64)]
    assert [o.name for o in session.get_outputs()] == ["probabilities"]  # label dropped, as prod.toml declares
    probs = session.run(None, {"features": np.random.default_rng(0).standard_normal((5, 64)).astype(np.float32)})[0]
    assert probs.shape == (5, 2) and probs.dtype == np.float32 and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    policy = resolve_source(db, "policy@production", "production")
    assert 'kind = "rules"' in policy.path.read_text(encoding="utf-8")
