#include "pipeline.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "clock.hpp"
#include "dtype.hpp"

namespace ir {

namespace {

// A step's cookie: the top bit (never set by a host's cookies, which count from 1) marks
// it as the pipeline's, the Run's address (64-byte aligned, below 2^63) the request, and
// the low six bits the step.
constexpr uint64_t kStepCookieTag = uint64_t{1} << 63;

// Keeps a step's batch result alive for as long as a pipeline output aliases its memory.
void release_held(void* owner) { delete static_cast<std::shared_ptr<const BatchResult>*>(owner); }

Status step_error(const std::string& pipeline, const std::string& step, const std::string& model, const Status& error) {
  return Status(error.code(), "pipeline '" + pipeline + "', step '" + step + "' (model '" + model + "'): " + error.message());
}

}  // namespace

struct Pipeline::Step {
  std::string name;
  std::string model_name;
  std::vector<PipelineBinding> inputs;
  std::vector<int32_t> dependents;  // later steps reading this one (each once)
  int32_t n_deps = 0;               // distinct earlier steps this one reads
  StepStats stats;

  // The step's model, following replacements: a swapped model serves new requests while the
  // requests it admitted finish on it.
  std::shared_ptr<Model> current() {
    std::lock_guard<std::mutex> lock(mu);
    for (std::shared_ptr<Model> next = model->successor(); next != nullptr; next = model->successor()) model = std::move(next);
    return model;
  }

  std::mutex mu;
  std::shared_ptr<Model> model;
};

// One request in flight. 64-byte aligned: the low bits of its address carry a step index.
struct alignas(64) Pipeline::Run {
  struct Slot {
    std::shared_ptr<Model> model;                // the version bound at admission (pinned)
    std::shared_ptr<const BatchResult> result;   // the step's batch outputs, once done
    int64_t row_offset = 0;                      // this request's rows of them
    int64_t rows = 0;
    int64_t submit_ns = 0;
    int32_t waiting = 0;  // earlier steps still to finish before this one can run
    bool in_flight = false;
    bool submitted = false;
    bool done = false;
  };

  std::shared_ptr<Pipeline> pipeline;  // a request keeps its pipeline alive
  uint64_t cookie = 0;
  CompletionSink* sink = nullptr;
  int32_t priority = 0;
  int64_t start_ns = 0;
  int64_t deadline_ns = kNever;
  std::vector<TensorRef> request;                // the caller's inputs (data borrowed)
  std::vector<std::vector<int64_t>> request_shapes;
  std::vector<Slot> slots;

  std::mutex mu;
  int32_t tokens = 0;  // submitted steps plus calls working on the run; 0 = finished
  bool failed = false;
  Status error;

