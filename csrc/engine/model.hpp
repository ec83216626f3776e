// Model: one served model inside the engine. Composes a Scheduler (queue, batching policy,
// staging), an InstancePool (what runs the batches: a backend on engine threads, or the
// host pulling them) and a timekeeper thread (deadlines and execution timeouts fire on time
// even while every instance is busy or hung); checks requests against the signature and
// completes requests through their sinks.
//
// Lifetime: shared. The engine's table holds one reference, each ABI handle another, and a
// batch a host still holds keeps its model alive through the handle it came from.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "completion_queue.hpp"
#include "instances.hpp"
#include "scheduler.hpp"
#include "stats.hpp"
#include "status.hpp"
#include "tensor.hpp"

namespace ir {

class Backend;

enum class Runner { kNative, kExternal };

struct ModelConfig {
  std::string name;
  Runner runner = Runner::kNative;
  int32_t instances = 1;
  BatchPolicy policy;
  int64_t default_timeout_ns = 0;       // 0: none
  int64_t execution_timeout_ns = 0;     // 0: none
  bool fixed_signature = true;
  std::vector<TensorSig> inputs;
  bool outputs_declared = false;
  std::vector<TensorSig> outputs;
  int64_t idle_spin_ns = 0;  // an idle worker polls this long before sleeping
};

constexpr int32_t kMaxInputs = 64;  // inputs of a model without a fixed signature

class Model final : public RequestFinisher, public std::enable_shared_from_this<Model> {
 public:
  // `backend` is required for a native runner (moved from only on success).
  static Status Create(ModelConfig config, std::shared_ptr<CompletionQueue> completions, std::unique_ptr<Backend>* backend, std::shared_ptr<Model>* out);
  ~Model() override;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  [[nodiscard]] const ModelConfig& config() const { return config_; }
  [[nodiscard]] const ModelStats& stats() const { return stats_; }
  [[nodiscard]] int32_t unhealthy_instances() const { return pool_->unhealthy(); }

  // `n_requests` requests over consecutive row ranges of one set of inputs (rows == nullptr:
  // one request of all of them): checked, then admitted in order while the queue has room.
  // Completions go to `sink` (nullptr: the engine's completion queue). A model that was
  // replaced hands new submissions to its successor.
  Status submit_many(uint64_t first_cookie, const TensorRef* inputs, int32_t n_inputs, const int64_t* rows, int32_t n_requests, int32_t priority,
                     int64_t timeout_us, bool wake, int32_t* admitted, CompletionSink* sink = nullptr, bool pinned = false);
  // See Scheduler::pin: a pipeline request binds its steps to the versions serving when it
  // was admitted (pin false: this model was replaced or retired meanwhile).
  bool pin() { return scheduler_->pin(); }
  void unpin() { scheduler_->unpin(); }
  [[nodiscard]] bool admission_closed() { return scheduler_->admission_closed(); }
  void wake();
  bool cancel(uint64_t cookie);

  // External runners: the next batch for `instance` (see InstancePool::pull), and its end.
  Status next_batch(int32_t instance, int64_t timeout_ns, Batch** out);
  void finish(Batch* batch, Status error);

  // The table's lifecycle: a replaced model forwards submissions to its successor; then
  // admission closes, the queue drains, and shut_down stops the workers.
  void set_successor(std::shared_ptr<Model> successor);
  // The model that replaced this one (nullptr while it is the one serving).
  std::shared_ptr<Model> successor();
  void close_admission();
  bool wait_idle(int64_t deadline_ns);
  // Fails what is queued (CANCELLED), stops the workers and joins them; a native worker still
  // stuck in its backend at `join_deadline_ns` has its batch failed (UNAVAILABLE) and is left
  // running, and the model with it. Idempotent.
  void shut_down(int64_t join_deadline_ns);

  // --- for the instances ------------------------------------------------------------------
  Scheduler& scheduler() { return *scheduler_; }
  ModelStats& counters() { return stats_; }
  // Counts the formed batch and its requests' queue times.
  void count_dispatch(const Batch& batch);
  // Completes a batch's requests through their sinks and counts them.
  void complete(Batch& batch, const Status& error);
  // Keeps this model alive for good (a worker stuck in its backend still uses it).
  void leak_for_stuck_worker();

  void fail(const std::vector<Request*>& requests, ir_code code, const std::string& what) override;

 private:
  Model(ModelConfig config, std::shared_ptr<CompletionQueue> completions);
  Status check_inputs(const TensorRef* inputs, int32_t n_inputs, int64_t* rows) const;
  Status check_parts(const TensorRef* inputs, int32_t n_inputs, const int64_t* rows, int32_t n_requests, int64_t total_rows) const;
  void fill_views(Request* request, const TensorRef* inputs, int32_t n_inputs, int64_t first_row, int64_t rows, int64_t total_rows) const;
  void deliver(std::vector<Completion>& done, const std::vector<Request*>& requests);
  static void mark_run_ends(std::vector<Completion>& done, const std::vector<Request*>& requests);
  void arm_timekeeper();
  void run_timekeeper();

  ModelConfig config_;
  std::shared_ptr<CompletionQueue> completions_;
  ModelStats stats_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<InstancePool> pool_;

  std::mutex successor_mu_;
  std::shared_ptr<Model> successor_;

  // The timekeeper ticks (1 ms) while requests with deadlines are queued or batches with an
  // execution timeout run, and sleeps otherwise; admission arms it.
  std::mutex timer_mu_;
  std::condition_variable timer_cv_;
  std::atomic<bool> timer_armed_{false};
  bool timer_exit_ = false;
  std::thread timer_;

  std::mutex shutdown_mu_;
  bool shut_down_ = false;
  std::shared_ptr<Model> keep_alive_;  // set when a stuck worker outlives shutdown
};

}  // namespace ir
