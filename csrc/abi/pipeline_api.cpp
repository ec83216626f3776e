// extern "C" seam of pipelines: checks arguments, converts, delegates, never throws.
#include <memory>
#include <string>
#include <utility>

#include "convert.hpp"
#include "handles.hpp"
#include "seam.hpp"

namespace {

using ir::abi::engine_of;

ir::Status read_bindings(const ir_pipeline_binding* bindings, int32_t n, const std::string& what, std::vector<ir::PipelineBinding>* out) {
  if (n < 0 || n > 64 || (n > 0 && bindings == nullptr)) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "bad " + what + " bindings");
  for (int32_t i = 0; i < n; ++i) {
    const ir_pipeline_binding& b = bindings[i];
    if (b.tensor == nullptr || b.source_tensor == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, what + " binding " + std::to_string(i) + " has a NULL name");
    out->push_back(ir::PipelineBinding{b.tensor, b.source_step, b.source_tensor});
  }
  return ir::Status::Ok();
}

ir::Status to_pipeline_config(const ir_pipeline_config* c, ir::PipelineConfig* out) {
  if (c == nullptr || c->struct_size < sizeof(ir_pipeline_config)) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "config is NULL or struct_size is too small");
  out->name = c->name != nullptr ? c->name : "";
  if (c->n_inputs < 0 || c->n_inputs > 64) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "bad pipeline inputs");
  IR_RETURN_IF_ERROR(ir::abi::read_tensors(c->inputs, c->n_inputs, "pipeline inputs", &out->inputs));
  if (c->n_steps < 1 || c->n_steps > ir::kMaxPipelineSteps || c->steps == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "a pipeline needs 1 to 64 steps");
  for (int32_t s = 0; s < c->n_steps; ++s) {
    const ir_pipeline_step& step = c->steps[s];
    if (step.name == nullptr || step.model == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "step " + std::to_string(s) + " has a NULL name or model");
    ir::PipelineStepConfig sc{step.name, step.model, {}};
    IR_RETURN_IF_ERROR(read_bindings(step.inputs, step.n_inputs, "step '" + sc.name + "'", &sc.inputs));
    out->steps.push_back(std::move(sc));
  }
  IR_RETURN_IF_ERROR(read_bindings(c->outputs, c->n_outputs, "output", &out->outputs));
  if (c->default_timeout_us < 0 || c->default_timeout_us > int64_t{1} << 40) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "default_timeout_us out of range");
  out->default_timeout_ns = c->default_timeout_us * 1000;
  out->priority_levels = c->priority_levels;
  return ir::Status::Ok();
}

}  // namespace

IR_API ir_error* ir_engine_add_pipeline(ir_engine* engine, const ir_pipeline_config* config, ir_pipeline** out) {
  return ir::abi::guard([&]() -> ir::Status {
    if (engine == nullptr || out == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "engine or out is NULL");
    ir::PipelineConfig pc;
    IR_RETURN_IF_ERROR(to_pipeline_config(config, &pc));
    auto handle = std::make_unique<ir_pipeline>();
    IR_RETURN_IF_ERROR(engine_of(engine)->add_pipeline(std::move(pc), &handle->pipeline));
    *out = handle.release();
    return ir::Status::Ok();
  });
}

IR_API ir_error* ir_engine_find_pipeline(ir_engine* engine, const char* name, ir_pipeline** out) {
  return ir::abi::guard([&]() -> ir::Status {
    if (engine == nullptr || name == nullptr || out == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "engine, name or out is NULL");
    auto handle = std::make_unique<ir_pipeline>();
    IR_RETURN_IF_ERROR(engine_of(engine)->find_pipeline(name, &handle->pipeline));
    *out = handle.release();
    return ir::Status::Ok();
  });
}

IR_API void ir_pipeline_release(ir_pipeline* pipeline) { delete pipeline; }

