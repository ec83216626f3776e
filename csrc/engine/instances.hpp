// InstancePool: the instances of one model that run its batches -- native ones on engine
// threads through the backend contract, or external ones pulled by the host
// (ir_model_next_batch). Each instance owns one Batch and its gather buffers, reused for
// every batch; the pool also watches how long each batch has run (execution_timeout).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "batch.hpp"
#include "status.hpp"

namespace ir {

class Backend;
class Model;

class InstancePool {
 public:
  InstancePool(Model* model, int32_t instances, bool force_gather);
  ~InstancePool();
  InstancePool(const InstancePool&) = delete;
  InstancePool& operator=(const InstancePool&) = delete;

  // Starts one engine thread per instance running `backend` (borrowed; outlives the pool).
  void start_native(Backend* backend);

  // External instances: blocks until a batch forms for `instance`; *out = nullptr on timeout.
  Status pull(int32_t instance, int64_t timeout_ns, Batch** out);

  // Completes `batch` (with its outputs, or `error`) and makes its instance free again.
  void finish(Batch* batch, Status error);

  // Fails every batch running longer than `limit_ns` (the instance is marked unhealthy until
  // its backend returns); returns how many instances are unhealthy.
  int32_t expire_running(int64_t now, int64_t limit_ns);
  // Joins the native threads, waiting for them up to `deadline_ns`; a thread still stuck in
  // its backend then has its batch failed (UNAVAILABLE) and is detached. Returns false when a
  // thread had to be left behind (the model must then outlive it). External instances are
  // the host's: a batch it still runs completes when the host finishes it.
  bool join(int64_t deadline_ns);

  [[nodiscard]] int32_t unhealthy() const { return unhealthy_.load(std::memory_order_relaxed); }
  [[nodiscard]] int32_t size() const { return static_cast<int32_t>(slots_.size()); }

 private:
  struct Slot {
    Batch batch;
    std::vector<std::vector<uint8_t>> gather;  // per input: reused buffers
    std::mutex mu;                // guards busy_since / abandoned against the timekeeper
    int64_t busy_since = -1;      // dispatch time of the running batch; -1 when idle
    bool abandoned = false;       // its requests were failed already (timeout or shutdown)
    std::thread thread;
    std::atomic<bool> returned{false};  // the native thread's loop has ended
  };

  Batch* form(int32_t instance, int64_t timeout_ns, bool* stopped);
  void build(Slot& slot, int32_t instance);
  void run_native(int32_t instance, Backend* backend);
  void fail_running(Slot& slot, ir_code code, const char* why);

  Model* model_;
  bool force_gather_;  // a batch that may be abandoned must not run on callers' memory
  std::vector<std::unique_ptr<Slot>> slots_;
  std::atomic<int32_t> unhealthy_{0};
};

}  // namespace ir
