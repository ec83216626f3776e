"""specs/prod.toml end to end: the enrich step (fraud_features.Enricher) on its own, then
`python examples/prod_setup.py` and `infer-runtime run specs/prod.toml` in a temporary
directory, called with tritonclient over HTTP and gRPC: health, metadata, each model, and the
`decide` pipeline, whose answer must equal calling enrich → scorer → policy one by one."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from fraud_features.enrich import FORWARDABLE, Enricher
from fraud_features.features import COUNTRIES, FEATURE_NAMES, MCC_GROUPS, N_FEATURES, mcc_group
from fraud_features.synthetic import START, generate
from fraud_features.transaction import CHANNELS, Transaction
from hypothesis import given, settings
from hypothesis import strategies as st
from tritonclient.utils import InferenceServerException

from infer_runtime.registry import SyncRegistry, resolve_source
from infer_runtime.rules import load_rules
from infer_runtime.spec import check_spec
from reference.rules import RowResult, run_batch
from server_helpers import free_port, http_status

ROOT = Path(__file__).resolve().parent.parent
PROD = ROOT / "specs" / "prod.toml"
F = {name: i for i, name in enumerate(FEATURE_NAMES)}
HOUR, DAY = 3600.0, 86400.0


def prod_effective() -> dict[str, Any]:
    result = check_spec(PROD, environ={})
    assert result.ok and result.effective is not None, [i.format() for i in result.issues]
    return result.effective


def prod_enricher() -> Enricher:
    return Enricher(prod_effective()["models"]["enrich"]["python"]["config"])


def encode(transactions: list[Transaction] | list[dict[str, Any]]) -> np.ndarray:
    rows = [t.to_json() if isinstance(t, Transaction) else json.dumps(t).encode() for t in transactions]
    return np.array(rows, dtype=object)


def features_of(tx: dict[str, Any], window_s: float = 300) -> np.ndarray:
    out: np.ndarray = Enricher({"window_s": window_s})({"raw": encode([tx])})["features"][0]
    return out


# -- the enrich step on its own ---------------------------------------------------------------

BASE = {"amount": 1500.0, "timestamp": START + 2 * HOUR, "country": "NG", "home_country": "fr", "mcc": 5732, "channel": "ecom", "account_age_days": 10}


def test_feature_layout_is_the_scorer_input_prod_toml_declares() -> None:
    assert N_FEATURES == 64 and len(set(FEATURE_NAMES)) == 64
    spec = prod_effective()
    assert spec["models"]["scorer"]["inputs"] == [{"name": "features", "dtype": "float32", "shape": [-1, N_FEATURES]}]
    enrich = spec["models"]["enrich"]
    assert enrich["outputs"] == prod_enricher().outputs  # the declared signature is what the config produces
    assert enrich["inputs"] == [{"name": "raw", "dtype": "bytes", "shape": [-1]}]
    assert spec["runtime"]["python_path"] == ["../examples"]
    assert (PROD.parent / "../examples/fraud_features/enrich.py").resolve().is_file()


def test_features_of_a_known_transaction() -> None:
    x = features_of({**BASE, "history": [[START + 2 * HOUR - 60, 200.0], [START + 2 * HOUR - 200, 300.0], [START - DAY, 40.0]]})
    expected = {
        "log_amount": math.log1p(1500) / 10, "amount_whole": 1, "amount_round_100": 1, "amount_under_5": 0, "amount_ends_99": 0,
        "hour_sin": math.sin(2 * math.pi * 2 / 24), "hour_cos": math.cos(2 * math.pi * 2 / 24),
        "weekday_sin": math.sin(2 * math.pi * 3 / 7), "weekday_cos": math.cos(2 * math.pi * 3 / 7),  # 2026-01-01: a Thursday
        "night": 1, "weekend": 0,
        "log_account_age": math.log1p(10) / 10, "account_new": 1, "account_age_unknown": 0,
        "foreign": 1, "home_country_unknown": 0, "country_NG": 1, "channel_ecom": 1, "mcc_electronics": 1,
        "window_log_count": math.log1p(2), "window_log_sum": math.log1p(500) / 10, "window_burst": 0,
        "log_since_previous": math.log1p(60) / 15, "history_none": 0, "history_log_len": math.log1p(3) / 5,
        "amount_vs_history_mean": (math.log1p(1500) - math.log1p(180)) / 5, "amount_new_max": 1,
        "amount_share_of_window": 1500 / 2000,
    }
    got = {name: float(x[F[name]]) for name in expected}
    assert got == pytest.approx(expected, abs=1e-6)
    others = [name for name in FEATURE_NAMES if name not in expected]
    assert all(x[F[name]] == 0 for name in others), {n: x[F[n]] for n in others if x[F[n]]}


def test_window_s_sets_the_velocity_window() -> None:
    t = BASE["timestamp"]
    tx = {**BASE, "history": [[t - 100, 10.0], [t - 400, 10.0], [t - 500, 10.0], [t + 50, 999.0]]}  # the last one is later: ignored
    short, wide = features_of(tx, window_s=300), features_of(tx, window_s=600)
    assert short[F["window_log_count"]] == pytest.approx(math.log1p(1)) and short[F["window_burst"]] == 0
    assert wide[F["window_log_count"]] == pytest.approx(math.log1p(3)) and wide[F["window_burst"]] == 1
    assert wide[F["history_log_len"]] == short[F["history_log_len"]] == pytest.approx(math.log1p(3) / 5)


def test_absent_optional_fields_are_flagged_unknown() -> None:
    x = features_of({"amount": 4.99, "timestamp": START + 2 * DAY + 15 * HOUR, "country": "SE"})  # Saturday 15:00, no history
    for name in ("account_age_unknown", "home_country_unknown", "channel_unknown", "mcc_unknown", "country_other", "history_none",
                 "amount_under_5", "amount_ends_99", "weekend", "amount_share_of_window"):
        assert x[F[name]] == 1, name
    assert x[F["foreign"]] == x[F["night"]] == x[F["account_new"]] == x[F["window_log_count"]] == 0


@pytest.mark.parametrize(("mcc", "group"), [(5411, "grocery"), (5813, "restaurant"), (3100, "travel"), (5944, "jewelry"), (5817, "digital"),
                                            (6051, "money_transfer"), (7995, "gambling"), (5732, "electronics"), (8011, "other"), (None, "unknown")])
def test_merchant_category_groups(mcc: int | None, group: str) -> None:
    assert mcc_group(mcc) == group
    x = features_of({**BASE, "mcc": mcc} if mcc is not None else {k: v for k, v in BASE.items() if k != "mcc"})
    mcc_columns = [F[f"mcc_{g}"] for g, _ in MCC_GROUPS] + [F["mcc_other"], F["mcc_unknown"]]
    assert x[mcc_columns].sum() == 1 and x[F[f"mcc_{group}"]] == 1


def test_forwarded_fields() -> None:
    rows = [BASE, {"amount": 12.5, "timestamp": START, "country": "us"}]
    out = Enricher({"forward": list(FORWARDABLE)})({"raw": encode(rows)})
    assert set(out) == {"features", *FORWARDABLE}
    assert out["amount"].dtype == np.float64 and out["amount"].tolist() == [1500.0, 12.5]
    assert out["country"].tolist() == [b"NG", b"US"]
    assert out["home_country"].tolist() == [b"FR", b"US"]  # absent: the transaction's country
    assert out["channel"].tolist() == [b"ecom", b"unknown"]
    assert out["mcc"].dtype == np.int32 and out["mcc"].tolist() == [5732, -1]
    assert [o["name"] for o in Enricher({"forward": ["country"]}).outputs] == ["features", "country"]
    assert set(Enricher({})({"raw": encode(rows)})) == {"features"}


@pytest.mark.parametrize(("row", "message"), [
    (b"{not json", r"raw row 1: not JSON"),
    (b"[1, 2]", r"raw row 1: expected a JSON object, got list"),
    (b'{"timestamp": 1, "country": "FR"}', r"raw row 1: amount: required"),
    (b'{"amount": -1, "timestamp": 1, "country": "FR"}', r"raw row 1: amount: must be ≥ 0"),
    (b'{"amount": true, "timestamp": 1, "country": "FR"}', r"raw row 1: amount: expected a finite number"),
    (b'{"amount": 1, "timestamp": "today", "country": "FR"}', r"raw row 1: timestamp: expected a finite number"),
    (b'{"amount": 1, "timestamp": 1, "country": "France"}', r"raw row 1: country: expected an ISO 3166-1 alpha-2 code"),
    (b'{"amount": 1, "timestamp": 1, "country": "FR", "mcc": 99999}', r"raw row 1: mcc: expected an integer 0\.\.9999"),
    (b'{"amount": 1, "timestamp": 1, "country": "FR", "channel": "phone"}', r"raw row 1: channel: expected one of pos, ecom"),
    (b'{"amount": 1, "timestamp": 1, "country": "FR", "history": [[1]]}', r"raw row 1: history\[0\]: expected \[timestamp, amount\]"),
    (b'{"amount": 1, "timestamp": 1, "country": "FR", "history": [[1, -2]]}', r"raw row 1: history\[0\]: amount must be ≥ 0"),
])
def test_a_malformed_row_fails_naming_the_row_and_field(row: bytes, message: str) -> None:
    good = json.dumps(BASE).encode()
    with pytest.raises(ValueError, match=message):
        Enricher({})({"raw": np.array([good, row], dtype=object)})


@pytest.mark.parametrize(("config", "message"), [
    ({"fields": ["amount"]}, "unknown config keys"),
    ({"window_s": 0}, "window_s: expected a number of seconds > 0"),
    ({"window_s": "5m"}, "window_s"),
    ({"forward": ["iban"]}, r"cannot forward \['iban'\]"),
    ({"forward": ["amount", "amount"]}, "listed twice"),
    ({"forward": "amount"}, "expected a list"),
])
def test_bad_config_fails_at_construction(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Enricher(config)


def test_wrong_input_is_refused() -> None:
    with pytest.raises(ValueError, match="expected an input named 'raw'"):
        Enricher({})({"features": np.zeros((1, 64), np.float32)})
    with pytest.raises(ValueError, match=r"expected shape \[n\]"):
        Enricher({})({"raw": encode([BASE]).reshape(1, 1)})


_finite = st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False)
_when = st.floats(min_value=START - 365 * DAY, max_value=START + 365 * DAY, allow_nan=False)
_country = st.sampled_from([*COUNTRIES, "SE", "KP", "CH"])
transactions = st.builds(
    Transaction,
    amount=_finite,
    timestamp=_when,
    country=_country,
    home_country=st.none() | _country,
    mcc=st.none() | st.integers(0, 9999),
    channel=st.none() | st.sampled_from(CHANNELS),
    account_age_days=st.none() | st.floats(min_value=0, max_value=1e5),
    history=st.lists(st.tuples(_when, _finite), max_size=8).map(lambda h: np.array(h, dtype=np.float64).reshape(-1, 2)),
)


@settings(max_examples=60, deadline=None)
@given(batch=st.lists(transactions, min_size=1, max_size=12), window_s=st.sampled_from([60, 300, 3600]))
def test_a_batch_is_its_rows_one_by_one(batch: list[Transaction], window_s: int) -> None:
    enricher = Enricher({"window_s": window_s, "forward": ["amount", "country"]})
    whole = enricher({"raw": encode(batch)})
    alone = [enricher({"raw": encode([tx])}) for tx in batch]
    for name in whole:
        assert np.array_equal(whole[name], np.concatenate([a[name] for a in alone]))
    x = whole["features"]
    assert x.dtype == np.float32 and x.shape == (len(batch), 64) and np.isfinite(x).all()
    for group in ("country_", "channel_", "mcc_"):  # one-hot groups: exactly one column set
        columns = [i for n, i in F.items() if n.startswith(group)]
        assert (x[:, columns].sum(axis=1) == 1).all(), group
    assert [Transaction.from_json(tx.to_json()).to_dict() for tx in batch] == [tx.to_dict() for tx in batch]


def test_synthetic_data_is_deterministic_and_learnable() -> None:
    a, b = generate(2000, seed=3), generate(2000, seed=3)
    assert [t.to_json() for t in a.transactions] == [t.to_json() for t in b.transactions]
    assert 0.02 < a.labels.mean() < 0.09
    x = Enricher({})({"raw": encode(a.transactions)})["features"]
    fraud, legit = x[a.labels == 1], x[a.labels == 0]
    for name in ("night", "account_new", "window_burst", "channel_ecom", "foreign"):  # the fraud pattern shows in the features
        assert fraud[:, F[name]].mean() > legit[:, F[name]].mean() + 0.2, name


# -- prod_setup + infer-runtime run specs/prod.toml ---------------------------------------------

@dataclass
class Prod:
    db: Path
    setup_output: str
    process: subprocess.Popen[str]
    http_port: int
    grpc_port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _env(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFER_RUNTIME_")}
    # The package as the caller has it (installed, or the source tree), never examples/: the
    # spec's python_path must be what finds the enrich step.
    inherited = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != (ROOT / "examples").resolve()]
    env["PYTHONPATH"] = os.pathsep.join(inherited)
    env["REGISTRY_DB"] = str(db)
    return env


def _stop(process: subprocess.Popen[str], timeout: float = 30) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            raise
    return process.returncode


def _start(tmp: Path, db: Path, *, grpc: bool = True) -> tuple[subprocess.Popen[str], int, int, Path]:
    """`infer-runtime run specs/prod.toml` on free loopback ports, from ``tmp``, once ready."""
    http_port, grpc_port = free_port(), free_port() if grpc else 0
    log_path = tmp / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "infer_runtime", "run", str(PROD), "--set", "server.host=127.0.0.1",
             "--http-port", str(http_port), "--grpc-port", str(grpc_port)],
            cwd=tmp, env=_env(db), stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, f"server exited with {process.returncode}:\n{log_path.read_text()}"
            try:
                if http_status(f"http://127.0.0.1:{http_port}/v2/health/ready", timeout=1)[0] == 200:
                    return process, http_port, grpc_port, log_path
            except OSError:
                pass
            assert time.monotonic() < deadline, f"server not ready within 90 s:\n{log_path.read_text()}"
            time.sleep(0.1)
    except BaseException:
        _stop(process)
        raise


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prod]:
    """prod_setup into a temporary registry, then the server on free loopback ports."""
    tmp = tmp_path_factory.mktemp("prod")
    db = tmp / "var" / "registry.db"
    setup = subprocess.run([sys.executable, str(ROOT / "examples" / "prod_setup.py"), "--work", str(tmp / "work")],
                           cwd=tmp, env=_env(db), capture_output=True, text=True, timeout=300, check=False)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    process, http_port, grpc_port, log_path = _start(tmp, db)
    server = Prod(db, setup.stdout, process, http_port, grpc_port, log_path)
    try:
        yield server
    finally:
        _stop(process)


class Client:
    """tritonclient over one protocol, with the few calls the tests make."""

    def __init__(self, protocol: str, server: Prod) -> None:
        self.protocol = protocol
        self.module: Any = httpclient if protocol == "http" else grpcclient
        port = server.http_port if protocol == "http" else server.grpc_port
        self.client: Any = self.module.InferenceServerClient(f"127.0.0.1:{port}")

    def metadata(self, model: str) -> dict[str, Any]:
        if self.protocol == "http":
            return dict(self.client.get_model_metadata(model))
        return dict(self.client.get_model_metadata(model, as_json=True))

    def infer(self, model: str, inputs: dict[str, np.ndarray], outputs: list[str], **options: int) -> dict[str, np.ndarray]:
        """One request; ``options``: tritonclient's ``priority`` and ``timeout`` (µs)."""
        tensors = []
        for name, array in inputs.items():
            datatype = {"O": "BYTES", "f": {4: "FP32", 8: "FP64"}.get(array.dtype.itemsize, "")}[array.dtype.kind]
            tensor = self.module.InferInput(name, list(array.shape), datatype)
            tensor.set_data_from_numpy(array)
            tensors.append(tensor)
        result = self.client.infer(model, tensors, outputs=[self.module.InferRequestedOutput(n) for n in outputs], **options)
        return {n: result.as_numpy(n) for n in outputs}

    def chain(self, raw: np.ndarray) -> dict[str, np.ndarray]:
        """enrich → scorer → policy, one call each, as the pipeline wires them."""
        enriched = self.infer("enrich", {"raw": raw}, ["features", "amount", "country"])
        score = self.infer("scorer", {"features": enriched["features"]}, ["probabilities"])["probabilities"]
        policy = self.infer("policy", {"score": score, "country": enriched["country"], "amount": enriched["amount"]}, ["decision", "reason"])
        return {"decision": policy["decision"], "reason": policy["reason"], "score": score, **enriched}


