#include "model.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <new>
#include <string>
#include <utility>

#include "../backends/backend.hpp"
#include "clock.hpp"
#include "dtype.hpp"

namespace ir {

namespace {

constexpr int64_t kTimerTickNs = 1000000;        // deadlines fire within about this of their time
constexpr int64_t kMaxTimeoutUs = int64_t{1} << 40;  // ~12.7 days
constexpr int64_t kTimerLingerNs = 100000000;    // keep ticking this long after the last deadline

// A native backend serves exactly the signature it reports: the config may narrow a -1
// dimension but not rename, reorder or retype a tensor.
Status check_native(const ModelConfig& config, const Backend& backend) {
  if (backend.instances() != config.instances)
    return Status(IR_ERROR_INVALID_ARGUMENT, "the backend was opened for " + std::to_string(backend.instances()) + " instance(s), the model has " + std::to_string(config.instances));
  if (config.policy.batching && config.policy.max_batch_size > backend.max_rows())
    return Status(IR_ERROR_INVALID_ARGUMENT, "max_batch_size " + std::to_string(config.policy.max_batch_size) + " exceeds the backend's largest batch (" + std::to_string(backend.max_rows()) + " rows)");
  if (backend.min_rows() > 1)
    return Status(IR_ERROR_INVALID_ARGUMENT, "the backend needs batches of at least " + std::to_string(backend.min_rows()) + " rows; the engine does not pad batches");
  const std::vector<TensorSig>* found = backend.inputs();
  if (found == nullptr) return Status::Ok();
  if (!config.fixed_signature || config.inputs.size() != found->size())
    return Status(IR_ERROR_INVALID_ARGUMENT, "the model's inputs must be the backend's " + std::to_string(found->size()) + " input(s), in order");
  for (size_t i = 0; i < found->size(); ++i) {
    const TensorSig& want = config.inputs[i];
    const TensorSig& got = (*found)[i];
    bool ok = want.name == got.name && want.dtype == got.dtype && want.shape.size() == got.shape.size();
    for (size_t d = 0; ok && d < want.shape.size(); ++d) ok = got.shape[d] == -1 || got.shape[d] == want.shape[d];
    if (!ok) return Status(IR_ERROR_INVALID_ARGUMENT, "input " + std::to_string(i) + " ('" + want.name + "') does not match the backend's '" + got.name + "' " + shape_text(got.shape));
  }
  return Status::Ok();
}

Status check_config(const ModelConfig& config) {
  if (config.name.empty()) return Status(IR_ERROR_INVALID_ARGUMENT, "model name is empty");
  if (config.instances < 1) return Status(IR_ERROR_INVALID_ARGUMENT, "instances must be >= 1");
  const BatchPolicy& p = config.policy;
  if (p.max_queue_size < 1) return Status(IR_ERROR_INVALID_ARGUMENT, "max_queue_size must be >= 1");
  if (p.priority_levels < 1 || p.priority_levels > 64) return Status(IR_ERROR_INVALID_ARGUMENT, "priority_levels must be in [1, 64]");
  if (p.batching) {
    if (p.max_batch_size < 1) return Status(IR_ERROR_INVALID_ARGUMENT, "max_batch_size must be >= 1");
    if (p.max_queue_delay_ns < 0) return Status(IR_ERROR_INVALID_ARGUMENT, "max_queue_delay_us must be >= 0");
    for (size_t i = 0; i < p.preferred.size(); ++i) {
      if (p.preferred[i] < 1 || p.preferred[i] > p.max_batch_size || (i > 0 && p.preferred[i] <= p.preferred[i - 1]))
        return Status(IR_ERROR_INVALID_ARGUMENT, "preferred batch sizes must be ascending, unique and <= max_batch_size");
    }
  }
  if (config.inputs.size() > static_cast<size_t>(kMaxInputs)) return Status(IR_ERROR_INVALID_ARGUMENT, "a model takes at most " + std::to_string(kMaxInputs) + " inputs");
  for (const TensorSig& sig : config.inputs) {
    if (!dtype_valid(sig.dtype)) return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + sig.name + "': unsupported dtype");
    if (p.batching && (sig.shape.empty() || sig.shape[0] != -1))
      return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + sig.name + "': with batching the leading dimension must be -1");
  }
  for (const TensorSig& sig : config.outputs) {
    if (!dtype_valid(sig.dtype)) return Status(IR_ERROR_INVALID_ARGUMENT, "output '" + sig.name + "': unsupported dtype");
  }
  return Status::Ok();
}

}  // namespace