  Run* prev = nullptr;  // the pipeline's list of runs in flight
  Run* next = nullptr;
};

// What one call into the pipeline leaves to its end: the steps that became ready (submitted
// together, without waking their models one request at a time), the models to wake once,
// and the callers' completions (handed to their sinks in one call per sink).
struct Pipeline::Outbox {
  std::shared_ptr<Pipeline> keep_alive;  // declared first: released after the rest
  std::vector<std::pair<Run*, int32_t>> launches;
  std::vector<std::shared_ptr<Model>> woken;
  std::vector<std::pair<CompletionSink*, Completion>> finished;
  // The pipeline's view of a final step's batch result (its outputs renamed, buffers shared),
  // made once per batch here: the callers' answers from one batch then share one result, and
  // the host resolves them as a run.
  struct Shared {
    std::shared_ptr<const BatchResult> source;  // held: a freed batch's address may be reused by another
    std::shared_ptr<BatchResult> result;
  };
  std::vector<Shared> shared;
};

namespace {

Pipeline::Run* run_of(uint64_t cookie) { return reinterpret_cast<Pipeline::Run*>(static_cast<uintptr_t>(cookie & ~kStepCookieTag & ~uint64_t{63})); }
int32_t step_of(uint64_t cookie) { return static_cast<int32_t>(cookie & 63); }
uint64_t cookie_of(const Pipeline::Run* run, int32_t step) { return kStepCookieTag | reinterpret_cast<uintptr_t>(run) | static_cast<uint64_t>(step); }

// A step's (or the request's) tensor for one request: its rows of a batch's output.
struct View {
  TensorRef ref{};
  std::vector<int64_t> shape;
};

bool view_output(const BatchResult& result, int64_t row_offset, int64_t rows, const std::string& name, View* out) {
  for (const BatchOutput& o : result.outputs) {
    if (o.name != name) continue;
    out->shape = o.shape;
    uint64_t begin = 0;
    uint64_t end = o.buffer->size();
    if (result.sliced) {
      out->shape[0] = rows;
      if (!o.row_starts.empty()) {
        begin = o.row_starts[static_cast<size_t>(row_offset)];
        end = o.row_starts[static_cast<size_t>(row_offset + rows)];
      } else {
        const uint64_t row_bytes = o.buffer->size() / static_cast<uint64_t>(result.rows);
        begin = row_bytes * static_cast<uint64_t>(row_offset);
        end = begin + row_bytes * static_cast<uint64_t>(rows);
      }
    }
    out->ref = TensorRef{o.name.c_str(), o.dtype, static_cast<int32_t>(out->shape.size()), out->shape.data(), o.buffer->data() + begin, end - begin};
    return true;
  }
  return false;
}

}  // namespace

Status Pipeline::Create(PipelineConfig config, const FindModel& find, std::shared_ptr<CompletionQueue> completions, std::shared_ptr<Pipeline>* out) {
  const std::string& name = config.name;
  const auto n_steps = static_cast<int32_t>(config.steps.size());
  if (name.empty()) return Status(IR_ERROR_INVALID_ARGUMENT, "pipeline name is empty");
  if (n_steps < 1 || n_steps > kMaxPipelineSteps) return Status(IR_ERROR_INVALID_ARGUMENT, "pipeline '" + name + "' needs 1 to " + std::to_string(kMaxPipelineSteps) + " steps");
  if (config.outputs.empty()) return Status(IR_ERROR_INVALID_ARGUMENT, "pipeline '" + name + "' has no outputs");
  if (config.inputs.size() > static_cast<size_t>(kMaxInputs)) return Status(IR_ERROR_INVALID_ARGUMENT, "pipeline '" + name + "' takes at most " + std::to_string(kMaxInputs) + " inputs");
  if (config.priority_levels < 1 || config.priority_levels > 64) return Status(IR_ERROR_INVALID_ARGUMENT, "priority_levels must be in [1, 64]");
  if (config.default_timeout_ns < 0) return Status(IR_ERROR_INVALID_ARGUMENT, "default timeout must be >= 0");
  for (const TensorSig& sig : config.inputs) {
    if (!dtype_valid(sig.dtype)) return Status(IR_ERROR_INVALID_ARGUMENT, "pipeline '" + name + "': input '" + sig.name + "' has an unsupported dtype");
  }
  std::shared_ptr<Pipeline> pipeline(new Pipeline(std::move(config), std::move(completions)));
  const PipelineConfig& c = pipeline->config_;
  auto check_source = [&](const PipelineBinding& b, int32_t before, const std::string& where) -> Status {
    if (b.source_step < -1 || b.source_step >= before)
      return Status(IR_ERROR_INVALID_ARGUMENT, "pipeline '" + name + "': " + where + " reads step " + std::to_string(b.source_step) + ", which does not run before it");
    if (b.source_step == -1 && std::none_of(c.inputs.begin(), c.inputs.end(), [&](const TensorSig& s) { return s.name == b.source_tensor; }))
      return Status(IR_ERROR_INVALID_ARGUMENT, "pipeline '" + name + "': " + where + " reads request input '" + b.source_tensor + "', which the pipeline does not take");
    return Status::Ok();
  };
  for (int32_t s = 0; s < n_steps; ++s) {
    const PipelineStepConfig& sc = c.steps[static_cast<size_t>(s)];
    auto step = std::make_unique<Step>();
    step->name = sc.name;
    step->model_name = sc.model;
    step->inputs = sc.inputs;
    const std::string where = "step '" + sc.name + "'";
    for (int32_t k = 0; k < s; ++k) {
      if (pipeline->steps_[static_cast<size_t>(k)]->name == sc.name) return Status(IR_ERROR_INVALID_ARGUMENT, "pipeline '" + name + "': two steps are named '" + sc.name + "'");
    }
    Status found = find(sc.model, &step->model);
    if (!found.ok()) return Status(found.code(), "pipeline '" + name + "': " + where + ": " + found.message());
    const ModelConfig& mc = step->model->config();
    if (sc.inputs.empty() || sc.inputs.size() > static_cast<size_t>(kMaxInputs))
      return Status(IR_ERROR_INVALID_ARGUMENT, "pipeline '" + name + "': " + where + " needs 1 to " + std::to_string(kMaxInputs) + " inputs");
    for (const PipelineBinding& b : sc.inputs) {
      IR_RETURN_IF_ERROR(check_source(b, s, where));
      if (std::count_if(sc.inputs.begin(), sc.inputs.end(), [&](const PipelineBinding& o) { return o.tensor == b.tensor; }) > 1)
        return Status(IR_ERROR_INVALID_ARGUMENT, "pipeline '" + name + "': " + where + " fills input '" + b.tensor + "' twice");
      if (mc.fixed_signature && std::none_of(mc.inputs.begin(), mc.inputs.end(), [&](const TensorSig& t) { return t.name == b.tensor; }))
        return Status(IR_ERROR_INVALID_ARGUMENT, "pipeline '" + name + "': " + where + ": model '" + sc.model + "' has no input '" + b.tensor + "'");
    }
    if (mc.fixed_signature && sc.inputs.size() != mc.inputs.size())
      return Status(IR_ERROR_INVALID_ARGUMENT, "pipeline '" + name + "': " + where + " fills " + std::to_string(sc.inputs.size()) + " of model '" + sc.model + "''s " + std::to_string(mc.inputs.size()) + " inputs");
    for (const PipelineBinding& b : sc.inputs) {
      if (b.source_step < 0) continue;
      Step& source = *pipeline->steps_[static_cast<size_t>(b.source_step)];
      if (std::find(source.dependents.begin(), source.dependents.end(), s) == source.dependents.end()) {
        source.dependents.push_back(s);
        ++step->n_deps;
      }
    }
    pipeline->steps_.push_back(std::move(step));
  }
  for (const PipelineBinding& b : c.outputs) IR_RETURN_IF_ERROR(check_source(b, n_steps, "output '" + b.tensor + "'"));
  const int32_t last = c.outputs.front().source_step;
  const bool one_source = std::all_of(c.outputs.begin(), c.outputs.end(), [&](const PipelineBinding& b) { return b.source_step == last; });
  pipeline->terminal_ = one_source && last >= 0 ? last : -1;
  *out = std::move(pipeline);
  return Status::Ok();
}

Pipeline::Pipeline(PipelineConfig config, std::shared_ptr<CompletionQueue> completions) : config_(std::move(config)), completions_(std::move(completions)) {}

Pipeline::~Pipeline() = default;

const StepStats& Pipeline::step_stats(size_t step) const { return steps_.at(step)->stats; }

Status Pipeline::check_request(const TensorRef* inputs, int32_t n_inputs) const {
  if (n_inputs != static_cast<int32_t>(config_.inputs.size()))
    return Status(IR_ERROR_INVALID_ARGUMENT, "pipeline '" + config_.name + "' takes " + std::to_string(config_.inputs.size()) + " input(s), got " + std::to_string(n_inputs));
  for (int32_t i = 0; i < n_inputs; ++i) {
    const TensorRef& t = inputs[i];
    const TensorSig& sig = config_.inputs[static_cast<size_t>(i)];
    uint64_t elements = 0;
    std::string problem;
    if (!describe_tensor(t, &elements, &problem)) return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + sig.name + "': " + problem);
    if (t.dtype != sig.dtype) return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + sig.name + "': dtype " + dtype_name(t.dtype) + " does not match the pipeline's " + dtype_name(sig.dtype));
    bool ok = t.ndim == static_cast<int32_t>(sig.shape.size());
    for (int32_t d = 0; ok && d < t.ndim; ++d) ok = sig.shape[static_cast<size_t>(d)] == -1 || sig.shape[static_cast<size_t>(d)] == t.shape[d];
    if (!ok) return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + sig.name + "': shape " + shape_text(t.shape, t.ndim) + " does not match " + shape_text(sig.shape));
  }
  return Status::Ok();
}

