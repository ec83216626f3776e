// Tensors inside the engine: a borrowed descriptor (TensorRef, laid out like the ABI's
// ir_tensor and the contract's irb_tensor, so the seams cast instead of copying) and a
// signature entry (TensorSig).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ir {

struct TensorRef {
  const char* name;
  int32_t dtype;
  int32_t ndim;
  const int64_t* shape;
  const void* data;
  uint64_t byte_size;
};

struct TensorSig {
  std::string name;
  int32_t dtype = 0;
  std::vector<int64_t> shape;  // -1 = any
};

std::string shape_text(const int64_t* shape, int32_t ndim);
inline std::string shape_text(const std::vector<int64_t>& shape) { return shape_text(shape.data(), static_cast<int32_t>(shape.size())); }

// The element count of a shape (rank <= 32, no negative dimension, at most 2^48 elements
// whatever the dimensions, a 0 among them included); false with *problem otherwise.
bool shape_elements(const int64_t* shape, int32_t ndim, uint64_t* elements, std::string* problem);

// Checks a descriptor's own consistency (dtype known, rank bounded, no negative dimension,
// byte size equal to shape x dtype, BYTES well-formed). `what` names it in messages
// ("input 'x'"). *elements gets the element count. Overflow-safe for any dimensions.
bool describe_tensor(const TensorRef& t, uint64_t* elements, std::string* problem);

}  // namespace ir