Status Model::Create(ModelConfig config, std::shared_ptr<CompletionQueue> completions, std::unique_ptr<Backend>* backend, std::shared_ptr<Model>* out) {
  IR_RETURN_IF_ERROR(check_config(config));
  if (config.runner == Runner::kNative) {
    if (backend == nullptr || *backend == nullptr) return Status(IR_ERROR_INVALID_ARGUMENT, "a native model needs an opened backend");
    IR_RETURN_IF_ERROR(check_native(config, **backend));
  }
  std::shared_ptr<Model> model(new Model(std::move(config), std::move(completions)));
  if (model->config_.runner == Runner::kNative) {
    model->backend_ = std::move(*backend);
    model->pool_->start_native(model->backend_.get());
  }
  model->timer_ = std::thread([m = model.get()] { m->run_timekeeper(); });
  *out = std::move(model);
  return Status::Ok();
}

Model::Model(ModelConfig config, std::shared_ptr<CompletionQueue> completions) : config_(std::move(config)), completions_(std::move(completions)) {
  scheduler_ = std::make_unique<Scheduler>(config_.name, config_.policy, config_.instances, config_.idle_spin_ns, &stats_, this);
  pool_ = std::make_unique<InstancePool>(this, config_.instances, config_.execution_timeout_ns > 0);
}

Model::~Model() {
  shut_down(kNever);
  {
    std::lock_guard<std::mutex> lock(timer_mu_);
    timer_exit_ = true;
  }
  timer_cv_.notify_all();
  if (timer_.joinable()) timer_.join();
  pool_.reset();  // joins workers before the backend goes
  backend_.reset();
}

Status Model::check_inputs(const TensorRef* inputs, int32_t n_inputs, int64_t* rows) const {
  const bool batching = config_.policy.batching;
  if (config_.fixed_signature && n_inputs != static_cast<int32_t>(config_.inputs.size()))
    return Status(IR_ERROR_INVALID_ARGUMENT, "model '" + config_.name + "' takes " + std::to_string(config_.inputs.size()) + " input(s), got " + std::to_string(n_inputs));
  if (n_inputs < 1) return Status(IR_ERROR_INVALID_ARGUMENT, "a request needs at least one input");
  if (n_inputs > kMaxInputs) return Status(IR_ERROR_INVALID_ARGUMENT, "a request takes at most " + std::to_string(kMaxInputs) + " inputs, got " + std::to_string(n_inputs));
  *rows = 1;
  for (int32_t i = 0; i < n_inputs; ++i) {
    const TensorRef& t = inputs[i];
    std::string label = config_.fixed_signature ? config_.inputs[static_cast<size_t>(i)].name : (t.name ? t.name : "?");
    uint64_t elements = 0;
    std::string problem;
    if (!describe_tensor(t, &elements, &problem)) return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + label + "': " + problem);
    if (config_.fixed_signature) {
      const TensorSig& sig = config_.inputs[static_cast<size_t>(i)];
      if (t.dtype != sig.dtype) return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + label + "': dtype " + dtype_name(t.dtype) + " does not match the model's " + dtype_name(sig.dtype));
      bool ok = t.ndim == static_cast<int32_t>(sig.shape.size());
      for (int32_t d = 0; ok && d < t.ndim; ++d) ok = sig.shape[static_cast<size_t>(d)] == -1 || sig.shape[static_cast<size_t>(d)] == t.shape[d];
      if (!ok) return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + label + "': shape " + shape_text(t.shape, t.ndim) + " does not match " + shape_text(sig.shape));
    } else if (t.name == nullptr || *t.name == '\0') {
      return Status(IR_ERROR_INVALID_ARGUMENT, "input " + std::to_string(i) + " has no name");
    }
    if (batching) {
      if (t.ndim < 1 || t.shape[0] < 1) return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + label + "': needs a leading batch dimension >= 1");
      if (i == 0) *rows = t.shape[0];
      else if (t.shape[0] != *rows) return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + label + "': batch dimension differs from the other inputs");
    }
  }
  return Status::Ok();
}

