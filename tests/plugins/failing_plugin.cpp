// A plugin that fails on demand, to show that a failure stays where it belongs:
//   - a batch holding a negative value fails as a whole (execute returns an error): only the
//     requests of that batch fail, and the model keeps serving;
//   - a request holding a NaN fails alone through request_fail, while the other requests of
//     its batch get their rows.
// Otherwise an identity on one float32 input "x" [rows, n] -> output "y".
#include <cmath>
#include <cstdio>
#include <cstring>

#include "infer_runtime_backend.h"

namespace {

const irb_host* g_host = nullptr;
const int64_t kShape[2] = {-1, -1};
const irb_tensor kInput = {"x", IRB_DTYPE_FLOAT32, 2, kShape, nullptr, 0};
const irb_tensor kOutput = {"y", IRB_DTYPE_FLOAT32, 2, kShape, nullptr, 0};
int g_state = 0;  // this plugin keeps no state; every instance points here

irb_error* create(const irb_host*, const irb_create_args*, void** state) {
  *state = &g_state;
  return nullptr;
}

int32_t signature(void*, int32_t outputs, irb_tensor* out, int32_t capacity) {
  if (capacity >= 1) out[0] = outputs ? kOutput : kInput;
  return 1;
}

irb_error* execute(void*, const irb_batch* batch) {
  const irb_tensor& x = batch->inputs[0];
  const float* values = static_cast<const float*>(x.data);
  const int64_t cols = x.ndim == 2 ? x.shape[1] : 1;
  for (int64_t i = 0; i < batch->rows * cols; ++i) {
    if (values[i] < 0) {
      char message[96];
      std::snprintf(message, sizeof message, "negative value %g at row %lld", static_cast<double>(values[i]), static_cast<long long>(i / cols));
      return g_host->error_new(IRB_ERROR_BACKEND, message);
    }
  }
  irb_tensor y = x;
  y.name = "y";
  if (irb_error* error = g_host->output_copy(batch->sink, &y)) return error;
  int64_t row = 0;
  for (int32_t r = 0; r < batch->n_requests; ++r) {
    for (int64_t i = row * cols; i < (row + batch->request_rows[r]) * cols; ++i) {
      if (std::isnan(values[i])) {
        g_host->request_fail(batch->sink, r, g_host->error_new(IRB_ERROR_BACKEND, "NaN in this request's input"));
        break;
      }
    }
    row += batch->request_rows[r];
  }
  return nullptr;
}

void destroy(void*) {}

const irb_backend kFailing = {
    sizeof(irb_backend), IRB_ABI_VERSION, "failing-plugin", create, signature, nullptr, execute, destroy, nullptr,
};

}  // namespace

extern "C" IRB_EXPORT irb_error* irb_plugin_init(const irb_host* host, const irb_backend** backend) {
  g_host = host;
  *backend = &kFailing;
  return nullptr;
}
