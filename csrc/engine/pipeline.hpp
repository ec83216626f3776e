// Pipeline: a graph of steps run inside the engine. Each step is a model of the engine's
// table and batches with that model's own policy. The pipeline is the completion sink of
// its steps' requests: when a step's batch completes, the rows it produced for a request
// become the next steps' inputs (views of the batch's output buffers, not copies), and
// independent steps are in flight at once. When every step of a request has finished,
// the pipeline's outputs (aliases of the producing steps' buffers) complete the caller's
// request through its sink.
//
// A request holds one Run: its slots (one per step), the caller's borrowed inputs and a
// count of tokens in flight (one per submitted step, one per call working on it). The Run
// completes the caller only when that count falls to zero, so no step still reads the
// caller's inputs once it has been answered. A failing step fails the request naming the
// step and its model, and cancels the request's other queued steps.
//
// Threading: submit, cancel and the stats may be called from any thread; complete() runs
// on the threads that finish the steps' batches (engine workers, host executors, the
// timekeepers), never with a model's lock held.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "completion_queue.hpp"
#include "model.hpp"
#include "stats.hpp"
#include "status.hpp"
#include "tensor.hpp"

namespace ir {

constexpr int32_t kMaxPipelineSteps = 64;  // a step's index lives in the low bits of its cookie

struct PipelineBinding {
  std::string tensor;         // the step model's input (or the pipeline's output) it fills
  int32_t source_step = -1;   // an earlier step; -1: the pipeline's request
  std::string source_tensor;  // that step's output (or the request's input)
};

struct PipelineStepConfig {
  std::string name;
  std::string model;  // a model of the engine's table
  std::vector<PipelineBinding> inputs;
};

struct PipelineConfig {
  std::string name;
  std::vector<TensorSig> inputs;          // what a request brings, in submission order
  std::vector<PipelineStepConfig> steps;  // in dependency order: a step reads earlier steps only
  std::vector<PipelineBinding> outputs;
  int64_t default_timeout_ns = 0;  // 0: none
  int32_t priority_levels = 1;     // a step clamps a request's priority to its own levels
};

struct StepStats {
  using Counter = std::atomic<uint64_t>;
  Counter submitted{0}, succeeded{0}, failed{0};
  Counter step_ns_sum{0};  // submitted to completed, successes
  Counter step_ns_buckets[kDurationBuckets]{};
};

class Pipeline final : public CompletionSink, public std::enable_shared_from_this<Pipeline> {
 public:
  using FindModel = std::function<Status(const std::string& name, std::shared_ptr<Model>* out)>;

  // Resolves each step's model with `find` and checks the graph against the models'
  // signatures. Completions of callers' requests go to `completions` unless a sink is given.
  static Status Create(PipelineConfig config, const FindModel& find, std::shared_ptr<CompletionQueue> completions, std::shared_ptr<Pipeline>* out);
  ~Pipeline() override;
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  [[nodiscard]] const PipelineConfig& config() const { return config_; }
  [[nodiscard]] const ModelStats& stats() const { return stats_; }
  [[nodiscard]] const StepStats& step_stats(size_t step) const;

  // One request. `inputs` (in config().inputs order) are borrowed until its completion.
  // Errors at once: INVALID_ARGUMENT (inputs, priority, timeout), UNAVAILABLE (closed).
  // Everything later -- a step refusing, failing or timing out -- completes the request.
  // `wake` false: the first steps' models are not woken (a host submitting a burst calls
  // wake() once after it, so those models see the burst as one batch).
  Status submit(uint64_t cookie, const TensorRef* inputs, int32_t n_inputs, int32_t priority, int64_t timeout_us, bool wake = true, CompletionSink* sink = nullptr);
  // `n_requests` requests over consecutive row ranges of one set of fixed-size inputs (a
  // host's coalesced burst): checked once, then admitted in order (*admitted says how many).
  Status submit_many(uint64_t first_cookie, const TensorRef* inputs, int32_t n_inputs, const int64_t* rows, int32_t n_requests, int32_t priority,
                     int64_t timeout_us, bool wake, int32_t* admitted);
  void wake();
  // Fails the request with CANCELLED once its running steps return; queued steps never run.
  bool cancel(uint64_t cookie);

  void complete(std::vector<Completion>& done) override;

  // Stops admitting; requests in flight go on through their steps.
  void close_admission();
  // Waits until no request is in flight (or the deadline passes); true when idle.
  bool wait_idle(int64_t deadline_ns);

 // Internal: a step's state, one request's (named here for the cookie helpers), and the
  // work one call collects to do at its end.
  struct Step;
  struct Run;
  struct Outbox;

 private:

  Pipeline(PipelineConfig config, std::shared_ptr<CompletionQueue> completions);
  Status check_request(const TensorRef* inputs, int32_t n_inputs) const;
  Status check_options(int32_t priority, int64_t timeout_us) const;
  Status admit(uint64_t cookie, const TensorRef* inputs, int32_t n_inputs, int32_t priority, int64_t timeout_us, CompletionSink* sink, Outbox& out);
  void launch(Run* run, int32_t step, Outbox& out);
  Status submit_step(Run* run, int32_t step, Outbox& out);
  void step_done(Run* run, int32_t step, Completion&& done, Outbox& out);
  void fail(Run* run, int32_t step, const Status& error);
  void cancel_steps(Run* run);
  void release(Run* run, Outbox& out);
  void finish(Run* run, Outbox& out);
  void flush(Outbox& out, bool wake);
  Status collect_outputs(const Run& run, std::shared_ptr<BatchResult>* out) const;
  std::shared_ptr<BatchResult> shared_result(const std::shared_ptr<const BatchResult>& held, Outbox& out) const;

  PipelineConfig config_;
  std::shared_ptr<CompletionQueue> completions_;
  std::vector<std::unique_ptr<Step>> steps_;
  ModelStats stats_;
  int32_t terminal_ = -1;  // the step every output comes from, if one does

  std::mutex mu_;  // guards the list of runs in flight and `closed_`; taken before a run's lock
  std::condition_variable idle_cv_;
  Run* runs_ = nullptr;  // requests in flight, most recent first (cancel and drain walk it)
  bool closed_ = false;
};

}  // namespace ir