Status Pipeline::check_options(int32_t priority, int64_t timeout_us) const {
  if (priority < 0 || priority >= config_.priority_levels)
    return Status(IR_ERROR_INVALID_ARGUMENT, "priority " + std::to_string(priority) + " is outside [0, " + std::to_string(config_.priority_levels) + ")");
  if (timeout_us < 0) return Status(IR_ERROR_INVALID_ARGUMENT, "timeout must be >= 0");
  return Status::Ok();
}

Status Pipeline::submit(uint64_t cookie, const TensorRef* inputs, int32_t n_inputs, int32_t priority, int64_t timeout_us, bool wake, CompletionSink* sink) {
  ModelStats::add(stats_.submitted);
  Status status = check_request(inputs, n_inputs);
  if (status.ok()) status = check_options(priority, timeout_us);
  if (!status.ok()) {
    ModelStats::add(stats_.failed_invalid);
    return status;
  }
  Outbox out;
  status = admit(cookie, inputs, n_inputs, priority, timeout_us, sink, out);
  flush(out, wake);
  return status;
}

Status Pipeline::submit_many(uint64_t first_cookie, const TensorRef* inputs, int32_t n_inputs, const int64_t* rows, int32_t n_requests, int32_t priority,
                             int64_t timeout_us, bool wake, int32_t* admitted) {
  *admitted = 0;
  if (n_requests < 1) return Status(IR_ERROR_INVALID_ARGUMENT, "no requests to submit");
  ModelStats::add(stats_.submitted, static_cast<uint64_t>(n_requests));
  Status status = check_request(inputs, n_inputs);
  if (status.ok()) status = check_options(priority, timeout_us);
  int64_t total = 0;
  for (int32_t i = 0; status.ok() && i < n_inputs; ++i) {
    const TensorRef& t = inputs[i];
    if (is_bytes(t.dtype) || t.ndim < 1 || (i > 0 && t.shape[0] != inputs[0].shape[0]))
      status = Status(IR_ERROR_INVALID_ARGUMENT, "requests split by rows need fixed-size inputs sharing their leading dimension");
  }
  for (int32_t k = 0; status.ok() && k < n_requests; ++k) {
    if (rows[k] < 1 || rows[k] > inputs[0].shape[0] - total)  // also keeps the sum from overflowing
      status = Status(IR_ERROR_INVALID_ARGUMENT, "request " + std::to_string(k) + " has " + std::to_string(rows[k]) + " rows; the inputs have " +
                                                     std::to_string(inputs[0].shape[0] - total) + " left");
    else total += rows[k];
  }
  if (status.ok() && total != inputs[0].shape[0])
    status = Status(IR_ERROR_INVALID_ARGUMENT, "the requests' rows add up to " + std::to_string(total) + ", the inputs have " + std::to_string(inputs[0].shape[0]));
  if (!status.ok()) {
    ModelStats::add(stats_.failed_invalid, static_cast<uint64_t>(n_requests));
    return status;
  }
  // Request k is rows [sum(rows[<k]), sum(rows[<=k])) of every input: descriptors over them.
  std::array<TensorRef, kMaxInputs> refs{};
  std::array<std::vector<int64_t>, kMaxInputs> shapes;
  for (int32_t i = 0; i < n_inputs; ++i) {
    refs[static_cast<size_t>(i)] = inputs[i];
    shapes[static_cast<size_t>(i)].assign(inputs[i].shape, inputs[i].shape + inputs[i].ndim);
    refs[static_cast<size_t>(i)].shape = shapes[static_cast<size_t>(i)].data();
  }
  Outbox out;
  int64_t first_row = 0;
  for (int32_t k = 0; k < n_requests; ++k) {
    for (int32_t i = 0; i < n_inputs; ++i) {
      const uint64_t row_bytes = inputs[i].byte_size / static_cast<uint64_t>(total);
      refs[static_cast<size_t>(i)].data = static_cast<const uint8_t*>(inputs[i].data) + static_cast<uint64_t>(first_row) * row_bytes;
      refs[static_cast<size_t>(i)].byte_size = static_cast<uint64_t>(rows[k]) * row_bytes;
      shapes[static_cast<size_t>(i)][0] = rows[k];
    }
    status = admit(first_cookie + static_cast<uint64_t>(k), refs.data(), n_inputs, priority, timeout_us, nullptr, out);
    if (!status.ok()) {
      ModelStats::add(stats_.cancelled, static_cast<uint64_t>(n_requests - k - 1));  // the refused tail
      break;
    }
    ++*admitted;
    first_row += rows[k];
  }
  flush(out, wake);
  return status;
}

