"""The engine's own HTTP front end (csrc/server/http_front.hpp, docs/http-front.md).

Two servers run one spec: the engine's front end on (the default) and off. Whatever a client
sends, both must answer alike: the front end answers only what it understands completely and
hands the rest to the Python server. Who answered shows in the ``Server`` header (aiohttp
names itself; the engine sends none), so the tests also check that the fast path really
served what it should. Then the front end's own duties: keep-alive, pipelining, split
reads, slow and idle clients, its own error answers (a full queue, a deadline, a backend
failure) with one log event each, the connection cap, and draining.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server_helpers import Server, log_events, start_server, stop_server, wait_for

pytestmark = pytest.mark.slow

SPEC = """
[runtime]
name = "front"
[server]
max_request_bytes = 1048576
read_timeout_s = 1.0
keepalive_timeout_s = 2.0
max_connections = 16
[monitoring]
log_format = "json"
[models.echo]
backend = "identity"
inputs = [{{ name = "x", dtype = "float32", shape = [-1, 4] }}]
[models.echo.batching]
max_batch_size = 8
max_queue_delay_us = 500
[models.multi]
backend = "identity"
inputs = [
  {{ name = "a", dtype = "int64", shape = [-1, 2] }},
  {{ name = "b", dtype = "float64", shape = [-1, 3] }},
  {{ name = "c", dtype = "uint8", shape = [-1, 2] }},
  {{ name = "d", dtype = "bool", shape = [-1, 1] }},
  {{ name = "h", dtype = "float16", shape = [-1, 2] }},
]
[models.multi.batching]
max_batch_size = 8
[models.plain]
backend = "identity"
inputs = [{{ name = "x", dtype = "int32", shape = [2, 2] }}]
[models.any]
backend = "identity"
[models.failing]
backend = "python"
inputs = [{{ name = "x", dtype = "float32", shape = [-1, 2] }}]
outputs = [{{ name = "x", dtype = "float32", shape = [-1, 2] }}]
python = {{ entrypoint = "ir_test_backends:Failing" }}
[models.text]
backend = "python"
inputs = [{{ name = "x", dtype = "float32", shape = [-1, 1] }}]
python = {{ entrypoint = "ir_test_backends:ToText" }}
[models.text.batching]
max_batch_size = 8
max_queue_delay_us = 2000
[models.held]
backend = "python"
inputs = [{{ name = "x", dtype = "float32", shape = [-1, 1] }}]
outputs = [{{ name = "x", dtype = "float32", shape = [-1, 1] }}]
python = {{ entrypoint = "ir_test_backends:FileGated", config = {{ gate = "{gate}" }} }}
[models.held.batching]
max_batch_size = 1
max_queue_delay_us = 0
max_queue_size = 256
[models.gated]
backend = "python"
inputs = [{{ name = "x", dtype = "float32", shape = [-1, 1] }}]
outputs = [{{ name = "x", dtype = "float32", shape = [-1, 1] }}]
python = {{ entrypoint = "ir_test_backends:FileGated", config = {{ gate = "{gate}" }} }}
[models.gated.batching]
max_batch_size = 1
max_queue_delay_us = 0
max_queue_size = 2
"""


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gate") / "open"


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory, gate: Path) -> Path:
    path = tmp_path_factory.mktemp("front") / "spec.toml"
    path.write_text(SPEC.format(gate=gate))
    return path


@pytest.fixture(scope="module")
def servers(spec: Path, gate: Path):  # type: ignore[no-untyped-def]
    gate.touch()  # open unless a test closes it
    twin = spec.with_name("python.toml")  # its own log file
    twin.write_text(spec.read_text())
    native = start_server(spec)
    python = start_server(twin, extra_env={"INFER_RUNTIME_SERVER__NATIVE_HTTP": "false"})
    try:
        yield native, python
    finally:
        stop_server(native)
        stop_server(python)


# -- a minimal HTTP/1.1 client over a raw socket ------------------------------------------


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def by_engine(self) -> bool:
        """Answered by the engine's front end (aiohttp always names itself in ``Server``)."""
        return "server" not in self.headers

    def json(self) -> Any:
        split = self.headers.get("inference-header-content-length")
        return json.loads(self.body[: int(split)] if split else self.body)


