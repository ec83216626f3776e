#include "instances.hpp"

#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "../backends/backend.hpp"
#include "clock.hpp"
#include "model.hpp"

namespace ir {

InstancePool::InstancePool(Model* model, int32_t instances, bool force_gather) : model_(model), force_gather_(force_gather) {
  for (int32_t i = 0; i < instances; ++i) {
    auto slot = std::make_unique<Slot>();
    slot->batch.model = model;
    slot->batch.instance = i;
    slot->batch.batching = model->config().policy.batching;
    slot->batch.declared = model->config().outputs_declared ? &model->config().outputs : nullptr;
    slot->gather.resize(model->config().inputs.size());
    slots_.push_back(std::move(slot));
  }
}

InstancePool::~InstancePool() { join(kNever); }

void InstancePool::start_native(Backend* backend) {
  for (int32_t i = 0; i < size(); ++i) {
    slots_[static_cast<size_t>(i)]->thread = std::thread([this, i, backend] { run_native(i, backend); });
  }
}

Batch* InstancePool::form(int32_t instance, int64_t timeout_ns, bool* stopped) {
  Slot& slot = *slots_[static_cast<size_t>(instance)];
  Batch& batch = slot.batch;
  batch.clear();
  int64_t now = 0;
  if (!model_->scheduler().next(timeout_ns, &batch.requests, &batch.reason, &now, stopped)) return nullptr;
  batch.dispatch_ns = now;
  {
    std::lock_guard<std::mutex> lock(slot.mu);
    slot.busy_since = now;
    slot.abandoned = false;
  }
  build(slot, instance);
  model_->count_dispatch(batch);
  return &batch;
}

// Gathers the requests' inputs into the slot's buffers -- unless they already lie back to
// back in the caller's memory (one request, or consecutive parts of one ir_model_submit_many) and
// the batch may not be abandoned while running.
void InstancePool::build(Slot& slot, int32_t instance) {
  (void)instance;
  Batch& batch = slot.batch;
  const ModelConfig& config = model_->config();
  const Request& head = *batch.requests.front();
  if (batch.batching) {
    for (Request* r : batch.requests) {
      batch.rows += r->rows;
      batch.request_rows.push_back(r->rows);
    }
  } else {  // one request: its rows are its first input's leading dimension, if any
    const bool leading = !head.inputs.empty() && !head.inputs.front().shape.empty();
    batch.rows = leading ? head.inputs.front().shape.front() : 1;
    batch.request_rows.push_back(batch.rows);
  }
  const size_t n = head.inputs.size();
  batch.inputs.resize(n);
  batch.input_refs.resize(n);
  if (slot.gather.size() < n) slot.gather.resize(n);  // a model without a fixed signature
  for (size_t i = 0; i < n; ++i) {
    InputView& view = batch.inputs[i];
    view.dtype = head.inputs[i].dtype;
    view.name = config.fixed_signature ? config.inputs[i].name : head.inputs[i].name;
    view.shape = head.inputs[i].shape;
    uint64_t total = 0;
    bool adjacent = head.inputs[i].data != nullptr;
    for (const Request* r : batch.requests) {
      const InputView& part = r->inputs[i];
      adjacent = adjacent && part.data == static_cast<const uint8_t*>(head.inputs[i].data) + total;
      total += part.byte_size;
    }
    if (batch.requests.size() > 1) view.shape[0] = batch.rows;  // batching models only
    view.byte_size = total;
    if ((adjacent || batch.requests.size() == 1) && !force_gather_) {
      view.data = head.inputs[i].data;
    } else {
      std::vector<uint8_t>& buf = slot.gather[i];
      if (buf.size() < total) buf.resize(total);
      uint64_t offset = 0;
      for (const Request* r : batch.requests) {
        if (r->inputs[i].byte_size > 0) std::memcpy(buf.data() + offset, r->inputs[i].data, r->inputs[i].byte_size);
        offset += r->inputs[i].byte_size;
      }
      view.data = buf.data();
    }
    batch.input_refs[i] = TensorRef{view.name.c_str(), view.dtype, static_cast<int32_t>(view.shape.size()), view.shape.data(), view.data, view.byte_size};
  }
}

Status InstancePool::pull(int32_t instance, int64_t timeout_ns, Batch** out) {
  if (instance < 0 || instance >= size()) return Status(IR_ERROR_INVALID_ARGUMENT, "instance " + std::to_string(instance) + " out of range");
  *out = nullptr;
  bool stopped = false;
  Batch* batch = form(instance, timeout_ns, &stopped);
  if (stopped) return Status(IR_ERROR_UNAVAILABLE, "model '" + model_->config().name + "' stopped");
  *out = batch;
  return Status::Ok();
}

void InstancePool::finish(Batch* batch, Status error) {
  Slot& slot = *slots_[static_cast<size_t>(batch->instance)];
  bool abandoned = false;
  {
    std::lock_guard<std::mutex> lock(slot.mu);
    abandoned = slot.abandoned;
    slot.busy_since = -1;
    if (abandoned) {
      slot.abandoned = false;
      unhealthy_.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  if (!abandoned) {
    if (error.ok()) error = batch->check_complete();
    model_->complete(*batch, error);
  }
  // Abandoned: its requests were answered when it ran out of time; what it produced now goes.
  batch->outputs.clear();
  model_->scheduler().finished(batch->requests);
  batch->requests.clear();
}

void InstancePool::fail_running(Slot& slot, ir_code code, const char* why) {
  // Under slot.mu: the requests are answered now; the backend still owns the batch's memory
  // (inputs were gathered into the slot, see force_gather_) until it returns.
  std::vector<Completion> done;
  slot.batch.complete_into(Status(code, "model '" + model_->config().name + "': " + why), now_ns(), &done);
  ModelStats::add(code == IR_ERROR_DEADLINE_EXCEEDED ? model_->counters().timed_out : model_->counters().cancelled, done.size());
  model_->counters().in_flight.fetch_sub(static_cast<int64_t>(done.size()), std::memory_order_relaxed);
  for (size_t k = 0; k < done.size(); ++k) {
    std::vector<Completion> one;
    one.push_back(std::move(done[k]));
    slot.batch.requests[k]->sink->complete(one);
  }
  slot.abandoned = true;
  unhealthy_.fetch_add(1, std::memory_order_relaxed);
}

int32_t InstancePool::expire_running(int64_t now, int64_t limit_ns) {
  for (auto& slot : slots_) {
    std::lock_guard<std::mutex> lock(slot->mu);
    if (slot->busy_since < 0 || slot->abandoned || now - slot->busy_since < limit_ns) continue;
    ModelStats::add(model_->counters().execution_timeouts);
    fail_running(*slot, IR_ERROR_DEADLINE_EXCEEDED, ("the batch ran longer than execution_timeout_ms (" + std::to_string(limit_ns / 1000000) + " ms); the instance is out of service until it returns").c_str());
  }
  return unhealthy();
}

bool InstancePool::join(int64_t deadline_ns) {
  bool all = true;
  for (auto& slot : slots_) {
    if (!slot->thread.joinable()) continue;
    while (!slot->returned.load(std::memory_order_acquire) && now_ns() < deadline_ns) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (slot->returned.load(std::memory_order_acquire)) {
      slot->thread.join();
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(slot->mu);
      if (slot->busy_since >= 0 && !slot->abandoned) fail_running(*slot, IR_ERROR_UNAVAILABLE, "the model stopped while this batch was still running (its backend did not return in time)");
    }
    slot->thread.detach();  // stuck in its backend: it keeps the model (see Model::shut_down)
    all = false;
  }
  return all;
}

void InstancePool::run_native(int32_t instance, Backend* backend) {
  for (;;) {
    bool stopped = false;
    Batch* batch = form(instance, -1, &stopped);
    if (stopped) break;
    if (batch == nullptr) continue;
    Status status;
    try {
      status = backend->execute(instance, *batch);
    } catch (const std::bad_alloc&) {
      status = Status(IR_ERROR_RESOURCE_EXHAUSTED, "out of memory while running a batch");
    } catch (const std::exception& e) {
      status = Status(IR_ERROR_INTERNAL, e.what());
    } catch (...) {
      status = Status(IR_ERROR_INTERNAL, "unknown exception while running a batch");
    }
    finish(batch, std::move(status));
  }
  slots_[static_cast<size_t>(instance)]->returned.store(true, std::memory_order_release);
}

}  // namespace ir
