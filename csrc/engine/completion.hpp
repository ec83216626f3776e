// Completions: what a finished request hands back (its rows of a shared batch result, or an
// error), and the sink interface they are delivered through. The engine's completion queue
// is one sink; a pipeline step that feeds the next step is another.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "buffer.hpp"
#include "status.hpp"

namespace ir {

struct BatchOutput {
  std::string name;
  int32_t dtype = 0;
  std::vector<int64_t> shape;
  std::shared_ptr<Buffer> buffer;
  std::vector<uint64_t> row_starts;  // BYTES outputs of batching models: byte offset of each row, then the end
};

// The outputs of one executed batch, shared by the completions of its requests.
struct BatchResult {
  std::vector<BatchOutput> outputs;
  int64_t rows = 0;
  bool sliced = false;  // batching model: each request owns a range of rows
};

struct Completion {
  uint64_t cookie = 0;
  std::shared_ptr<const BatchResult> result;  // success: the batch's outputs
  Status error;                               // failure when !error.ok() (result is then empty)
  int64_t row_offset = 0;                     // this request's rows of the batch: [row_offset, +rows)
  int64_t rows = 0;
  int64_t batch_rows = 0;
};

class CompletionSink {
 public:
  virtual ~CompletionSink() = default;
  // Takes over `done` (the vector is left empty). Called from engine threads and submitters,
  // never with a model's lock held; must not block on model work.
  virtual void complete(std::vector<Completion>& done) = 0;
  // How long completions have recently waited here for their consumer (an estimate, read
  // lock-free by the batching policy; 0 when they are consumed at once). Default: 0.
  [[nodiscard]] virtual int64_t delivery_lag_ns() const { return 0; }
};

}  // namespace ir