def read_response(sock: socket.socket, buffer: bytearray, timeout: float = 10) -> Response:
    """Reads one response (Content-Length framed) from ``sock``; ``buffer`` keeps what is
    left over for the next one."""
    sock.settimeout(timeout)
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response (got {bytes(buffer[:200])!r})")
        buffer += chunk
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    size = int(headers.get("content-length", "0"))
    start = end + 4
    while len(buffer) < start + size:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a response body")
        buffer += chunk
    body = bytes(buffer[start : start + size])
    del buffer[: start + size]
    return Response(status, headers, body)


def request_bytes(path: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if method == "POST" or body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def exchange(server: Server, raw: bytes, timeout: float = 10) -> Response:
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=timeout) as sock:
        sock.sendall(raw)
        return read_response(sock, bytearray(), timeout)


def infer_json(model: str, inputs: list[dict[str, Any]], **extra: Any) -> bytes:
    return request_bytes(f"/v2/models/{model}/infer", json.dumps({"inputs": inputs, **extra}).encode())


def echo_request(rows: int = 1, start: float = 0.0, **extra: Any) -> bytes:
    data = [start + i for i in range(rows * 4)]
    return infer_json("echo", [{"name": "x", "datatype": "FP32", "shape": [rows, 4], "data": data}], **extra)


def binary_request(model: str, arrays: dict[str, np.ndarray], datatypes: dict[str, str], outputs: list[str] | None = None) -> bytes:
    header: dict[str, Any] = {"inputs": [{"name": n, "datatype": datatypes[n], "shape": list(a.shape), "parameters": {"binary_data_size": a.nbytes}}
                                         for n, a in arrays.items()]}
    if outputs is not None:
        header["outputs"] = [{"name": o, "parameters": {"binary_data": True}} for o in outputs]
    head = json.dumps(header).encode()
    body = head + b"".join(a.tobytes() for a in arrays.values())
    return request_bytes(f"/v2/models/{model}/infer", body, {"Inference-Header-Content-Length": str(len(head))})


ONE_ROW = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [1]}]}).encode()
"""A request of one row for the gated models (``gated``, ``held``)."""


def close_gate(gate: Path) -> Path:
    """Closes the gated models' gate (their batches hold until it reopens); returns the file
    their backend touches when a batch starts."""
    entered = gate.with_suffix(".entered")
    entered.unlink(missing_ok=True)
    gate.unlink()
    return entered


def normalized(r: Response) -> tuple[int, Any]:
    """What both servers must agree on: the status and the decoded body (binary outputs as
    bytes; a 5xx's request id, which each server makes up, blanked)."""
    if r.headers.get("content-type", "").startswith("application/octet-stream"):
        split = int(r.headers["inference-header-content-length"])
        return r.status, (json.loads(r.body[:split]), r.body[split:])
    try:
        body = json.loads(r.body) if r.body else None
    except ValueError:
        return r.status, r.body
    if r.status >= 500 and isinstance(body, dict) and "error" in body:
        words = body["error"].split("; ")
        body["error"] = "; ".join("request id ?" if w.startswith("request id ") else w for w in words)
    return r.status, body


# -- the fast path serves, and answers as the Python server does --------------------------


