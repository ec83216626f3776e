#include "engine.hpp"

#include "clock.hpp"

void ir_engine::stop(int64_t timeout_ns) {
  std::vector<ir::Model*> targets;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (stopped) return;
    stopped = true;
    for (auto& m : models) targets.push_back(m.get());
  }
  for (ir::Model* m : targets) m->close_admission();
  int64_t deadline = timeout_ns < 0 ? ir::kNever : ir::now_ns() + timeout_ns;
  for (ir::Model* m : targets) m->wait_idle(deadline);
  for (ir::Model* m : targets) m->shut_down();
  completions.close();
}
