"""BYTES tensors: numpy object arrays of ``bytes`` ↔ the engine's serialized form (each
element a 4-byte little-endian length followed by its bytes, as Triton's binary protocol).
``str`` elements are encoded as UTF-8."""

from __future__ import annotations

import struct

import numpy as np

_LENGTH = struct.Struct("<I")


def is_bytes_like(array: np.ndarray) -> bool:
    """Object, ``bytes_`` (S) and ``str_`` (U) arrays all travel as BYTES."""
    return array.dtype.kind in "OSU"


def serialize(array: np.ndarray) -> bytes:
    """The engine's serialized form of a BYTES-like array (row-major)."""
    parts = []
    pack = _LENGTH.pack
    for item in array.ravel(order="C").tolist():
        if isinstance(item, str):
            item = item.encode("utf-8")
        elif not isinstance(item, (bytes, bytearray, memoryview)):
            raise TypeError(f"BYTES elements must be bytes or str, got {type(item).__name__}")
        parts.append(pack(len(item)))
        parts.append(bytes(item))
    return b"".join(parts)


def deserialize(buffer: bytes | memoryview, shape: tuple[int, ...]) -> np.ndarray:
    """An object array of ``bytes`` from the serialized form (raises ValueError if malformed)."""
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    view = memoryview(buffer)
    items: list[bytes] = []
    offset = 0
    end = len(view)
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