// Admits one checked request: binds its steps' versions, submits its first steps (into
// `out`). Errors: UNAVAILABLE (closed, or a step's model no longer serving).
Status Pipeline::admit(uint64_t cookie, const TensorRef* inputs, int32_t n_inputs, int32_t priority, int64_t timeout_us, CompletionSink* sink, Outbox& out) {
  auto run = std::make_unique<Run>();
  run->pipeline = shared_from_this();
  run->cookie = cookie;
  run->sink = sink != nullptr ? sink : completions_.get();
  run->priority = priority;
  run->start_ns = now_ns();
  int64_t timeout_ns = config_.default_timeout_ns;  // a request may only shorten it
  timeout_us = std::min(timeout_us, int64_t{1} << 40);  // longer than any deadline we keep: no overflow below
  if (timeout_us > 0 && (timeout_ns == 0 || timeout_us < timeout_ns / 1000)) timeout_ns = timeout_us * 1000;
  run->deadline_ns = timeout_ns > 0 ? run->start_ns + timeout_ns : kNever;
  run->request.assign(inputs, inputs + n_inputs);
  run->request_shapes.resize(static_cast<size_t>(n_inputs));
  for (int32_t i = 0; i < n_inputs; ++i) {  // the descriptors are borrowed for this call only
    auto& shape = run->request_shapes[static_cast<size_t>(i)];
    shape.assign(inputs[i].shape, inputs[i].shape + inputs[i].ndim);
    run->request[static_cast<size_t>(i)].shape = shape.data();
    run->request[static_cast<size_t>(i)].name = config_.inputs[static_cast<size_t>(i)].name.c_str();
  }
  run->slots.resize(steps_.size());
  for (size_t s = 0; s < steps_.size(); ++s) run->slots[s].waiting = steps_[s]->n_deps;
  run->tokens = 1;  // this call's
  // Every step runs the version serving now, even if its model is replaced before the
  // request reaches it: a request never mixes versions.
  for (size_t s = 0; s < steps_.size(); ++s) {
    std::shared_ptr<Model> model = steps_[s]->current();
    for (int tries = 0; model != nullptr && !model->pin(); ++tries) {  // replaced just now: its successor
      std::shared_ptr<Model> next = tries < 8 ? steps_[s]->current() : nullptr;
      model = next == model ? nullptr : std::move(next);
    }
    if (model == nullptr) {
      for (size_t k = 0; k < s; ++k) run->slots[k].model->unpin();
      ModelStats::add(stats_.cancelled);
      return Status(IR_ERROR_UNAVAILABLE, "pipeline '" + config_.name + "', step '" + steps_[s]->name + "': model '" + steps_[s]->model_name + "' is not serving");
    }
    run->slots[s].model = std::move(model);
  }
  Run* r = run.get();
  {
    std::lock_guard<std::mutex> lock(mu_);  // checked and linked at once: a stop waits for every linked run
    if (closed_) {
      for (Run::Slot& slot : run->slots) slot.model->unpin();
      ModelStats::add(stats_.cancelled);
      return Status(IR_ERROR_UNAVAILABLE, "pipeline '" + config_.name + "' is not accepting requests (stopping)");
    }
    r = run.release();  // the list owns it now; finish() frees it
    r->next = runs_;
    if (runs_ != nullptr) runs_->prev = r;
    runs_ = r;
  }
  stats_.in_flight.fetch_add(1, std::memory_order_relaxed);
  for (int32_t s = 0; s < static_cast<int32_t>(steps_.size()); ++s) {
    if (steps_[static_cast<size_t>(s)]->n_deps != 0) continue;
    {
      std::lock_guard<std::mutex> lock(r->mu);
      if (r->failed) break;
      r->slots[static_cast<size_t>(s)].in_flight = true;
      ++r->tokens;
    }
    launch(r, s, out);
  }
  release(r, out);
  return Status::Ok();
}

