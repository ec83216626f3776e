"""The engine's JSON reader (csrc/common/json) against Python's json module: generated values
read back equal whatever the serializer's separators and escaping, invalid documents are
refused by both, and the canonical form is what ir_selftest_json documents."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infer_runtime._native import ffi, lib, take_error
from infer_runtime.errors import InvalidInputError


def canonical(text: bytes) -> bytes:
    """The reader's canonical form of ``text``; raises the mapped error when it refuses it."""
    needed = ffi.new("size_t*")
    size = 256
    while True:
        out = ffi.new("char[]", size)
        exc = take_error(lib.ir_selftest_json(text, len(text), out, size, needed))
        if exc is not None:
            raise exc
        if needed[0] <= size:
            return bytes(ffi.buffer(out, needed[0]))
        size = needed[0]


def refused(text: bytes) -> str | None:
    """The reader's error message for ``text``, or None when it accepts it."""
    try:
        canonical(text)
    except InvalidInputError as exc:
        return str(exc)
    return None


def python_refuses(text: bytes) -> bool:
    try:
        json.loads(text.decode("utf-8"), parse_constant=_no_constants)
    except (ValueError, RecursionError):
        return True
    return False


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # strict RFC 8259: no NaN or Infinity


_finite = st.floats(allow_nan=False, allow_infinity=False)
_ints = st.integers(min_value=-(2**53), max_value=2**53)  # beyond, a double cannot hold them
_scalars = st.none() | st.booleans() | _ints | _finite | st.text()
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
                       max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(value=_values, ensure_ascii=st.booleans(), pretty=st.booleans(), compact=st.booleans())
def test_generated_values_round_trip(value: Any, ensure_ascii: bool, pretty: bool, compact: bool) -> None:
    separators = (",", ":") if compact else (", ", ": ")
    original = json.dumps(value, ensure_ascii=ensure_ascii, indent=2 if pretty else None, separators=separators)
    out = canonical(original.encode("utf-8"))
    assert json.loads(out) == json.loads(original)
    # Canonical is compact with non-ASCII text unescaped: never longer than Python's own compact
    # form (which writes 3.0 where the reader writes 3), and a fixed point.
    assert len(out) <= len(json.dumps(json.loads(out), ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    assert canonical(out) == out


@settings(max_examples=300, deadline=None)
@given(x=_finite)
def test_numbers_round_trip_exactly(x: float) -> None:
    out = canonical(repr(x).encode())
    back = float(out)
    assert back == x and math.copysign(1.0, back) == math.copysign(1.0, x)
    assert len(out) <= len(repr(x))  # the shortest text that reads back (Python's repr is shortest too)


def test_canonical_form() -> None:
    assert canonical(b' { "b" : [1, 2.50, -0.0, 1E2, true, false, null], "a" : "x\\u00e9\\/\\n\\u0001" } ') == \
        '{"b":[1,2.5,-0.0,100,true,false,null],"a":"xé/\\n\\u0001"}'.encode()
    assert canonical(b'"\\ud83d\\ude00"') == '"\U0001F600"'.encode()
    assert canonical(b'{"a": 1, "b": 2, "a": 3}') == b'{"a":3,"b":2}'  # last value, first position
    many = "{" + ",".join(f'"k{i}": {i}' for i in range(40)) + ', "k3": "last"}'
    assert json.loads(canonical(many.encode())) == json.loads(many)
    assert canonical(b"1e-400") == b"0"  # underflow reads as zero, as in Python


@pytest.mark.parametrize("text", [
    b"", b" ", b"[1,]", b'{"a":1,}', b"[1 2]", b'{"a" 1}', b"{1:2}", b"[", b'{"a":', b'"abc', b"tru", b"nul",
    b"01", b"1.", b".5", b"-", b"+1", b"1e", b"1e+", b"0x10", b"NaN", b"Infinity", b"-Infinity", b"[1]]", b"1 2",
    b"// c\n1", b"/* c */ 1", b"'a'", b'"\\x41"', b'"\\u12"', b'"\\u12G4"', b'"a\x01b"', b'"tab\there"', b'"\\', b"[1,,2]",
    b'{"a":1 "b":2}', b"\xef\xbb\xbf1",
])
def test_invalid_documents_are_refused_like_python(text: bytes) -> None:
    message = refused(text)
    assert message is not None, text
    assert "line " in message and "column " in message
    assert python_refuses(text)


@pytest.mark.parametrize("text", [b'"\\ud800"', b'"\\udc00"', b'"\\ud800x"', b'"\\ud800\\u0041"', b'["\\udfff\\ud800"]'])
def test_lone_surrogates_are_errors(text: bytes) -> None:
    # Python's json lets lone surrogates through into str; UTF-8 cannot carry them.
    assert "surrogate" in (refused(text) or "")


@pytest.mark.parametrize("text", [b'"\xff"', b'"\xc0\xaf"', b'"\xed\xa0\x80"', b'"\xe2\x82"', b'"\xf5\x80\x80\x80"'])
def test_invalid_utf8_is_refused(text: bytes) -> None:
    assert "UTF-8" in (refused(text) or "")


@pytest.mark.parametrize("opener, closer", [(b"[", b"]"), (b'{"a":', b"}")])
def test_deep_nesting_is_a_clean_error(opener: bytes, closer: bytes) -> None:
    deep = opener * 10_000 + b"1" + closer * 10_000
    assert "256" in (refused(deep) or "")
    assert python_refuses(deep)
    ok = opener * 256 + b"1" + closer * 256
    assert canonical(ok) == ok


def test_numbers_out_of_range_are_refused() -> None:
    # Python reads 1e400 as inf, which no JSON text can carry back out.
    assert "out of range" in (refused(b"[1e400]") or "")
    assert "out of range" in (refused(b"-1e400") or "")


def test_error_positions() -> None:
    assert (refused(b'{\n  "a": [1,\n  ]\n}') or "").startswith("line 3, column 3:")
    assert (refused(b"[1, 2, x]") or "").startswith("line 1, column 8:")


def test_output_capacity() -> None:
    needed = ffi.new("size_t*")
    small = ffi.new("char[]", 2)
    assert take_error(lib.ir_selftest_json(b"[1,2,3]", 7, small, 2, needed)) is None
    assert needed[0] == len(b"[1,2,3]")
    assert take_error(lib.ir_selftest_json(b"[1,2,3]", 7, ffi.NULL, 0, needed)) is None
    assert needed[0] == 7
