"""KServe v2 tensors: datatypes, JSON tensors and Triton's binary tensor extension.

Pure functions with no I/O, shared by the HTTP and gRPC front-ends. Every malformed input
raises :class:`ProtocolError` (HTTP 400 / gRPC INVALID_ARGUMENT) with a message naming the
tensor; nothing here allocates more than the request already holds.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from infer_runtime.engine.bytes_codec import from_wire, serialize

V2_TO_NUMPY: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
"""The v2 datatypes the engine carries (BYTES as object arrays of ``bytes``). BF16 is
refused with a clear error."""
NUMPY_TO_V2: dict[np.dtype, str] = {dt: name for name, dt in V2_TO_NUMPY.items()}
_WIRE_ORDER = frozenset("<|=" if sys.byteorder == "little" else "<|")
"""Byte orders of arrays whose memory already is the wire's (little-endian) form."""
_LITTLE = {name: dt if dt.kind == "O" else dt.newbyteorder("<") for name, dt in V2_TO_NUMPY.items()}
MAX_DIMS = 32
MAX_ELEMENTS = 1 << 40
MAX_BYTES_ELEMENTS = 1 << 20
"""Most elements in one BYTES tensor: each becomes a Python ``bytes`` object for the
runtime, so the count, not the size, bounds the memory and time a request costs."""
MAX_NAME_LENGTH = 256


class ProtocolError(ValueError):
    """The request does not follow the protocol (HTTP 400, gRPC INVALID_ARGUMENT)."""


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    """An output the client asked for, and whether it wants it as binary."""

    name: str
    binary: bool | None  # None: the request-level default


def v2_datatype(dtype: np.dtype) -> str:
    """The v2 name of a numpy dtype."""
    if dtype.kind in "OSU":
        return "BYTES"
    try:
        return NUMPY_TO_V2[dtype]
    except KeyError:
        raise ProtocolError(f"dtype {dtype} has no v2 datatype") from None


def check_shape(name: str, shape: Any) -> tuple[int, ...]:
    """A validated tensor shape (non-negative ints, bounded rank and size). The product is
    bounded over the non-zero dimensions too, so ``[0, 2**62, 2**62]`` is refused as well."""
    if not isinstance(shape, (list, tuple)) or len(shape) > MAX_DIMS:
        raise ProtocolError(f"input '{name}': shape must be a list of at most {MAX_DIMS} integers")
    nonzero = 1
    for dim in shape:
        if type(dim) is not int or dim < 0:
            raise ProtocolError(f"input '{name}': shape {list(shape)} must hold non-negative integers")
        if dim:
            nonzero *= dim
            if nonzero > MAX_ELEMENTS:
                raise ProtocolError(f"input '{name}': shape {list(shape)} is too large")
    return tuple(shape)


def check_name(name: Any, what: str = "input") -> str:
    """A tensor name as the engine can carry it: a non-empty string of valid UTF-8 (no lone
    surrogate) without NUL characters (C strings would truncate it), at most
    :data:`MAX_NAME_LENGTH` characters."""
    if not isinstance(name, str) or not name:
        raise ProtocolError(f"each {what} needs a 'name'")
    if len(name) > MAX_NAME_LENGTH:
        raise ProtocolError(f"{what} name is longer than {MAX_NAME_LENGTH} characters")
    if "\x00" in name:
        raise ProtocolError(f"{what} name {name!r} contains a NUL character")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError(f"{what} name {name.encode('utf-8', 'backslashreplace').decode()!r} is not valid UTF-8 (lone surrogate)") from None
    return name


def elements(shape: tuple[int, ...]) -> int:
    """The element count of a checked shape."""
    count = 1
    for d in shape:
        count *= d
    return count


def dtype_of(name: str, datatype: Any) -> np.dtype:
    """The numpy dtype for a v2 datatype name."""
    dtype = _LITTLE.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        supported = ", ".join(V2_TO_NUMPY)
        raise ProtocolError(f"input '{name}': datatype {datatype!r} is not supported (supported: {supported})")
    return dtype