void Pipeline::wake() {
  for (const auto& step : steps_) {
    if (step->n_deps == 0) step->current()->wake();
  }
}

// Submits step `s` of `run` (its token already taken) without waking its model (flush
// does, once per model); a refusal fails the run.
void Pipeline::launch(Run* run, int32_t s, Outbox& out) {
  Step& step = *steps_[static_cast<size_t>(s)];
  ModelStats::add(step.stats.submitted);
  Status status = submit_step(run, s, out);
  if (status.ok()) return;
  ModelStats::add(step.stats.failed);
  {
    std::lock_guard<std::mutex> lock(run->mu);
    run->slots[static_cast<size_t>(s)].in_flight = false;
  }
  fail(run, s, status);
  release(run, out);
}

void Pipeline::flush(Outbox& out, bool wake) {
  while (!out.launches.empty()) {  // a launch that fails may finish runs, never add launches
    std::vector<std::pair<Run*, int32_t>> launches;
    launches.swap(out.launches);
    for (const auto& [run, s] : launches) launch(run, s, out);
  }
  for (size_t i = 0; i < out.woken.size(); ++i) {
    bool seen = false;
    for (size_t k = 0; k < i && !seen; ++k) seen = out.woken[k] == out.woken[i];
    // A replaced version is woken now: the host's later ir_pipeline_wake reaches the new one.
    if (!seen && (wake || out.woken[i]->admission_closed())) out.woken[i]->wake();
  }
  // A host resolving the answers of one shared result as a run recognises its last answer by
  // row_offset + rows == batch_rows (runs finish in the order their last step completed, not
  // in row order): every answer of the group carries the end of the one delivered last.
  for (const Outbox::Shared& known : out.shared) {
    int64_t end = 0;
    for (const auto& item : out.finished) {
      if (item.second.result == known.result) end = item.second.row_offset + item.second.rows;
    }
    for (auto& item : out.finished) {
      if (item.second.result == known.result) item.second.batch_rows = end;
    }
  }
  size_t start = 0;
  while (start < out.finished.size()) {
    CompletionSink* sink = out.finished[start].first;
    std::vector<Completion> group;
    size_t end = start;
    for (; end < out.finished.size() && out.finished[end].first == sink; ++end) group.push_back(std::move(out.finished[end].second));
    sink->complete(group);
    start = end;
  }
}

