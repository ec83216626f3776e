"""BYTES tensors: numpy object arrays of ``bytes`` ↔ the engine's serialized form (each
element a 4-byte little-endian length followed by its bytes, as Triton's binary protocol).
``str`` elements are encoded as UTF-8.

The runtime takes BYTES as object arrays. A front-end that already holds the serialized form
(the binary extension lays BYTES out exactly so) decodes it with :func:`from_wire`: the
elements are made by numpy in one pass when they all have the same length (the common case;
no per-element Python loop), the element count is bounded before anything is allocated, and
the array remembers its serialized form, so that :func:`serialize` hands the engine that
buffer instead of re-encoding every element. Such arrays are read-only (the remembered form
could otherwise go stale).
"""

from __future__ import annotations

import struct
import weakref
from typing import Any

import numpy as np

_LENGTH = struct.Struct("<I")
_WIRE: dict[int, tuple[weakref.ref[np.ndarray], memoryview]] = {}  # id(array) → (array, its serialized form)


def is_bytes_like(array: np.ndarray) -> bool:
    """Object, ``bytes_`` (S) and ``str_`` (U) arrays all travel as BYTES."""
    return array.dtype.kind in "OSU"


def wire_form(array: np.ndarray) -> memoryview | None:
    """The serialized form ``array`` was decoded from by :func:`from_wire` (no copy), or
    None. The engine may take it as is instead of calling :func:`serialize`."""
    known = _WIRE.get(id(array))
    return known[1] if known is not None and known[0]() is array else None


def serialize(array: np.ndarray) -> bytes:
    """The engine's serialized form of a BYTES-like array (row-major). Lengths and layout
    are computed by numpy over all elements at once, not element by element."""
    known = _WIRE.get(id(array))
    if known is not None and known[0]() is array:
        return bytes(known[1])  # one copy of the wire form, no per-element work
    flat = array.ravel(order="C").tolist()
    n = len(flat)
    if not n:
        return b""
    if set(map(type, flat)) - {bytes}:
        flat = [_as_bytes(item) for item in flat]
    lengths = np.fromiter(map(len, flat), dtype=np.int64, count=n)
    data = b"".join(flat)
    first = int(lengths[0])
    if (lengths == first).all():  # the common case: one record layout for every element
        record = np.dtype([("n", "<u4"), ("v", f"V{first}")]) if first else np.dtype([("n", "<u4")])
        records = np.empty(n, dtype=record)
        records["n"] = first
        if first:
            records["v"] = np.frombuffer(data, dtype=f"V{first}")
        return records.tobytes()
    if int(lengths.max()) >= 2**32:
        raise ValueError("a BYTES element is 4 GiB or larger")
    out = np.empty(4 * n + len(data), dtype=np.uint8)
    starts = np.arange(n, dtype=np.int64) * 4
    starts[1:] += np.cumsum(lengths[:-1])
    is_data = np.ones(len(out), dtype=np.bool_)
    prefix_at = (starts[:, None] + np.arange(4)).ravel()
    is_data[prefix_at] = False
    out[prefix_at] = lengths.astype("<u4").view(np.uint8)
    out[is_data] = np.frombuffer(data, dtype=np.uint8)
    return out.tobytes()


def _as_bytes(item: Any) -> bytes:
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    raise TypeError(f"BYTES elements must be bytes or str, got {type(item).__name__}")


def _count(shape: tuple[int, ...]) -> int:
    count = 1
    for d in shape:
        count *= d
    return count


def _uniform(view: memoryview, count: int) -> list[Any] | None:
    """The elements when all ``count`` of them have the same length, else None."""
    (length,) = _LENGTH.unpack_from(view, 0)
    if len(view) != count * (4 + length):
        return None
    record = np.dtype([("n", "<u4"), ("v", f"V{length}")]) if length else np.dtype([("n", "<u4")])
    records = np.frombuffer(view, dtype=record, count=count)
    if not (records["n"] == length).all():
        return None
    if not length:
        return [b""] * count
    values: list[Any] = records["v"].tolist()  # numpy makes the bytes objects, NULs kept
    return values


def deserialize(buffer: bytes | memoryview, shape: tuple[int, ...]) -> np.ndarray:
    """An object array of ``bytes`` from the serialized form (raises ValueError if malformed)."""
    view = memoryview(buffer).cast("B")
    count = _count(shape)
    end = len(view)
    if count * 4 > end:  # every element needs its length prefix: refuse before allocating
        raise ValueError(f"BYTES data of {end} bytes cannot hold {count} elements")
    items = _uniform(view, count) if count else []
    if items is None:
        items = []
        offset = 0
        unpack = _LENGTH.unpack_from
        for _ in range(count):
            if end - offset < 4:
                raise ValueError(f"BYTES data ends after {len(items)} of {count} elements")
            (length,) = unpack(view, offset)
            offset += 4
            if end - offset < length:
                raise ValueError(f"BYTES element {len(items)} claims {length} bytes, {end - offset} left")
            items.append(bytes(view[offset : offset + length]))
            offset += length
        if offset != end:
            raise ValueError(f"BYTES data has {end - offset} bytes after its {count} elements")
    out = np.empty(count, dtype=object)
    out[:] = items
    return out.reshape(shape)


def from_wire(buffer: bytes | memoryview, shape: tuple[int, ...], max_elements: int) -> np.ndarray:
    """A read-only object array of ``bytes`` decoded from the serialized form, that
    :func:`serialize` turns back into ``buffer`` without re-encoding.

    Raises:
        ValueError: malformed data, or more than ``max_elements`` elements.
    """
    count = _count(shape)
    if count > max_elements:
        raise ValueError(f"BYTES tensor of {count} elements exceeds the limit of {max_elements}")
    view = memoryview(buffer).cast("B")
    array = deserialize(view, shape)
    array.flags.writeable = False
    key = id(array)
    _WIRE[key] = (weakref.ref(array, lambda _ref: _WIRE.pop(key, None)), view)
    return array
