#include "backend.hpp"

#include <cstring>
#include <utility>

#include "../engine/batch.hpp"
#include "host.hpp"
#include "plugin.hpp"

namespace ir {

namespace {

struct Builtin {
  const char* kind;
  const irb_backend* (*table)();
};

// The factory table: every built-in backend, by the name a spec gives it.
constexpr Builtin kBuiltins[] = {
    {"identity", &builtin_identity_backend},
    {"onnxruntime", &builtin_onnxruntime_backend},
    {"rules", &builtin_rules_backend},
};

Status find_table(const BackendOptions& o, const irb_backend** out) {
  if (o.kind == "plugin") {
    if (o.library.empty()) return Status(IR_ERROR_INVALID_ARGUMENT, "a plugin backend needs its library's path");
    return load_plugin(o.library, backend_host(), out);
  }
  for (const Builtin& b : kBuiltins) {
    if (o.kind == b.kind) {
      *out = b.table();
      return Status::Ok();
    }
  }
  std::string known;
  for (const Builtin& b : kBuiltins) known += std::string(known.empty() ? "" : ", ") + b.kind;
  return Status(IR_ERROR_NOT_FOUND, "no backend called '" + o.kind + "' (built-in: " + known + "; or plugin)");
}

std::vector<irb_tensor> descriptors(const std::vector<TensorSig>& sigs) {
  std::vector<irb_tensor> out;
  out.reserve(sigs.size());
  for (const TensorSig& s : sigs) out.push_back(irb_tensor{s.name.c_str(), s.dtype, static_cast<int32_t>(s.shape.size()), s.shape.data(), nullptr, 0});
  return out;
}

}  // namespace

Status Backend::Open(const BackendOptions& o, std::unique_ptr<Backend>* out) {
  if (o.instances < 1) return Status(IR_ERROR_INVALID_ARGUMENT, "instances must be >= 1");
  const irb_backend* table = nullptr;
  IR_RETURN_IF_ERROR(find_table(o, &table));
  std::unique_ptr<Backend> backend(new Backend());
  backend->table_ = table;
  backend->name_ = table->name != nullptr ? table->name : o.kind;
  const std::vector<irb_tensor> inputs = descriptors(o.inputs);
  const std::vector<irb_tensor> outputs = descriptors(o.outputs);
  for (int32_t i = 0; i < o.instances; ++i) {
    irb_create_args args{};
    args.struct_size = sizeof(irb_create_args);
    args.model_name = o.model_name.c_str();
    args.config_json = o.config_json.c_str();
    args.inputs = o.inputs_declared ? inputs.data() : nullptr;
    args.n_inputs = o.inputs_declared ? static_cast<int32_t>(inputs.size()) : -1;
    args.outputs = o.outputs_declared ? outputs.data() : nullptr;
    args.n_outputs = o.outputs_declared ? static_cast<int32_t>(outputs.size()) : -1;
    args.instance = i;
    args.instances = o.instances;
    args.max_batch_rows = o.max_batch_rows;
    void* state = nullptr;
    Status status = take_backend_error(table->create(backend_host(), &args, &state));
    if (!status.ok()) return Status(status.code(), backend->name_ + ": " + status.message());
    backend->states_.push_back(state);
  }
  IR_RETURN_IF_ERROR(backend->read_signature(0, &backend->inputs_, &backend->any_inputs_));
  IR_RETURN_IF_ERROR(backend->read_signature(1, &backend->outputs_, &backend->any_outputs_));
  if (table->batch_range != nullptr) table->batch_range(backend->states_.front(), &backend->min_rows_, &backend->max_rows_);
  if (backend->min_rows_ < 1) backend->min_rows_ = 1;
  const char* line = table->describe != nullptr ? table->describe(backend->states_.front()) : nullptr;
  backend->info_ = line != nullptr ? line : backend->name_;
  *out = std::move(backend);
  return Status::Ok();
}

Status Backend::read_signature(int32_t which, std::vector<TensorSig>* out, bool* any) const {
  int32_t n = table_->signature(states_.front(), which, nullptr, 0);
  if (n < 0) {
    *any = true;
    return Status::Ok();
  }
  std::vector<irb_tensor> found(static_cast<size_t>(n));
  table_->signature(states_.front(), which, found.data(), n);
  for (const irb_tensor& t : found) {
    if (t.name == nullptr || t.ndim < 0 || (t.ndim > 0 && t.shape == nullptr))
      return Status(IR_ERROR_INTERNAL, name_ + ": the backend reported a malformed signature");
    out->push_back(TensorSig{t.name, t.dtype, std::vector<int64_t>(t.shape, t.shape + t.ndim)});
  }
  return Status::Ok();
}

Backend::~Backend() {
  for (void* state : states_) table_->destroy(state);
}

Status Backend::execute(int32_t instance, Batch& batch) {
  irb_batch view{};
  view.struct_size = sizeof(irb_batch);
  view.n_inputs = static_cast<int32_t>(batch.input_refs.size());
  view.inputs = reinterpret_cast<const irb_tensor*>(batch.input_refs.data());
  view.rows = batch.rows;
  view.n_requests = static_cast<int32_t>(batch.request_rows.size());
  view.request_rows = batch.request_rows.data();
  view.sink = reinterpret_cast<irb_sink*>(&batch);
  return take_backend_error(table_->execute(states_[static_cast<size_t>(instance)], &view));
}

}  // namespace ir