def tensor_from_json(name: str, dtype: np.dtype, shape: tuple[int, ...], data: Any) -> np.ndarray:
    """A tensor from v2 JSON data (nested or flat), checked against the shape."""
    if data is None:
        raise ProtocolError(f"input '{name}': no data (and no binary_data_size parameter)")
    if dtype.kind == "O":
        return _bytes_from_json(name, shape, data)
    try:
        array = np.asarray(data, dtype=dtype if dtype.kind != "b" else None)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ProtocolError(f"input '{name}': data cannot be read as {v2_datatype(dtype.newbyteorder('='))}: {exc}") from None
    if dtype.kind == "b":
        if array.size and array.dtype != np.bool_:
            raise ProtocolError(f"input '{name}': BOOL data must be true/false")
        array = array.astype(np.bool_)
    expected = elements(shape)
    if array.size != expected:
        raise ProtocolError(f"input '{name}': shape {list(shape)} needs {expected} elements, data has {array.size}")
    return array.reshape(shape)


def _bytes_from_json(name: str, shape: tuple[int, ...], data: Any) -> np.ndarray:
    expected = elements(shape)
    if expected > MAX_BYTES_ELEMENTS:
        raise ProtocolError(f"input '{name}': BYTES tensor of {expected} elements exceeds the limit of {MAX_BYTES_ELEMENTS}")
    flat: list[Any] = []

    def walk(value: Any, depth: int) -> None:
        if isinstance(value, list):
            if depth > MAX_DIMS:
                raise ProtocolError(f"input '{name}': data is nested too deeply")
            for item in value:
                walk(item, depth + 1)
        elif isinstance(value, str):
            if len(flat) >= expected:
                raise ProtocolError(f"input '{name}': shape {list(shape)} needs {expected} elements, data has more")
            try:
                flat.append(value.encode("utf-8"))
            except UnicodeEncodeError:
                raise ProtocolError(f"input '{name}': BYTES element {len(flat)} is not valid UTF-8 (lone surrogate)") from None
        else:
            raise ProtocolError(f"input '{name}': BYTES data must be strings (got {type(value).__name__})")

    walk(data, 0)
    if len(flat) != expected:
        raise ProtocolError(f"input '{name}': shape {list(shape)} needs {expected} elements, data has {len(flat)}")
    out = np.empty(expected, dtype=object)
    out[:] = flat
    return out.reshape(shape)