@pytest.fixture(params=["http", "grpc"])
def client(request: pytest.FixtureRequest, prod: Prod) -> Iterator[Client]:
    c = Client(request.param, prod)
    try:
        yield c
    finally:
        c.client.close()


def sample_transactions() -> list[Transaction]:
    """Generated transactions, plus two whose decision is known whatever the scorer says."""
    data = generate(62, seed=11)  # with the two below, the scorer's max_batch_size (64)
    sanctioned = Transaction(amount=20.0, timestamp=START + 14 * HOUR, country="KP", home_country="FR", channel="ecom")
    huge = Transaction(amount=25000.0, timestamp=START + 14 * HOUR, country="FR", home_country="FR", channel="pos", mcc=5411,
                       account_age_days=2000, history=np.array([[START - DAY, 30.0]]))
    return [*data.transactions, sanctioned, huge]


slow = pytest.mark.slow


@slow
def test_prod_setup_trained_and_promoted_both(prod: Prod) -> None:
    auc = float(re.search(r"test ROC AUC ([0-9.]+)", prod.setup_output).group(1))  # type: ignore[union-attr]
    assert auc > 0.9, prod.setup_output
    with SyncRegistry(prod.db, create=False) as reg:
        scorer = reg.resolve("scorer@production").model
        assert reg.resolve("policy@production").model.backend == "rules"
    assert scorer.metadata["enrich_config"] == prod_effective()["models"]["enrich"]["python"]["config"]  # trained on what is served
    assert resolve_source(prod.db, "policy@production", "production").path.read_bytes() == (ROOT / "examples/rules/fraud_policy.toml").read_bytes()


