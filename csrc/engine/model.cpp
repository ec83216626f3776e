#include "model.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <new>
#include <string>
#include <utility>

#include "../backends/native_backend.hpp"
#include "clock.hpp"
#include "dtype.hpp"

namespace ir {

namespace {

std::chrono::steady_clock::time_point to_time_point(int64_t ns) {
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(ns));
}

std::string shape_text(const int64_t* shape, int32_t ndim) {
  std::string out = "[";
  for (int32_t i = 0; i < ndim; ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

std::string shape_text(const std::vector<int64_t>& shape) {
  return shape_text(shape.data(), static_cast<int32_t>(shape.size()));
}

// A native backend serves exactly the signature it read from its artifact: the config may
// narrow a -1 dimension but not rename, reorder or retype a tensor.
Status check_native(const ModelConfig& config, const NativeBackend& backend) {
  if (backend.instances() != 0 && backend.instances() != config.instances)
    return Status(IR_ERROR_INVALID_ARGUMENT, "the backend was opened for " + std::to_string(backend.instances()) + " instance(s), the model has " + std::to_string(config.instances));
  const std::vector<TensorSig>& found = backend.inputs();
  if (found.empty()) return Status::Ok();
  if (!config.fixed_signature || config.inputs.size() != found.size())
    return Status(IR_ERROR_INVALID_ARGUMENT, "the model's inputs must be the backend's " + std::to_string(found.size()) + " input(s), in order");
  for (size_t i = 0; i < found.size(); ++i) {
    const TensorSig& want = config.inputs[i];
    const TensorSig& got = found[i];
    bool ok = want.name == got.name && want.dtype == got.dtype && want.shape.size() == got.shape.size();
    for (size_t d = 0; ok && d < want.shape.size(); ++d) ok = got.shape[d] == -1 || got.shape[d] == want.shape[d];
    if (!ok) return Status(IR_ERROR_INVALID_ARGUMENT, "input " + std::to_string(i) + " ('" + want.name + "') does not match the backend's '" + got.name + "' " + shape_text(got.shape));
  }
  return Status::Ok();
}

}  // namespace

void ModelStats::snapshot(ir_model_stats* out) const {
  auto get = [](const Counter& c) { return c.load(std::memory_order_relaxed); };
  out->submitted = get(submitted);
  out->succeeded = get(succeeded);
  out->failed_invalid = get(failed_invalid);
  out->rejected_queue_full = get(rejected_queue_full);
  out->timed_out = get(timed_out);
  out->failed_backend = get(failed_backend);
  out->cancelled = get(cancelled);
  out->batches = get(batches);
  out->batches_full = get(batches_full);
  out->batches_preferred = get(batches_preferred);
  out->batches_delay = get(batches_delay);
  out->batched_rows = get(batched_rows);
  out->queue_depth = queue_depth.load(std::memory_order_relaxed);
  out->in_flight = in_flight.load(std::memory_order_relaxed);
  out->queue_ns_sum = get(queue_ns_sum);
  out->compute_ns_sum = get(compute_ns_sum);
  out->request_ns_sum = get(request_ns_sum);
  for (int i = 0; i < kDurationBuckets; ++i) {
    out->queue_ns_buckets[i] = get(queue_ns_buckets[i]);
    out->compute_ns_buckets[i] = get(compute_ns_buckets[i]);
    out->request_ns_buckets[i] = get(request_ns_buckets[i]);
  }
  for (int i = 0; i < kBatchBuckets; ++i) out->batch_rows_buckets[i] = get(batch_rows_buckets[i]);
}

Status Model::Create(ModelConfig config, CompletionQueue* completions, std::unique_ptr<NativeBackend>* native, std::unique_ptr<Model>* out) {
  if (config.name.empty()) return Status(IR_ERROR_INVALID_ARGUMENT, "model name is empty");
  if (config.backend != IR_BACKEND_IDENTITY && config.backend != IR_BACKEND_EXTERNAL && config.backend != IR_BACKEND_NATIVE)
    return Status(IR_ERROR_INVALID_ARGUMENT, "unknown backend kind " + std::to_string(config.backend));
  if (config.backend == IR_BACKEND_NATIVE) {
    if (native == nullptr || *native == nullptr) return Status(IR_ERROR_INVALID_ARGUMENT, "a native model needs an opened backend");
    IR_RETURN_IF_ERROR(check_native(config, **native));
  }
  if (config.instances < 1) return Status(IR_ERROR_INVALID_ARGUMENT, "instances must be >= 1");
  const BatchPolicy& p = config.policy;
  if (p.max_queue_size < 1) return Status(IR_ERROR_INVALID_ARGUMENT, "max_queue_size must be >= 1");
  if (p.priority_levels < 1) return Status(IR_ERROR_INVALID_ARGUMENT, "priority_levels must be >= 1");
  if (p.batching) {
    if (p.max_batch_size < 1) return Status(IR_ERROR_INVALID_ARGUMENT, "max_batch_size must be >= 1");
    if (p.max_queue_delay_ns < 0) return Status(IR_ERROR_INVALID_ARGUMENT, "max_queue_delay_us must be >= 0");
    for (size_t i = 0; i < p.preferred.size(); ++i) {
      if (p.preferred[i] < 1 || p.preferred[i] > p.max_batch_size || (i > 0 && p.preferred[i] <= p.preferred[i - 1]))
        return Status(IR_ERROR_INVALID_ARGUMENT, "preferred batch sizes must be ascending, unique and <= max_batch_size");
    }
  }
  for (const TensorSig& sig : config.inputs) {
    if (!dtype_valid(sig.dtype)) return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + sig.name + "': unsupported dtype");
    if (p.batching && (sig.shape.empty() || sig.shape[0] != -1))
      return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + sig.name + "': with batching the leading dimension must be -1");
  }
  std::unique_ptr<Model> model(new Model(std::move(config), completions));
  if (model->config_.backend == IR_BACKEND_IDENTITY) model->native_ = make_identity_backend();
  if (model->config_.backend == IR_BACKEND_NATIVE) model->native_ = std::move(*native);
  if (model->native_ != nullptr) {
    for (int32_t i = 0; i < model->config_.instances; ++i) {
      model->threads_.emplace_back([m = model.get(), i] { m->run_native(i); });
    }
  }
  *out = std::move(model);
  return Status::Ok();
}