def test_inference_is_answered_by_the_engine_and_matches_python(servers) -> None:  # type: ignore[no-untyped-def]
    native, python = servers
    requests = [
        echo_request(1),
        echo_request(3, 0.5, id="req-1"),
        echo_request(2, outputs=[{"name": "x", "parameters": {"binary_data": True}}]),
        echo_request(1, parameters={"binary_data_output": True}),
        echo_request(1, parameters={"priority": 0, "timeout": 5_000_000}),
        echo_request(1, outputs=[{"name": "nope"}]),  # 400 after running, as Python: the same words
        echo_request(1, outputs=[{"name": "/etc/secret/out"}]),  # ... without the path
        infer_json("echo", [{"name": "x", "datatype": "FP32", "shape": [2, 4], "data": [[1, 2, 3, 4], [5, 6.5, -0.0, 1e-30]]}]),
        infer_json("plain", [{"name": "x", "datatype": "INT32", "shape": [2, 2], "data": [1, -2, 2147483647, -2147483648]}]),
        binary_request("echo", {"x": np.arange(8, dtype=np.float32).reshape(2, 4)}, {"x": "FP32"}, ["x"]),
        # NaN in a JSON output: Python writes every float of the answer as a double's repr
        binary_request("echo", {"x": np.array([[0.1, np.nan, 1e-7, 3.4e38]], np.float32)}, {"x": "FP32"}),
        binary_request("multi", {"a": np.array([[1, -(2**62)]], np.int64), "b": np.array([[0.1, 1e300, -2.5]]), "c": np.array([[0, 255]], np.uint8),
                                 "d": np.array([[True]]), "h": np.array([[0.5, -3]], np.float16)},
                       {"a": "INT64", "b": "FP64", "c": "UINT8", "d": "BOOL", "h": "FP16"}),
        binary_request("multi", {"a": np.array([[1, 2]], np.int64), "b": np.array([[np.nan, np.inf, -np.inf]]), "c": np.array([[7, 8]], np.uint8),
                                 "d": np.array([[False]]), "h": np.array([[1, 2]], np.float16)},
                       {"a": "INT64", "b": "FP64", "c": "UINT8", "d": "BOOL", "h": "FP16"}, ["a", "d", "c"]),
    ]
    for raw in requests:
        a, b = exchange(native, raw), exchange(python, raw)
        assert a.by_engine and not b.by_engine, raw
        assert normalized(a) == normalized(b), raw
    time.sleep(0.3)
    r = exchange(native, echo_request(1, outputs=[{"name": "/etc/secret/out"}]))
    assert r.by_engine and r.json()["error"] == "unknown output 'out' (the model returns: x)"
    logged = [e for e in log_events(native) if e.get("event") == "request failed" and "unknown output 'nope'" in e.get("error", "")]
    assert len(logged) == 1 and logged[0]["level"] == "info" and logged[0]["status"] == 400
    # JSON floats: FP32 in shortest form, always a float (never "1", never "-0")
    r = exchange(native, infer_json("echo", [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, -0.0, 0.1, 3.4028234663852886e38]}]))
    text = r.body.decode()
    assert '"data":[1.0,-0.0,0.1,3.4028235e+38]' in text, text
    assert np.array(json.loads(text)["outputs"][0]["data"], np.float32).tolist() == np.array([1, -0.0, 0.1, 3.4028234663852886e38], np.float32).tolist()


def test_bytes_outputs_are_written_as_python_writes_them(servers) -> None:  # type: ignore[no-untyped-def]
    native, python = servers
    def ask(server: Server, start: float, binary: bool) -> list[Response]:
        out: list[Response] = []
        def one(k: int) -> None:
            body: dict[str, Any] = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 1], "data": [start + k, -start - k]}]}
            if binary:
                body["parameters"] = {"binary_data_output": True}
            out.append(exchange(server, request_bytes("/v2/models/text/infer", json.dumps(body).encode())))
        threads = [threading.Thread(target=one, args=(k,)) for k in range(4)]  # batched together: rows sliced per request
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sorted(out, key=lambda r: r.body)
    for binary in (False, True):
        a, b = ask(native, 1.5, binary), ask(python, 1.5, binary)
        assert all(r.by_engine for r in a) and not any(r.by_engine for r in b)
        assert [normalized(r) for r in a] == [normalized(r) for r in b]
    text = ask(native, 2.0, False)[0].json()["outputs"][0]["data"]
    assert text[0].endswith("é") and text[1].endswith("\ufffd\ufffd")


def test_the_served_version_and_last_inference_are_reported(servers) -> None:  # type: ignore[no-untyped-def]
    native, _ = servers
    before = int(time.time() * 1000)
    r = exchange(native, request_bytes("/v2/models/echo/versions/1/infer", json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}).encode()))
    assert r.by_engine and r.status == 200 and r.json()["model_version"] == "1"
    stats = exchange(native, request_bytes("/v2/models/echo/stats", b"", method="GET")).json()["model_stats"][0]
    assert stats["last_inference"] >= before
    wrong = exchange(native, request_bytes("/v2/models/echo/versions/7/infer", b'{"inputs": []}'))
    assert not wrong.by_engine and wrong.status in (400, 404)


