// Response: the outputs of one request, as views of reference-counted batch buffers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "buffer.hpp"
#include "infer_runtime.h"

namespace ir {

struct OutputView {
  std::string name;
  int32_t dtype = 0;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  uint64_t byte_size = 0;
  std::shared_ptr<Buffer> owner;  // keeps `data` alive
};

// One finished request: exactly one of response/error is set (the C ABI's struct).
using Completion = ir_completion;

}  // namespace ir

// The outputs of one request (the opaque ir_response of the C ABI).
struct ir_response {
  std::vector<ir::OutputView> outputs;
};