Status Pipeline::submit_step(Run* run, int32_t s, Outbox& out) {
  Step& step = *steps_[static_cast<size_t>(s)];
  Run::Slot& slot = run->slots[static_cast<size_t>(s)];
  int64_t timeout_us = 0;
  if (run->deadline_ns != kNever) {
    const int64_t left = run->deadline_ns - now_ns();
    if (left <= 0) return Status(IR_ERROR_DEADLINE_EXCEEDED, "the request's deadline passed before this step could start");
    timeout_us = std::max<int64_t>(1, left / 1000);
  }
  // The version bound at admission, copied: once admitted, the step may complete and the
  // run finish (and be freed) on another thread before submit_many returns.
  const std::shared_ptr<Model> model = slot.model;
  const ModelConfig& mc = model->config();
  // The step's inputs in its model's order (by name: a replacement may order them anew).
  const size_t n = step.inputs.size();
  std::array<View, kMaxInputs> views;
  std::array<TensorRef, kMaxInputs> refs{};
  for (size_t i = 0; i < n; ++i) {
    const PipelineBinding* b = &step.inputs[i];
    if (mc.fixed_signature) {
      if (mc.inputs.size() != n) return Status(IR_ERROR_INVALID_ARGUMENT, "the model now takes " + std::to_string(mc.inputs.size()) + " inputs; the step fills " + std::to_string(n));
      auto it = std::find_if(step.inputs.begin(), step.inputs.end(), [&](const PipelineBinding& x) { return x.tensor == mc.inputs[i].name; });
      if (it == step.inputs.end()) return Status(IR_ERROR_INVALID_ARGUMENT, "the step does not fill the model's input '" + mc.inputs[i].name + "'");
      b = &*it;
    }
    if (b->source_step < 0) {
      auto at = std::find_if(config_.inputs.begin(), config_.inputs.end(), [&](const TensorSig& t) { return t.name == b->source_tensor; });
      refs[i] = run->request[static_cast<size_t>(at - config_.inputs.begin())];
    } else {
      const Run::Slot& from = run->slots[static_cast<size_t>(b->source_step)];
      if (!view_output(*from.result, from.row_offset, from.rows, b->source_tensor, &views[i]))
        return Status(IR_ERROR_INTERNAL, "step '" + steps_[static_cast<size_t>(b->source_step)]->name + "' produced no output '" + b->source_tensor + "'");
      refs[i] = views[i].ref;
    }
    refs[i].name = b->tensor.c_str();
  }
  const int32_t priority = std::min(run->priority, mc.policy.priority_levels - 1);
  {
    std::lock_guard<std::mutex> lock(run->mu);
    if (run->failed) return Status(IR_ERROR_CANCELLED, "not run: another step failed");
    slot.submit_ns = now_ns();
    slot.submitted = true;  // from now on a failure elsewhere may cancel it
  }
  int32_t admitted = 0;
  Status status = model->submit_many(cookie_of(run, s), refs.data(), static_cast<int32_t>(n), nullptr, 1, priority, timeout_us, false, &admitted, this, true);
  if (status.ok()) out.woken.push_back(model);
  return status;
}

void Pipeline::complete(std::vector<Completion>& done) {
  Outbox out;
  for (Completion& c : done) step_done(run_of(c.cookie), step_of(c.cookie), std::move(c), out);
  done.clear();
  flush(out, true);
}