IR_API ir_error* ir_pipeline_submit(ir_pipeline* pipeline, uint64_t cookie, const ir_tensor* inputs, int32_t n_inputs, int32_t priority, int64_t timeout_us, uint32_t flags) {
  return ir::abi::guard([&]() -> ir::Status {
    if (pipeline == nullptr || (n_inputs > 0 && inputs == nullptr)) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "pipeline or inputs is NULL");
    if (n_inputs < 0) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "n_inputs must be >= 0");
    if (cookie >> 63 != 0) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "cookies must be below 2^63");
    return pipeline->pipeline->submit(cookie, ir::abi::refs_of(inputs), n_inputs, priority, timeout_us, (flags & IR_SUBMIT_NO_WAKE) == 0);
  });
}

IR_API ir_error* ir_pipeline_submit_many(ir_pipeline* pipeline, uint64_t first_cookie, const ir_tensor* inputs, int32_t n_inputs, const int64_t* rows, int32_t n_requests,
                                         int32_t priority, int64_t timeout_us, uint32_t flags, int32_t* admitted) {
  int32_t ignored = 0;
  if (admitted == nullptr) admitted = &ignored;
  *admitted = 0;
  return ir::abi::guard([&]() -> ir::Status {
    if (pipeline == nullptr || n_inputs < 1 || inputs == nullptr || (n_requests > 0 && rows == nullptr)) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "pipeline, inputs or rows is NULL");
    if ((first_cookie + static_cast<uint64_t>(n_requests > 0 ? n_requests : 0)) >> 63 != 0) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "cookies must be below 2^63");
    return pipeline->pipeline->submit_many(first_cookie, ir::abi::refs_of(inputs), n_inputs, rows, n_requests, priority, timeout_us, (flags & IR_SUBMIT_NO_WAKE) == 0, admitted);
  });
}

IR_API void ir_pipeline_wake(ir_pipeline* pipeline) {
  if (pipeline == nullptr) return;
  try {
    pipeline->pipeline->wake();
  } catch (...) {
  }
}

IR_API int32_t ir_pipeline_cancel(ir_pipeline* pipeline, uint64_t cookie) {
  if (pipeline == nullptr) return 0;
  try {
    return pipeline->pipeline->cancel(cookie) ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

IR_API ir_error* ir_pipeline_stats_get(const ir_pipeline* pipeline, ir_model_stats* out) {
  return ir::abi::guard([&]() -> ir::Status {
    if (pipeline == nullptr || out == nullptr || out->struct_size < sizeof(ir_model_stats)) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "pipeline or out is NULL, or struct_size is too small");
    const uint32_t size = out->struct_size;
    *out = ir_model_stats{};
    out->struct_size = size;
    ir::abi::fill_stats(pipeline->pipeline->stats(), out);  // its batch and queue counters stay 0
    return ir::Status::Ok();
  });
}

IR_API ir_error* ir_pipeline_step_stats_get(const ir_pipeline* pipeline, int32_t index, ir_pipeline_step_stats* out) {
  return ir::abi::guard([&]() -> ir::Status {
    if (pipeline == nullptr || out == nullptr || out->struct_size < sizeof(ir_pipeline_step_stats)) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "pipeline or out is NULL, or struct_size is too small");
    if (index < 0 || static_cast<size_t>(index) >= pipeline->pipeline->config().steps.size()) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "no step " + std::to_string(index));
    const ir::StepStats& s = pipeline->pipeline->step_stats(static_cast<size_t>(index));
    auto get = [](const ir::StepStats::Counter& c) { return c.load(std::memory_order_relaxed); };
    out->submitted = get(s.submitted);
    out->succeeded = get(s.succeeded);
    out->failed = get(s.failed);
    out->step_ns_sum = get(s.step_ns_sum);
    for (int i = 0; i < ir::kDurationBuckets; ++i) out->step_ns_buckets[i] = get(s.step_ns_buckets[i]);
    return ir::Status::Ok();
  });
}
