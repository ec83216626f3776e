// NativeBackend: a backend whose batches run on the engine's own instance threads, with no
// host language involved (no GIL, no callback). The model's workers pull a batch, call
// run(), and complete it; backends fill outputs through Model::set_output.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../engine/model.hpp"
#include "../engine/status.hpp"

namespace ir {

class NativeBackend {
 public:
  virtual ~NativeBackend() = default;

  // How many instances the backend was prepared for (sessions opened); 0 = any number.
  [[nodiscard]] virtual int32_t instances() const = 0;
  // The signature read from the model artifact; empty for backends without one (identity).
  [[nodiscard]] virtual const std::vector<TensorSig>& inputs() const = 0;
  [[nodiscard]] virtual const std::vector<TensorSig>& outputs() const = 0;
  // One line for logs: what runs the model ("onnxruntime 1.31.1 (CPUExecutionProvider)").
  [[nodiscard]] virtual const std::string& info() const = 0;

  // Runs `batch` on `instance` (called by that instance's thread only) and sets every output
  // with batch->model->set_output. An error fails exactly this batch.
  virtual Status run(int32_t instance, ir_batch* batch) = 0;
};

// Outputs are the inputs (the overhead-measurement backend).
std::unique_ptr<NativeBackend> make_identity_backend();

}  // namespace ir

// An opened native backend not yet given to a model (the opaque ir_backend of the C ABI).
struct ir_backend {
  std::unique_ptr<ir::NativeBackend> impl;
};
