// extern "C" seam of the engine: checks arguments, converts, delegates, never throws.
#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "../engine/clock.hpp"
#include "../backends/native_backend.hpp"
#include "../engine/engine.hpp"
#include "seam.hpp"

namespace {

// Microseconds from the ABI to nanoseconds; negative means "forever", huge values saturate.
int64_t to_ns(int64_t us) {
  if (us < 0) return -1;
  return us > (int64_t{1} << 53) / 1000 ? (int64_t{1} << 53) : us * 1000;
}

ir::Status to_model_config(const ir_model_config* c, ir::ModelConfig* out) {
  if (c == nullptr || c->struct_size < sizeof(ir_model_config)) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "config is NULL or struct_size is too small");
  out->name = c->name != nullptr ? c->name : "";
  out->backend = c->backend;
  out->instances = c->instances;
  out->policy.batching = c->batching != 0;
  out->policy.max_batch_size = c->batching ? c->max_batch_size : 1;
  if (c->max_queue_delay_us < 0 || c->max_queue_delay_us > int64_t{1} << 40) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "max_queue_delay_us out of range");
  out->policy.max_queue_delay_ns = c->max_queue_delay_us * 1000;
  if (c->n_preferred < 0 || (c->n_preferred > 0 && c->preferred_batch_sizes == nullptr)) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "bad preferred_batch_sizes");
  out->policy.preferred.assign(c->preferred_batch_sizes, c->preferred_batch_sizes + c->n_preferred);
  out->policy.max_queue_size = c->max_queue_size;
  out->policy.priority_levels = c->priority_levels;
  if (c->default_timeout_us < 0 || c->default_timeout_us > int64_t{1} << 40) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "default_timeout_us out of range");
  out->default_timeout_ns = c->default_timeout_us * 1000;
  if (c->idle_spin_us < 0 || c->idle_spin_us > 1000000) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "idle_spin_us must be in [0, 1000000]");
  out->idle_spin_ns = c->idle_spin_us * 1000;
  out->fixed_signature = c->n_inputs >= 0;
  if (c->n_inputs > 0 && c->inputs == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "inputs is NULL");
  for (int32_t i = 0; i < c->n_inputs; ++i) {
    const ir_tensor& t = c->inputs[i];
    if (t.name == nullptr || t.ndim < 0 || (t.ndim > 0 && t.shape == nullptr)) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "bad input signature " + std::to_string(i));
    out->inputs.push_back(ir::TensorSig{t.name, t.dtype, std::vector<int64_t>(t.shape, t.shape + t.ndim)});
  }
  return ir::Status::Ok();
}

void fill_tensor(const std::string& name, int32_t dtype, const std::vector<int64_t>& shape, const void* data, uint64_t bytes, ir_tensor* out) {
  out->name = name.c_str();
  out->dtype = dtype;
  out->ndim = static_cast<int32_t>(shape.size());
  out->shape = shape.data();
  out->data = data;
  out->byte_size = bytes;
}

}  // namespace

extern "C" {

IR_API ir_error* ir_engine_create(ir_engine** out) {
  return ir::abi::guard([&]() -> ir::Status {
    if (out == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "out is NULL");
    *out = new ir_engine();
    return ir::Status::Ok();
  });
}

IR_API void ir_engine_destroy(ir_engine* engine) {
  if (engine == nullptr) return;
  try {
    engine->stop(0);
  } catch (...) {
  }
  delete engine;
}

IR_API int ir_engine_event_fd(const ir_engine* engine) { return engine->completions.event_fd(); }

IR_API ir_error* ir_engine_add_model(ir_engine* engine, const ir_model_config* config, ir_model** out) {
  return ir::abi::guard([&]() -> ir::Status {
    if (engine == nullptr || out == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "engine or out is NULL");
    ir::ModelConfig parsed;
    IR_RETURN_IF_ERROR(to_model_config(config, &parsed));
    std::lock_guard<std::mutex> lock(engine->mu);
    if (engine->stopped) return ir::Status(IR_ERROR_UNAVAILABLE, "engine is stopped");
    for (const auto& m : engine->models) {
      if (m->config().name == parsed.name) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "duplicate model name '" + parsed.name + "'");
    }
    std::unique_ptr<ir::Model> model;
    std::unique_ptr<ir::NativeBackend>* native = config->native != nullptr ? &config->native->impl : nullptr;
    IR_RETURN_IF_ERROR(ir::Model::Create(std::move(parsed), &engine->completions, native, &model));
    *out = reinterpret_cast<ir_model*>(model.get());
    engine->models.push_back(std::move(model));
    if (config->backend == IR_BACKEND_NATIVE) delete config->native;  // consumed: the model owns the backend now
    return ir::Status::Ok();
  });
}

IR_API void ir_engine_stop(ir_engine* engine, int64_t timeout_us) {
  if (engine == nullptr) return;
  try {
    engine->stop(to_ns(timeout_us));
  } catch (...) {
  }
}

