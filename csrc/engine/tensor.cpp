#include "tensor.hpp"

#include "dtype.hpp"

namespace ir {

std::string shape_text(const int64_t* shape, int32_t ndim) {
  std::string out = "[";
  for (int32_t i = 0; i < ndim; ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

bool shape_elements(const int64_t* shape, int32_t ndim, uint64_t* elements, std::string* problem) {
  if (ndim < 0 || ndim > 32 || (ndim > 0 && shape == nullptr)) {
    *problem = "bad shape";
    return false;
  }
  // Saturating product: a 0 dimension makes the count 0, but huge others must still be
  // refused rather than wrapped around.
  constexpr uint64_t kMaxElements = uint64_t{1} << 48;
  uint64_t count = 1;
  bool too_large = false;
  for (int32_t d = 0; d < ndim; ++d) {
    if (shape[d] < 0) {
      *problem = "negative dimension";
      return false;
    }
    const auto dim = static_cast<uint64_t>(shape[d]);
    if (dim > kMaxElements) too_large = true;
    count = dim == 0 || count == 0 ? 0 : (count > kMaxElements / dim ? kMaxElements + 1 : count * dim);
  }
  if (too_large || count > kMaxElements) {
    *problem = "shape " + shape_text(shape, ndim) + " is too large";
    return false;
  }
  *elements = count;
  return true;
}

bool describe_tensor(const TensorRef& t, uint64_t* elements, std::string* problem) {
  if (!dtype_valid(t.dtype)) {
    *problem = "unsupported dtype " + std::to_string(t.dtype);
    return false;
  }
  uint64_t count = 0;
  if (!shape_elements(t.shape, t.ndim, &count, problem)) return false;
  if (t.byte_size > 0 && t.data == nullptr) {
    *problem = "no data";
    return false;
  }
  if (is_bytes(t.dtype)) {
    if (!parse_bytes(static_cast<const uint8_t*>(t.data), t.byte_size, count, 0, nullptr)) {
      *problem = "BYTES data does not hold " + std::to_string(count) + " length-prefixed elements";
      return false;
    }
  } else if (count * dtype_size(t.dtype) != t.byte_size) {
    *problem = "byte_size does not match shape and dtype";
    return false;
  }
  *elements = count;
  return true;
}

}  // namespace ir
