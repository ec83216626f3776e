#include "scheduler.hpp"

#include "completion.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

namespace ir {

namespace {

std::chrono::steady_clock::time_point to_time_point(int64_t ns) {
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(ns));
}

}  // namespace

Scheduler::Scheduler(std::string model_name, const BatchPolicy& policy, int32_t instances, int64_t idle_spin_ns, ModelStats* stats, RequestFinisher* finisher)
    : model_name_(std::move(model_name)), policy_(policy), idle_spin_ns_(idle_spin_ns), stats_(stats), finisher_(finisher), batcher_(policy) {
  busy_until_.assign(static_cast<size_t>(std::max(instances, 1)), kNever);
  scratch_.reserve(static_cast<size_t>(std::max<int64_t>(policy_.max_batch_size, 16)));
}

Scheduler::~Scheduler() {
  for (Request* r : spare_) delete r;
}

Request* Scheduler::take_request_locked() {
  if (spare_.empty()) return new Request();
  Request* r = spare_.back();
  spare_.pop_back();
  return r;
}

void Scheduler::recycle_locked(Request* r) {
  // Bounded by the queue limit: a burst's worth of requests is kept, no more.
  if (static_cast<int64_t>(spare_.size()) < std::min<int64_t>(policy_.max_queue_size, 4096)) {
    spare_.push_back(r);
  } else {
    delete r;
  }
}

void Scheduler::wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    release_staged_locked();
  }
  arrivals_.fetch_add(1, std::memory_order_release);
  work_cv_.notify_one();
}

void Scheduler::release_staged_locked() {
  for (Request* r : staged_) batcher_.push(r);  // admitted already: fits
  staged_.clear();
  staged_rows_ = 0;
}

void Scheduler::fail_unlocked(std::vector<Request*>& requests, std::unique_lock<std::mutex>& lock, ir_code code, const char* what) {
  std::vector<Request*> failing;
  failing.swap(requests);
  lock.unlock();
  finisher_->fail(failing, code, what);
  lock.lock();
  for (Request* r : failing) recycle_locked(r);
}

// What the adaptive policy knows of the instances: how many are idle (the asking one
// included), when the earliest running batch is expected to end, and how long the head
// request's consumer has lately taken to collect finished batches (its sink's lag).
InstanceLoad Scheduler::load_locked() const {
  InstanceLoad load;
  load.idle = static_cast<int32_t>(std::max<int64_t>(1, static_cast<int64_t>(busy_until_.size()) - running_));
  for (int64_t until : busy_until_) load.busy_until_ns = std::min(load.busy_until_ns, until);
  if (policy_.adaptive) {
    const Request* head = batcher_.head();
    if (head != nullptr && head->sink != nullptr) load.host_lag_ns = head->sink->delivery_lag_ns();
  }
  return load;
}

bool Scheduler::next(int32_t instance, int64_t timeout_ns, std::vector<Request*>* taken, DispatchReason* reason, int64_t* now_out, bool* stopped) {
  *stopped = false;
  std::unique_lock<std::mutex> lock(mu_);
  const int64_t give_up = timeout_ns < 0 ? kNever : now_ns() + timeout_ns;
  bool spun = false;
  int64_t idle_since = -1;  // when this call first found nothing to do
  for (;;) {
    if (exit_) {
      *stopped = true;
      return false;
    }
    int64_t now = now_ns();
    scratch_.clear();
    batcher_.expire(now, scratch_);
    if (!scratch_.empty()) {
      fail_unlocked(scratch_, lock, IR_ERROR_DEADLINE_EXCEEDED, "request timed out in the queue");
      continue;  // the lock was released: look again
    }
    DispatchReason why = batcher_.form(now, scratch_, load_locked());
    if (why != DispatchReason::kNone) {
      // Spin next time only if this idle gap was short enough for a spin to have caught it:
      // in a closed loop at high concurrency the host needs far longer than the spin window
      // to resubmit a cohort, and a spinning worker only takes CPU from it.
      if (idle_since >= 0) spin_pays_ = now - idle_since <= idle_spin_ns_;
      taken->swap(scratch_);
      scratch_.clear();
      ++running_;
      int64_t rows = 0;
      for (const Request* r : *taken) rows += r->rows;
      busy_until_[static_cast<size_t>(instance)] = now + batcher_.expected_exec_ns(rows);
      stats_->queue_depth.store(static_cast<int64_t>(batcher_.size()), std::memory_order_relaxed);
      const bool more = !batcher_.empty();
      lock.unlock();
      if (more) work_cv_.notify_one();  // another idle instance may take the next batch
      *reason = why;
      *now_out = now;
      return true;
    }
    stats_->queue_depth.store(static_cast<int64_t>(batcher_.size()), std::memory_order_relaxed);
    if (now >= give_up) return false;
    if (idle_since < 0) idle_since = now;
    if (!spun && batcher_.empty() && idle_spin_ns_ > 0 && spin_pays_) {
      // Traffic often resumes within microseconds of a batch finishing; polling briefly
      // saves the futex wake-up of a sleeping worker (~10 us here) on that request.
      spun = true;
      lock.unlock();
      spin_for_work();
      lock.lock();
      continue;
    }
    const int64_t wake = std::min(batcher_.next_event(now, load_locked()), give_up);
    if (admission_closed_ && idle_locked()) idle_cv_.notify_all();
    if (wake == kNever) work_cv_.wait(lock);
    else work_cv_.wait_until(lock, to_time_point(wake));
  }
}