Status Model::check_parts(const TensorRef* inputs, int32_t n_inputs, const int64_t* rows, int32_t n_requests, int64_t total_rows) const {
  const int64_t limit = config_.policy.max_batch_size;
  if (rows == nullptr) {  // one request: its rows are the leading dimension
    if (config_.policy.batching && total_rows > limit)
      return Status(IR_ERROR_INVALID_ARGUMENT, "request has " + std::to_string(total_rows) + " rows; max_batch_size is " + std::to_string(limit));
    return Status::Ok();
  }
  if (!config_.policy.batching) return Status(IR_ERROR_INVALID_ARGUMENT, "model '" + config_.name + "' does not batch: submit its requests one at a time");
  for (int32_t i = 0; i < n_inputs; ++i) {
    if (is_bytes(inputs[i].dtype)) return Status(IR_ERROR_INVALID_ARGUMENT, "BYTES inputs cannot be split into requests by rows: submit them one at a time");
  }
  int64_t sum = 0;
  for (int32_t k = 0; k < n_requests; ++k) {
    if (rows[k] < 1 || rows[k] > limit)
      return Status(IR_ERROR_INVALID_ARGUMENT, "request " + std::to_string(k) + " has " + std::to_string(rows[k]) + " rows; each needs 1 to " + std::to_string(limit) + " (max_batch_size)");
    sum += rows[k];
  }
  if (sum != total_rows) return Status(IR_ERROR_INVALID_ARGUMENT, "the requests' rows add up to " + std::to_string(sum) + ", the inputs have " + std::to_string(total_rows));
  return Status::Ok();
}

Status Model::submit_many(uint64_t first_cookie, const TensorRef* inputs, int32_t n_inputs, const int64_t* rows, int32_t n_requests, int32_t priority,
                          int64_t timeout_us, bool wake, int32_t* admitted, CompletionSink* sink, bool pinned) {
  *admitted = 0;
  if (n_requests < 1) return Status(IR_ERROR_INVALID_ARGUMENT, "no requests to submit");
  ModelStats::add(stats_.submitted, static_cast<uint64_t>(n_requests));
  int64_t total_rows = 1;
  Status status = check_inputs(inputs, n_inputs, &total_rows);
  if (status.ok()) status = check_parts(inputs, n_inputs, rows, n_requests, total_rows);
  if (status.ok() && (priority < 0 || priority >= config_.policy.priority_levels))
    status = Status(IR_ERROR_INVALID_ARGUMENT, "priority " + std::to_string(priority) + " is outside [0, " + std::to_string(config_.policy.priority_levels) + ")");
  if (status.ok() && timeout_us < 0) status = Status(IR_ERROR_INVALID_ARGUMENT, "timeout must be >= 0");
  if (!status.ok()) {
    ModelStats::add(stats_.failed_invalid, static_cast<uint64_t>(n_requests));
    return status;
  }
  // A request may only shorten the model's default timeout; compared in microseconds, so no
  // value a caller passes can overflow.
  int64_t timeout_ns = config_.default_timeout_ns;
  timeout_us = std::min(timeout_us, kMaxTimeoutUs);  // longer than any deadline we keep: no overflow below
  if (timeout_us > 0 && (timeout_ns == 0 || timeout_us < timeout_ns / 1000)) timeout_ns = timeout_us * 1000;
  if (sink == nullptr) sink = completions_.get();
  int64_t first_row = 0;
  status = scheduler_->admit(n_requests, wake, admitted, [&](Request* request, int32_t k) {
    const int64_t request_rows = rows == nullptr ? total_rows : rows[k];
    fill_views(request, inputs, n_inputs, first_row, request_rows, total_rows);
    request->cookie = first_cookie + static_cast<uint64_t>(k);
    request->priority = priority;
    request->rows = request_rows;
    request->deadline_ns = timeout_ns > 0 ? now_ns() + timeout_ns : kNever;
    request->sink = sink;
    first_row += request_rows;
  }, pinned);
  if (status.code() == IR_ERROR_UNAVAILABLE && !status.ok()) {
    std::shared_ptr<Model> next;
    {
      std::lock_guard<std::mutex> lock(successor_mu_);
      next = successor_;
    }
    if (next != nullptr) {  // replaced: the successor admits (and counts) these requests
      stats_.submitted.fetch_sub(static_cast<uint64_t>(n_requests), std::memory_order_relaxed);
      return next->submit_many(first_cookie, inputs, n_inputs, rows, n_requests, priority, timeout_us, wake, admitted, sink, pinned);
    }
  }
  if (*admitted > 0 && timeout_ns > 0) arm_timekeeper();
  return status;
}

