"""Element types: spec names ↔ numpy dtypes ↔ engine codes (``ir_dtype``)."""

from __future__ import annotations

import numpy as np

from infer_runtime._native import lib

SPEC_TO_NUMPY: dict[str, np.dtype] = {
    "bool": np.dtype(np.bool_),
    "uint8": np.dtype(np.uint8),
    "uint16": np.dtype(np.uint16),
    "uint32": np.dtype(np.uint32),
    "uint64": np.dtype(np.uint64),
    "int8": np.dtype(np.int8),
    "int16": np.dtype(np.int16),
    "int32": np.dtype(np.int32),
    "int64": np.dtype(np.int64),
    "float16": np.dtype(np.float16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
    "bytes": np.dtype(object),
}
"""Spec dtype name → numpy dtype; ``bytes`` tensors are object arrays of ``bytes``."""

NUMPY_TO_CODE: dict[np.dtype, int] = {
    np.dtype(np.bool_): lib.IR_DTYPE_BOOL,
    np.dtype(np.uint8): lib.IR_DTYPE_UINT8,
    np.dtype(np.uint16): lib.IR_DTYPE_UINT16,
    np.dtype(np.uint32): lib.IR_DTYPE_UINT32,
    np.dtype(np.uint64): lib.IR_DTYPE_UINT64,
    np.dtype(np.int8): lib.IR_DTYPE_INT8,
    np.dtype(np.int16): lib.IR_DTYPE_INT16,
    np.dtype(np.int32): lib.IR_DTYPE_INT32,
    np.dtype(np.int64): lib.IR_DTYPE_INT64,
    np.dtype(np.float16): lib.IR_DTYPE_FLOAT16,
    np.dtype(np.float32): lib.IR_DTYPE_FLOAT32,
    np.dtype(np.float64): lib.IR_DTYPE_FLOAT64,
    np.dtype(object): lib.IR_DTYPE_BYTES,
}
CODE_TO_NUMPY: dict[int, np.dtype] = {code: dt for dt, code in NUMPY_TO_CODE.items()}

NUMPY_TO_SPEC: dict[np.dtype, str] = {dt: name for name, dt in SPEC_TO_NUMPY.items()}