void Scheduler::finished(int32_t instance, const std::vector<Request*>& requests, int64_t rows, int64_t exec_ns, bool ran) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Request* r : requests) recycle_locked(r);
  busy_until_[static_cast<size_t>(instance)] = kNever;
  if (ran) batcher_.observe(rows, exec_ns);
  --running_;
  if (admission_closed_ && idle_locked()) idle_cv_.notify_all();
}

bool Scheduler::expire_due(int64_t now) {
  std::unique_lock<std::mutex> lock(mu_);
  scratch_.clear();
  batcher_.expire(now, scratch_);
  if (!scratch_.empty()) {
    stats_->queue_depth.store(static_cast<int64_t>(batcher_.size() + staged_.size()), std::memory_order_relaxed);
    fail_unlocked(scratch_, lock, IR_ERROR_DEADLINE_EXCEEDED, "request timed out in the queue");
    if (admission_closed_ && idle_locked()) idle_cv_.notify_all();
  }
  // Staged requests reach the batcher at the next doorbell; their deadlines count too.
  bool staged_deadline = std::any_of(staged_.begin(), staged_.end(), [](const Request* r) { return r->deadline_ns != kNever; });
  return batcher_.has_deadlines() || staged_deadline;
}

bool Scheduler::cancel(uint64_t cookie) {
  std::unique_lock<std::mutex> lock(mu_);
  Request* found = batcher_.take(cookie);
  if (found == nullptr) {
    auto it = std::find_if(staged_.begin(), staged_.end(), [cookie](const Request* r) { return r->cookie == cookie; });
    if (it == staged_.end()) return false;
    found = *it;
    staged_rows_ -= found->rows;
    staged_.erase(it);
  }
  stats_->queue_depth.store(static_cast<int64_t>(batcher_.size() + staged_.size()), std::memory_order_relaxed);
  std::vector<Request*> one{found};
  fail_unlocked(one, lock, IR_ERROR_CANCELLED, "request cancelled by the caller");
  if (admission_closed_ && idle_locked()) idle_cv_.notify_all();
  return true;
}

void Scheduler::close_admission() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    admission_closed_ = true;
    release_staged_locked();  // nothing admitted may wait for a doorbell
    if (idle_locked()) idle_cv_.notify_all();
  }
  work_cv_.notify_all();
}

bool Scheduler::pin() {
  std::lock_guard<std::mutex> lock(mu_);
  if (admission_closed_) return false;
  ++pins_;
  return true;
}

void Scheduler::unpin() {
  std::lock_guard<std::mutex> lock(mu_);
  --pins_;
  if (admission_closed_ && idle_locked()) idle_cv_.notify_all();
}

bool Scheduler::admission_closed() {
  std::lock_guard<std::mutex> lock(mu_);
  return admission_closed_;
}

int64_t Scheduler::running() {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

bool Scheduler::wait_idle(int64_t deadline_ns) {
  std::unique_lock<std::mutex> lock(mu_);
  auto idle = [this] { return idle_locked(); };
  if (deadline_ns == kNever) {
    idle_cv_.wait(lock, idle);
    return true;
  }
  return idle_cv_.wait_until(lock, to_time_point(deadline_ns), idle);
}

void Scheduler::shut_down() {
  std::unique_lock<std::mutex> lock(mu_);
  if (exit_) return;
  admission_closed_ = true;
  exit_ = true;
  arrivals_.fetch_add(1, std::memory_order_release);  // ends any spin at once
  scratch_.clear();
  batcher_.drain_all(scratch_);
  scratch_.insert(scratch_.end(), staged_.begin(), staged_.end());
  staged_.clear();
  staged_rows_ = 0;
  stats_->queue_depth.store(0, std::memory_order_relaxed);
  work_cv_.notify_all();
  if (!scratch_.empty()) fail_unlocked(scratch_, lock, IR_ERROR_CANCELLED, "request cancelled: the runtime is shutting down");
  idle_cv_.notify_all();
}

bool Scheduler::spin_for_work() {
  const uint64_t seen = arrivals_.load(std::memory_order_acquire);
  const int64_t until = now_ns() + idle_spin_ns_;
  do {
    cpu_relax(32);
    if (arrivals_.load(std::memory_order_acquire) != seen) return true;
  } while (now_ns() < until);
  return false;
}

}  // namespace ir
