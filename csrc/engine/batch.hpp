// Batch: one formed batch on its way through an instance -- the requests it packs, their
// gathered inputs, and the outputs the backend sets (checked against the model's declared
// outputs). Each instance owns one Batch and reuses it, so forming and running a batch
// allocates nothing in steady state.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "batcher.hpp"
#include "completion.hpp"
#include "request.hpp"
#include "tensor.hpp"

namespace ir {

class Model;

struct Batch {
  Model* model = nullptr;
  int32_t instance = 0;
  DispatchReason reason = DispatchReason::kNone;
  bool batching = false;                 // the model batches: outputs are sliced by rows
  int64_t rows = 0;
  int64_t dispatch_ns = 0;
  std::vector<Request*> requests;
  std::vector<int64_t> request_rows;
  std::vector<InputView> inputs;         // gathered (or the requests' own memory when adjacent)
  std::vector<TensorRef> input_refs;     // descriptors of `inputs`, as backends see them
  std::vector<BatchOutput> outputs;
  std::vector<std::pair<int32_t, Status>> failed;  // requests a backend failed alone
  const std::vector<TensorSig>* declared = nullptr;  // the model's outputs; nullptr: unchecked

  // Records one output: copied into engine memory, or, when `owner` holds `t.data` already,
  // adopted without a copy. Checks the descriptor, the batch's rows, duplicates, and the
  // declared outputs (name, dtype, per-row shape).
  Status add_output(const TensorRef& t, std::shared_ptr<Buffer> owner);

  // Allocates engine memory for an output the backend then fills (*data, `bytes` long; for
  // BYTES, exactly the serialized elements, checked when the backend returns).
  Status alloc_output(const char* name, int32_t dtype, int32_t ndim, const int64_t* shape, uint64_t bytes, void** data);

  // Fails request `index` alone (the others keep the outputs).
  void fail_request(int32_t index, Status error);

  // After the backend returned successfully: every declared output was set, and BYTES outputs
  // written into allocated memory hold well-formed elements.
  [[nodiscard]] Status check_complete();

  // Completions for every request: their rows of the outputs, or `error` for all of them when
  // it is set; requests failed alone get their own error. Leaves outputs empty.
  void complete_into(const Status& error, int64_t done_ns, std::vector<Completion>* out);

  void clear();

 private:
  Status check_output(const TensorRef& t, uint64_t elements) const;
  std::vector<size_t> unparsed_;  // BYTES outputs filled in place, checked by check_complete
};

}  // namespace ir
