// extern "C" seam of the native backends: open, inspect, free.
#include <string>

#include "../backends/native_backend.hpp"
#include "../backends/onnxruntime.hpp"
#include "seam.hpp"

extern "C" {

IR_API ir_error* ir_onnxruntime_open(const ir_onnxruntime_options* options, ir_backend** out) {
  return ir::abi::guard([&]() -> ir::Status {
    if (options == nullptr || out == nullptr || options->struct_size < sizeof(ir_onnxruntime_options))
      return ir::Status(IR_ERROR_INVALID_ARGUMENT, "options or out is NULL, or struct_size is too small");
    if (options->library == nullptr || options->model_path == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "library and model_path are required");
    const int32_t level = options->graph_optimization_level;
    if (level != 0 && level != 1 && level != 2 && level != 99) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "graph_optimization_level must be 0, 1, 2 or 99");
    if (options->intra_op_threads < 0 || options->inter_op_threads < 0) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "thread counts must be >= 0");
    ir::OnnxRuntimeOptions parsed;
    parsed.library = options->library;
    parsed.model_path = options->model_path;
    parsed.instances = options->instances;
    parsed.intra_op_threads = options->intra_op_threads;
    parsed.inter_op_threads = options->inter_op_threads;
    parsed.graph_optimization_level = level;
    parsed.parallel_execution = options->parallel_execution != 0;
    auto backend = std::make_unique<ir_backend>();
    IR_RETURN_IF_ERROR(ir::open_onnxruntime(parsed, &backend->impl));
    *out = backend.release();
    return ir::Status::Ok();
  });
}

IR_API int32_t ir_backend_tensor_count(const ir_backend* backend, int32_t outputs) {
  if (backend == nullptr || backend->impl == nullptr) return 0;
  return static_cast<int32_t>((outputs ? backend->impl->outputs() : backend->impl->inputs()).size());
}

IR_API ir_error* ir_backend_tensor(const ir_backend* backend, int32_t outputs, int32_t index, ir_tensor* out) {
  return ir::abi::guard([&]() -> ir::Status {
    if (backend == nullptr || backend->impl == nullptr || out == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "backend or out is NULL");
    const std::vector<ir::TensorSig>& sigs = outputs ? backend->impl->outputs() : backend->impl->inputs();
    if (index < 0 || index >= static_cast<int32_t>(sigs.size())) return ir::Status(IR_ERROR_NOT_FOUND, "tensor index " + std::to_string(index) + " out of range");
    const ir::TensorSig& t = sigs[static_cast<size_t>(index)];
    *out = ir_tensor{t.name.c_str(), t.dtype, static_cast<int32_t>(t.shape.size()), t.shape.data(), nullptr, 0};
    return ir::Status::Ok();
  });
}

IR_API const char* ir_backend_info(const ir_backend* backend) {
  static const char kNone[] = "";
  return backend != nullptr && backend->impl != nullptr ? backend->impl->info().c_str() : kNone;
}

IR_API void ir_backend_free(ir_backend* backend) { delete backend; }

}  // extern "C"