IR_API ir_error* ir_submit(ir_model* model, uint64_t cookie, const ir_tensor* inputs, int32_t n_inputs, int32_t priority, int64_t timeout_us, uint32_t flags) {
  return ir::abi::guard([&]() -> ir::Status {
    if (model == nullptr || (n_inputs > 0 && inputs == nullptr)) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "model or inputs is NULL");
    return reinterpret_cast<ir::Model*>(model)->submit(cookie, inputs, n_inputs, priority, timeout_us, (flags & IR_SUBMIT_NO_WAKE) == 0);
  });
}

IR_API ir_error* ir_submit_many(ir_model* model, uint64_t first_cookie, const ir_tensor* inputs, int32_t n_inputs, const int64_t* rows, int32_t n_requests, int32_t priority, int64_t timeout_us, uint32_t flags, int32_t* admitted) {
  int32_t ignored = 0;
  if (admitted == nullptr) admitted = &ignored;
  *admitted = 0;
  return ir::abi::guard([&]() -> ir::Status {
    if (model == nullptr || (n_inputs > 0 && inputs == nullptr) || (n_requests > 0 && rows == nullptr)) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "model, inputs or rows is NULL");
    return reinterpret_cast<ir::Model*>(model)->submit_many(first_cookie, inputs, n_inputs, rows, n_requests, priority, timeout_us, (flags & IR_SUBMIT_NO_WAKE) == 0, admitted);
  });
}

IR_API void ir_model_wake(ir_model* model) {
  if (model != nullptr) reinterpret_cast<ir::Model*>(model)->wake();
}

IR_API size_t ir_engine_drain(ir_engine* engine, ir_completion* out, size_t capacity) {
  return engine->completions.drain(out, capacity);
}

IR_API size_t ir_engine_poll(ir_engine* engine, int64_t spin_us, ir_completion* out, size_t capacity) {
  const int64_t spin_ns = spin_us <= 0 ? 0 : std::min<int64_t>(spin_us, 1000000) * 1000;
  return engine->completions.poll(spin_ns, out, capacity);
}

IR_API size_t ir_engine_wait(ir_engine* engine, int64_t timeout_us, ir_completion* out, size_t capacity) {
  return engine->completions.wait(to_ns(timeout_us), out, capacity);
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
    auto* m = reinterpret_cast<ir::Model*>(model);
    if (m->config().backend != IR_BACKEND_EXTERNAL) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "model '" + m->config().name + "' runs natively; it has no batches to pull");
    IR_RETURN_IF_ERROR(m->next_batch(instance, to_ns(timeout_us), out));
    ir_batch* batch = *out;
    if (batch != nullptr && inputs != nullptr) {
      auto n = static_cast<int32_t>(batch->inputs.size());
      for (int32_t i = 0; i < n && i < capacity; ++i) {
        const ir::InputView& v = batch->inputs[static_cast<size_t>(i)];
        fill_tensor(v.name, v.dtype, v.shape, v.data, v.byte_size, &inputs[i]);
      }
      if (n_inputs != nullptr) *n_inputs = n;
    }
    return ir::Status::Ok();
  });
}

IR_API int32_t ir_batch_input_count(const ir_batch* batch) { return static_cast<int32_t>(batch->inputs.size()); }

IR_API void ir_batch_input(const ir_batch* batch, int32_t index, ir_tensor* out) {
  const ir::InputView& v = batch->inputs[static_cast<size_t>(index)];
  fill_tensor(v.name, v.dtype, v.shape, v.data, v.byte_size, out);
}

IR_API ir_error* ir_batch_set_output(ir_batch* batch, const ir_tensor* output) {
  return ir::abi::guard([&]() -> ir::Status {
    if (batch == nullptr || output == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "batch or output is NULL");
    return batch->model->set_output(batch, *output);
  });
}

IR_API void ir_batch_finish(ir_batch* batch, ir_error* error) {
  if (batch == nullptr) {
    ir_error_free(error);
    return;
  }
  batch->model->finish(batch, error);
}

IR_API void ir_batch_complete(ir_batch* batch, const ir_tensor* outputs, int32_t n_outputs) {
  if (batch == nullptr) return;
  ir_error* failure = ir::abi::guard([&]() -> ir::Status {
    if (n_outputs > 0 && outputs == nullptr) return ir::Status(IR_ERROR_BACKEND, "outputs is NULL");
    for (int32_t i = 0; i < n_outputs; ++i) {
      ir::Status s = batch->model->set_output(batch, outputs[i]);
      if (!s.ok()) return ir::Status(IR_ERROR_BACKEND, "backend output rejected: " + s.message());
    }
    return ir::Status::Ok();
  });
  batch->model->finish(batch, failure);
}

IR_API ir_error* ir_model_stats_get(const ir_model* model, ir_model_stats* out) {
  return ir::abi::guard([&]() -> ir::Status {
    if (model == nullptr || out == nullptr || out->struct_size < sizeof(ir_model_stats)) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "model or out is NULL, or struct_size is too small");
    reinterpret_cast<const ir::Model*>(model)->stats().snapshot(out);
    return ir::Status::Ok();
  });
}

}  // extern "C"