Model::Model(ModelConfig config, CompletionQueue* completions)
    : config_(std::move(config)), completions_(completions), batcher_(config_.policy) {
  gather_.resize(static_cast<size_t>(config_.instances));
  for (auto& per_instance : gather_) per_instance.resize(config_.inputs.size());
  scratch_.reserve(static_cast<size_t>(std::max<int64_t>(config_.policy.max_batch_size, 16)));
}

Model::~Model() {
  shut_down();
  for (Request* r : spare_) delete r;
}

Request* Model::take_request_locked() {
  if (spare_.empty()) return new Request();
  Request* r = spare_.back();
  spare_.pop_back();
  return r;
}

void Model::recycle_locked(Request* r) {
  // Bounded by the queue limit: a burst's worth of requests is kept, no more.
  if (static_cast<int64_t>(spare_.size()) < std::min<int64_t>(config_.policy.max_queue_size, 4096)) {
    spare_.push_back(r);
  } else {
    delete r;
  }
}

Status Model::check_inputs(const ir_tensor* inputs, int32_t n_inputs, int64_t* rows) const {
  const bool batching = config_.policy.batching;
  if (config_.fixed_signature && n_inputs != static_cast<int32_t>(config_.inputs.size()))
    return Status(IR_ERROR_INVALID_ARGUMENT, "model '" + config_.name + "' takes " + std::to_string(config_.inputs.size()) + " input(s), got " + std::to_string(n_inputs));
  if (n_inputs < 1) return Status(IR_ERROR_INVALID_ARGUMENT, "a request needs at least one input");
  *rows = 1;
  for (int32_t i = 0; i < n_inputs; ++i) {
    const ir_tensor& t = inputs[i];
    std::string label = config_.fixed_signature ? config_.inputs[i].name : (t.name ? t.name : "?");
    size_t item = dtype_size(t.dtype);
    if (!dtype_valid(t.dtype)) return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + label + "': unsupported dtype " + std::to_string(t.dtype));
    if (t.ndim < 0 || t.ndim > 32 || (t.ndim > 0 && t.shape == nullptr)) return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + label + "': bad shape");
    uint64_t elements = 1;
    for (int32_t d = 0; d < t.ndim; ++d) {
      if (t.shape[d] < 0) return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + label + "': negative dimension");
      elements *= static_cast<uint64_t>(t.shape[d]);
    }
    if (t.byte_size > 0 && t.data == nullptr) return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + label + "': no data");
    if (is_bytes(t.dtype)) {
      if (!parse_bytes(static_cast<const uint8_t*>(t.data), t.byte_size, elements, 0, nullptr))
        return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + label + "': BYTES data does not hold " + std::to_string(elements) + " length-prefixed elements");
    } else if (elements * item != t.byte_size) {
      return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + label + "': byte_size does not match shape and dtype");
    }
    if (config_.fixed_signature) {
      const TensorSig& sig = config_.inputs[i];
      if (t.dtype != sig.dtype) return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + label + "': dtype does not match the model");
      bool ok = t.ndim == static_cast<int32_t>(sig.shape.size());
      for (int32_t d = 0; ok && d < t.ndim; ++d) ok = sig.shape[d] == -1 || sig.shape[d] == t.shape[d];
      if (!ok) return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + label + "': shape " + shape_text(t.shape, t.ndim) + " does not match " + shape_text(sig.shape));
    }
    if (batching) {
      if (t.ndim < 1 || t.shape[0] < 1) return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + label + "': needs a leading batch dimension >= 1");
      if (i == 0) *rows = t.shape[0];
      else if (t.shape[0] != *rows) return Status(IR_ERROR_INVALID_ARGUMENT, "input '" + label + "': batch dimension differs from the other inputs");
    }
  }
  return Status::Ok();
}