BAD_BODIES = [
    b"", b"{", b"[]", b"null", b'{"inputs": []}', b'{"inputs": [{}]}', b'{"inputs": "x"}',
    b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3]}]}',
    b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, "4"]}]}',
    b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1.0, 4], "data": [1, 2, 3, 4]}]}',
    b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, NaN]}]}',
    b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 1e400]}]}',
    b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, true]}]}',
    b'{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 4], "data": [1, 2, 3, 4]}]}',
    b'{"inputs": [{"name": "y", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}',
    b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [9, 4], "data": []}]}',
    b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [0, 4], "data": []}]}',
    b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}], "parameters": {"priority": 5}}',
    b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}], "parameters": {"timeout": -1}}',
    b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}], "id": 7}',
    b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "parameters": {"binary_data_size": 16}}]}',
    b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}, {"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}',
    b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [[1, 2], [3, 4]]}]}',
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=range(len(BAD_BODIES)))
def test_requests_the_engine_does_not_take_are_answered_by_python(servers, body: bytes) -> None:  # type: ignore[no-untyped-def]
    native, python = servers
    a, b = exchange(native, request_bytes("/v2/models/echo/infer", body)), exchange(python, request_bytes("/v2/models/echo/infer", body))
    assert normalized(a) == normalized(b)
    assert a.status == 200 or not a.by_engine  # every error message is Python's


HOSTILE_HEADS = [
    b"POST /v2/models/echo/infer HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /v2/models/echo/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    b"POST /v2/models/echo/infer HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    b"POST /v2/models/echo/infer HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}",
    b"POST /v2/models/echo/infer HTTP/1.1\r\nContent-Length: 2\r\n folded\r\n\r\n{}",
    b"POST /v2/models/echo/infer HTTP/1.1\nContent-Length: 2\n\n{}",
    b"POST /v2/models/echo/infer?x=1 HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /v2/models/%65cho/infer HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /v2/models/echo/infer HTTP/1.1\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /v2/models/echo/infer HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /v2/models/echo/infer HTTP/1.1\r\nInference-Header-Content-Length: 99\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /v2/models/echo/infer HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n{}",
    b"GET /v2/models/echo/infer HTTP/1.1\r\n\r\n",
    b"POST /v2/models/any/infer HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /v2/models/nope/infer HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /v2/models/echo/versions//infer HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /v2/models/echo/infer HTTP/1.1\r\nX-Bad: \x01\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /v2/models/echo/infer HTTP/1.1\r\nX-Bad: caf\xc3\xa9\r\nContent-Length: 2\r\n\r\n{}",
    b"post /v2/models/echo/infer HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
]


@pytest.mark.parametrize("raw", HOSTILE_HEADS, ids=range(len(HOSTILE_HEADS)))
def test_hostile_heads_are_answered_by_python(servers, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    native, python = servers
    def answer(server: Server) -> tuple[int, Any] | str:
        try:
            r = exchange(server, raw, timeout=5)
        except (ConnectionError, TimeoutError, OSError) as exc:
            return type(exc).__name__
        assert not r.by_engine
        return normalized(r)
    assert answer(native) == answer(python)


# -- hypothesis: generated requests, both servers agree -------------------------------------

NUMBER = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False, width=64), st.booleans(), st.none(), st.text(max_size=2))
DATATYPE = st.sampled_from(["FP32", "FP64", "INT32", "INT64", "UINT8", "BOOL", "FP16", "BYTES", "fp32", "X"])


@st.composite
def echo_bodies(draw: st.DrawFn) -> bytes:
    rows = draw(st.integers(0, 3))
    shape = draw(st.one_of(st.just([rows, 4]), st.lists(st.one_of(st.integers(-1, 5), st.floats(0, 3)), max_size=3)))
    count = draw(st.sampled_from([rows * 4, rows * 4 + 1, max(0, rows * 4 - 1)]))
    if draw(st.booleans()):
        data: Any = draw(st.lists(st.floats(-1e6, 1e6, width=32), min_size=count, max_size=count))
    else:
        data = draw(st.lists(NUMBER, min_size=count, max_size=count))
    if draw(st.booleans()) and rows and count == rows * 4:
        data = [data[i * 4 : i * 4 + 4] for i in range(rows)]
    entry: dict[str, Any] = {"name": draw(st.sampled_from(["x", "x", "x", "y", ""])), "datatype": draw(st.sampled_from(["FP32"] * 4 + ["FP64", "INT32", "X"])),
                             "shape": shape, "data": data}
    body: dict[str, Any] = {"inputs": [entry]}
    if draw(st.booleans()):
        body["id"] = draw(st.one_of(st.text(max_size=5), st.integers()))
    if draw(st.booleans()):
        body["parameters"] = draw(st.dictionaries(st.sampled_from(["binary_data_output", "priority", "timeout", "other"]),
                                                  st.one_of(st.booleans(), st.integers(-2, 3), st.just(1.0)), max_size=2))
    if draw(st.booleans()):
        body["outputs"] = draw(st.lists(st.fixed_dictionaries({"name": st.sampled_from(["x", "y"])},
                                                              optional={"parameters": st.fixed_dictionaries({"binary_data": st.one_of(st.booleans(), st.just(1))})}),
                                        max_size=2))
    return json.dumps(body).encode()


