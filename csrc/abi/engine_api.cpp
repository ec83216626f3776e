// extern "C" seam of the engine: checks arguments, converts, delegates, never throws.
#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "../engine/clock.hpp"
#include "convert.hpp"
#include "handles.hpp"
#include "seam.hpp"

static_assert(sizeof(ir_tensor) == sizeof(ir::TensorRef) && offsetof(ir_tensor, byte_size) == offsetof(ir::TensorRef, byte_size),
              "ir_tensor and TensorRef share a layout");

namespace {

using ir::abi::batch_of;
using ir::abi::engine_of;
using ir::abi::read_tensors;

// Microseconds from the ABI to nanoseconds; negative means "forever", huge values saturate.
int64_t to_ns(int64_t us) {
  if (us < 0) return -1;
  return us > (int64_t{1} << 53) / 1000 ? (int64_t{1} << 53) : us * 1000;
}

ir::Status to_model_config(const ir_model_config* c, ir::ModelConfig* out) {
  if (c == nullptr || c->struct_size < sizeof(ir_model_config)) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "config is NULL or struct_size is too small");
  out->name = c->name != nullptr ? c->name : "";
  if (c->backend != IR_BACKEND_IDENTITY && c->backend != IR_BACKEND_EXTERNAL && c->backend != IR_BACKEND_NATIVE)
    return ir::Status(IR_ERROR_INVALID_ARGUMENT, "unknown backend kind " + std::to_string(c->backend));
  out->runner = c->backend == IR_BACKEND_EXTERNAL ? ir::Runner::kExternal : ir::Runner::kNative;
  out->instances = c->instances;
  out->policy.batching = c->batching != 0;
  out->policy.max_batch_size = c->batching ? c->max_batch_size : 1;
  if (c->max_queue_delay_us < 0 || c->max_queue_delay_us > int64_t{1} << 40) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "max_queue_delay_us out of range");
  out->policy.max_queue_delay_ns = c->max_queue_delay_us * 1000;
  if (c->n_preferred < 0 || (c->n_preferred > 0 && c->preferred_batch_sizes == nullptr)) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "bad preferred_batch_sizes");
  out->policy.preferred.assign(c->preferred_batch_sizes, c->preferred_batch_sizes + c->n_preferred);
  out->policy.max_queue_size = c->max_queue_size;
  out->policy.priority_levels = c->priority_levels;
  out->policy.adaptive = c->adaptive != 0;
  if (c->default_timeout_us < 0 || c->default_timeout_us > int64_t{1} << 40) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "default_timeout_us out of range");
  out->default_timeout_ns = c->default_timeout_us * 1000;
  if (c->execution_timeout_us < 0 || c->execution_timeout_us > int64_t{1} << 40) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "execution_timeout_us out of range");
  out->execution_timeout_ns = c->execution_timeout_us * 1000;
  if (c->idle_spin_us < 0 || c->idle_spin_us > 1000000) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "idle_spin_us must be in [0, 1000000]");
  out->idle_spin_ns = c->idle_spin_us * 1000;
  out->fixed_signature = c->n_inputs >= 0;
  IR_RETURN_IF_ERROR(read_tensors(c->inputs, c->n_inputs, "inputs", &out->inputs));
  out->outputs_declared = c->n_outputs >= 0 && c->outputs != nullptr;
  if (out->outputs_declared) IR_RETURN_IF_ERROR(read_tensors(c->outputs, c->n_outputs, "outputs", &out->outputs));
  return ir::Status::Ok();
}

// The backend a config asks for: the opened one (NATIVE), a fresh identity, or none.
ir::Status backend_for(const ir_model_config* c, const ir::ModelConfig& parsed, std::unique_ptr<ir::Backend>* own, std::unique_ptr<ir::Backend>** use) {
  *use = nullptr;
  if (c->backend == IR_BACKEND_NATIVE) {
    if (c->native == nullptr || c->native->impl == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "a native model needs an opened backend");
    *use = &c->native->impl;
  } else if (c->backend == IR_BACKEND_IDENTITY) {
    ir::BackendOptions options;
    options.kind = "identity";
    options.model_name = parsed.name;
    options.instances = parsed.instances;
    IR_RETURN_IF_ERROR(ir::Backend::Open(options, own));
    *use = own;
  }
  return ir::Status::Ok();
}