Status Model::submit(uint64_t cookie, const ir_tensor* inputs, int32_t n_inputs, int32_t priority, int64_t timeout_us, bool wake) {
  int32_t admitted = 0;
  return submit_many(cookie, inputs, n_inputs, nullptr, 1, priority, timeout_us, wake, &admitted);
}

Status Model::check_parts(const ir_tensor* inputs, int32_t n_inputs, const int64_t* rows, int32_t n_requests, int64_t total_rows) const {
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

Status Model::submit_many(uint64_t first_cookie, const ir_tensor* inputs, int32_t n_inputs, const int64_t* rows, int32_t n_requests, int32_t priority, int64_t timeout_us, bool wake, int32_t* admitted) {
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
  int64_t timeout_ns = config_.default_timeout_ns;
  if (timeout_us > 0 && (timeout_ns == 0 || timeout_us * 1000 < timeout_ns)) timeout_ns = timeout_us * 1000;
  bool notify = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (admission_closed_) return Status(IR_ERROR_UNAVAILABLE, "model '" + config_.name + "' is shutting down");
    const int64_t now = now_ns();
    int64_t first_row = 0;
    int32_t k = 0;
    for (; k < n_requests; ++k) {
      if (static_cast<int64_t>(batcher_.size() + staged_.size()) >= config_.policy.max_queue_size) {
        ModelStats::add(stats_.rejected_queue_full, static_cast<uint64_t>(n_requests - k));
        status = Status(IR_ERROR_RESOURCE_EXHAUSTED, "model '" + config_.name + "' queue is full (" + std::to_string(config_.policy.max_queue_size) + " requests)");
        break;
      }
      const int64_t request_rows = rows == nullptr ? total_rows : rows[k];
      // Filled under the lock so that a recycled request (and its vectors' capacity) can be
      // reused: no allocation per request in steady state.
      Request* request = take_request_locked();
      try {
        fill_views(request, inputs, n_inputs, first_row, request_rows, total_rows);
      } catch (const std::bad_alloc&) {  // growing a recycled request: keep it, refuse the rest
        recycle_locked(request);
        ModelStats::add(stats_.rejected_queue_full, static_cast<uint64_t>(n_requests - k));
        status = Status(IR_ERROR_RESOURCE_EXHAUSTED, "model '" + config_.name + "': out of memory admitting a request");
        break;
      }
      request->cookie = first_cookie + static_cast<uint64_t>(k);
      request->priority = priority;
      request->rows = request_rows;
      request->enqueue_ns = now;
      request->deadline_ns = timeout_ns > 0 ? now + timeout_ns : kNever;
      request->id = next_id_++;
      first_row += request_rows;
      if (!wake) {
        staged_.push_back(request);
        staged_rows_ += request_rows;
        // A staged burst that fills a batch goes at once: waiting for the doorbell cannot
        // make that batch bigger, and the instance can run it while the host submits the rest.
        if (staged_rows_ >= config_.policy.max_batch_size) {
          release_staged_locked();
          notify = true;
        }
      } else {
        batcher_.push(request);  // cannot fail: the size was checked above
        notify = true;
      }
    }
    *admitted = k;
    stats_.queue_depth.store(static_cast<int64_t>(batcher_.size() + staged_.size()), std::memory_order_relaxed);
    stats_.in_flight.fetch_add(k, std::memory_order_relaxed);
  }
  if (notify) {
    arrivals_.fetch_add(1, std::memory_order_release);  // ends a spinning worker's poll
    work_cv_.notify_one();
  }
  return status;
}