@settings(max_examples=int(os.environ.get("IR_FRONT_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=echo_bodies())
def test_generated_requests_get_the_same_answer_from_both(servers, body: bytes) -> None:  # type: ignore[no-untyped-def]
    native, python = servers
    raw = request_bytes("/v2/models/echo/infer", body)
    a, b = exchange(native, raw), exchange(python, raw)
    assert normalized(a) == normalized(b)
    if a.status != 200 and a.by_engine:  # the one error known only after running, in Python's words
        assert a.status == 400 and a.json()["error"].startswith("unknown output")


# -- connections -------------------------------------------------------------------------------


def test_a_request_that_is_not_ours_is_handed_over_before_its_body(servers) -> None:  # type: ignore[no-untyped-def]
    native, _ = servers
    for path in ("/v2/models/nope/infer", "/v2/models/echo/versions/7/infer", "/v2/repository/index"):
        with socket.create_connection(("127.0.0.1", native.http_port)) as sock:
            started = time.monotonic()
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n".encode())  # the body never comes
            r = read_response(sock, bytearray(), timeout=5)
            assert not r.by_engine and r.status in (200, 404) and time.monotonic() - started < 0.5, (path, r.status)


def test_zero_size_binary_input_without_its_header_length() -> None:
    from infer_runtime.server.protocol import decode_inputs

    out = decode_inputs({"inputs": [{"name": "x", "datatype": "FP32", "shape": [0], "parameters": {"binary_data_size": 0}}]}, None)
    assert out["x"].shape == (0,) and out["x"].dtype == np.float32


def test_keep_alive_pipelining_and_split_reads(servers) -> None:  # type: ignore[no-untyped-def]
    native, _ = servers
    with socket.create_connection(("127.0.0.1", native.http_port)) as sock:
        buffer = bytearray()
        for i in range(5):  # one connection, several requests
            sock.sendall(echo_request(1, float(i)))
            r = read_response(sock, buffer)
            assert r.by_engine and r.json()["outputs"][0]["data"] == [float(i), i + 1.0, i + 2.0, i + 3.0]
        sock.sendall(echo_request(1, 10.0) + echo_request(2, 20.0) + echo_request(1, 30.0))  # pipelined
        firsts = [read_response(sock, buffer).json()["outputs"][0]["data"][0] for _ in range(3)]
        assert firsts == [10.0, 20.0, 30.0]
        raw = echo_request(1, 40.0)
        for k in range(0, len(raw), 7):  # a request in many small pieces
            sock.sendall(raw[k : k + 7])
            time.sleep(0.002)
        assert read_response(sock, buffer).json()["outputs"][0]["data"][0] == 40.0
        # another endpoint hands the connection to Python, which serves it from then on
        sock.sendall(request_bytes("/v2/health/ready", b"", method="GET"))
        r = read_response(sock, buffer)
        assert r.status == 200 and not r.by_engine
        sock.sendall(echo_request(1, 50.0))
        r = read_response(sock, buffer)
        assert not r.by_engine and r.json()["outputs"][0]["data"][0] == 50.0


def test_connection_close_is_honoured(servers) -> None:  # type: ignore[no-untyped-def]
    native, _ = servers
    with socket.create_connection(("127.0.0.1", native.http_port)) as sock:
        raw = echo_request(1).replace(b"Host: 127.0.0.1", b"Host: 127.0.0.1\r\nConnection: close")
        sock.sendall(raw)
        buffer = bytearray()
        r = read_response(sock, buffer)
        assert r.by_engine and r.headers["connection"] == "close"
        sock.settimeout(5)
        assert sock.recv(10) == b""  # closed by the server


def test_slow_and_idle_clients_are_closed_on_time(servers) -> None:  # type: ignore[no-untyped-def]
    native, _ = servers
    # read_timeout_s = 1: a request that has not arrived whole by then loses its connection
    with socket.create_connection(("127.0.0.1", native.http_port)) as sock:
        sock.sendall(echo_request(1)[:30])
        started = time.monotonic()
        sock.settimeout(10)
        assert sock.recv(10) == b""
        assert 0.9 <= time.monotonic() - started <= 2.0
    # keepalive_timeout_s = 2: an idle connection after a response
    with socket.create_connection(("127.0.0.1", native.http_port)) as sock:
        sock.sendall(echo_request(1))
        assert read_response(sock, bytearray()).by_engine
        started = time.monotonic()
        sock.settimeout(10)
        assert sock.recv(10) == b""
        assert 1.9 <= time.monotonic() - started <= 3.0
    assert "did not send its request in time" in native.log()


def test_connections_the_engine_closes_free_their_slots(servers) -> None:  # type: ignore[no-untyped-def]
    native, _ = servers
    for _ in range(40):  # max_connections = 16: a leaked slot would stall accepts here
        with socket.create_connection(("127.0.0.1", native.http_port), timeout=5) as sock:
            sock.sendall(echo_request(1))
            assert read_response(sock, bytearray(), timeout=5).by_engine


# -- the engine's own answers --------------------------------------------------------------------


def test_a_backend_failure_answers_500_and_logs_once(servers) -> None:  # type: ignore[no-untyped-def]
    native, python = servers
    raw = request_bytes("/v2/models/failing/infer", json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [-1, 2]}]}).encode(),
                        {"X-Request-ID": "fail-7"})
    a, b = exchange(native, raw), exchange(python, raw)
    assert a.by_engine and a.status == 500
    assert normalized(a) == normalized(b)
    assert a.json()["error"] == "the model failed to run this request (ValueError); request id fail-7; details are in the server log"
    time.sleep(0.3)
    events = [e for e in log_events(native) if e.get("request_id") == "fail-7"]
    assert len(events) == 1 and events[0]["level"] == "error" and "negative input is not allowed" in events[0]["error"]
    assert events[0]["status"] == 500 and events[0]["model"] == "failing"