@slow
def test_server_and_models_are_ready(client: Client) -> None:
    assert client.client.is_server_live() and client.client.is_server_ready()
    for model in ("enrich", "scorer", "policy"):
        assert client.client.is_model_ready(model), model


@slow
def test_each_step_answers_as_it_does_in_process(client: Client, prod: Prod) -> None:
    import onnxruntime as ort

    batch = sample_transactions()
    got = client.chain(encode(batch))
    enriched = prod_enricher()({"raw": encode(batch)})
    assert np.array_equal(got["features"], enriched["features"])
    assert got["amount"].tolist() == enriched["amount"].tolist() and got["country"].tolist() == enriched["country"].tolist()

    session = ort.InferenceSession(str(resolve_source(prod.db, "scorer@production", "production").path), providers=["CPUExecutionProvider"])
    assert np.allclose(got["score"], session.run(None, {"features": enriched["features"]})[0], atol=1e-6)

    options = prod_effective()["models"]["policy"]["rules"]
    policy = load_rules(ROOT / "examples" / "rules" / "fraud_policy.toml")
    expected = run_batch(policy, {"score": got["score"], "country": got["country"], "amount": got["amount"]},
                         bindings=options["bindings"], outputs=options["outputs"], defaults=options["defaults"])
    assert all(isinstance(r, RowResult) for r in expected)
    assert [d.decode() for d in got["decision"]] == [r.outputs["decision"] for r in expected if isinstance(r, RowResult)]
    assert [d.decode() for d in got["reason"]] == [r.outputs["reason"] for r in expected if isinstance(r, RowResult)]
    decisions = [d.decode() for d in got["decision"]]
    assert {"allow", "block", "review"} <= set(decisions[:-2]), decisions  # generated rows alone exercise the whole policy
    assert decisions[-2:] == ["block", "review"] and [r.decode() for r in got["reason"][-2:]] == ["sanctioned-country", "large-amount"]


