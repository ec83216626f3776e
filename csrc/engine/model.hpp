// Model: one served model inside the engine. Owns the request queue (through a Batcher),
// the instances that run batches, and the gather/scatter between requests and batches.
//
// Threading: submit() may be called from any thread. Instance workers (native threads for
// native backends, host threads calling next_batch() for external backends) take the
// model lock only to run the batching policy; gather, execution and scatter run unlocked.
// Lock order: Model::mu_ before CompletionQueue's lock, never the reverse.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "batcher.hpp"
#include "buffer.hpp"
#include "completion_queue.hpp"
#include "request.hpp"
#include "response.hpp"
#include "stats.hpp"
#include "status.hpp"

struct ir_batch;

namespace ir {

struct TensorSig {
  std::string name;
  int32_t dtype = 0;
  std::vector<int64_t> shape;  // -1 = any
};

struct ModelConfig {
  std::string name;
  int32_t backend = 0;  // ir_backend_kind
  int32_t instances = 1;
  BatchPolicy policy;
  int64_t default_timeout_ns = 0;
  bool fixed_signature = true;
  std::vector<TensorSig> inputs;
  int64_t idle_spin_ns = 0;  // an idle worker polls this long before sleeping
};

class Model;
class NativeBackend;

}  // namespace ir

// The batch handed to an instance (the opaque ir_batch of the C ABI).
struct ir_batch {
  ir::Model* model = nullptr;
  int32_t instance = 0;
  ir::DispatchReason reason = ir::DispatchReason::kNone;
  int64_t rows = 0;
  int64_t dispatch_ns = 0;
  std::vector<ir::Request*> requests;
  std::vector<ir::InputView> inputs;   // gathered (or the single request's own views)
  std::vector<ir::BatchOutput> outputs;
};

namespace ir {

class Model {
 public:
  // `native` is required for IR_BACKEND_NATIVE (moved from only on success) and ignored
  // otherwise; identity models make their own.
  static Status Create(ModelConfig config, CompletionQueue* completions, std::unique_ptr<NativeBackend>* native, std::unique_ptr<Model>* out);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  [[nodiscard]] const ModelConfig& config() const { return config_; }

  Status submit(uint64_t cookie, const ir_tensor* inputs, int32_t n_inputs, int32_t priority, int64_t timeout_us, bool wake);
  // `n_requests` requests over consecutive row ranges of one set of inputs (ir_submit_many;
  // rows == nullptr: one request of all of them, which is what submit() is): validated,
  // then admitted in order while the queue has room; *admitted = how many went in.
  Status submit_many(uint64_t first_cookie, const ir_tensor* inputs, int32_t n_inputs, const int64_t* rows, int32_t n_requests, int32_t priority, int64_t timeout_us, bool wake, int32_t* admitted);

  // Hands requests admitted with wake = false to the batcher, as one burst, and wakes
  // idle workers. Until then they are admitted (they count against max_queue_size) but
  // invisible to the batcher, so a busy worker cannot pick a burst apart.
  void wake();

  // Blocks until a batch is formed for `instance`; *out = nullptr on timeout.
  Status next_batch(int32_t instance, int64_t timeout_ns, ir_batch** out);

  // Records one output of the batch: copied into engine memory, or, when `owner` holds
  // output.data already (a native backend's tensor), adopted without a copy.
  Status set_output(ir_batch* batch, const ir_tensor& output, std::shared_ptr<Buffer> owner = nullptr);

  // Completes the batch's requests (with its outputs, or with `error`) and frees it.
  // Takes ownership of `error`.
  void finish(ir_batch* batch, ir_error* error);

  // Phase 1 of shutdown: refuse new work.
  void close_admission();
  // Phase 2: wait until nothing is queued or running, up to the deadline. True if idle.
  bool wait_idle(int64_t deadline_ns);
  // Phase 3: cancel what is queued, wake and release every worker, join native threads.
  void shut_down();

  [[nodiscard]] const ModelStats& stats() const { return stats_; }

 private:
  Model(ModelConfig config, CompletionQueue* completions);
  Status check_inputs(const ir_tensor* inputs, int32_t n_inputs, int64_t* rows) const;
  // The split of `total_rows` into requests (rows == nullptr: one request of all of them).
  Status check_parts(const ir_tensor* inputs, int32_t n_inputs, const int64_t* rows, int32_t n_requests, int64_t total_rows) const;
  // Points a request's views at rows [first_row, first_row + rows) of `inputs`.
  void fill_views(Request* request, const ir_tensor* inputs, int32_t n_inputs, int64_t first_row, int64_t rows, int64_t total_rows) const;
  void fail_locked(std::vector<Request*>& requests, ir_code code, const char* what);
  // Hands every staged request to the batcher (a doorbell, a full burst, or shutdown).
  void release_staged_locked();
  // A request object for admission: a recycled one when available (with its vectors'
  // capacity), else a new one. recycle_locked takes finished ones back. Both under mu_.
  Request* take_request_locked();
  void recycle_locked(Request* request);
  ir_batch* build_batch(int32_t instance, DispatchReason reason, std::vector<Request*>& requests, int64_t now);
  // The loop of a native instance thread: pull a batch, run it, complete it.
  void run_native(int32_t instance);
  // Polls for new work for up to idle_spin_ns without the lock; true if some arrived.
  bool spin_for_work();

  ModelConfig config_;
  CompletionQueue* completions_;
  ModelStats stats_;

  std::mutex mu_;
  std::condition_variable work_cv_;  // idle workers wait here
  std::condition_variable idle_cv_;  // wait_idle waits here
  Batcher batcher_;
  std::vector<Request*> staged_;  // admitted with wake = false; handed to the batcher by wake()
  int64_t staged_rows_ = 0;       // rows in staged_: a full batch's worth is handed over at once
  int64_t running_batches_ = 0;
  uint64_t next_id_ = 0;
  std::atomic<uint64_t> arrivals_{0};  // bumped on every admission and on shutdown: spinners watch it
  bool spin_pays_ = true;  // the last idle gap was within idle_spin_ns (under mu_)
  bool admission_closed_ = false;
  bool exit_ = false;
  std::vector<Request*> scratch_;    // reused under mu_: expired / formed requests
  std::vector<Request*> spare_;      // finished requests kept for reuse (under mu_)

  std::vector<std::vector<std::vector<uint8_t>>> gather_;  // [instance][input]: reused buffers
  std::unique_ptr<NativeBackend> native_;  // native backends only
  std::vector<std::thread> threads_;  // native workers
};

}  // namespace ir