void Model::fill_views(Request* request, const TensorRef* inputs, int32_t n_inputs, int64_t first_row, int64_t rows, int64_t total_rows) const {
  request->inputs.resize(static_cast<size_t>(n_inputs));
  const bool whole = first_row == 0 && rows == total_rows;
  for (int32_t i = 0; i < n_inputs; ++i) {
    const TensorRef& t = inputs[i];
    InputView& view = request->inputs[static_cast<size_t>(i)];
    view.dtype = t.dtype;
    view.shape.assign(t.shape, t.shape + t.ndim);
    if (whole) {
      view.data = t.data;
      view.byte_size = t.byte_size;
    } else {  // rows [first_row, first_row + rows) of a fixed-size-row input
      const uint64_t row_bytes = t.byte_size / static_cast<uint64_t>(total_rows);
      view.shape[0] = rows;
      view.data = static_cast<const uint8_t*>(t.data) + static_cast<uint64_t>(first_row) * row_bytes;
      view.byte_size = static_cast<uint64_t>(rows) * row_bytes;
    }
    if (!config_.fixed_signature) view.name = t.name;
  }
}

void Model::wake() { scheduler_->wake(); }

bool Model::cancel(uint64_t cookie) { return scheduler_->cancel(cookie); }

Status Model::next_batch(int32_t instance, int64_t timeout_ns, Batch** out) {
  if (config_.runner != Runner::kExternal) return Status(IR_ERROR_INVALID_ARGUMENT, "model '" + config_.name + "' runs natively; it has no batches to pull");
  return pool_->pull(instance, timeout_ns, out);
}

void Model::finish(Batch* batch, Status error) { pool_->finish(batch, std::move(error)); }

void Model::count_dispatch(const Batch& batch) {
  ModelStats::add(stats_.batches);
  switch (batch.reason) {
    case DispatchReason::kPreferred: ModelStats::add(stats_.batches_preferred); break;
    case DispatchReason::kDelay: ModelStats::add(stats_.batches_delay); break;
    case DispatchReason::kEarly: ModelStats::add(stats_.batches_early); break;
    default: ModelStats::add(stats_.batches_full); break;
  }
  ModelStats::add(stats_.batched_rows, static_cast<uint64_t>(batch.rows));
  ModelStats::add(stats_.batch_rows_buckets[rows_bucket(batch.rows)]);
  for (const Request* r : batch.requests) {
    const int64_t waited = batch.dispatch_ns - r->enqueue_ns;
    ModelStats::add(stats_.queue_ns_sum, static_cast<uint64_t>(waited));
    ModelStats::add(stats_.queue_ns_buckets[duration_bucket(waited)]);
  }
}

void Model::complete(Batch& batch, const Status& error) {
  const int64_t done_ns = now_ns();
  const int64_t compute = done_ns - batch.dispatch_ns;
  ModelStats::add(stats_.compute_ns_sum, static_cast<uint64_t>(compute));
  ModelStats::add(stats_.compute_ns_buckets[duration_bucket(compute)]);
  std::vector<Completion> done;
  batch.complete_into(error, done_ns, &done);
  uint64_t ok = 0;
  for (size_t k = 0; k < done.size(); ++k) {
    if (done[k].error.ok()) {
      ++ok;
      const int64_t total = done_ns - batch.requests[k]->enqueue_ns;
      ModelStats::add(stats_.request_ns_sum, static_cast<uint64_t>(total));
      ModelStats::add(stats_.request_ns_buckets[duration_bucket(total)]);
    }
  }
  ModelStats::add(stats_.succeeded, ok);
  ModelStats::add(stats_.failed_backend, done.size() - ok);
  deliver(done, batch.requests);
}

void Model::fail(const std::vector<Request*>& requests, ir_code code, const std::string& what) {
  if (requests.empty()) return;
  std::vector<Completion> done;
  done.reserve(requests.size());
  const Status error(code, "model '" + config_.name + "': " + what);
  for (const Request* r : requests) done.push_back(Completion{r->cookie, nullptr, error, 0, r->rows, r->rows});
  const auto n = static_cast<uint64_t>(requests.size());
  ModelStats::add(code == IR_ERROR_DEADLINE_EXCEEDED ? stats_.timed_out : stats_.cancelled, n);
  deliver(done, requests);
}

// Hands completions to their requests' sinks (consecutive requests with one sink in one call).
// The counters settle before anyone can see the completions.
void Model::deliver(std::vector<Completion>& done, const std::vector<Request*>& requests) {
  stats_.in_flight.fetch_sub(static_cast<int64_t>(done.size()), std::memory_order_relaxed);
  mark_run_ends(done, requests);
  size_t start = 0;
  while (start < done.size()) {
    CompletionSink* sink = requests[start]->sink;
    size_t end = start + 1;
    while (end < done.size() && requests[end]->sink == sink) ++end;
    if (start == 0 && end == done.size()) {
      sink->complete(done);
      return;
    }
    std::vector<Completion> part(std::make_move_iterator(done.begin() + static_cast<std::ptrdiff_t>(start)), std::make_move_iterator(done.begin() + static_cast<std::ptrdiff_t>(end)));
    sink->complete(part);
    start = end;
  }
}