def test_a_full_queue_and_a_deadline_are_answered_at_once(servers, gate: Path) -> None:  # type: ignore[no-untyped-def]
    native, _ = servers
    entered = close_gate(gate)  # hold the gated model's batch: one runs, two queue (max_queue_size = 2)
    results: dict[int, Response] = {}

    def call(k: int, body: dict[str, Any]) -> None:
        results[k] = exchange(native, request_bytes("/v2/models/gated/infer", json.dumps(body).encode()), timeout=30)

    one = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [1]}]}
    threads = [threading.Thread(target=call, args=(0, one))]
    threads[0].start()
    wait_for(entered.exists, timeout=10)
    try:
        # a deadline of 200 ms in the queue: fails after 0.2 s, not when the batch ends
        started = time.monotonic()
        timed = exchange(native, request_bytes("/v2/models/gated/infer", json.dumps({**one, "parameters": {"timeout": 200_000}}).encode()), timeout=10)
        took = time.monotonic() - started
        assert timed.by_engine and timed.status == 503 and 0.15 <= took <= 0.8, (timed.status, timed.body, took)
        for k in (1, 2):
            threads.append(threading.Thread(target=call, args=(k, one)))
            threads[-1].start()
        time.sleep(0.3)  # both queued
        started = time.monotonic()
        full = exchange(native, request_bytes("/v2/models/gated/infer", json.dumps(one).encode()), timeout=10)
        assert full.by_engine and full.status == 503 and "queue" in full.json()["error"]
        assert time.monotonic() - started < 0.5
    finally:
        gate.touch()
        for t in threads:
            t.join(30)
    assert [results[k].status for k in (0, 1, 2)] == [200, 200, 200]
    time.sleep(0.3)
    failed = [e for e in log_events(native) if e.get("event") == "request failed" and e.get("model") == "gated"]
    assert sorted(e["status"] for e in failed) == [503, 503]


