"""The engine's HTTP front end against the real libraries it stands in for, on generated
input: its request-head reader against aiohttp's parser (the one the Python server runs),
and its UTF-8 repair of BYTES outputs against Python's ``bytes.decode("utf-8", "replace")``.

The head reader may decline anything (the Python server then reads it), but what it takes
must be what aiohttp reads, and it must never wait for more bytes where aiohttp has already
seen a complete message or an error (that client would wait for the read timeout instead of
an answer).
"""

from __future__ import annotations

import asyncio
from typing import Any
from unittest import mock

from aiohttp import http_parser
from hypothesis import given, settings
from hypothesis import strategies as st

from infer_runtime._native import ffi, lib
from infer_runtime.server.v2 import redact

INCOMPLETE, COMPLETE, DECLINED = 0, 1, 2


def engine_head(data: bytes) -> tuple[int, int, int, int]:
    """(result, head size, Content-Length, Inference-Header-Content-Length) from the engine."""
    size, length, split = ffi.new("uint64_t*"), ffi.new("int64_t*"), ffi.new("int64_t*")
    result = lib.ir_selftest_http_head(data, len(data), size, length, split)
    return result, int(size[0]), int(length[0]), int(split[0])


def aiohttp_read(data: bytes) -> tuple[str, Any]:
    """("message", (message, tail)), ("error", exception) or ("more", None) from aiohttp's
    request parser fed ``data``."""
    loop = asyncio.new_event_loop()
    try:
        parser = http_parser.HttpRequestParser(mock.Mock(), loop, 2**16, max_line_size=8190, max_field_size=65536)
        try:
            messages, _upgraded, tail = parser.feed_data(data)
        except Exception as exc:  # noqa: BLE001 - any refusal is an answer
            return "error", exc
        return ("message", (messages[0][0], tail)) if messages else ("more", None)
    finally:
        loop.close()


METHODS = st.sampled_from(["POST", "GET", "PUT", "post", "P OST", "", "POST\t"])
TARGETS = st.sampled_from(["/v2/models/echo/infer", "/v2/models/echo/versions/1/infer", "/v2/health/ready", "/a?b=1", "/a%20b", "*", "/caf\xe9", "/a b",
                           "http://h/v2/models/echo/infer", "/v2/models/echo/infer#x"])
VERSIONS = st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2", "http/1.1", "HTTP/1.1 ", "HTTP/1.12"])
NAMES = st.sampled_from(["Host", "host", "HOST", "Content-Length", "content-length", "Inference-Header-Content-Length", "Connection", "Transfer-Encoding",
                         "Content-Encoding", "Expect", "Upgrade", "X-Request-ID", "User-Agent", "Accept", "X y", "", "X:Y", "Host ", " Host"])
VALUES = st.one_of(
    st.sampled_from(["127.0.0.1", "localhost:8000", "[::1]:80", "2", "0", "+2", "-1", "2 ", " 2", "2, 2", "close", "keep-alive", "Keep-Alive, close",
                     "upgrade", "chunked", "gzip", "identity", "100-continue", "abc", "", "a\x00b", "a\x7fb", "caf\xe9", "a\tb", "99999999999999999999"]),
    st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=["Cs"]), max_size=6),
)
ENDINGS = st.sampled_from(["\r\n"] * 8 + ["\n", "\r", "\r\r\n", " \r\n"])


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    line = f"{draw(METHODS)} {draw(TARGETS)} {draw(VERSIONS)}"
    ending = draw(ENDINGS)
    text = line + ending
    headers = draw(st.lists(st.tuples(NAMES, VALUES, ENDINGS, st.sampled_from([":", ": ", ":  ", " : "])), max_size=6))
    if draw(st.booleans()):
        headers.insert(0, ("Host", "127.0.0.1", "\r\n", ": "))
    if draw(st.booleans()):
        headers.append(("Content-Length", "2", "\r\n", ": "))
    for name, value, end, colon in headers:
        if draw(st.integers(0, 20)) == 0:
            text += " folded" + end  # obsolete line folding
        text += f"{name}{colon}{value}{end}"
    text += draw(ENDINGS)
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 4)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return data + b"{}"