void Pipeline::step_done(Run* run, int32_t s, Completion&& done, Outbox& out) {
  Step& step = *steps_[static_cast<size_t>(s)];
  if (!done.error.ok()) {
    ModelStats::add(step.stats.failed);
    {
      std::lock_guard<std::mutex> lock(run->mu);
      Run::Slot& slot = run->slots[static_cast<size_t>(s)];
      slot.in_flight = false;
    }
    fail(run, s, done.error);
    release(run, out);
    return;
  }
  const int64_t took = now_ns() - run->slots[static_cast<size_t>(s)].submit_ns;
  ModelStats::add(step.stats.succeeded);
  ModelStats::add(step.stats.step_ns_sum, static_cast<uint64_t>(took));
  ModelStats::add(step.stats.step_ns_buckets[duration_bucket(took)]);
  {
    std::lock_guard<std::mutex> lock(run->mu);
    Run::Slot& slot = run->slots[static_cast<size_t>(s)];
    slot.in_flight = false;
    slot.done = true;
    slot.result = std::move(done.result);
    slot.row_offset = done.row_offset;
    slot.rows = done.rows;
    if (!run->failed) {
      for (int32_t d : step.dependents) {
        Run::Slot& next = run->slots[static_cast<size_t>(d)];
        if (--next.waiting == 0) {
          next.in_flight = true;
          ++run->tokens;
          out.launches.emplace_back(run, d);
        }
      }
    }
  }
  release(run, out);  // the finished step's token (a launch pending in `out` holds another)
}

// Records the run's first failure and cancels its other queued steps. The caller holds a token.
void Pipeline::fail(Run* run, int32_t s, const Status& error) {
  {
    std::lock_guard<std::mutex> lock(run->mu);
    if (run->failed) return;
    run->failed = true;
    if (s < 0) {
      run->error = error;
    } else {
      const Step& step = *steps_[static_cast<size_t>(s)];
      run->error = step_error(config_.name, step.name, step.model_name, error);
    }
  }
  cancel_steps(run);
}

void Pipeline::cancel_steps(Run* run) {
  std::array<std::pair<std::shared_ptr<Model>, int32_t>, kMaxPipelineSteps> queued;
  size_t n = 0;
  {
    std::lock_guard<std::mutex> lock(run->mu);
    for (size_t s = 0; s < run->slots.size(); ++s) {
      if (run->slots[s].in_flight && run->slots[s].submitted) queued[n++] = {run->slots[s].model, static_cast<int32_t>(s)};
    }
  }
  // A queued step completes CANCELLED (through step_done) and never runs; a running one
  // returns when its batch does.
  for (size_t i = 0; i < n; ++i) queued[i].first->cancel(cookie_of(run, queued[i].second));
}

bool Pipeline::cancel(uint64_t cookie) {
  Run* found = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Run* r = runs_; r != nullptr; r = r->next) {
      if (r->cookie != cookie) continue;
      std::lock_guard<std::mutex> run_lock(r->mu);
      if (r->tokens == 0 || r->failed) return false;  // finishing, or failing already
      ++r->tokens;
      found = r;
      break;
    }
  }
  if (found == nullptr) return false;
  fail(found, -1, Status(IR_ERROR_CANCELLED, "pipeline '" + config_.name + "': request cancelled by the caller"));
  Outbox out;
  release(found, out);
  flush(out, true);
  return true;
}

void Pipeline::release(Run* run, Outbox& out) {
  {
    std::lock_guard<std::mutex> lock(run->mu);
    if (--run->tokens > 0) return;
  }
  finish(run, out);
}

Status Pipeline::collect_outputs(const Run& run, std::shared_ptr<BatchResult>* out) const {
  auto result = std::make_shared<BatchResult>();
  result->outputs.reserve(config_.outputs.size());
  for (const PipelineBinding& b : config_.outputs) {
    BatchOutput o;
    o.name = b.tensor;
    if (b.source_step < 0) {  // the request's own tensor: the caller's memory, so copied
      auto at = std::find_if(config_.inputs.begin(), config_.inputs.end(), [&](const TensorSig& t) { return t.name == b.source_tensor; });
      const TensorRef& t = run.request[static_cast<size_t>(at - config_.inputs.begin())];
      o.dtype = t.dtype;
      o.shape.assign(t.shape, t.shape + t.ndim);
      o.buffer = Buffer::Allocate(t.byte_size);
      if (t.byte_size > 0) std::memcpy(o.buffer->data(), t.data, t.byte_size);
    } else {  // the producing step's rows, aliased: its batch result lives as long as they do
      const Run::Slot& slot = run.slots[static_cast<size_t>(b.source_step)];
      View view;
      if (!view_output(*slot.result, slot.row_offset, slot.rows, b.source_tensor, &view))
        return Status(IR_ERROR_INTERNAL, "step '" + steps_[static_cast<size_t>(b.source_step)]->name + "' produced no output '" + b.source_tensor + "'");
      o.dtype = view.ref.dtype;
      o.shape = std::move(view.shape);
      o.buffer = Buffer::Adopt(const_cast<void*>(view.ref.data), view.ref.byte_size, release_held, new std::shared_ptr<const BatchResult>(slot.result));
    }
    result->outputs.push_back(std::move(o));
  }
  const BatchOutput& first = result->outputs.front();
  result->rows = first.shape.empty() ? 1 : first.shape[0];
  *out = std::move(result);
  return Status::Ok();
}

