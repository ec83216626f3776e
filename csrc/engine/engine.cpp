#include "engine.hpp"

#include <chrono>
#include <utility>

#include "../backends/backend.hpp"
#include "clock.hpp"

namespace ir {

namespace {
constexpr int64_t kJoinGraceNs = 200000000;  // how long a stopped worker may take to return
}  // namespace

Status Engine::Create(std::unique_ptr<Engine>* out) {
  std::unique_ptr<Engine> engine(new Engine());
  IR_RETURN_IF_ERROR(CompletionQueue::Create(&engine->completions_));
  engine->reaper_ = std::thread([e = engine.get()] { e->run_reaper(); });
  *out = std::move(engine);
  return Status::Ok();
}

Engine::~Engine() {
  stop(0);
  if (reaper_.joinable()) reaper_.join();
  // Models go with the table; handles still held elsewhere keep theirs (stopped) alive.
}

Status Engine::add(ModelConfig config, std::unique_ptr<Backend>* backend, std::shared_ptr<Model>* out) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return Status(IR_ERROR_UNAVAILABLE, "engine is stopped");
    if (models_.count(config.name) != 0 || pipelines_.count(config.name) != 0) return Status(IR_ERROR_INVALID_ARGUMENT, "duplicate model name '" + config.name + "'");
  }
  std::shared_ptr<Model> model;
  const std::string name = config.name;
  IR_RETURN_IF_ERROR(Model::Create(std::move(config), completions_, backend, &model));
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_ || models_.count(name) != 0 || pipelines_.count(name) != 0) {
    model->shut_down(now_ns() + kJoinGraceNs);  // lost a race: nothing was admitted yet
    return stopped_ ? Status(IR_ERROR_UNAVAILABLE, "engine is stopped") : Status(IR_ERROR_INVALID_ARGUMENT, "duplicate model name '" + name + "'");
  }
  models_[name] = model;
  *out = std::move(model);
  return Status::Ok();
}

Status Engine::replace(ModelConfig config, std::unique_ptr<Backend>* backend, std::shared_ptr<Model>* out) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return Status(IR_ERROR_UNAVAILABLE, "engine is stopped");
    if (models_.count(config.name) == 0) return Status(IR_ERROR_NOT_FOUND, "no model named '" + config.name + "' to replace");
  }
  // Built (threads started, backend checked) before the table changes: a failure leaves the
  // old model serving.
  std::shared_ptr<Model> model;
  const std::string name = config.name;
  IR_RETURN_IF_ERROR(Model::Create(std::move(config), completions_, backend, &model));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  if (stopped_ || it == models_.end()) {
    model->shut_down(now_ns() + kJoinGraceNs);
    return stopped_ ? Status(IR_ERROR_UNAVAILABLE, "engine is stopped") : Status(IR_ERROR_NOT_FOUND, "no model named '" + name + "' to replace");
  }
  std::shared_ptr<Model> old = std::move(it->second);
  it->second = model;
  old->set_successor(model);  // before admission closes: a late submission is handed on
  retire_locked(std::move(old));
  *out = std::move(model);
  return Status::Ok();
}

Status Engine::retire(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return Status(IR_ERROR_NOT_FOUND, "no model named '" + name + "'");
  std::shared_ptr<Model> old = std::move(it->second);
  models_.erase(it);
  retire_locked(std::move(old));
  return Status::Ok();
}

void Engine::retire_locked(std::shared_ptr<Model> old) {
  old->close_admission();
  retiring_.push_back(std::move(old));
  reaper_cv_.notify_all();
}

Status Engine::find(const std::string& name, std::shared_ptr<Model>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return Status(IR_ERROR_NOT_FOUND, "no model named '" + name + "'");
  *out = it->second;
  return Status::Ok();
}

Status Engine::add_pipeline(PipelineConfig config, std::shared_ptr<Pipeline>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return Status(IR_ERROR_UNAVAILABLE, "engine is stopped");
  if (models_.count(config.name) != 0 || pipelines_.count(config.name) != 0) return Status(IR_ERROR_INVALID_ARGUMENT, "duplicate model or pipeline name '" + config.name + "'");
  const std::string name = config.name;
  auto find_locked = [this](const std::string& model, std::shared_ptr<Model>* found) {
    auto it = models_.find(model);
    if (it == models_.end()) return Status(IR_ERROR_NOT_FOUND, "no model named '" + model + "'");
    *found = it->second;
    return Status::Ok();
  };
  std::shared_ptr<Pipeline> pipeline;
  IR_RETURN_IF_ERROR(Pipeline::Create(std::move(config), find_locked, completions_, &pipeline));
  pipelines_[name] = pipeline;
  *out = std::move(pipeline);
  return Status::Ok();
}

Status Engine::find_pipeline(const std::string& name, std::shared_ptr<Pipeline>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pipelines_.find(name);
  if (it == pipelines_.end()) return Status(IR_ERROR_NOT_FOUND, "no pipeline named '" + name + "'");
  *out = it->second;
  return Status::Ok();
}

// Drains retired models one check at a time (never holding mu_ while waiting on a model),
// then shuts each down and drops the engine's reference.
void Engine::run_reaper() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    reaper_cv_.wait(lock, [this] { return stopping_ || !retiring_.empty(); });
    if (stopping_) return;  // stop() takes over whatever is still retiring
    std::vector<std::shared_ptr<Model>> batch = retiring_;
    lock.unlock();
    std::vector<Model*> done;
    for (const auto& model : batch) {
      if (model->wait_idle(now_ns() + 10000000)) {
        model->shut_down(now_ns() + kJoinGraceNs);
        done.push_back(model.get());
      }
    }
    lock.lock();
    for (Model* m : done) {
      for (auto it = retiring_.begin(); it != retiring_.end(); ++it) {
        if (it->get() == m) {
          retired_.push_back(std::move(*it));
          retiring_.erase(it);
          break;
        }
      }
    }
  }
}

void Engine::stop(int64_t timeout_ns) {
  std::vector<std::shared_ptr<Model>> targets;
  std::vector<std::shared_ptr<Pipeline>> pipelines;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
    for (auto& entry : models_) targets.push_back(entry.second);
    for (auto& model : retiring_) targets.push_back(model);
    for (auto& entry : pipelines_) pipelines.push_back(entry.second);
  }
  reaper_cv_.notify_all();
  if (reaper_.joinable()) reaper_.join();
  const int64_t deadline = timeout_ns < 0 ? kNever : now_ns() + timeout_ns;
  // A pipeline request admitted before the stop still needs its later steps' models open.
  for (auto& p : pipelines) p->close_admission();
  for (auto& p : pipelines) p->wait_idle(deadline);
  for (auto& m : targets) m->close_admission();
  for (auto& m : targets) m->wait_idle(deadline);
  const int64_t join_deadline = deadline == kNever ? kNever : std::max(deadline, now_ns()) + kJoinGraceNs;
  for (auto& m : targets) m->shut_down(join_deadline);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& model : retiring_) retired_.push_back(std::move(model));
    retiring_.clear();
  }
  completions_->close();
}

}  // namespace ir