@slow
def test_a_malformed_transaction_fails_its_request_alone(client: Client) -> None:
    raw = encode([BASE, {"amount": "lots", "timestamp": START, "country": "FR"}])
    with pytest.raises(InferenceServerException, match=r"InvalidInputError|raw row 1: amount"):
        client.infer("enrich", {"raw": raw}, ["features"])
    assert client.infer("enrich", {"raw": raw[:1]}, ["features"])["features"].shape == (1, 64)  # and the step serves on


@slow
def test_a_malformed_transaction_is_the_clients_error_naming_row_and_field(client: Client) -> None:
    raw = encode([BASE, {"amount": "lots", "timestamp": START, "country": "FR"}])
    with pytest.raises(InferenceServerException, match=r"raw row 1: amount: expected a finite number") as failure:
        client.infer("enrich", {"raw": raw}, ["features"])
    assert failure.value.status() in ("400", "StatusCode.INVALID_ARGUMENT")  # the client's mistake, not the server's


# -- the decide pipeline (needs pipelines in the engine: issue 12, part 1) --------------------

@slow
def test_decide_is_ready_and_described(client: Client) -> None:
    assert client.client.is_model_ready("decide")
    meta = client.metadata("decide")
    assert meta["name"] == "decide"
    inputs = [(t["name"], t["datatype"], [int(d) for d in t["shape"]]) for t in meta["inputs"]]
    outputs = sorted((t["name"], t["datatype"], [int(d) for d in t["shape"]]) for t in meta["outputs"])
    assert inputs == [("raw", "BYTES", [-1])]
    assert outputs == [("decision", "BYTES", [-1]), ("reason", "BYTES", [-1]), ("score", "FP32", [-1, 2])]