// The result a caller's answer shares with the other answers from the same batch of the
// final step, or nullptr when an output is missing (collect_outputs then reports it).
std::shared_ptr<BatchResult> Pipeline::shared_result(const std::shared_ptr<const BatchResult>& held, Outbox& out) const {
  const BatchResult& source = *held;
  for (Outbox::Shared& known : out.shared) {
    if (known.source.get() == &source) return known.result;
  }
  auto result = std::make_shared<BatchResult>();
  result->rows = source.rows;
  result->sliced = true;
  for (const PipelineBinding& b : config_.outputs) {
    auto it = std::find_if(source.outputs.begin(), source.outputs.end(), [&](const BatchOutput& o) { return o.name == b.source_tensor; });
    if (it == source.outputs.end()) return nullptr;
    result->outputs.push_back(*it);  // shares the buffer
    result->outputs.back().name = b.tensor;
  }
  out.shared.push_back(Outbox::Shared{held, result});
  return result;
}

void Pipeline::finish(Run* run, Outbox& out) {
  std::unique_ptr<Run> owned(run);
  Completion c;
  c.cookie = run->cookie;
  Status error = run->error;
  if (!run->failed && terminal_ >= 0) {  // every output from one step: share its batch's result
    const Run::Slot& slot = run->slots[static_cast<size_t>(terminal_)];
    if (slot.result->sliced) {
      c.result = shared_result(slot.result, out);
      c.row_offset = slot.row_offset;
      c.rows = slot.rows;  // batch_rows: set by flush, once every answer of the batch is known
    }
  }
  if (!run->failed && c.result == nullptr) {
    std::shared_ptr<BatchResult> result;
    Status collected;
    try {
      collected = collect_outputs(*run, &result);
    } catch (const std::bad_alloc&) {
      collected = Status(IR_ERROR_RESOURCE_EXHAUSTED, "out of memory collecting the pipeline's outputs");
    }
    if (collected.ok()) {
      c.rows = c.batch_rows = result->rows;
      c.result = std::move(result);
    } else {
      error = Status(collected.code(), "pipeline '" + config_.name + "': " + collected.message());
    }
  }
  const int64_t took = now_ns() - run->start_ns;
  if (c.result != nullptr) {
    ModelStats::add(stats_.succeeded);
    ModelStats::add(stats_.request_ns_sum, static_cast<uint64_t>(took));
    ModelStats::add(stats_.request_ns_buckets[duration_bucket(took)]);
  } else {
    c.error = error;
    switch (error.code()) {
      case IR_ERROR_RESOURCE_EXHAUSTED: ModelStats::add(stats_.rejected_queue_full); break;
      case IR_ERROR_DEADLINE_EXCEEDED: ModelStats::add(stats_.timed_out); break;
      case IR_ERROR_CANCELLED: case IR_ERROR_UNAVAILABLE: ModelStats::add(stats_.cancelled); break;
      case IR_ERROR_INVALID_ARGUMENT: ModelStats::add(stats_.failed_invalid); break;
      default: ModelStats::add(stats_.failed_backend); break;
    }
  }
  for (Run::Slot& slot : run->slots) slot.model->unpin();
  run->slots.clear();  // drops the steps' results before the caller hears (their memory is aliased where needed)
  CompletionSink* sink = run->sink;
  out.keep_alive = std::move(run->pipeline);  // the last run may hold the last reference
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (run->prev != nullptr) run->prev->next = run->next;
    else runs_ = run->next;
    if (run->next != nullptr) run->next->prev = run->prev;
    if (runs_ == nullptr) idle_cv_.notify_all();
  }
  stats_.in_flight.fetch_sub(1, std::memory_order_relaxed);
  owned.reset();
  out.finished.emplace_back(sink, std::move(c));
}

void Pipeline::close_admission() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  wake();  // a host's last burst may still be staged (IR_SUBMIT_NO_WAKE): the drain needs it running
}

bool Pipeline::wait_idle(int64_t deadline_ns) {
  std::unique_lock<std::mutex> lock(mu_);
  auto idle = [this] { return runs_ == nullptr; };
  if (deadline_ns == kNever) {
    idle_cv_.wait(lock, idle);
    return true;
  }
  return idle_cv_.wait_for(lock, std::chrono::nanoseconds(std::max<int64_t>(0, deadline_ns - now_ns())), idle);
}

}  // namespace ir