void Model::fill_views(Request* request, const ir_tensor* inputs, int32_t n_inputs, int64_t first_row, int64_t rows, int64_t total_rows) const {
  request->inputs.resize(static_cast<size_t>(n_inputs));
  const bool whole = first_row == 0 && rows == total_rows;
  for (int32_t i = 0; i < n_inputs; ++i) {
    const ir_tensor& t = inputs[i];
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
    if (!config_.fixed_signature) view.name = t.name != nullptr ? t.name : "";
  }
}

void Model::wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    release_staged_locked();
  }
  arrivals_.fetch_add(1, std::memory_order_release);
  work_cv_.notify_one();
}

void Model::release_staged_locked() {
  for (Request* r : staged_) batcher_.push(r);  // admitted already: fits
  staged_.clear();
  staged_rows_ = 0;
}

void Model::fail_locked(std::vector<Request*>& requests, ir_code code, const char* what) {
  std::vector<Completion> done;
  done.reserve(requests.size());
  for (Request* r : requests) {
    std::string message = "model '" + config_.name + "': " + what;
    done.push_back(Completion{r->cookie, nullptr, ir_error_new(code, message.c_str()), nullptr, 0, r->rows, r->rows});
    recycle_locked(r);
  }
  auto n = static_cast<uint64_t>(requests.size());
  ModelStats::add(code == IR_ERROR_DEADLINE_EXCEEDED ? stats_.timed_out : stats_.cancelled, n);
  stats_.in_flight.fetch_sub(static_cast<int64_t>(n), std::memory_order_relaxed);
  requests.clear();
  completions_->push_all(done);
}

Status Model::next_batch(int32_t instance, int64_t timeout_ns, ir_batch** out) {
  if (instance < 0 || instance >= config_.instances)
    return Status(IR_ERROR_INVALID_ARGUMENT, "instance " + std::to_string(instance) + " out of range");
  *out = nullptr;
  std::unique_lock<std::mutex> lock(mu_);
  const int64_t give_up = timeout_ns < 0 ? kNever : now_ns() + timeout_ns;
  bool spun = false;
  int64_t idle_since = -1;  // when this call first found nothing to do
  for (;;) {
    if (exit_) return Status(IR_ERROR_UNAVAILABLE, "model '" + config_.name + "' stopped");
    int64_t now = now_ns();
    scratch_.clear();
    batcher_.expire(now, scratch_);
    if (!scratch_.empty()) fail_locked(scratch_, IR_ERROR_DEADLINE_EXCEEDED, "request timed out in the queue");
    // [batcher branch, for the lead's scheduler] The adaptive policy needs the instances'
    // load: idle ones (this caller included) and, when known, when a busy one should end
    // (unknown here: kNever, so D = E(R) for a single idle instance).
    InstanceLoad load;
    load.idle = static_cast<int32_t>(std::max<int64_t>(config_.instances - running_batches_, 1));
    DispatchReason reason = batcher_.form(now, scratch_, load);
    if (reason != DispatchReason::kNone) {
      // Spin next time only if this idle gap was short enough for a spin to have caught it:
      // in a closed loop at high concurrency the host needs far longer than the spin window
      // to resubmit a cohort, and a spinning worker only takes CPU from it.
      if (idle_since >= 0) spin_pays_ = now - idle_since <= config_.idle_spin_ns;
      std::vector<Request*> taken;
      taken.swap(scratch_);
      scratch_.reserve(taken.capacity());
      ++running_batches_;
      stats_.queue_depth.store(static_cast<int64_t>(batcher_.size()), std::memory_order_relaxed);
      bool more = !batcher_.empty();
      lock.unlock();
      if (more) work_cv_.notify_one();  // another idle instance may take the next batch
      *out = build_batch(instance, reason, taken, now);
      return Status::Ok();
    }
    stats_.queue_depth.store(static_cast<int64_t>(batcher_.size()), std::memory_order_relaxed);
    if (now >= give_up) return Status::Ok();
    if (idle_since < 0) idle_since = now;
    if (!spun && batcher_.empty() && config_.idle_spin_ns > 0 && spin_pays_) {
      // Traffic often resumes within microseconds of a batch finishing; polling briefly
      // saves the futex wake-up of a sleeping worker (~10 us here) on that request.
      spun = true;
      lock.unlock();
      spin_for_work();
      lock.lock();
      continue;
    }
    int64_t wake = std::min(batcher_.next_event(now, load), give_up);  // [batcher branch] adaptive: may be before the delay
    if (admission_closed_ && batcher_.empty() && staged_.empty()) idle_cv_.notify_all();
    if (wake == kNever) work_cv_.wait(lock);
    else work_cv_.wait_until(lock, to_time_point(wake));
  }
}

