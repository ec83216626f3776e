"""Fills the production registry that specs/prod.toml serves from: trains the fraud scorer,
registers it and the fraud policy, and promotes both to ``production``.

* ``scorer``: logistic regression trained on what the pipeline's ``enrich`` step makes of
  generated raw transactions: labelled synthetic transactions (``fraud_features.synthetic``)
  are encoded as the JSON rows a client sends and run through ``fraud_features.enrich.Enricher``
  with the spec's own ``models.enrich.python.config``, so the scorer learns exactly the features
  it is served. Converted with skl2onnx: input ``features`` float32 [-1, 64], output
  ``probabilities`` float32 [-1, 2] (a plain tensor, zipmap off; the converter's ``label``
  output is dropped, as prod.toml declares only ``probabilities``).
* ``policy``: the rules file ``examples/rules/fraud_policy.toml`` (backend ``rules``).

Idempotent: a model is registered again only when its artifact changed, and promoted only
when production does not already serve that version.

Usage: ``python examples/prod_setup.py [--spec specs/prod.toml] [--db PATH] [--environment production]``
(the default registry is the spec's ``registry.path``: ``var/registry.db``, or ``$REGISTRY_DB``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))  # fraud_features, when imported as a module

from fraud_features.enrich import Enricher
from fraud_features.features import N_FEATURES
from fraud_features.synthetic import generate

POLICY = ROOT / "examples" / "rules" / "fraud_policy.toml"
OPSET = 17
TRAINING_ROWS = 20000

def training_data(enrich_config: dict[str, Any], seed: int, n: int = TRAINING_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels: generated transactions, sent through the enrich step as JSON rows."""
    data = generate(n, seed)
    raw = np.array([tx.to_json() for tx in data.transactions], dtype=object)
    return Enricher(enrich_config)({"raw": raw})["features"], data.labels


def train_scorer(path: Path, enrich_config: dict[str, Any], seed: int = 0) -> float:
    """Trains the scorer, writes its ONNX file to ``path`` and returns its test ROC AUC."""
    import onnx
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    x, y = training_data(enrich_config, seed)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    clf = LogisticRegression(max_iter=2000, random_state=seed).fit(x_train, y_train)
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


def effective_spec(spec: Path) -> dict[str, Any]:
    """The spec as the runtime reads it (environment interpolated); exits when it is invalid."""
    from infer_runtime.spec import check_spec

    result = check_spec(spec)
    if not result.ok or result.effective is None:
        raise SystemExit(f"{spec}: invalid spec:\n" + "\n".join(i.format() for i in result.issues))
    return result.effective


def default_db(spec: Path, effective: dict[str, Any]) -> Path:
    """The spec's ``registry.path``, resolved as the runtime resolves it."""
    if "registry" not in effective:
        raise SystemExit(f"{spec}: no [registry] section; pass --db")
    path = Path(effective["registry"]["path"])
    return path if path.is_absolute() else (spec.resolve().parent / path).resolve()


def enrich_config(spec: Path, effective: dict[str, Any]) -> dict[str, Any]:
    """The config the spec's ``enrich`` step is built with: training must featurize alike."""
    model = effective.get("models", {}).get("enrich", {})
    if model.get("backend") != "python" or not str(model["python"]["entrypoint"]).startswith("fraud_features.enrich:"):
        raise SystemExit(f"{spec}: models.enrich is not the fraud_features.enrich step")
    return dict(model["python"]["config"])


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
    parser.add_argument("--spec", type=Path, default=ROOT / "specs" / "prod.toml", help="the spec served: its enrich config and registry path (default: specs/prod.toml)")
    parser.add_argument("--db", type=Path, help="the registry file (default: the spec's registry.path)")
    parser.add_argument("--environment", default="production")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "prod_models", help="where the trained model is written before registering")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from infer_runtime.registry import SyncRegistry
    from infer_runtime.registry.cli import configure_quiet_logging

    configure_quiet_logging()
    effective = effective_spec(args.spec)
    config = enrich_config(args.spec, effective)
    db = args.db or default_db(args.spec, effective)
    scorer = args.work / "scorer.onnx"
    auc = train_scorer(scorer, config, args.seed)
    check_scorer(scorer)
    print(f"scorer: trained on {TRAINING_ROWS} generated transactions (enrich config {config}), test ROC AUC {auc:.3f}")
    metadata: dict[str, object] = {"roc_auc": round(auc, 4), "features": N_FEATURES, "seed": args.seed, "training_rows": TRAINING_ROWS, "enrich_config": config}
    with SyncRegistry(db) as reg:
        ensure(reg, "scorer", scorer, args.environment, metadata=metadata)
        ensure(reg, "policy", POLICY, args.environment, backend="rules")
    print(f"registry {db} ready: infer-runtime run specs/prod.toml serves scorer@{args.environment} and policy@{args.environment}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
