// CompletionQueue: finished requests waiting for the host. Signals an eventfd once per
// transition from empty to non-empty, so one wake-up of the event loop drains everything
// that finished meanwhile; a condition variable serves blocking waiters.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "clock.hpp"
#include "completion.hpp"

namespace ir {

class CompletionQueue final : public CompletionSink {
 public:
  // Errors: RESOURCE_EXHAUSTED when no eventfd can be made.
  static Status Create(std::shared_ptr<CompletionQueue>* out);
  ~CompletionQueue() override;
  CompletionQueue(const CompletionQueue&) = delete;
  CompletionQueue& operator=(const CompletionQueue&) = delete;

  [[nodiscard]] int event_fd() const { return event_fd_; }

  void complete(std::vector<Completion>& done) override;

  // EWMA (1/8) of how long the oldest pending completion had waited when a drain took it:
  // the host's delivery lag, which the adaptive batching policy counts as a per-batch cost.
  [[nodiscard]] int64_t delivery_lag_ns() const override { return lag_ewma_ns_.load(std::memory_order_relaxed); }

  // Hands up to `capacity` completions (oldest first) to `take(Completion&&)`, under the
  // queue's lock (take must be quick and must not call back into the queue); returns how many.
  template <typename Take>
  size_t drain(size_t capacity, Take&& take) {
    std::lock_guard<std::mutex> lock(mu_);
    return drain_locked(capacity, take);
  }

  // Busy-waits (no sleep, no lock) up to `spin_ns` for something to be queued; then drains.
  template <typename Take>
  size_t poll(int64_t spin_ns, size_t capacity, Take&& take) {
    const int64_t until = now_ns() + spin_ns;
    while (!nonempty_.load(std::memory_order_acquire) && now_ns() < until) cpu_relax(32);
    return drain(capacity, take);
  }

  // Blocks until something is queued, `timeout_ns` passes (-1: forever) or close() is called;
  // then drains.
  template <typename Take>
  size_t wait(int64_t timeout_ns, size_t capacity, Take&& take) {
    std::unique_lock<std::mutex> lock(mu_);
    auto ready = [this] { return head_ < items_.size() || closed_; };
    ++waiters_;
    if (timeout_ns < 0) {
      cv_.wait(lock, ready);
    } else {
      cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), ready);
    }
    --waiters_;
    return drain_locked(capacity, take);
  }

  // Wakes blocked waiters for good (shutdown).
  void close();

 private:
  CompletionQueue() = default;

  template <typename Take>
  size_t drain_locked(size_t capacity, Take& take) {
    size_t n = 0;
    while (n < capacity && head_ < items_.size()) {
      take(std::move(items_[head_++]));
      ++n;
    }
    if (n > 0) note_lag_locked(head_ == items_.size());
    if (head_ == items_.size()) {
      items_.clear();  // keeps capacity: no allocation in steady state
      head_ = 0;
      nonempty_.store(false, std::memory_order_relaxed);
    }
    return n;
  }

  // A drain took completions: the oldest had waited since the queue became non-empty.
  void note_lag_locked(bool emptied);

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Completion> items_;
  size_t head_ = 0;  // items_[head_..] are pending; compacted when drained
  std::atomic<bool> nonempty_{false};  // mirrors head_ < items_.size() for poll()
  int waiters_ = 0;
  int64_t nonempty_since_ns_ = 0;            // when the oldest pending completion was queued (about)
  std::atomic<int64_t> lag_ewma_ns_{0};      // written under mu_, read lock-free
  bool closed_ = false;
  int event_fd_ = -1;
};

}  // namespace ir
