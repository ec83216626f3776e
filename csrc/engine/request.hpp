// A request as the scheduler sees it: borrowed input views, queueing metadata, and the sink
// its completion goes to.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ir {

class CompletionSink;

struct InputView {
  int32_t dtype = 0;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // borrowed: the submitter keeps it alive until completion
  uint64_t byte_size = 0;
  std::string name;            // only for models without a fixed signature
};

struct Request {
  uint64_t cookie = 0;        // the submitter's token, echoed in the completion
  int32_t priority = 0;       // larger = more urgent, in [0, priority_levels)
  int64_t rows = 1;           // leading batch dimension (1 for unbatched models)
  int64_t enqueue_ns = 0;
  int64_t deadline_ns = 0;    // kNever = no deadline
  uint64_t id = 0;            // admission order, for simulations and tie-breaks
  CompletionSink* sink = nullptr;  // where the completion goes (borrowed; outlives the request)
  std::vector<InputView> inputs;
};

// Whether two requests may share a batch: same inputs, dtypes and non-batch dimensions.
inline bool compatible(const Request& a, const Request& b) {
  if (a.inputs.size() != b.inputs.size()) return false;
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    const InputView& x = a.inputs[i];
    const InputView& y = b.inputs[i];
    if (x.dtype != y.dtype || x.shape.size() != y.shape.size() || x.name != y.name) return false;
    for (size_t d = 1; d < x.shape.size(); ++d) {
      if (x.shape[d] != y.shape[d]) return false;
    }
  }
  return true;
}

}  // namespace ir
