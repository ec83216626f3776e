"""examples/rules/fraud_policy.toml: the decisions it makes, on the reference now and on the
C++ engine where the rules backend runs (same rows, same answers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from infer_runtime.rules import check_rules, load_rules
from infer_runtime.spec import check_spec
from reference.rules import RowResult, run_batch, run_row
from rules_engine import EngineModel, unavailable

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "examples" / "rules" / "fraud_policy.toml"
OUTPUTS = {"decision": "decision", "reason": "reason"}
DEFAULTS = {"decision": "allow", "reason": "none"}
BINDINGS = {"score": "score", "country": "country", "amount": "amount"}

# (fraud probability, country, amount) → (decision, reason, fired)
CASES: list[tuple[float, str, float, str, str, list[str]]] = [
    (0.02, "FR", 40.0, "allow", "none", []),
    (0.95, "FR", 40.0, "block", "high-fraud-probability", ["block-very-high"]),
    (0.70, "FR", 40.0, "review", "mid-fraud-probability", ["review-mid-probability"]),
    (0.10, "KP", 5.0, "block", "sanctioned-country", ["block-sanctioned-country"]),
    (0.95, "KP", 5.0, "block", "sanctioned-country", ["block-sanctioned-country"]),  # one block, one reason
    (0.95, "NG", 2500.0, "block", "high-fraud-probability", ["block-very-high"]),
    (0.35, "NG", 40.0, "review", "risky-country", ["review-risky-country"]),
    (0.20, "NG", 40.0, "allow", "none", []),
    (0.80, "NG", 2500.0, "block", "risky-country-large-amount", ["block-risky-country-high"]),
    (0.10, "FR", 25000.0, "review", "large-amount", ["review-large-amount"]),
    (0.65, "RU", 25000.0, "review", "mid-fraud-probability", ["review-mid-probability"]),
]


def _batch() -> dict[str, np.ndarray]:
    return {
        "score": np.array([[1.0 - f, f] for f, *_ in CASES], np.float64),
        "country": np.array([c.encode() for _, c, *_ in CASES], dtype=object),
        "amount": np.array([a for _, _, a, *_ in CASES], np.float64),
    }


def test_policy_is_valid_and_fits_prod_toml() -> None:
    assert check_rules(POLICY, outputs=OUTPUTS, bindings=BINDINGS).ok
    assert check_rules(POLICY, outputs={"decision": "decision"}, bindings={"score": "score"}).ok  # specs/prod.toml's options
    prod = check_spec(ROOT / "specs" / "prod.toml", environ={})
    assert prod.ok and prod.effective is not None
    options = prod.effective["models"]["policy"]["rules"]
    assert check_rules(POLICY, outputs=options["outputs"], bindings=options["bindings"]).ok


@pytest.mark.parametrize(("fraud", "country", "amount", "decision", "reason", "fired"), CASES)
def test_policy_decisions(fraud: float, country: str, amount: float, decision: str, reason: str, fired: list[str]) -> None:
    result = run_row(load_rules(POLICY), [("score", 1.0 - fraud, fraud), ("country", country), ("amount", amount)], outputs=OUTPUTS, defaults=DEFAULTS)
    assert result.outputs == {"decision": decision, "reason": reason}
    assert result.fired == fired


def test_policy_with_only_the_score_bound() -> None:
    policy = load_rules(POLICY)
    out = run_batch(policy, {"score": np.array([[0.99, 0.01], [0.3, 0.7], [0.05, 0.95], [0.5, 0.3]], np.float32)},
                    bindings={"score": "score"}, outputs={"decision": "decision"}, defaults={"decision": "allow"})
    assert [r.outputs["decision"] for r in out if isinstance(r, RowResult)] == ["allow", "review", "block", "review"]  # last: inconsistent score


def test_policy_on_the_engine(tmp_path: Path) -> None:
    reason = unavailable(tmp_path / "probe")
    if reason is not None:  # the engine is part of every build: not running is a failure
        pytest.fail(reason)
    policy = load_rules(POLICY)
    expected = run_batch(policy, _batch(), bindings=BINDINGS, outputs=OUTPUTS, defaults=DEFAULTS)
    with EngineModel(tmp_path / "policy", policy, bindings=BINDINGS, outputs=OUTPUTS, defaults=DEFAULTS) as model:
        got = model.infer(_batch())
    for want, have in zip(expected, got):
        assert isinstance(want, RowResult)
        assert (have.outputs, have.fired) == (want.outputs, want.fired)
