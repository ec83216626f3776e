// Engine: a table of models by name, the completion queue they report to by default, and a
// reaper that drains and frees replaced or retired models in the background.
//
// Threading: every method may be called from any thread. mu_ guards the table; it is never
// held while a model drains or while a model's lock is taken.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "completion_queue.hpp"
#include "model.hpp"
#include "pipeline.hpp"

namespace ir {

class Engine {
 public:
  static Status Create(std::unique_ptr<Engine>* out);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  [[nodiscard]] CompletionQueue& completions() { return *completions_; }

  // The model table. `backend` is taken (moved from) only on success.
  Status add(ModelConfig config, std::unique_ptr<Backend>* backend, std::shared_ptr<Model>* out);
  Status replace(ModelConfig config, std::unique_ptr<Backend>* backend, std::shared_ptr<Model>* out);
  Status retire(const std::string& name);
  Status find(const std::string& name, std::shared_ptr<Model>* out);

  // Pipelines share the models' namespace; their steps are models of this table.
  Status add_pipeline(PipelineConfig config, std::shared_ptr<Pipeline>* out);
  Status find_pipeline(const std::string& name, std::shared_ptr<Pipeline>* out);

  // Refuse new work, drain up to the deadline (pipelines first: their requests in flight
  // still need their steps' models), cancel the rest, release every worker.
  void stop(int64_t timeout_ns);

 private:
  Engine() = default;
  void run_reaper();
  void retire_locked(std::shared_ptr<Model> old);

  std::shared_ptr<CompletionQueue> completions_;
  std::mutex mu_;
  std::condition_variable reaper_cv_;
  std::map<std::string, std::shared_ptr<Model>> models_;
  std::map<std::string, std::shared_ptr<Pipeline>> pipelines_;
  std::vector<std::shared_ptr<Model>> retiring_;  // out of the table, draining
  // Shut down (workers joined, backend freed) but kept until the engine goes: the last
  // reference to a model must never drop on one of its own threads (a pipeline request
  // bound to an old version may finish on that version's timekeeper), which cannot join
  // itself. A shell is the model's queue and counters: small.
  std::vector<std::shared_ptr<Model>> retired_;
  bool stopped_ = false;
  bool stopping_ = false;
  std::thread reaper_;
};

}  // namespace ir
