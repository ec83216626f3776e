"""The rules engine against the Python reference and CLIPS: a policy of 30 rules over 5
facts per row (score, amount, country, channel, hour) plus 8 list facts.

* engine: the C++ rules backend through ``SyncRuntime`` (one request of N rows), when it
  runs here (else reported as unavailable);
* reference: tests/reference/rules.py, row by row (clarity over speed);
* CLIPS 6.4 through clipspy, doing its best: one environment, every row's facts asserted
  with a row id, one ``run`` per batch (tests/rules_clips.py, ``row_field=True``).

Reports rows/s at batch 64 and µs per row at batch 1 and 64, and checks that the three agree
on every row's decision. Targets (issue 11): engine ≥ 100× the reference and ≥ 1× CLIPS.

Run: python bench/rules.py [--rows 2048] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from infer_runtime.rules import rules_from_data
from infer_runtime.rules.ruleset import RuleSet
from reference.rules import RowResult, binding_facts, run_batch

BINDINGS = {"score": "score", "amount": "amount", "country": "country", "channel": "channel", "hour": "hour"}
OUTPUTS = {"decision": "decision", "reason": "reason"}
DEFAULTS = {"decision": "allow", "reason": "none"}
COUNTRIES = ["FR", "DE", "NG", "RU", "US", "KP", "BR", "VE"]
CHANNELS = ["web", "app", "pos", "phone"]


def policy() -> RuleSet:
    """30 rules: blocks, reviews, intermediate flags and their consequences; each
    decision rule has its own salience so the decision does not depend on tie order."""
    facts = [["blocked", "KP"], ["risky", "NG"], ["risky", "RU"], ["risky", "VE"], ["remote", "web"], ["remote", "phone"],
             ["night_start", 22], ["night_end", 6]]
    rules: list[dict[str, Any]] = []

    def decide(name: str, salience: int, when: list[Any], decision: str) -> None:
        rules.append({"name": name, "salience": salience, "when": [*when, {"not": ["decision", "?_"]}],
                      "then": [{"assert": ["decision", decision]}, {"assert": ["reason", name]}]})

    def flag(name: str, when: list[Any], flag_name: str) -> None:
        rules.append({"name": name, "salience": 500, "when": when, "then": [{"assert": ["flag", flag_name]}]})

    score = ["score", "?legit", "?fraud"]
    flag("flag-night", [["hour", "?h"], ["night_start", "?s"], ["night_end", "?e"], {"test": "?h >= ?s or ?h < ?e"}], "night")
    flag("flag-remote", [["channel", "?ch"], ["remote", "?ch"]], "remote")
    flag("flag-risky-country", [["country", "?c"], ["risky", "?c"]], "risky")
    flag("flag-large", [["amount", "?a"], {"test": "?a >= 5000"}], "large")
    flag("flag-tiny", [["amount", "?a"], {"test": "?a < 2"}], "tiny")
    flag("flag-round", [["amount", "?a"], {"test": "?a >= 100 and ?a == 100 * ((?a / 100) - (?a / 100 - 0))"}], "round")
    flag("flag-elevated", [score, {"test": "?fraud >= 0.4"}], "elevated")
    flag("flag-inconsistent", [score, {"test": "?legit + ?fraud < 0.98 or ?legit + ?fraud > 1.02"}], "inconsistent")
    flag("flag-night-remote", [["flag", "night"], ["flag", "remote"]], "night-remote")
    flag("flag-risky-remote", [["flag", "risky"], ["flag", "remote"]], "risky-remote")
    decide("block-sanctioned", 400, [["country", "?c"], ["blocked", "?c"]], "block")
    decide("block-very-high", 390, [score, {"test": "?fraud >= 0.95"}], "block")
    decide("block-high-large", 380, [score, ["flag", "large"], {"test": "?fraud >= 0.8"}], "block")
    decide("block-risky-remote-high", 370, [score, ["flag", "risky-remote"], {"test": "?fraud >= 0.7"}], "block")
    decide("block-night-remote-high", 360, [score, ["flag", "night-remote"], {"test": "?fraud >= 0.75"}], "block")
    decide("block-card-testing", 350, [["flag", "tiny"], ["flag", "remote"], score, {"test": "?fraud >= 0.5"}], "block")
    decide("review-inconsistent", 300, [["flag", "inconsistent"]], "review")
    decide("review-high", 290, [score, {"test": "?fraud >= 0.8"}], "review")
    decide("review-risky-elevated", 280, [["flag", "risky"], ["flag", "elevated"]], "review")
    decide("review-large-remote", 270, [["flag", "large"], ["flag", "remote"]], "review")
    decide("review-night-large", 260, [["flag", "night"], ["flag", "large"]], "review")
    decide("review-very-large", 250, [["amount", "?a"], {"test": "?a >= 20000"}], "review")
    decide("review-phone-elevated", 240, [["channel", "phone"], ["flag", "elevated"]], "review")
    decide("review-mid", 230, [score, {"test": "?fraud >= 0.6 and ?fraud < 0.8"}], "review")
    decide("review-round-remote", 220, [["flag", "round"], ["flag", "remote"], ["flag", "elevated"]], "review")
    decide("review-pos-night", 210, [["channel", "pos"], ["flag", "night"], ["flag", "elevated"]], "review")
    decide("allow-trusted-pos", 200, [["channel", "pos"], score, {"test": "?fraud < 0.05"}], "allow")
    decide("allow-low", 190, [score, {"test": "?fraud < 0.2"}, {"not": ["flag", "risky"]}], "allow")
    decide("step-up-app", 180, [["channel", "app"], ["flag", "elevated"]], "step-up")
    decide("step-up-risky", 170, [["flag", "risky"]], "step-up")
    assert len(rules) == 30
    return rules_from_data({"kind": "rules", "version": 1, "facts": facts, "rules": rules})


def make_inputs(rows: int, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    fraud = np.round(rng.beta(0.6, 2.5, rows), 3)
    legit = np.where(rng.random(rows) < 0.03, 0.5, 1.0 - fraud)  # a few inconsistent rows
    return {
        "score": np.stack([legit, fraud], axis=1).astype(np.float64),
        "amount": np.round(rng.lognormal(4.5, 1.6, rows), 2),
        "country": np.array([c.encode() for c in rng.choice(COUNTRIES, rows)], dtype=object),
        "channel": np.array([c.encode() for c in rng.choice(CHANNELS, rows)], dtype=object),
        "hour": rng.integers(0, 24, rows).astype(np.float64),
    }


def _slice(inputs: dict[str, np.ndarray], start: int, stop: int) -> dict[str, np.ndarray]:
    return {k: v[start:stop] for k, v in inputs.items()}


def timed(run_batch_fn: Callable[[dict[str, np.ndarray]], list[str]], inputs: dict[str, np.ndarray], batch: int, rounds: int) -> tuple[float, list[str]]:
    """Median seconds over ``rounds`` to process every row in batches of ``batch``; decisions."""
    rows = len(inputs["hour"])
    times, decisions = [], []
    for _ in range(rounds):
        decisions = []
        start = time.perf_counter()
        for lo in range(0, rows, batch):
            decisions += run_batch_fn(_slice(inputs, lo, min(rows, lo + batch)))
        times.append(time.perf_counter() - start)
    return statistics.median(times), decisions


def reference_runner(ruleset: RuleSet) -> Callable[[dict[str, np.ndarray]], list[str]]:
    def run(inputs: dict[str, np.ndarray]) -> list[str]:
        out = run_batch(ruleset, inputs, bindings=BINDINGS, outputs=OUTPUTS, defaults=DEFAULTS)
        return [str(r.outputs["decision"]) if isinstance(r, RowResult) else "error" for r in out]

    return run


def clips_runner(ruleset: RuleSet) -> Callable[[dict[str, np.ndarray]], list[str]]:
    from rules_clips import ClipsRules

    env = ClipsRules(ruleset, row_field=True)

    def run(inputs: dict[str, np.ndarray]) -> list[str]:
        n = len(inputs["hour"])
        env.run_batch([binding_facts(inputs, BINDINGS, r) for r in range(n)])
        return [str(o["decision"]) for o in env.batch_outputs(n, OUTPUTS, DEFAULTS)]

    return run


def engine_runner(ruleset: RuleSet, directory: Path) -> tuple[Callable[[dict[str, np.ndarray]], list[str]] | None, str | None, Any]:
    from rules_engine import EngineModel, unavailable

    reason = unavailable(directory / "probe")
    if reason is not None:
        return None, reason, None
    model = EngineModel(directory / "bench", ruleset, bindings=BINDINGS, outputs=OUTPUTS, defaults=DEFAULTS, batch=64)

    def run(inputs: dict[str, np.ndarray]) -> list[str]:
        result = model.runtime.infer("policy", inputs)
        return [v.decode() if isinstance(v, bytes) else str(v) for v in result["decision"]]

    return run, None, model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--reference-rows", type=int, default=256, help="rows for the (slow) reference")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ruleset = policy()
    inputs = make_inputs(args.rows)
    ref_inputs = _slice(inputs, 0, args.reference_rows)

    results: dict[str, dict[int, float]] = {}  # name → batch → µs per row
    decisions: dict[str, list[str]] = {}
    ref_seconds, decisions["reference"] = timed(reference_runner(ruleset), ref_inputs, 64, args.rounds)
    results["reference (Python)"] = {64: ref_seconds / args.reference_rows * 1e6}
    clips_run = clips_runner(ruleset)
    for batch in (1, 64):
        seconds, decisions[f"clips-{batch}"] = timed(clips_run, inputs, batch, args.rounds)
        results.setdefault("CLIPS 6.4 (clipspy, row ids)", {})[batch] = seconds / args.rows * 1e6
    with tempfile.TemporaryDirectory() as tmp:
        engine_run, reason, model = engine_runner(ruleset, Path(tmp))
        try:
            if engine_run is not None:
                for batch in (1, 64):
                    seconds, decisions[f"engine-{batch}"] = timed(engine_run, inputs, batch, args.rounds)
                    results.setdefault("engine (C++, SyncRuntime)", {})[batch] = seconds / args.rows * 1e6
        finally:
            if model is not None:
                model.close()

    print(f"policy: {len(ruleset.rules)} rules, {len(BINDINGS)} facts per row + {len(ruleset.facts)} list facts; {args.rows} rows "
          f"({args.reference_rows} for the reference), median of {args.rounds} rounds")
    print(f"{'':34} {'µs/row b=1':>12} {'µs/row b=64':>12} {'rows/s b=64':>12}")
    for name, per in results.items():
        b1 = f"{per[1]:.1f}" if 1 in per else "-"
        print(f"{name:34} {b1:>12} {per[64]:>12.1f} {1e6 / per[64]:>12,.0f}")
    if reason is not None:
        print(f"engine: not run ({reason})")
    else:
        eng = results["engine (C++, SyncRuntime)"][64]
        print(f"engine vs reference: {results['reference (Python)'][64] / eng:.0f}x (target ≥ 100x); "
              f"vs CLIPS: {results['CLIPS 6.4 (clipspy, row ids)'][64] / eng:.1f}x (target ≥ 1x)")
    ref = decisions["reference"]
    for name, got in decisions.items():
        mismatches = sum(1 for a, b in zip(ref, got[: len(ref)]) if a != b)
        if mismatches:
            print(f"DISAGREEMENT: {name} differs from the reference on {mismatches} of {len(ref)} rows")
            return 1
    counts = {d: ref.count(d) for d in sorted(set(ref))}
    print(f"all runs agree with the reference on every decision ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
