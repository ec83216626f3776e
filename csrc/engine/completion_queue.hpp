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

#include "response.hpp"

namespace ir {

class CompletionQueue {
 public:
  CompletionQueue();
  ~CompletionQueue();
  CompletionQueue(const CompletionQueue&) = delete;
  CompletionQueue& operator=(const CompletionQueue&) = delete;

  [[nodiscard]] int event_fd() const { return event_fd_; }

  void push(const Completion& completion);
  void push_all(const std::vector<Completion>& completions);

  // Moves up to `capacity` completions (oldest first) into `out`.
  size_t drain(Completion* out, size_t capacity);

  // Busy-waits (no sleep, no lock) up to `spin_ns` for something to be queued; then drains
  // like drain().
  size_t poll(int64_t spin_ns, Completion* out, size_t capacity);

  // Blocks until something is queued, `timeout_ns` passes (-1: forever) or close() is
  // called; then drains like drain().
  size_t wait(int64_t timeout_ns, Completion* out, size_t capacity);

  // Wakes blocked waiters for good (shutdown).
  void close();

  // Frees everything still queued (responses and errors).
  void discard_all();

 private:
  void signal_locked_transition(bool was_empty);
  size_t drain_locked(Completion* out, size_t capacity);

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Completion> items_;
  size_t head_ = 0;  // items_[head_..] are pending; compacted when drained
  std::atomic<bool> nonempty_{false};  // mirrors head_ < items_.size() for poll()
  int waiters_ = 0;
  bool closed_ = false;
  int event_fd_ = -1;
};

}  // namespace ir
