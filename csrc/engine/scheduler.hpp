// Scheduler: the queue side of a model -- admission (queue limit, staging of bursts), the
// batching policy (Batcher) and the hand-over of formed batches to idle instances, request
// recycling, expiry and cancellation. Runs no backend code and owns no threads: instance
// workers and the model's timekeeper call into it.
//
// Threading: every method may be called from any thread; one mutex guards the state.
// Requests to fail are handed to the RequestFinisher after the mutex is released, so a sink
// never runs under it. Lock order: Scheduler::mu_ before nothing else.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "batcher.hpp"
#include "clock.hpp"
#include "request.hpp"
#include "stats.hpp"
#include "status.hpp"

namespace ir {

// Completes requests that never reach a backend (expired, cancelled, shut down).
class RequestFinisher {
 public:
  virtual ~RequestFinisher() = default;
  virtual void fail(const std::vector<Request*>& requests, ir_code code, const std::string& what) = 0;
};

class Scheduler {
 public:
  Scheduler(std::string model_name, const BatchPolicy& policy, int32_t instances, int64_t idle_spin_ns, ModelStats* stats, RequestFinisher* finisher);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Admits up to `n` requests in order while the queue has room. `fill(request, k)` fills
  // request k's views and metadata (cookie, rows, priority, deadline, sink) under the lock,
  // into a recycled object when one is available. `wake` = false stages them until wake().
  // Returns UNAVAILABLE once admission is closed, RESOURCE_EXHAUSTED for the refused tail.
  template <typename Fill>
  Status admit(int32_t n, bool wake, int32_t* admitted, Fill&& fill, bool pinned = false);

  // A pin holds the model open for work admitted before its admission closed (a pipeline
  // request bound to this version): `pinned` admissions pass a closed admission until the
  // shutdown, and the drain waits for the pins. pin() is false once admission has closed.
  bool pin();
  void unpin();

  // Hands staged requests to the batcher and wakes an idle worker.
  void wake();

  // Blocks until a batch forms for a worker (or `timeout_ns` passes; -1: forever), expiring
  // due requests on the way. `taken` gets the batch's requests (queue order), *reason why it
  // was dispatched, *now the dispatch time. Returns false when nothing formed in time;
  // UNAVAILABLE (as *stopped) once shut down.
  bool next(int32_t instance, int64_t timeout_ns, std::vector<Request*>* taken, DispatchReason* reason, int64_t* now, bool* stopped);

  // A batch's requests are done (completed by the caller): recycles them, frees the instance,
  // and (for a batch that ran to the end) tells the policy how long `rows` rows took.
  void finished(int32_t instance, const std::vector<Request*>& requests, int64_t rows, int64_t exec_ns, bool ran);

  // Fails every queued request whose deadline has passed. Returns whether any request with a
  // deadline is still queued.
  bool expire_due(int64_t now);

  // Fails the queued request with this cookie (CANCELLED). True if it was queued.
  bool cancel(uint64_t cookie);

  // Shutdown in three phases: refuse new work; wait (up to the deadline) until nothing is
  // queued or running; fail what is left (CANCELLED) and release every waiting worker.
  void close_admission();
  bool wait_idle(int64_t deadline_ns);
  void shut_down();
  [[nodiscard]] bool admission_closed();

  // A batch ran past its time and was failed; it no longer counts as running for the drain.
  [[nodiscard]] int64_t running() ;

 private:
  Request* take_request_locked();
  void recycle_locked(Request* request);
  void release_staged_locked();
  void fail_unlocked(std::vector<Request*>& requests, std::unique_lock<std::mutex>& lock, ir_code code, const char* what);
  bool spin_for_work();
  bool idle_locked() const { return running_ == 0 && pins_ == 0 && batcher_.empty() && staged_.empty(); }
  InstanceLoad load_locked() const;

  const std::string model_name_;
  const BatchPolicy policy_;
  const int64_t idle_spin_ns_;
  ModelStats* stats_;
  RequestFinisher* finisher_;

  std::mutex mu_;
  std::condition_variable work_cv_;  // idle workers wait here
  std::condition_variable idle_cv_;  // wait_idle waits here
  Batcher batcher_;
  std::vector<Request*> staged_;  // admitted with wake = false; handed to the batcher by wake()
  int64_t staged_rows_ = 0;       // rows in staged_: a full batch's worth is handed over at once
  int64_t running_ = 0;           // batches handed out and not finished
  std::vector<int64_t> busy_until_;  // per instance: expected end of its running batch; kNever when idle
  uint64_t next_id_ = 0;
  std::atomic<uint64_t> arrivals_{0};  // bumped on every admission and on shutdown: spinners watch it
  bool spin_pays_ = true;  // the last idle gap was within idle_spin_ns (under mu_)
  bool admission_closed_ = false;
  bool exit_ = false;
  int64_t pins_ = 0;
  std::vector<Request*> scratch_;    // reused under mu_
  std::vector<Request*> spare_;      // finished requests kept for reuse (under mu_)
};

template <typename Fill>
Status Scheduler::admit(int32_t n, bool wake, int32_t* admitted, Fill&& fill, bool pinned) {
  *admitted = 0;
  Status status;
  bool notify = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (admission_closed_ && (!pinned || exit_)) return Status(IR_ERROR_UNAVAILABLE, "model '" + model_name_ + "' is shutting down");
    const int64_t now = now_ns();
    int32_t k = 0;
    for (; k < n; ++k) {
      if (static_cast<int64_t>(batcher_.size() + staged_.size()) >= policy_.max_queue_size) {
        ModelStats::add(stats_->rejected_queue_full, static_cast<uint64_t>(n - k));
        status = Status(IR_ERROR_RESOURCE_EXHAUSTED, "model '" + model_name_ + "' queue is full (" + std::to_string(policy_.max_queue_size) + " requests)");
        break;
      }
      // Filled under the lock so that a recycled request (and its vectors' capacity) is
      // reused: no allocation per request in steady state.
      Request* request = take_request_locked();
      try {
        fill(request, k);
      } catch (const std::bad_alloc&) {  // growing a recycled request: keep it, refuse the rest
        recycle_locked(request);
        ModelStats::add(stats_->rejected_queue_full, static_cast<uint64_t>(n - k));
        status = Status(IR_ERROR_RESOURCE_EXHAUSTED, "model '" + model_name_ + "': out of memory admitting a request");
        break;
      }
      request->enqueue_ns = now;
      request->id = next_id_++;
      if (!wake) {
        staged_.push_back(request);
        staged_rows_ += request->rows;
        // A staged burst that fills a batch goes at once: waiting for the doorbell cannot
        // make that batch bigger, and an instance can run it while the host submits the rest.
        if (staged_rows_ >= policy_.max_batch_size) {
          release_staged_locked();
          notify = true;
        }
      } else {
        batcher_.push(request);  // cannot fail: the size was checked above
        notify = true;
      }
    }
    *admitted = k;
    stats_->queue_depth.store(static_cast<int64_t>(batcher_.size() + staged_.size()), std::memory_order_relaxed);
    stats_->in_flight.fetch_add(k, std::memory_order_relaxed);
  }
  if (notify) {
    arrivals_.fetch_add(1, std::memory_order_release);  // ends a spinning worker's poll
    work_cv_.notify_one();
  }
  return status;
}

}  // namespace ir