ir_batch* Model::build_batch(int32_t instance, DispatchReason reason, std::vector<Request*>& requests, int64_t now) {
  auto* batch = new ir_batch();
  batch->model = this;
  batch->instance = instance;
  batch->reason = reason;
  batch->dispatch_ns = now;
  batch->requests = std::move(requests);
  for (Request* r : batch->requests) batch->rows += r->rows;
  const Request& head = *batch->requests.front();
  batch->inputs.resize(head.inputs.size());
  for (size_t i = 0; i < head.inputs.size(); ++i) {
    InputView& view = batch->inputs[i];
    view.dtype = head.inputs[i].dtype;
    view.name = config_.fixed_signature ? config_.inputs[i].name : head.inputs[i].name;
    view.shape = head.inputs[i].shape;
    // Nothing to gather when the requests' rows already lie back to back in the caller's
    // memory (one request, or consecutive parts of one ir_submit_many): hand that over.
    uint64_t total = 0;
    bool adjacent = head.inputs[i].data != nullptr;
    for (Request* r : batch->requests) {
      const InputView& part = r->inputs[i];
      adjacent = adjacent && part.data == static_cast<const uint8_t*>(head.inputs[i].data) + total;
      total += part.byte_size;
    }
    if (adjacent || batch->requests.size() == 1) {
      if (batch->requests.size() > 1) view.shape[0] = batch->rows;  // batching models only
      view.data = head.inputs[i].data;
      view.byte_size = total;
      continue;
    }
    // Sized on demand: a model without a fixed signature learns its input count from its
    // requests. Only this instance's thread touches its buffers.
    std::vector<std::vector<uint8_t>>& buffers = gather_[static_cast<size_t>(instance)];
    if (buffers.size() <= i) buffers.resize(i + 1);
    std::vector<uint8_t>& buf = buffers[i];
    if (buf.size() < total) buf.resize(total);
    uint64_t offset = 0;
    for (Request* r : batch->requests) {
      if (r->inputs[i].byte_size > 0) std::memcpy(buf.data() + offset, r->inputs[i].data, r->inputs[i].byte_size);
      offset += r->inputs[i].byte_size;
    }
    view.shape[0] = batch->rows;
    view.data = buf.data();
    view.byte_size = total;
  }
  int64_t rows = batch->rows;
  ModelStats::add(stats_.batches);
  ModelStats::add(reason == DispatchReason::kPreferred ? stats_.batches_preferred : reason == DispatchReason::kDelay ? stats_.batches_delay : stats_.batches_full);
  ModelStats::add(stats_.batched_rows, static_cast<uint64_t>(rows));
  ModelStats::add(stats_.batch_rows_buckets[rows_bucket(rows)]);
  for (Request* r : batch->requests) {
    int64_t waited = now - r->enqueue_ns;
    ModelStats::add(stats_.queue_ns_sum, static_cast<uint64_t>(waited));
    ModelStats::add(stats_.queue_ns_buckets[duration_bucket(waited)]);
  }
  return batch;
}

