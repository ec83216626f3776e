// extern "C" seam of the backends: open (built-in by name, or a plugin), inspect, free.
#include <string>

#include "handles.hpp"
#include "seam.hpp"

namespace {

ir::Status read_sigs(const ir_tensor* tensors, int32_t n, const char* what, bool* declared, std::vector<ir::TensorSig>* out) {
  *declared = n >= 0;
  if (n > 0 && tensors == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, std::string(what) + " is NULL");
  for (int32_t i = 0; i < n; ++i) {
    const ir_tensor& t = tensors[i];
    if (t.name == nullptr || t.ndim < 0 || t.ndim > 32 || (t.ndim > 0 && t.shape == nullptr))
      return ir::Status(IR_ERROR_INVALID_ARGUMENT, "bad " + std::string(what) + " signature " + std::to_string(i));
    out->push_back(ir::TensorSig{t.name, t.dtype, std::vector<int64_t>(t.shape, t.shape + t.ndim)});
  }
  return ir::Status::Ok();
}

}  // namespace

extern "C" {

IR_API ir_error* ir_backend_open(const ir_backend_options* options, ir_backend** out) {
  return ir::abi::guard([&]() -> ir::Status {
    if (options == nullptr || out == nullptr || options->struct_size < sizeof(ir_backend_options))
      return ir::Status(IR_ERROR_INVALID_ARGUMENT, "options or out is NULL, or struct_size is too small");
    if (options->kind == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "options.kind is required");
    ir::BackendOptions o;
    o.kind = options->kind;
    o.library = options->library != nullptr ? options->library : "";
    o.model_name = options->model_name != nullptr ? options->model_name : "";
    o.config_json = options->config_json != nullptr ? options->config_json : "{}";
    IR_RETURN_IF_ERROR(read_sigs(options->inputs, options->n_inputs, "inputs", &o.inputs_declared, &o.inputs));
    IR_RETURN_IF_ERROR(read_sigs(options->outputs, options->n_outputs, "outputs", &o.outputs_declared, &o.outputs));
    o.instances = options->instances;
    o.max_batch_rows = options->max_batch_rows;
    auto backend = std::make_unique<ir_backend>();
    IR_RETURN_IF_ERROR(ir::Backend::Open(o, &backend->impl));
    *out = backend.release();
    return ir::Status::Ok();
  });
}

IR_API int32_t ir_backend_tensor_count(const ir_backend* backend, int32_t outputs) {
  if (backend == nullptr || backend->impl == nullptr) return 0;
  const std::vector<ir::TensorSig>* sigs = outputs ? backend->impl->outputs() : backend->impl->inputs();
  return sigs == nullptr ? -1 : static_cast<int32_t>(sigs->size());
}

IR_API ir_error* ir_backend_tensor(const ir_backend* backend, int32_t outputs, int32_t index, ir_tensor* out) {
  return ir::abi::guard([&]() -> ir::Status {
    if (backend == nullptr || backend->impl == nullptr || out == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "backend or out is NULL");
    const std::vector<ir::TensorSig>* sigs = outputs ? backend->impl->outputs() : backend->impl->inputs();
    if (sigs == nullptr || index < 0 || index >= static_cast<int32_t>(sigs->size())) return ir::Status(IR_ERROR_NOT_FOUND, "tensor index " + std::to_string(index) + " out of range");
    const ir::TensorSig& t = (*sigs)[static_cast<size_t>(index)];
    *out = ir_tensor{t.name.c_str(), t.dtype, static_cast<int32_t>(t.shape.size()), t.shape.data(), nullptr, 0};
    return ir::Status::Ok();
  });
}

IR_API void ir_backend_batch_range(const ir_backend* backend, int64_t* min_rows, int64_t* max_rows) {
  if (backend == nullptr || backend->impl == nullptr) return;
  if (min_rows != nullptr) *min_rows = backend->impl->min_rows();
  if (max_rows != nullptr) *max_rows = backend->impl->max_rows();
}

IR_API const char* ir_backend_info(const ir_backend* backend) {
  static const char kNone[] = "";
  return backend != nullptr && backend->impl != nullptr ? backend->impl->info().c_str() : kNone;
}

IR_API ir_error* ir_backend_warm(ir_backend* backend, const ir_tensor* inputs, int32_t n_inputs) {
  return ir::abi::guard([&]() -> ir::Status {
    if (backend == nullptr || backend->impl == nullptr || (n_inputs > 0 && inputs == nullptr)) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "backend or inputs is NULL");
    ir::Batch batch;  // one request; nobody waits for its outputs
    batch.input_refs.assign(ir::abi::refs_of(inputs), ir::abi::refs_of(inputs) + n_inputs);
    batch.rows = n_inputs > 0 && inputs[0].ndim > 0 ? inputs[0].shape[0] : 1;
    batch.batching = false;  // the outputs are dropped: no row slicing to prepare
    batch.request_rows.push_back(batch.rows);
    for (int32_t i = 0; i < backend->impl->instances(); ++i) {
      batch.outputs.clear();
      IR_RETURN_IF_ERROR(backend->impl->execute(i, batch));
    }
    return ir::Status::Ok();
  });
}

IR_API void ir_backend_free(ir_backend* backend) { delete backend; }

IR_API uint32_t ir_backend_abi_version(void) { return IRB_ABI_VERSION; }

}  // extern "C"
