// Engine: the models of one runtime and the completion queue they report to.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "completion_queue.hpp"
#include "model.hpp"

struct ir_engine {
  ir::CompletionQueue completions;
  std::mutex mu;  // guards models (adding) and stopped
  std::vector<std::unique_ptr<ir::Model>> models;
  bool stopped = false;

  // Refuse new work, drain up to the deadline, cancel the rest, release every worker.
  void stop(int64_t timeout_ns);
};