@slow
def test_decide_equals_its_steps_one_by_one(client: Client) -> None:
    raw = encode(sample_transactions())
    chained = client.chain(raw)
    decided = client.infer("decide", {"raw": raw}, ["decision", "reason", "score"])
    assert decided["decision"].tolist() == chained["decision"].tolist()
    assert decided["reason"].tolist() == chained["reason"].tolist()
    assert np.array_equal(decided["score"], chained["score"])
    one = client.infer("decide", {"raw": raw[-2:-1]}, ["decision", "reason"])  # a single transaction
    assert (one["decision"].tolist(), one["reason"].tolist()) == ([b"block"], [b"sanctioned-country"])


@slow
def test_decide_fails_a_malformed_transaction_naming_the_step(client: Client, prod: Prod) -> None:
    raw = encode([{"amount": 1, "timestamp": START, "country": "France"}])
    with pytest.raises(InferenceServerException, match=r"InvalidInputError|raw row 0: country") as failure:
        client.infer("decide", {"raw": raw}, ["decision"])
    request_id = re.search(r"request id ([\w-]+)", str(failure.value))
    if request_id is not None:  # a 5xx: the client reads the request id, the log the details
        deadline = time.monotonic() + 10
        while request_id.group(1) not in prod.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        line = next(line for line in prod.log().splitlines() if request_id.group(1) in line)
        assert "pipeline 'decide', step 'enrich' (model 'enrich')" in line and "raw row 0: country" in line, line
    assert client.infer("decide", {"raw": encode([BASE])}, ["decision"])["decision"].shape == (1,)  # and the pipeline serves on