def tensor_from_bytes(name: str, dtype: np.dtype, shape: tuple[int, ...], buffer: bytes | memoryview, offset: int, size: int) -> np.ndarray:
    """A tensor viewing ``size`` bytes of ``buffer`` at ``offset`` (no copy; BYTES tensors
    are parsed from their 4-byte length prefixes into an object array)."""
    if dtype.kind == "O":
        try:
            return from_wire(memoryview(buffer)[offset : offset + size], shape, MAX_BYTES_ELEMENTS)
        except ValueError as exc:
            raise ProtocolError(f"input '{name}': {exc}") from None
    expected = elements(shape) * dtype.itemsize
    if size != expected:
        raise ProtocolError(f"input '{name}': shape {list(shape)} of {v2_datatype(dtype.newbyteorder('='))} needs {expected} bytes, binary_data_size is {size}")
    array = np.frombuffer(buffer, dtype=dtype, count=expected // dtype.itemsize if dtype.itemsize else 0, offset=offset)
    return array.reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def parameter(params: Any, key: str) -> Any:
    """A parameter value from a v2 ``parameters`` object (None when absent)."""
    if params is None:
        return None
    if not isinstance(params, Mapping):
        raise ProtocolError("parameters must be an object")
    return params.get(key)


def decode_inputs(header: Mapping[str, Any], binary: memoryview | bytes | None) -> dict[str, np.ndarray]:
    """The request's inputs as arrays. ``binary`` holds the bytes after the JSON header
    (Triton's binary extension); binary tensors are views of it, in header order."""
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ProtocolError("the request needs a non-empty 'inputs' list")
    out: dict[str, np.ndarray] = {}
    offset = 0
    available = len(binary) if binary is not None else 0
    for entry in inputs:
        if not isinstance(entry, Mapping):
            raise ProtocolError("each input must be an object")
        name = check_name(entry.get("name"))
        if name in out:
            raise ProtocolError(f"input '{name}' appears twice")
        dtype = dtype_of(name, entry.get("datatype"))
        shape = check_shape(name, entry.get("shape"))
        size = parameter(entry.get("parameters"), "binary_data_size")
        if size is None:
            out[name] = tensor_from_json(name, dtype, shape, entry.get("data"))
            continue
        if type(size) is not int or size < 0:
            raise ProtocolError(f"input '{name}': binary_data_size must be a non-negative integer")
        if offset + size > available:
            raise ProtocolError(f"input '{name}': binary_data_size {size} runs past the end of the body ({available - offset} bytes left)")
        out[name] = tensor_from_bytes(name, dtype, shape, binary if binary is not None else b"", offset, size)
        offset += size
    if offset != available:
        raise ProtocolError(f"the body has {available - offset} bytes of binary data that no input claims")
    return out


def requested_outputs(header: Mapping[str, Any]) -> list[RequestedOutput] | None:
    """Outputs the client asked for (None: all of them)."""
    outputs = header.get("outputs")
    if outputs is None:
        return None
    if not isinstance(outputs, list):
        raise ProtocolError("'outputs' must be a list")
    out = []
    seen = set()
    for entry in outputs:
        if not isinstance(entry, Mapping):
            raise ProtocolError("each requested output must be an object")
        name = check_name(entry.get("name"), "requested output")
        if name in seen:
            raise ProtocolError(f"output '{name}' is requested twice")
        seen.add(name)
        binary = parameter(entry.get("parameters"), "binary_data")
        if binary is not None and not isinstance(binary, bool):
            raise ProtocolError(f"output '{name}': binary_data must be true or false")
        out.append(RequestedOutput(name, binary))
    return out


def select_outputs(results: Mapping[str, np.ndarray], requested: list[RequestedOutput] | None, binary_default: bool) -> list[tuple[str, np.ndarray, bool]]:
    """(name, array, as binary) for each output to send, in the requested order."""
    if requested is None:
        return [(name, array, binary_default) for name, array in results.items()]
    out = []
    for r in requested:
        if r.name not in results:
            raise ProtocolError(f"unknown output '{r.name}' (the model returns: {', '.join(results)})")
        out.append((r.name, results[r.name], binary_default if r.binary is None else r.binary))
    return out


def to_raw(array: np.ndarray) -> bytes:
    """The binary (raw) form of an output: little-endian elements, or length-prefixed BYTES."""
    if array.dtype.kind in "OSU":
        return serialize(array)
    if array.dtype.byteorder in _WIRE_ORDER:  # the common case: no new dtype, one copy (C order)
        return array.tobytes()
    return np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()


def encode_outputs(selected: list[tuple[str, np.ndarray, bool]]) -> tuple[list[dict[str, Any]], list[bytes]]:
    """v2 output objects, plus the binary chunks to append (in the same order)."""
    entries: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, array, binary in selected:
        entry: dict[str, Any] = {"name": name, "datatype": v2_datatype(array.dtype), "shape": list(array.shape)}
        if binary:
            raw = to_raw(array)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        elif array.dtype.kind in "OSU":
            entry["data"] = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in array.ravel().tolist()]
        else:  # the array itself: dump_json writes it without a Python list in between
            entry["data"] = np.ascontiguousarray(array.ravel().astype(array.dtype.newbyteorder("="), copy=False))
        entries.append(entry)
    return entries, chunks


def dump_json(payload: dict[str, Any]) -> bytes:
    """A response header as JSON, numeric output data written straight from the arrays.
    NaN and infinities (which JSON lacks) are written as ``NaN``/``Infinity``, as Python's
    json module and v2 clients read them."""
    outputs = payload.get("outputs", ())
    if not any(isinstance(e.get("data"), np.ndarray) and e["data"].dtype.kind == "f" and not np.isfinite(e["data"]).all() for e in outputs):
        return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    plain = dict(payload)
    plain["outputs"] = [{**e, "data": e["data"].tolist()} if isinstance(e.get("data"), np.ndarray) else e for e in outputs]
    return json.dumps(plain).encode()