def test_a_pipelined_flood_of_refusals_is_answered_in_order(servers, gate: Path) -> None:  # type: ignore[no-untyped-def]
    native, _ = servers
    entered = close_gate(gate)
    held: list[Response] = []
    threads = [threading.Thread(target=lambda: held.append(exchange(native, request_bytes("/v2/models/gated/infer", ONE_ROW), timeout=60))) for _ in range(3)]
    try:
        threads[0].start()
        wait_for(entered.exists, timeout=10)
        for t in threads[1:]:  # the queue (2) is full from now on
            t.start()
        time.sleep(0.3)
        count = 20000  # answered one after another: never by recursion (20,000 deep crashed the server)
        with socket.create_connection(("127.0.0.1", native.http_port)) as sock:
            sock.sendall(request_bytes("/v2/models/gated/infer", ONE_ROW) * count)
            buffer = bytearray()
            statuses = [read_response(sock, buffer, timeout=30).status for _ in range(count)]
        assert statuses == [503] * count
    finally:
        gate.touch()
        for t in threads:
            t.join(60)
    assert [r.status for r in held] == [200, 200, 200]
    assert native.process.poll() is None


def test_a_leaving_client_never_cancels_a_python_served_request(servers, gate: Path) -> None:  # type: ignore[no-untyped-def]
    native, _ = servers
    entered = close_gate(gate)
    results: list[Response] = []

    def through_python() -> None:  # a health check first: this connection is Python's
        with socket.create_connection(("127.0.0.1", native.http_port), timeout=60) as sock:
            buffer = bytearray()
            sock.sendall(request_bytes("/v2/health/live", b"", method="GET"))
            read_response(sock, buffer)
            sock.sendall(request_bytes("/v2/models/held/infer", ONE_ROW))
            results.append(read_response(sock, buffer, timeout=60))

    threads = [threading.Thread(target=through_python) for _ in range(12)]
    try:
        for t in threads:
            t.start()
        wait_for(entered.exists, timeout=10)
        time.sleep(0.5)  # one running, the rest queued, under the host's cookies
        for _ in range(24):  # the engine's own requests to the same model, whose clients leave
            with socket.create_connection(("127.0.0.1", native.http_port)) as sock:
                sock.sendall(request_bytes("/v2/models/held/infer", ONE_ROW))
                time.sleep(0.02)
        time.sleep(0.3)
    finally:
        gate.touch()
        for t in threads:
            t.join(60)
    assert sorted(r.status for r in results) == [200] * 12
    assert not any(r.by_engine for r in results)


def test_a_client_that_leaves_cancels_its_queued_request(servers, gate: Path) -> None:  # type: ignore[no-untyped-def]
    native, _ = servers
    entered = close_gate(gate)
    results: list[Response] = []
    first = threading.Thread(target=lambda: results.append(exchange(native, request_bytes("/v2/models/gated/infer", ONE_ROW), timeout=30)))
    first.start()
    try:
        wait_for(entered.exists, timeout=10)
        def cancelled() -> int:
            stats = exchange(native, request_bytes("/v2/models/gated/stats", b"", method="GET")).json()["model_stats"][0]
            return int(stats["inference_stats"]["fail"]["count"])
        before = cancelled()
        with socket.create_connection(("127.0.0.1", native.http_port)) as leaving:
            leaving.sendall(request_bytes("/v2/models/gated/infer", ONE_ROW, {"X-Request-ID": "gone-1"}))
            time.sleep(0.3)  # queued behind the held batch
        wait_for(lambda: cancelled() != before, timeout=5)
        assert cancelled() == before + 1
    finally:
        gate.touch()
        first.join(30)
    assert results[0].status == 200
    events = [e for e in log_events(native) if e.get("request_id") == "gone-1"]
    assert [e["event"] for e in events] == ["request cancelled: the client disconnected"]


def test_draining_hands_new_requests_to_python_and_finishes_the_old(spec: Path, gate: Path) -> None:
    server = start_server(spec)
    try:
        entered = close_gate(gate)
        results: list[Response] = []
        body = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [3]}]}).encode()
        t = threading.Thread(target=lambda: results.append(exchange(server, request_bytes("/v2/models/gated/infer", body), timeout=30)))
        t.start()
        wait_for(entered.exists, timeout=10)
        with socket.create_connection(("127.0.0.1", server.http_port)) as idle:
            idle.sendall(echo_request(1))
            buffer = bytearray()
            assert read_response(idle, buffer).by_engine
            server.signal()
            time.sleep(0.5)
            idle.sendall(echo_request(1))  # while draining: refused by Python, with its reason
            r = read_response(idle, buffer)
            assert r.status == 503 and not r.by_engine
        gate.touch()
        t.join(30)
        assert results and results[0].status == 200 and results[0].by_engine
        assert server.wait(30) == 0
    finally:
        gate.touch()
        stop_server(server)
