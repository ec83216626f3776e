"""Fills the production registry that specs/prod.toml serves from: trains the fraud scorer,
registers it and the fraud policy, and promotes both to ``production``.

* ``scorer``: logistic regression on a generated, imbalanced fraud dataset (scikit-learn's
  ``make_classification``, 64 features, 2 classes), converted with skl2onnx: input
  ``features`` float32 [-1, 64], output ``probabilities`` float32 [-1, 2] (a plain tensor,
  zipmap off; the converter's ``label`` output is dropped, as prod.toml declares only
  ``probabilities``).
* ``policy``: the rules file ``examples/rules/fraud_policy.toml`` (backend ``rules``); when it
  is absent a minimal placeholder policy is written under ``var/`` and registered instead.

Idempotent: a model is registered again only when its artifact changed, and promoted only
when production does not already serve that version.

Usage: ``python examples/prod_setup.py [--spec specs/prod.toml | --db PATH] [--environment production]``
(the default registry is the spec's ``registry.path``: ``var/registry.db``, or
``$REGISTRY_DB``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "examples" / "rules" / "fraud_policy.toml"
N_FEATURES = 64
OPSET = 17

_PLACEHOLDER_POLICY = """\
# Placeholder written by examples/prod_setup.py because examples/rules/fraud_policy.toml is absent.
kind = "rules"
version = 1

[[rules]]
name = "block-high-score"
salience = 10
when = [["score", "?legit", "?fraud"], { test = "?fraud > 0.9" }]
then = [{ assert = ["decision", "block"] }]

[[rules]]
name = "review-elevated-score"
when = [["score", "?legit", "?fraud"], { test = "?fraud > 0.5" }, { not = ["decision", "?_"] }]
then = [{ assert = ["decision", "review"] }]

[[rules]]
name = "allow-the-rest"
salience = -10
when = [["score", "?legit", "?fraud"], { not = ["decision", "?_"] }]
then = [{ assert = ["decision", "allow"] }]
"""


def train_scorer(path: Path, seed: int = 0) -> float:
    """Trains the scorer, writes its ONNX file to ``path`` and returns its test ROC AUC."""
    import onnx
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    x, y = make_classification(n_samples=20000, n_features=N_FEATURES, n_informative=24, n_redundant=8, n_classes=2, weights=[0.95, 0.05], class_sep=1.5, random_state=seed)
    x = x.astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    clf = LogisticRegression(max_iter=1000, random_state=seed).fit(x_train, y_train)
    onx = to_onnx(clf, initial_types=[("features", FloatTensorType([None, N_FEATURES]))], options={id(clf): {"zipmap": False}}, target_opset={"": OPSET, "ai.onnx.ml": 3})
    keep = [o for o in onx.graph.output if o.name == "probabilities"]
    if len(keep) != 1:
        raise RuntimeError(f"converter outputs {[o.name for o in onx.graph.output]}: expected 'probabilities'")
    del onx.graph.output[:]
    onx.graph.output.extend(keep)  # the label is computed by the same node; unused outputs are fine
    onx.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "N"
    onnx.checker.check_model(onx)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(onx.SerializeToString())
    return float(roc_auc_score(y_test, clf.predict_proba(x_test)[:, 1]))


def check_scorer(path: Path) -> None:
    """Loads the ONNX file with onnxruntime and checks the signature prod.toml declares."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs, outputs = session.get_inputs(), session.get_outputs()
    assert [(i.name, i.type) for i in inputs] == [("features", "tensor(float)")], inputs
    assert [(o.name, o.type) for o in outputs] == [("probabilities", "tensor(float)")], outputs
    probs = session.run(["probabilities"], {"features": np.zeros((3, N_FEATURES), np.float32)})[0]
    assert probs.shape == (3, 2) and probs.dtype == np.float32


def policy_file(var: Path) -> Path:
    """The fraud policy to register: the real one, else a placeholder under ``var/``."""
    if POLICY.is_file():
        return POLICY
    placeholder = var / "placeholder" / "fraud_policy.toml"
    placeholder.parent.mkdir(parents=True, exist_ok=True)
    placeholder.write_text(_PLACEHOLDER_POLICY, encoding="utf-8")
    print(f"note: {POLICY.relative_to(ROOT)} is absent; registering a placeholder policy ({placeholder})", file=sys.stderr)
    return placeholder


def default_db(spec: Path) -> Path:
    """The spec's ``registry.path``, resolved as the runtime resolves it."""
    from infer_runtime.spec import check_spec

    result = check_spec(spec)
    if result.effective is None or "registry" not in result.effective:
        raise SystemExit(f"{spec}: no usable [registry] section; pass --db")
    path = Path(result.effective["registry"]["path"])
    return path if path.is_absolute() else (spec.resolve().parent / path).resolve()


def ensure(reg: object, name: str, file: Path, environment: str, backend: str | None = None, metadata: dict[str, object] | None = None) -> str:
    """Registers ``file`` as a new version of ``name`` unless the latest version has the same
    bytes, then promotes it unless ``environment`` already serves it; returns the version."""
    from infer_runtime.registry import RegistryNotFoundError, SyncRegistry
    from infer_runtime.registry.artifacts import file_digest

    assert isinstance(reg, SyncRegistry)
    sha, _ = file_digest(file)
    try:
        latest = reg.resolve(name).model
    except RegistryNotFoundError:
        latest = None
    if latest is not None and latest.sha256 == sha:
        version = latest.version
        print(f"{name}: unchanged, version {version} already registered")
    else:
        version = reg.register(name, file, backend=backend, metadata=metadata).version
        print(f"{name}: registered version {version} (sha256 {sha[:12]})")
    try:
        serving = reg.resolve(f"{name}@{environment}").model.version
    except RegistryNotFoundError:
        serving = None
    if serving == version:
        print(f"{name}: {environment} already serves version {version}")
    else:
        reg.promote(name, version, environment, note="examples/prod_setup.py")
        print(f"{name}: promoted version {version} to {environment}" + (f" (was {serving})" if serving else ""))
    return version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--spec", type=Path, default=ROOT / "specs" / "prod.toml", help="take the registry path from this spec (default: specs/prod.toml)")
    where.add_argument("--db", type=Path, help="the registry file (overrides --spec)")
    parser.add_argument("--environment", default="production")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "prod_models", help="where the trained model is written before registering")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from infer_runtime.registry import SyncRegistry
    from infer_runtime.registry.cli import configure_quiet_logging

    configure_quiet_logging()
    db = args.db or default_db(args.spec)
    scorer = args.work / "scorer.onnx"
    auc = train_scorer(scorer, args.seed)
    check_scorer(scorer)
    print(f"scorer: trained, test ROC AUC {auc:.3f}")
    policy = policy_file(ROOT / "var")
    with SyncRegistry(db) as reg:
        ensure(reg, "scorer", scorer, args.environment, metadata={"roc_auc": round(auc, 4), "features": N_FEATURES, "seed": args.seed})
        ensure(reg, "policy", policy, args.environment, backend="rules")
    print(f"registry {db} ready: infer-runtime run specs/prod.toml serves scorer@{args.environment} and policy@{args.environment}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