@slow
def test_decide_tells_the_client_which_step_refused_its_transaction(client: Client) -> None:
    raw = encode([{"amount": 1, "timestamp": START, "country": "France"}])
    with pytest.raises(InferenceServerException, match=r"step 'enrich' \(model 'enrich'\).*raw row 0: country") as failure:
        client.infer("decide", {"raw": raw}, ["decision"])
    assert failure.value.status() in ("400", "StatusCode.INVALID_ARGUMENT")


@slow
def test_decide_timeout_and_priority_hold_through_the_steps(client: Client) -> None:
    raw = encode(sample_transactions()[:4])
    with pytest.raises(InferenceServerException, match=r"pipeline 'decide', step '(enrich|scorer|policy)' .*deadline passed") as failure:
        client.infer("decide", {"raw": raw}, ["decision"], timeout=1)  # µs: spent before a step can start
    assert failure.value.status() in ("503", "StatusCode.DEADLINE_EXCEEDED")
    assert client.infer("decide", {"raw": raw}, ["decision"], timeout=10_000_000, priority=1)["decision"].shape == (4,)
    with pytest.raises(InferenceServerException, match=r"pipeline 'decide': priority 2 is outside \[0, 2\)"):
        client.infer("decide", {"raw": raw}, ["decision"], priority=2)  # two levels: the scorer's