// A host resolves the answers of one batch as a run and knows its last one by row_offset +
// rows == batch_rows. When some of the batch's requests go elsewhere (a pipeline step shares
// the batch) or fail alone, the answers a sink gets end earlier: each successful answer then
// carries the end of the last one its sink gets, so the host never waits for rows it will
// not see.
void Model::mark_run_ends(std::vector<Completion>& done, const std::vector<Request*>& requests) {
  if (done.size() < 2) return;
  std::array<std::pair<CompletionSink*, int64_t>, 4> ends{};
  size_t n_ends = 0;
  for (size_t k = 0; k < done.size(); ++k) {
    if (!done[k].error.ok() || done[k].result == nullptr || !done[k].result->sliced) continue;
    CompletionSink* sink = requests[k]->sink;
    size_t e = 0;
    while (e < n_ends && ends[e].first != sink) ++e;
    if (e == n_ends) {
      if (n_ends == ends.size()) return;  // more sinks than tracked: left as they are (never seen in practice)
      ends[n_ends++] = {sink, 0};
    }
    ends[e].second = done[k].row_offset + done[k].rows;
  }
  for (size_t k = 0; k < done.size(); ++k) {
    if (!done[k].error.ok() || done[k].result == nullptr || !done[k].result->sliced) continue;
    for (size_t e = 0; e < n_ends; ++e) {
      if (ends[e].first == requests[k]->sink) done[k].batch_rows = ends[e].second;
    }
  }
}

void Model::set_successor(std::shared_ptr<Model> successor) {
  std::lock_guard<std::mutex> lock(successor_mu_);
  successor_ = std::move(successor);
}

std::shared_ptr<Model> Model::successor() {
  std::lock_guard<std::mutex> lock(successor_mu_);
  return successor_;
}

void Model::close_admission() { scheduler_->close_admission(); }

bool Model::wait_idle(int64_t deadline_ns) { return scheduler_->wait_idle(deadline_ns); }

void Model::shut_down(int64_t join_deadline_ns) {
  {
    std::lock_guard<std::mutex> lock(shutdown_mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  scheduler_->shut_down();
  if (!pool_->join(join_deadline_ns)) {
    leak_for_stuck_worker();
    return;
  }
  // The workers are gone: the backend (sessions, plugin state) can go now, even while ABI
  // handles keep this model's shell -- and its successor, for late submissions -- alive.
  backend_.reset();
}

void Model::leak_for_stuck_worker() {
  std::lock_guard<std::mutex> lock(successor_mu_);
  if (keep_alive_ == nullptr) keep_alive_ = shared_from_this();  // a deliberate cycle: never freed
}

void Model::arm_timekeeper() {
  if (timer_armed_.load(std::memory_order_relaxed)) return;
  {
    std::lock_guard<std::mutex> lock(timer_mu_);
    timer_armed_.store(true, std::memory_order_relaxed);
  }
  timer_cv_.notify_one();
}

void Model::run_timekeeper() {
  std::unique_lock<std::mutex> lock(timer_mu_);
  int64_t quiet_since = -1;
  const bool watch_running = config_.execution_timeout_ns > 0;
  while (!timer_exit_) {
    if (!timer_armed_.load(std::memory_order_relaxed) && !watch_running) {
      timer_cv_.wait(lock, [this] { return timer_exit_ || timer_armed_.load(std::memory_order_relaxed); });
      quiet_since = -1;
      continue;
    }
    timer_cv_.wait_for(lock, std::chrono::nanoseconds(kTimerTickNs));
    if (timer_exit_) break;
    lock.unlock();
    const int64_t now = now_ns();
    bool pending = scheduler_->expire_due(now);
    if (watch_running) {
      pool_->expire_running(now, config_.execution_timeout_ns);
      pending = true;
    }
    lock.lock();
    if (pending) {
      quiet_since = -1;
    } else if (quiet_since < 0) {
      quiet_since = now;
    } else if (now - quiet_since > kTimerLingerNs) {
      timer_armed_.store(false, std::memory_order_relaxed);  // the next deadlined admission re-arms
    }
  }
}

}  // namespace ir