def _check(data: bytes) -> None:
    result, size, length, split = engine_head(data)
    # what follows a complete head and its declared body is the next request: not fed
    kind, what = aiohttp_read(data[: size + max(length, 0)] if result == COMPLETE else data)
    if result == COMPLETE:
        assert kind == "message", (data, what)
        message, _tail = what
        assert not message.chunked and not message.upgrade
        assert message.version == (1, 1)
        declared = message.headers.get("Content-Length")
        assert length == (int(declared) if declared is not None else -1)
        named = message.headers.get("Inference-Header-Content-Length")
        assert split == (int(named) if named is not None else -1)
        # the head ends where aiohttp's does: complete with its last byte, not before
        assert aiohttp_read(data[:size])[0] == "message"
        assert aiohttp_read(data[: size - 1])[0] == "more"
    elif result == INCOMPLETE:
        assert kind == "more", (data, kind, what)


@settings(max_examples=600, deadline=None)
@given(data=heads())
def test_heads_the_engine_takes_are_read_alike_by_aiohttp(data: bytes) -> None:
    _check(data)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_never_leave_a_client_waiting(data: bytes) -> None:
    _check(b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: h\r\n" + data)
    _check(data)


def test_a_plain_request_head_is_taken() -> None:
    raw = b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 12\r\nInference-Header-Content-Length: 5\r\n\r\n"
    assert engine_head(raw) == (COMPLETE, len(raw), 12, 5)
    assert engine_head(raw[:-1])[0] == INCOMPLETE
    assert engine_head(raw.replace(b"Host: 127.0.0.1\r\n", b""))[0] == DECLINED  # aiohttp: 400 Missing Host


def utf8_replace(data: bytes) -> bytes:
    n = lib.ir_selftest_utf8_replace(data, len(data), ffi.NULL, 0)
    out = ffi.new("char[]", max(n, 1))
    assert lib.ir_selftest_utf8_replace(data, len(data), out, n) == n
    return bytes(ffi.buffer(out, n))


UTF8_PIECES = st.sampled_from([b"a", b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\x80", b"\xbf", b"\xc0\xaf", b"\xc2", b"\xe0\x80", b"\xe0\xa0",
                               b"\xed\xa0\x80", b"\xed\x9f\xbf", b"\xf0\x80\x80", b"\xf4\x90\x80\x80", b"\xf4\x8f\xbf\xbf", b"\xf5", b"\xff", b"\xe2\x82"])


@settings(max_examples=500, deadline=None)
@given(data=st.one_of(st.binary(max_size=40), st.lists(UTF8_PIECES, max_size=12).map(b"".join)))
def test_bytes_outputs_are_repaired_as_python_decodes_them(data: bytes) -> None:
    assert utf8_replace(data) == data.decode("utf-8", "replace").encode("utf-8")


def engine_redact(text: str) -> str:
    data = text.encode()
    n = lib.ir_selftest_redact(data, len(data), ffi.NULL, 0)
    out = ffi.new("char[]", max(n, 1))
    assert lib.ir_selftest_redact(data, len(data), out, n) == n
    return bytes(ffi.buffer(out, n)).decode()


MESSAGE_CHARS = st.sampled_from(list("ab_Z09/.:'\"(),; \t-x") + ["/tmp/", "/a/b", "//", "model 'm': "])


@settings(max_examples=500, deadline=None)
@given(parts=st.lists(MESSAGE_CHARS, max_size=16))
def test_error_messages_lose_their_paths_as_in_python(parts: list[str]) -> None:
    text = "".join(parts)
    assert engine_redact(text) == redact(text)


def test_a_path_in_an_engine_message_is_cut_to_its_last_part() -> None:
    assert engine_redact("cannot open /var/lib/models/digits.onnx: gone") == "cannot open digits.onnx: gone"
    assert engine_redact("model 'm': queue full (1024)") == "model 'm': queue full (1024)"
