// TRANSITIONAL: the model table and backend contract entry points until the engine seams land.
#include "seam.hpp"

extern "C" {
IR_API ir_error* ir_engine_replace_model(ir_engine*, const ir_model_config*, ir_model**) {
  return ir_error_new(IR_ERROR_UNAVAILABLE, "not built yet");
}
IR_API ir_error* ir_engine_retire_model(ir_engine*, const char*) { return ir_error_new(IR_ERROR_UNAVAILABLE, "not built yet"); }
IR_API ir_error* ir_engine_find_model(ir_engine*, const char*, ir_model**) { return ir_error_new(IR_ERROR_UNAVAILABLE, "not built yet"); }
IR_API void ir_model_release(ir_model*) {}
IR_API int32_t ir_model_cancel(ir_model*, uint64_t) { return 0; }
IR_API ir_error* ir_backend_open(const ir_backend_options*, ir_backend**) { return ir_error_new(IR_ERROR_UNAVAILABLE, "not built yet"); }
IR_API void ir_backend_batch_range(const ir_backend*, int64_t* lo, int64_t* hi) { *lo = 1; *hi = INT64_MAX; }
IR_API uint32_t ir_backend_abi_version(void) { return 1; }
}
