// Element types of tensors, matching ir_dtype in the C ABI.
#pragma once

#include <cstddef>
#include <cstdint>

#include "infer_runtime.h"

namespace ir {

// Bytes per element; 0 for unknown or variable-size types.
inline size_t dtype_size(int dtype) {
  switch (dtype) {
    case IR_DTYPE_BOOL: case IR_DTYPE_UINT8: case IR_DTYPE_INT8: return 1;
    case IR_DTYPE_UINT16: case IR_DTYPE_INT16: case IR_DTYPE_FLOAT16: return 2;
    case IR_DTYPE_UINT32: case IR_DTYPE_INT32: case IR_DTYPE_FLOAT32: return 4;
    case IR_DTYPE_UINT64: case IR_DTYPE_INT64: case IR_DTYPE_FLOAT64: return 8;
    default: return 0;
  }
}

inline bool dtype_valid(int dtype) { return dtype_size(dtype) != 0; }

}  // namespace ir