template <typename Op>
ir_error* add_or_replace(ir_engine* engine, const ir_model_config* config, ir_model** out, Op&& op) {
  return ir::abi::guard([&]() -> ir::Status {
    if (engine == nullptr || out == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "engine or out is NULL");
    ir::ModelConfig parsed;
    IR_RETURN_IF_ERROR(to_model_config(config, &parsed));
    std::unique_ptr<ir::Backend> identity;
    std::unique_ptr<ir::Backend>* backend = nullptr;
    IR_RETURN_IF_ERROR(backend_for(config, parsed, &identity, &backend));
    auto handle = std::make_unique<ir_model>();
    IR_RETURN_IF_ERROR(op(engine_of(engine), std::move(parsed), backend, &handle->model));
    if (config->backend == IR_BACKEND_NATIVE) delete config->native;  // consumed: the model owns the backend now
    *out = handle.release();
    return ir::Status::Ok();
  });
}

void fill_tensor(const std::string& name, int32_t dtype, const std::vector<int64_t>& shape, const void* data, uint64_t bytes, ir_tensor* out) {
  out->name = name.c_str();
  out->dtype = dtype;
  out->ndim = static_cast<int32_t>(shape.size());
  out->shape = shape.data();
  out->data = data;
  out->byte_size = bytes;
}

// Converts one engine completion into the ABI's form (its response or error now the host's).
ir_completion to_abi(ir::Completion&& c) {
  ir_completion out{c.cookie, nullptr, nullptr, nullptr, c.row_offset, c.rows, c.batch_rows};
  if (!c.error.ok()) {
    out.error = ir::abi::to_error(c.error);
    return out;
  }
  out.batch = c.result->sliced ? c.result.get() : nullptr;
  auto* response = new ir_response();
  response->result = std::move(c.result);
  response->row_offset = c.row_offset;
  response->rows = c.rows;
  out.response = response;
  return out;
}

template <typename Drain>
size_t drain_into(ir_completion* out, size_t capacity, Drain&& drain) {
  if (out == nullptr || capacity == 0) return 0;
  size_t n = 0;
  try {
    drain(capacity, [&](ir::Completion&& c) { out[n++] = to_abi(std::move(c)); });
  } catch (...) {
    // Out of memory converting a completion: what was moved out so far is delivered.
  }
  return n;
}

}  // namespace

extern "C" {

IR_API ir_error* ir_engine_create(ir_engine** out) {
  return ir::abi::guard([&]() -> ir::Status {
    if (out == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "out is NULL");
    std::unique_ptr<ir::Engine> engine;
    IR_RETURN_IF_ERROR(ir::Engine::Create(&engine));
    *out = ir::abi::handle_of(engine.release());
    return ir::Status::Ok();
  });
}

IR_API void ir_engine_destroy(ir_engine* engine) {
  if (engine == nullptr) return;
  try {
    delete engine_of(engine);
  } catch (...) {
  }
}

IR_API int ir_engine_event_fd(const ir_engine* engine) { return const_cast<ir::Engine*>(engine_of(engine))->completions().event_fd(); }

IR_API ir_error* ir_engine_add_model(ir_engine* engine, const ir_model_config* config, ir_model** out) {
  return add_or_replace(engine, config, out, [](ir::Engine* e, ir::ModelConfig c, std::unique_ptr<ir::Backend>* b, std::shared_ptr<ir::Model>* m) {
    return e->add(std::move(c), b, m);
  });
}

IR_API ir_error* ir_engine_replace_model(ir_engine* engine, const ir_model_config* config, ir_model** out) {
  return add_or_replace(engine, config, out, [](ir::Engine* e, ir::ModelConfig c, std::unique_ptr<ir::Backend>* b, std::shared_ptr<ir::Model>* m) {
    return e->replace(std::move(c), b, m);
  });
}

IR_API ir_error* ir_engine_retire_model(ir_engine* engine, const char* name) {
  return ir::abi::guard([&]() -> ir::Status {
    if (engine == nullptr || name == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "engine or name is NULL");
    return engine_of(engine)->retire(name);
  });
}

IR_API ir_error* ir_engine_find_model(ir_engine* engine, const char* name, ir_model** out) {
  return ir::abi::guard([&]() -> ir::Status {
    if (engine == nullptr || name == nullptr || out == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "engine, name or out is NULL");
    auto handle = std::make_unique<ir_model>();
    IR_RETURN_IF_ERROR(engine_of(engine)->find(name, &handle->model));
    *out = handle.release();
    return ir::Status::Ok();
  });
}

IR_API void ir_model_release(ir_model* model) { delete model; }

IR_API void ir_engine_stop(ir_engine* engine, int64_t timeout_us) {
  if (engine == nullptr) return;
  try {
    engine_of(engine)->stop(to_ns(timeout_us));
  } catch (...) {
  }
}

IR_API ir_error* ir_model_submit(ir_model* model, uint64_t cookie, const ir_tensor* inputs, int32_t n_inputs, int32_t priority, int64_t timeout_us, uint32_t flags) {
  return ir::abi::guard([&]() -> ir::Status {
    if (model == nullptr || (n_inputs > 0 && inputs == nullptr)) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "model or inputs is NULL");
    int32_t admitted = 0;
    return model->model->submit_many(cookie, ir::abi::refs_of(inputs), n_inputs, nullptr, 1, priority, timeout_us, (flags & IR_SUBMIT_NO_WAKE) == 0, &admitted);
  });
}