@slow
def test_decide_takes_at_most_the_scorers_batch(client: Client) -> None:
    raw = encode(generate(65, seed=1).transactions)  # the README: at most 64 per request
    with pytest.raises(InferenceServerException, match=r"step 'scorer' \(model 'scorer'\): request has 65 rows; max_batch_size is 64"):
        client.infer("decide", {"raw": raw}, ["decision"])
    assert client.infer("decide", {"raw": raw[:64]}, ["decision"])["decision"].shape == (64,)


@slow
def test_metrics_count_the_pipeline_and_each_step(prod: Prod) -> None:
    with httpclient.InferenceServerClient(f"127.0.0.1:{prod.http_port}") as c:
        raw = encode(sample_transactions()[:8])
        tensor = httpclient.InferInput("raw", [len(raw)], "BYTES")
        tensor.set_data_from_numpy(raw)
        c.infer("decide", [tensor])
    status, body = http_status(f"http://127.0.0.1:{prod.http_port}/metrics")
    assert status == 200
    text = body.decode()

    def value(pattern: str) -> float:
        found = re.search(pattern + r" ([0-9.e+]+)$", text, re.MULTILINE)
        assert found is not None, pattern
        return float(found.group(1))

    assert value(r'infer_runtime_requests_total\{model="decide",outcome="success",version="1"\}') >= 1
    for step in ("enrich", "scorer", "policy"):
        assert value(rf'infer_runtime_pipeline_step_requests_total\{{model="{step}",outcome="success",pipeline="decide",step="{step}"\}}') >= 1
    assert value(r'infer_runtime_model_ready\{model="decide"\}') == 1


def readme_decide_example() -> tuple[bytes, str, str]:
    """The README's curl of decide: its request body, and the decision and reason it shows."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^curl -s localhost:8000/v2/models/decide/infer -d '(.*?)'\n((?:#.*\n)+)", readme, re.DOTALL | re.MULTILINE)
    assert found is not None, "the README's decide example is gone"
    shown = re.findall(r'"name":"(decision|reason)","datatype":"BYTES","shape":\[1\],"data":\["([a-z-]+)"\]', found.group(2))
    assert [name for name, _ in shown] == ["decision", "reason"], found.group(2)
    return found.group(1).encode(), shown[0][1], shown[1][1]


@slow
def test_readme_example_then_sigterm(tmp_path: Path, prod: Prod) -> None:
    """A second server on the same registry answers the README's curl of decide as the README
    shows, then, stopped by PID with SIGTERM, exits 0."""
    process, http_port, _, log_path = _start(tmp_path, prod.db, grpc=False)
    try:
        body, decision, reason = readme_decide_example()
        status, answer = http_status(f"http://127.0.0.1:{http_port}/v2/models/decide/infer", method="POST", body=body)
        assert status == 200, answer
        outputs = {o["name"]: o["data"] for o in json.loads(answer)["outputs"]}
        assert (outputs["decision"], outputs["reason"]) == ([decision], [reason])
    except BaseException:
        _stop(process)
        raise
    started = time.monotonic()
    assert _stop(process) == 0, log_path.read_text()
    assert time.monotonic() - started < 10  # idle: nothing to drain
    assert '"event": "stopped"' in log_path.read_text()
