// Responses: the outputs of requests, as row ranges of reference-counted batch buffers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "buffer.hpp"
#include "infer_runtime.h"

namespace ir {

struct BatchOutput {
  std::string name;
  int32_t dtype = 0;
  std::vector<int64_t> shape;
  std::shared_ptr<Buffer> buffer;
  std::vector<uint64_t> row_starts;  // BYTES outputs of batching models: byte offset of each row, then the end
};

// The outputs of one executed batch, shared by the responses of its requests.
struct BatchResult {
  std::vector<BatchOutput> outputs;
  int64_t rows = 0;
  bool sliced = false;  // batching model: each response owns a range of rows
};

// One finished request: exactly one of response/error is set (the C ABI's struct).
using Completion = ir_completion;

}  // namespace ir

// One request's outputs (the opaque ir_response of the C ABI): a range of rows of a
// shared batch result. One small allocation per request; no copy of output data.
struct ir_response {
  std::shared_ptr<const ir::BatchResult> result;
  int64_t row_offset = 0;
  int64_t rows = 0;
  std::vector<std::vector<int64_t>> shapes;  // per-request shapes, built on first describe
};