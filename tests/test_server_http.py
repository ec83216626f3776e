"""`infer-runtime run` over HTTP: KServe v2 conformance with the official tritonclient
(sync and aio), every datatype in binary and JSON, errors (ECOSYSTEM B1-B12), metrics."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as httpclient
import tritonclient.http.aio as aio_httpclient
from tritonclient.utils import InferenceServerException

from server_helpers import http_status, log_events, running

pytestmark = pytest.mark.slow

DTYPES = [np.bool_, np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64, np.object_]
V2 = {np.bool_: "BOOL", np.uint8: "UINT8", np.uint16: "UINT16", np.uint32: "UINT32", np.uint64: "UINT64", np.int8: "INT8", np.int16: "INT16",
      np.int32: "INT32", np.int64: "INT64", np.float16: "FP16", np.float32: "FP32", np.float64: "FP64", np.object_: "BYTES"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path):  # type: ignore[no-untyped-def]
    spec = tmp_path_factory.mktemp("http") / "spec.toml"
    spec.write_text(f"""
[runtime]
name = "conformance"
[server]
max_request_bytes = 1048576
[monitoring]
log_format = "json"
[models.any]
backend = "identity"
[models.anyb]
backend = "identity"
[models.anyb.batching]
max_batch_size = 16
max_queue_delay_us = 2000
[models.echo]
backend = "identity"
inputs = [{{ name = "x", dtype = "float32", shape = [-1, 4] }}]
[models.echo.batching]
max_batch_size = 8
max_queue_delay_us = 1000
[models.digits]
backend = "onnxruntime"
path = "{models_dir / 'demo' / 'digits.onnx'}"
[models.digits.batching]
max_batch_size = 64
[models.picky]
backend = "python"
inputs = [{{ name = "x", dtype = "float32", shape = [-1, 2] }}]
python = {{ entrypoint = "ir_test_backends:Failing" }}
""")
    with running(spec) as s:
        yield s


def sample(dtype: type, shape: tuple[int, ...], text: bool = False) -> np.ndarray:
    """Deterministic test data; BYTES elements are arbitrary bytes, or UTF-8 ``text``."""
    rng = np.random.default_rng(7)
    if dtype is np.bool_:
        return rng.integers(0, 2, shape).astype(np.bool_)
    if dtype is np.object_:
        out = np.empty(shape, dtype=object)
        for index in np.ndindex(*shape):
            low = 0x20 if text else 0
            out[index] = bytes(rng.integers(low, 0x7F if text else 256, int(rng.integers(0, 9)), dtype=np.uint8))
        return out
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    return rng.standard_normal(shape).astype(dtype)


def test_health_and_metadata(server) -> None:  # type: ignore[no-untyped-def]
    client = httpclient.InferenceServerClient(server.url)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("echo") and client.is_model_ready("echo", "1")
    assert not client.is_model_ready("nope")
    meta = client.get_server_metadata()
    assert meta["name"] == "conformance" and "binary_tensor_data" in meta["extensions"]
    model = client.get_model_metadata("digits")
    assert model["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 64]}]
    assert {o["name"] for o in model["outputs"]} == {"label", "probabilities"}
    config = client.get_model_config("echo")
    assert config["max_batch_size"] == 8 and config["input"][0]["dims"] == [4]
    stats = client.get_inference_statistics("echo")
    assert stats["model_stats"][0]["name"] == "echo"
    with pytest.raises(InferenceServerException, match="unknown model 'nope'"):
        client.get_model_metadata("nope")
    with pytest.raises(InferenceServerException, match="has no version '2'"):
        client.get_model_metadata("echo", "2")


def _check_same(got: np.ndarray, x: np.ndarray, dtype: type, binary: bool) -> None:
    assert got.shape == x.shape
    if dtype is np.object_:
        if not binary:  # JSON carries BYTES as (UTF-8) strings
            x = np.vectorize(lambda v: v.decode("utf-8", "replace"), otypes=[object])(x)
        assert got.tolist() == x.tolist()
    else:
        assert got.dtype == x.dtype
        np.testing.assert_array_equal(got, x)


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: V2[d])
def test_every_datatype_round_trips(server, dtype, binary) -> None:  # type: ignore[no-untyped-def]
    if dtype is np.float16 and not binary:
        pytest.skip("FP16 has no JSON form (the protocol requires binary)")
    client = httpclient.InferenceServerClient(server.url)
    x = sample(dtype, (2, 3), text=not binary)  # tritonclient sends only UTF-8 BYTES as JSON
    inp = httpclient.InferInput("t", list(x.shape), V2[dtype])
    inp.set_data_from_numpy(x, binary_data=binary)
    out = httpclient.InferRequestedOutput("t", binary_data=binary)
    result = client.infer("any", [inp], outputs=[out], request_id="req-7")
    _check_same(result.as_numpy("t"), x, dtype, binary)
    assert result.get_response()["id"] == "req-7"


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: V2[d])
def test_every_datatype_batched_each_caller_gets_its_rows(server, dtype, binary) -> None:  # type: ignore[no-untyped-def]
    if dtype is np.float16 and not binary:
        pytest.skip("FP16 has no JSON form (the protocol requires binary)")
    client = httpclient.InferenceServerClient(server.url, concurrency=6)
    xs = [sample(dtype, (k, 3), text=not binary) for k in (1, 3, 2, 1, 2, 1)]
    pending = []
    for x in xs:
        inp = httpclient.InferInput("t", list(x.shape), V2[dtype])
        inp.set_data_from_numpy(x, binary_data=binary)
        pending.append(client.async_infer("anyb", [inp], outputs=[httpclient.InferRequestedOutput("t", binary_data=binary)]))
    for x, p in zip(xs, pending):
        _check_same(p.get_result().as_numpy("t"), x, dtype, binary)


def test_batched_requests_get_their_own_rows(server) -> None:  # type: ignore[no-untyped-def]
    client = httpclient.InferenceServerClient(server.url, concurrency=8)
    xs = [np.full((k, 4), i, np.float32) for i, k in enumerate([1, 3, 2, 1, 1, 2])]
    pending = []
    for x in xs:
        inp = httpclient.InferInput("x", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        pending.append(client.async_infer("echo", [inp]))
    for x, p in zip(xs, pending):
        np.testing.assert_array_equal(p.get_result().as_numpy("x"), x)


def test_onnx_model_matches_the_session(server, models_dir: Path) -> None:  # type: ignore[no-untyped-def]
    test = np.load(models_dir / "demo" / "digits_test.npz")
    x = test["x"][:10]
    labels, probs = ort.InferenceSession(str(models_dir / "demo" / "digits.onnx")).run(None, {"input": x})
    client = httpclient.InferenceServerClient(server.url)
    for binary in (True, False):
        inp = httpclient.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=binary)
        outs = [httpclient.InferRequestedOutput("label", binary_data=binary), httpclient.InferRequestedOutput("probabilities", binary_data=binary)]
        result = client.infer("digits", [inp], outputs=outs)
        np.testing.assert_array_equal(result.as_numpy("label"), labels)
        np.testing.assert_allclose(result.as_numpy("probabilities"), probs, rtol=1e-6)


def test_aio_client(server) -> None:  # type: ignore[no-untyped-def]
    async def go() -> None:
        client = aio_httpclient.InferenceServerClient(server.url)
        try:
            assert await client.is_server_live() and await client.is_server_ready()
            assert await client.is_model_ready("echo")
            assert (await client.get_server_metadata())["name"] == "conformance"
            assert (await client.get_model_metadata("echo"))["inputs"][0]["shape"] == [-1, 4]
            x = np.arange(8, dtype=np.float32).reshape(2, 4)
            inp = aio_httpclient.InferInput("x", [2, 4], "FP32")
            inp.set_data_from_numpy(x)
            results = await asyncio.gather(*(client.infer("echo", [inp]) for _ in range(10)))
            for r in results:
                np.testing.assert_array_equal(r.as_numpy("x"), x)
        finally:
            await client.close()

    asyncio.run(go())


def post(server, body: bytes | str, model: str = "echo", headers: dict[str, str] | None = None) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    status, raw = http_status(f"{server.base}/v2/models/{model}/infer", "POST", body.encode() if isinstance(body, str) else body, headers)
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, {"raw": raw}


def tensor(name: str = "x", datatype: str = "FP32", shape: list | None = None, data: list | None = None, **params) -> dict:  # type: ignore[no-untyped-def]
    t = {"name": name, "datatype": datatype, "shape": shape if shape is not None else [1, 4]}
    if data is not None:
        t["data"] = data
    if params:
        t["parameters"] = params
    return t


def req(*tensors: dict, **extra) -> str:  # type: ignore[no-untyped-def]
    return json.dumps({"inputs": list(tensors), **extra})


GOOD = [1.0, 2.0, 3.0, 4.0]

BAD_CASES = [
    ("B1 missing input", req(tensor("y", data=GOOD)), "missing input(s) 'x'"),
    ("B1 extra input", req(tensor(data=GOOD), tensor("y", data=GOOD)), "unknown input(s) 'y'"),
    ("B2 datatype", req(tensor(datatype="FP64", data=GOOD)), "input 'x' must be float32, got float64"),
    ("B3 rank", req(tensor(shape=[4], data=GOOD)), "input 'x' must have shape [-1, 4], got [4]"),
    ("B3 fixed dim", req(tensor(shape=[2, 2], data=GOOD)), "input 'x' must have shape [-1, 4], got [2, 2]"),
    ("B3 batch too large", req(tensor(shape=[9, 4], data=GOOD * 9)), "has 9 rows; each request needs 1 to 8"),
    ("B4 element count", req(tensor(data=GOOD[:3])), "shape [1, 4] needs 4 elements, data has 3"),
    ("B7 negative dim", req(tensor(shape=[-1, 4], data=GOOD)), "must hold non-negative integers"),
    ("B7 overflow", req(tensor(shape=[2**40, 2**40], data=GOOD)), "is too large"),
    ("BF16 unsupported", req(tensor(datatype="BF16", shape=[1], data=[1.0])), "datatype 'BF16' is not supported"),
    ("BYTES data not strings", req(tensor(datatype="BYTES", shape=[1], data=[1])), "BYTES data must be strings"),
    ("B9 malformed JSON", '{"inputs": [', "not valid JSON"),
    ("B9 deep nesting", '{"inputs": ' + "[" * 10000 + "]" * 10000 + "}", "not valid JSON"),
    ("B9 not an object", "[1, 2]", "must be a JSON object"),
    ("no inputs", "{}", "non-empty 'inputs' list"),
    ("duplicate input", req(tensor(data=GOOD), tensor(data=GOOD)), "input 'x' appears twice"),
    ("unknown output", req(tensor(data=GOOD), outputs=[{"name": "z"}]), "unknown output 'z'"),
    ("bad priority", req(tensor(data=GOOD), parameters={"priority": "high"}), "'priority' must be an integer"),
    ("priority out of range", req(tensor(data=GOOD), parameters={"priority": 3}), "priority 3 is outside [0, 1)"),
]


@pytest.mark.parametrize(("case", "body", "message"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_requests_get_400_and_the_server_lives(server, case, body, message) -> None:  # type: ignore[no-untyped-def]
    status, payload = post(server, body)
    assert status == 400, payload
    assert message in payload["error"]
    assert http_status(f"{server.base}/v2/health/live")[0] == 200


BINARY_CASES = [
    ("B5 size mismatch", {"Inference-Header-Content-Length": None}, 8, 8, "needs 16 bytes, binary_data_size is 8"),
    ("B5 past the end", {"Inference-Header-Content-Length": None}, 32, 16, "runs past the end of the body"),
    ("B5 unclaimed bytes", {"Inference-Header-Content-Length": None}, 16, 20, "bytes of binary data that no input claims"),
    ("B6 header > body", {"Inference-Header-Content-Length": "99999"}, 16, 16, "outside the body"),
    ("B6 negative", {"Inference-Header-Content-Length": "-5"}, 16, 16, "outside the body"),
    ("B6 non-numeric", {"Inference-Header-Content-Length": "abc"}, 16, 16, "must be an integer"),
    ("B6 > INT_MAX", {"Inference-Header-Content-Length": str(2**40)}, 16, 16, "outside the body"),
]


@pytest.mark.parametrize(("case", "headers", "declared", "sent", "message"), BINARY_CASES, ids=[c[0] for c in BINARY_CASES])
def test_bad_binary_requests_get_400(server, case, headers, declared, sent, message) -> None:  # type: ignore[no-untyped-def]
    header = json.dumps({"inputs": [tensor(binary_data_size=declared)]}).encode()
    body = header + b"\0" * sent
    h = {k: (v if v is not None else str(len(header))) for k, v in headers.items()}
    status, payload = post(server, body, headers=h)
    assert status == 400, payload
    assert message in payload["error"]
    assert http_status(f"{server.base}/v2/health/live")[0] == 200


def test_body_over_the_limit_is_413_before_parsing(server) -> None:  # type: ignore[no-untyped-def]
    limit = 1048576
    status, payload = post(server, b"x" * (limit + 1))
    assert status == 413 and "exceeds the limit of 1048576 bytes" in payload["error"]
    x = np.zeros((1, 4), np.float32)
    pad = " " * (limit - len(req(tensor(data=x.ravel().tolist()))) - 1)
    status, _ = post(server, req(tensor(data=x.ravel().tolist())) + pad)
    assert status == 200  # 1 byte under the limit succeeds


@pytest.mark.parametrize("binary", [True, False])
def test_bytes_round_trip_with_nul_characters(server, binary) -> None:  # type: ignore[no-untyped-def]
    x = np.array([[b"alpha", b"nul\x00inside"], [b"", "\u00e9t\u00e9".encode()]], dtype=object)
    client = httpclient.InferenceServerClient(server.url)
    inp = httpclient.InferInput("t", [2, 2], "BYTES")
    inp.set_data_from_numpy(x, binary_data=binary)
    got = client.infer("any", [inp], outputs=[httpclient.InferRequestedOutput("t", binary_data=binary)]).as_numpy("t")
    assert got.shape == (2, 2)
    as_bytes = np.vectorize(lambda v: v if isinstance(v, bytes) else v.encode(), otypes=[object])(got)
    assert (as_bytes == x).all()


def test_bytes_length_prefix_past_the_buffer_is_400(server) -> None:  # B8
    raw = (100).to_bytes(4, "little") + b"short"
    header = json.dumps({"inputs": [tensor("t", datatype="BYTES", shape=[1], binary_data_size=len(raw))]}).encode()
    status, payload = post(server, header + raw, model="any", headers={"Inference-Header-Content-Length": str(len(header))})
    assert status == 400 and "claims 100 bytes" in payload["error"]


def test_nan_and_inf_pass_through(server) -> None:  # type: ignore[no-untyped-def]
    x = np.array([[np.nan, np.inf, -np.inf, 1.5]], np.float32)
    client = httpclient.InferenceServerClient(server.url)
    for binary in (True, False):
        inp = httpclient.InferInput("x", [1, 4], "FP32")
        inp.set_data_from_numpy(x, binary_data=binary)
        got = client.infer("echo", [inp], outputs=[httpclient.InferRequestedOutput("x", binary_data=binary)]).as_numpy("x")
        np.testing.assert_array_equal(got, x)


def test_zero_size_tensor_is_defined(server) -> None:  # type: ignore[no-untyped-def]
    status, payload = post(server, req(tensor(shape=[0, 3], data=[])), model="any")
    assert status == 200 and payload["outputs"][0]["shape"] == [0, 3]
    status, payload = post(server, req(tensor(shape=[0, 4], data=[])))
    assert status == 400 and "has 0 rows" in payload["error"]


def test_framework_errors_are_json(server) -> None:  # type: ignore[no-untyped-def]
    for method, path, code in (("DELETE", "/v2", 405), ("GET", "/v2/nope", 404), ("GET", "/v2/models/echo/infer", 405)):
        status, raw = http_status(server.base + path, method)
        assert status == code and "error" in json.loads(raw)
    status, raw = http_status(f"{server.base}/v2/models/nope/infer", "POST", b"{}")
    assert status == 404 and "unknown model 'nope'" in json.loads(raw)["error"]
    assert http_status(f"{server.base}/v2/models/nope/ready")[0] == 404


def test_backend_exception_is_500_and_the_model_keeps_serving(server) -> None:  # type: ignore[no-untyped-def]
    status, payload = post(server, req(tensor(shape=[1, 2], data=[-1.0, 0.0]), id="rid-500"), model="picky")
    # The client gets the kind of failure and the request id; the text (which may hold
    # paths or data) stays in the log, under that id, logged once and without a traceback.
    assert status == 500 and "negative input" not in payload["error"]
    assert "ValueError" in payload["error"] and "request id rid-500" in payload["error"]
    failures = [e for e in log_events(server) if e.get("request_id") == "rid-500" and e.get("level") in ("error", "warning")]
    assert len(failures) == 1 and failures[0]["status"] == 500 and failures[0]["model"] == "picky"
    assert "negative input is not allowed" in failures[0]["error"] and "exception" not in failures[0]
    status, payload = post(server, req(tensor(shape=[1, 2], data=[1.0, 0.0])), model="picky")
    assert status == 200


def test_metrics_count_a_known_workload(server) -> None:  # type: ignore[no-untyped-def]
    def scrape() -> dict[str, float]:
        text = urllib.request.urlopen(f"{server.base}/metrics", timeout=10).read().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith("infer_runtime_") and 'model="echo"' in line:
                key, value = line.rsplit(" ", 1)
                out[key] = float(value)
        return out

    before = scrape()
    x = json.dumps([1.0, 2.0, 3.0, 4.0])
    for _ in range(7):
        assert post(server, '{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": ' + x + "}]}")[0] == 200
    for _ in range(3):
        assert post(server, req(tensor(datatype="FP64", data=GOOD)))[0] == 400
    after = scrape()
    delta = lambda k: after[k] - before.get(k, 0.0)
    assert delta('infer_runtime_requests_total{model="echo",outcome="success",version="1"}') == 7
    assert delta('infer_runtime_requests_total{model="echo",outcome="invalid",version="1"}') == 3
    assert delta('infer_runtime_request_duration_seconds_count{model="echo",version="1"}') == 7
    assert delta('infer_runtime_queue_duration_seconds_count{model="echo",version="1"}') == 7
    assert delta('infer_runtime_inferences_total{model="echo",version="1"}') == 7
    batches = sum(delta(f'infer_runtime_batches_total{{model="echo",reason="{r}",version="1"}}') for r in ("full", "preferred", "delay", "early"))
    assert batches == delta('infer_runtime_batch_size_count{model="echo",version="1"}') == delta('infer_runtime_compute_duration_seconds_count{model="echo",version="1"}')
    assert after['infer_runtime_model_ready{model="echo"}'] == 1.0
    assert 'infer_runtime_queue_depth{model="echo",version="1"}' in after and 'infer_runtime_model_load_duration_seconds{model="echo"}' in after