IR_API ir_error* ir_model_submit_many(ir_model* model, uint64_t first_cookie, const ir_tensor* inputs, int32_t n_inputs, const int64_t* rows, int32_t n_requests, int32_t priority, int64_t timeout_us, uint32_t flags, int32_t* admitted) {
  int32_t ignored = 0;
  if (admitted == nullptr) admitted = &ignored;
  *admitted = 0;
  return ir::abi::guard([&]() -> ir::Status {
    if (model == nullptr || (n_inputs > 0 && inputs == nullptr) || (n_requests > 0 && rows == nullptr)) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "model, inputs or rows is NULL");
    return model->model->submit_many(first_cookie, ir::abi::refs_of(inputs), n_inputs, rows, n_requests, priority, timeout_us, (flags & IR_SUBMIT_NO_WAKE) == 0, admitted);
  });
}

IR_API void ir_model_wake(ir_model* model) {
  if (model == nullptr) return;
  try {
    model->model->wake();
  } catch (...) {
  }
}

IR_API int32_t ir_model_cancel(ir_model* model, uint64_t cookie) {
  if (model == nullptr) return 0;
  try {
    return model->model->cancel(cookie) ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

IR_API size_t ir_engine_drain(ir_engine* engine, ir_completion* out, size_t capacity) {
  return drain_into(out, capacity, [&](size_t cap, auto&& take) { return engine_of(engine)->completions().drain(cap, take); });
}

IR_API size_t ir_engine_poll(ir_engine* engine, int64_t spin_us, ir_completion* out, size_t capacity) {
  return drain_into(out, capacity, [&](size_t cap, auto&& take) { return engine_of(engine)->completions().poll(to_ns(spin_us), cap, take); });
}

IR_API size_t ir_engine_wait(ir_engine* engine, int64_t timeout_us, ir_completion* out, size_t capacity) {
  return drain_into(out, capacity, [&](size_t cap, auto&& take) { return engine_of(engine)->completions().wait(to_ns(timeout_us), cap, take); });
}

IR_API int32_t ir_response_output_count(const ir_response* response) { return static_cast<int32_t>(response->result->outputs.size()); }

namespace {

// The request's own view of output `index`: its rows of the batch buffer.
void describe_one(const ir_response* response, size_t index, ir_tensor* out) {
  const ir::BatchResult& result = *response->result;
  const ir::BatchOutput& o = result.outputs[index];
  if (!result.sliced) {
    fill_tensor(o.name, o.dtype, o.shape, o.buffer->data(), o.buffer->size(), out);
    return;
  }
  auto* mutable_response = const_cast<ir_response*>(response);  // lazily built cache
  if (mutable_response->shapes.empty()) {
    for (const ir::BatchOutput& each : result.outputs) {
      mutable_response->shapes.push_back(each.shape);
      mutable_response->shapes.back()[0] = response->rows;
    }
  }
  uint64_t begin = 0, end = 0;
  if (!o.row_starts.empty()) {  // BYTES: variable-length rows
    begin = o.row_starts[static_cast<size_t>(response->row_offset)];
    end = o.row_starts[static_cast<size_t>(response->row_offset + response->rows)];
  } else {
    uint64_t row_bytes = o.buffer->size() / static_cast<uint64_t>(result.rows);
    begin = row_bytes * static_cast<uint64_t>(response->row_offset);
    end = begin + row_bytes * static_cast<uint64_t>(response->rows);
  }
  fill_tensor(o.name, o.dtype, mutable_response->shapes[index], o.buffer->data() + begin, end - begin, out);
}

}  // namespace

IR_API void ir_response_output(const ir_response* response, int32_t index, ir_tensor* out) {
  describe_one(response, static_cast<size_t>(index), out);
}

IR_API int32_t ir_response_describe(const ir_response* response, ir_tensor* out, int32_t capacity) {
  auto n = static_cast<int32_t>(response->result->outputs.size());
  for (int32_t i = 0; i < n && i < capacity; ++i) describe_one(response, static_cast<size_t>(i), &out[i]);
  return n;
}

IR_API int32_t ir_response_describe_batch(const ir_response* response, ir_tensor* out, int32_t capacity) {
  const auto& outputs = response->result->outputs;
  auto n = static_cast<int32_t>(outputs.size());
  for (int32_t i = 0; i < n && i < capacity; ++i) {
    const ir::BatchOutput& o = outputs[static_cast<size_t>(i)];
    fill_tensor(o.name, o.dtype, o.shape, o.buffer->data(), o.buffer->size(), &out[i]);
  }
  return n;
}

IR_API void ir_response_release(ir_response* response) { delete response; }

IR_API void ir_completions_release(ir_completion* completions, size_t n) {
  if (completions == nullptr) return;
  for (size_t i = 0; i < n; ++i) {
    delete completions[i].response;
    ir_error_free(completions[i].error);
    completions[i].response = nullptr;
    completions[i].error = nullptr;
  }
}

IR_API ir_error* ir_model_next_batch(ir_model* model, int32_t instance, int64_t timeout_us, ir_batch** out,
                                     ir_tensor* inputs, int32_t capacity, int32_t* n_inputs) {
  return ir::abi::guard([&]() -> ir::Status {
    if (model == nullptr || out == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "model or out is NULL");
    ir::Batch* batch = nullptr;
    IR_RETURN_IF_ERROR(model->model->next_batch(instance, to_ns(timeout_us), &batch));
    *out = batch != nullptr ? ir::abi::handle_of(batch) : nullptr;
    if (batch != nullptr && inputs != nullptr) {
      auto n = static_cast<int32_t>(batch->input_refs.size());
      for (int32_t i = 0; i < n && i < capacity; ++i) std::memcpy(&inputs[i], &batch->input_refs[static_cast<size_t>(i)], sizeof(ir_tensor));
      if (n_inputs != nullptr) *n_inputs = n;
    }
    return ir::Status::Ok();
  });
}

IR_API int32_t ir_batch_input_count(const ir_batch* batch) { return static_cast<int32_t>(batch_of(batch)->input_refs.size()); }

IR_API void ir_batch_input(const ir_batch* batch, int32_t index, ir_tensor* out) {
  std::memcpy(out, &batch_of(batch)->input_refs[static_cast<size_t>(index)], sizeof(ir_tensor));
}

IR_API ir_error* ir_batch_set_output(ir_batch* batch, const ir_tensor* output) {
  return ir::abi::guard([&]() -> ir::Status {
    if (batch == nullptr || output == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "batch or output is NULL");
    ir::Status s = batch_of(batch)->add_output(*ir::abi::refs_of(output), nullptr);
    return s.ok() ? s : ir::Status(IR_ERROR_INVALID_ARGUMENT, s.message());
  });
}

IR_API void ir_batch_finish(ir_batch* batch, ir_error* error) {
  if (batch == nullptr) {
    ir_error_free(error);
    return;
  }
  ir::Status status;
  if (error != nullptr) {
    status = ir::Status(ir_error_code(error), ir_error_message(error));
    ir_error_free(error);
  }
  try {
    batch_of(batch)->model->finish(batch_of(batch), std::move(status));
  } catch (...) {
  }
}

IR_API void ir_batch_complete(ir_batch* batch, const ir_tensor* outputs, int32_t n_outputs) {
  if (batch == nullptr) return;
  ir::Batch* b = batch_of(batch);
  ir::Status failure;
  try {
    if (n_outputs > 0 && outputs == nullptr) failure = ir::Status(IR_ERROR_BACKEND, "outputs is NULL");
    for (int32_t i = 0; failure.ok() && i < n_outputs; ++i) {
      ir::Status s = b->add_output(ir::abi::refs_of(outputs)[i], nullptr);
      if (!s.ok()) failure = ir::Status(IR_ERROR_BACKEND, "backend output rejected: " + s.message());
    }
  } catch (const std::bad_alloc&) {
    failure = ir::Status(IR_ERROR_RESOURCE_EXHAUSTED, "out of memory copying the outputs");
  } catch (...) {
    failure = ir::Status(IR_ERROR_INTERNAL, "internal error copying the outputs");
  }
  try {
    b->model->finish(b, std::move(failure));
  } catch (...) {
  }
}

IR_API ir_error* ir_model_stats_get(const ir_model* model, ir_model_stats* out) {
  return ir::abi::guard([&]() -> ir::Status {
    if (model == nullptr || out == nullptr || out->struct_size < sizeof(ir_model_stats)) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "model or out is NULL, or struct_size is too small");
    ir::abi::fill_stats(model->model->stats(), out);
    out->unhealthy_instances = model->model->unhealthy_instances();
    return ir::Status::Ok();
  });
}

}  // extern "C"
