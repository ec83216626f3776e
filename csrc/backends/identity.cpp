// The identity backend: each output is a copy of the input of the same name. Measures the
// engine's own overhead, and serves as the smallest example of the backend contract.
#include "backend.hpp"

namespace ir {
namespace {

irb_error* create(const irb_host* host, const irb_create_args* args, void** state) {
  *state = const_cast<irb_host*>(host);  // stateless: keep the host table for execute
  (void)args;
  return nullptr;
}

int32_t signature(void*, int32_t, irb_tensor*, int32_t) { return -1; }  // takes anything

irb_error* execute(void* state, const irb_batch* batch) {
  const auto* host = static_cast<const irb_host*>(state);
  for (int32_t i = 0; i < batch->n_inputs; ++i) {
    irb_error* error = host->output_copy(batch->sink, &batch->inputs[i]);
    if (error != nullptr) return error;
  }
  return nullptr;
}

void destroy(void*) {}

const char* describe(void*) { return "identity"; }

const irb_backend kTable = {sizeof(irb_backend), IRB_ABI_VERSION, "identity", &create, &signature, nullptr, &execute, &destroy, &describe};

}  // namespace

const irb_backend* builtin_identity_backend() { return &kTable; }

}  // namespace ir
