// Element types of tensors, matching ir_dtype in the C ABI.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "infer_runtime.h"  // ir_dtype values

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

// The lower-case name of a dtype ("float32"), for messages.
inline const char* dtype_name(int dtype) {
  static const char* const kNames[] = {"?", "bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16",
                                       "int32", "int64", "float16", "float32", "float64", "bytes"};
  return dtype >= 1 && dtype <= 13 ? kNames[dtype] : "?";
}

inline bool is_bytes(int dtype) { return dtype == IR_DTYPE_BYTES; }

inline bool dtype_valid(int dtype) { return dtype_size(dtype) != 0 || is_bytes(dtype); }

// Checks that `size` bytes at `data` hold exactly `elements` serialized BYTES elements. When
// `row_starts` is given, records the byte offset where each group of `per_row` elements
// starts, plus the end (rows + 1 entries), so rows can be sliced without rescanning.
inline bool parse_bytes(const uint8_t* data, uint64_t size, uint64_t elements, uint64_t per_row, std::vector<uint64_t>* row_starts) {
  uint64_t offset = 0;
  for (uint64_t i = 0; i < elements; ++i) {
    if (row_starts != nullptr && per_row > 0 && i % per_row == 0) row_starts->push_back(offset);
    if (size - offset < 4) return false;
    uint32_t length = static_cast<uint32_t>(data[offset]) | (static_cast<uint32_t>(data[offset + 1]) << 8) |
                      (static_cast<uint32_t>(data[offset + 2]) << 16) | (static_cast<uint32_t>(data[offset + 3]) << 24);
    offset += 4;
    if (size - offset < length) return false;
    offset += length;
  }
  if (row_starts != nullptr) row_starts->push_back(offset);
  return offset == size;
}

}  // namespace ir