Status Model::set_output(ir_batch* batch, const ir_tensor& output, std::shared_ptr<Buffer> owner) {
  size_t item = dtype_size(output.dtype);
  std::string label = output.name ? output.name : "?";
  if (output.name == nullptr || *output.name == '\0') return Status(IR_ERROR_INVALID_ARGUMENT, "output needs a name");
  if (!dtype_valid(output.dtype)) return Status(IR_ERROR_INVALID_ARGUMENT, "output '" + label + "': unsupported dtype " + std::to_string(output.dtype));
  if (output.ndim < 0 || output.ndim > 32 || (output.ndim > 0 && output.shape == nullptr)) return Status(IR_ERROR_INVALID_ARGUMENT, "output '" + label + "': bad shape");
  uint64_t elements = 1;
  for (int32_t d = 0; d < output.ndim; ++d) {
    if (output.shape[d] < 0) return Status(IR_ERROR_INVALID_ARGUMENT, "output '" + label + "': negative dimension");
    elements *= static_cast<uint64_t>(output.shape[d]);
  }
  if (!is_bytes(output.dtype) && elements * item != output.byte_size) return Status(IR_ERROR_INVALID_ARGUMENT, "output '" + label + "': byte_size does not match shape and dtype");
  if (output.byte_size > 0 && output.data == nullptr) return Status(IR_ERROR_INVALID_ARGUMENT, "output '" + label + "': no data");
  if (config_.policy.batching && (output.ndim < 1 || output.shape[0] != batch->rows))
    return Status(IR_ERROR_INVALID_ARGUMENT, "output '" + label + "' has shape " + shape_text(output.shape, output.ndim) + " but the batch has " + std::to_string(batch->rows) + " rows");
  std::vector<uint64_t> row_starts;
  if (is_bytes(output.dtype)) {
    // Row boundaries are found once here, so each request's rows are sliced without a scan.
    uint64_t per_row = config_.policy.batching && batch->rows > 0 ? elements / static_cast<uint64_t>(batch->rows) : 0;
    bool ok = parse_bytes(static_cast<const uint8_t*>(output.data), output.byte_size, elements, per_row, config_.policy.batching ? &row_starts : nullptr);
    if (config_.policy.batching && per_row == 0) row_starts.assign(static_cast<size_t>(batch->rows) + 1, 0);
    if (!ok) return Status(IR_ERROR_INVALID_ARGUMENT, "output '" + label + "': BYTES data does not hold " + std::to_string(elements) + " length-prefixed elements");
  }
  for (const BatchOutput& existing : batch->outputs) {
    if (existing.name == label) return Status(IR_ERROR_INVALID_ARGUMENT, "output '" + label + "' set twice");
  }
  BatchOutput out;
  out.name = label;
  out.dtype = output.dtype;
  out.shape.assign(output.shape, output.shape + output.ndim);
  out.row_starts = std::move(row_starts);
  if (owner != nullptr && owner->data() == output.data && owner->size() >= output.byte_size) {
    out.buffer = std::move(owner);
  } else {
    out.buffer = Buffer::Allocate(output.byte_size);
    if (output.byte_size > 0) std::memcpy(out.buffer->data(), output.data, output.byte_size);
  }
  batch->outputs.push_back(std::move(out));
  return Status::Ok();
}

