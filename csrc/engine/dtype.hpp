// Element types of tensors, matching ir_dtype in the C ABI.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>
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

// The KServe v2 datatype name of a dtype ("FP32"; "?" for none), and the dtype of a v2 name
// (0 for none).
inline const char* v2_name(int dtype) {
  static const char* const kNames[] = {"?", "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                                       "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"};
  return dtype >= 1 && dtype <= 13 ? kNames[dtype] : "?";
}

inline int v2_dtype(std::string_view name) {
  for (int dtype = 1; dtype <= 13; ++dtype) {
    if (name == v2_name(dtype)) return dtype;
  }
  return 0;
}

// The value of an IEEE 754 half (exact as a double).
inline double half_to_double(uint16_t h) {
  const int sign = (h >> 15) & 1, exp = (h >> 10) & 0x1F, frac = h & 0x3FF;
  double v;
  if (exp == 0) {
    v = std::ldexp(frac, -24);
  } else if (exp == 31) {
    v = frac == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  } else {
    v = std::ldexp(frac + 1024, exp - 25);
  }
  return sign ? -v : v;
}

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