void Model::finish(ir_batch* batch, ir_error* error) {
  const int64_t done_ns = now_ns();
  const int64_t compute = done_ns - batch->dispatch_ns;
  ModelStats::add(stats_.compute_ns_sum, static_cast<uint64_t>(compute));
  ModelStats::add(stats_.compute_ns_buckets[duration_bucket(compute)]);
  std::vector<Completion> done;
  done.reserve(batch->requests.size());
  if (error != nullptr) {
    const char* message = ir_error_message(error);
    ir_code code = ir_error_code(error);
    for (Request* r : batch->requests) done.push_back(Completion{r->cookie, nullptr, ir_error_new(code, message), nullptr, 0, r->rows, batch->rows});
    ModelStats::add(stats_.failed_backend, batch->requests.size());
    ir_error_free(error);
  } else {
    auto result = std::make_shared<BatchResult>();
    result->outputs = std::move(batch->outputs);
    result->rows = batch->rows;
    result->sliced = config_.policy.batching;
    const void* key = result->sliced ? result.get() : nullptr;
    int64_t row = 0;
    for (Request* r : batch->requests) {
      auto* response = new ir_response();
      response->result = result;
      response->row_offset = row;
      response->rows = r->rows;
      int64_t total = done_ns - r->enqueue_ns;
      ModelStats::add(stats_.request_ns_sum, static_cast<uint64_t>(total));
      ModelStats::add(stats_.request_ns_buckets[duration_bucket(total)]);
      done.push_back(Completion{r->cookie, response, nullptr, key, row, r->rows, batch->rows});
      row += r->rows;
    }
    ModelStats::add(stats_.succeeded, batch->requests.size());
  }
  auto n = static_cast<int64_t>(batch->requests.size());
  const int64_t batch_rows = batch->rows;  // [batcher branch] for the cost model below
  std::vector<Request*> finished;
  finished.swap(batch->requests);
  delete batch;
  // The counters settle before anyone can see the completions; running_batches_ drops
  // after them, so wait_idle() returning means every completion was published.
  stats_.in_flight.fetch_sub(n, std::memory_order_relaxed);
  completions_->push_all(done);
  std::lock_guard<std::mutex> lock(mu_);
  for (Request* r : finished) recycle_locked(r);
  batcher_.observe(batch_rows, compute);  // [batcher branch] adaptive cost model: E(R) = a + b*R
  --running_batches_;
  if (admission_closed_ && running_batches_ == 0 && batcher_.empty() && staged_.empty()) idle_cv_.notify_all();
}

void Model::close_admission() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    admission_closed_ = true;
    release_staged_locked();  // nothing admitted may wait for a doorbell
    if (running_batches_ == 0 && batcher_.empty()) idle_cv_.notify_all();
  }
  work_cv_.notify_all();
}

bool Model::wait_idle(int64_t deadline_ns) {
  std::unique_lock<std::mutex> lock(mu_);
  auto idle = [this] { return running_batches_ == 0 && batcher_.empty() && staged_.empty(); };
  if (deadline_ns == kNever) {
    idle_cv_.wait(lock, idle);
    return true;
  }
  return idle_cv_.wait_until(lock, to_time_point(deadline_ns), idle);
}

void Model::shut_down() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (exit_ && threads_.empty()) return;
    admission_closed_ = true;
    exit_ = true;
    arrivals_.fetch_add(1, std::memory_order_release);  // ends any spin at once
    scratch_.clear();
    batcher_.drain_all(scratch_);
    scratch_.insert(scratch_.end(), staged_.begin(), staged_.end());
    staged_.clear();
    staged_rows_ = 0;
    if (!scratch_.empty()) fail_locked(scratch_, IR_ERROR_CANCELLED, "request cancelled: the runtime is shutting down");
    stats_.queue_depth.store(0, std::memory_order_relaxed);
  }
  work_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

bool Model::spin_for_work() {
  const uint64_t seen = arrivals_.load(std::memory_order_acquire);
  const int64_t until = now_ns() + config_.idle_spin_ns;
  do {
    cpu_relax(32);
    if (arrivals_.load(std::memory_order_acquire) != seen) return true;
  } while (now_ns() < until);
  return false;
}

void Model::run_native(int32_t instance) {
  for (;;) {
    ir_batch* batch = nullptr;
    Status status = next_batch(instance, -1, &batch);
    if (!status.ok()) return;  // stopped
    if (batch == nullptr) continue;
    ir_error* error = nullptr;
    try {
      Status s = native_->run(instance, batch);
      if (!s.ok()) error = ir_error_new(s.code(), s.message().c_str());
    } catch (const std::bad_alloc&) {
      error = ir_error_new(IR_ERROR_RESOURCE_EXHAUSTED, "out of memory while running a batch");
    } catch (const std::exception& e) {
      error = ir_error_new(IR_ERROR_INTERNAL, e.what());
    }
    finish(batch, error);
  }
}

}  // namespace ir
