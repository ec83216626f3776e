#include "completion_queue.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <system_error>

#include "clock.hpp"
#include "infer_runtime.h"

namespace ir {

CompletionQueue::CompletionQueue() {
  event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  items_.reserve(1024);
}

CompletionQueue::~CompletionQueue() {
  discard_all();
  if (event_fd_ >= 0) ::close(event_fd_);
}

void CompletionQueue::signal_locked_transition(bool was_empty) {
  nonempty_.store(true, std::memory_order_release);
  if (was_empty) {
    uint64_t one = 1;
    // A full counter (EAGAIN) still reads as readable: nothing is lost.
    [[maybe_unused]] ssize_t n = ::write(event_fd_, &one, sizeof(one));
  }
  if (waiters_ > 0) cv_.notify_all();
}

void CompletionQueue::push(const Completion& completion) {
  std::lock_guard<std::mutex> lock(mu_);
  bool was_empty = head_ == items_.size();
  items_.push_back(completion);
  signal_locked_transition(was_empty);
}

void CompletionQueue::push_all(const std::vector<Completion>& completions) {
  if (completions.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  bool was_empty = head_ == items_.size();
  items_.insert(items_.end(), completions.begin(), completions.end());
  signal_locked_transition(was_empty);
}

size_t CompletionQueue::drain_locked(Completion* out, size_t capacity) {
  size_t n = 0;
  while (n < capacity && head_ < items_.size()) out[n++] = items_[head_++];
  if (head_ == items_.size()) {
    items_.clear();  // keeps capacity: no allocation in steady state
    head_ = 0;
    nonempty_.store(false, std::memory_order_relaxed);
  }
  return n;
}

size_t CompletionQueue::poll(int64_t spin_ns, Completion* out, size_t capacity) {
  const int64_t until = now_ns() + spin_ns;
  while (!nonempty_.load(std::memory_order_acquire) && now_ns() < until) cpu_relax(32);
  return drain(out, capacity);
}

size_t CompletionQueue::drain(Completion* out, size_t capacity) {
  std::lock_guard<std::mutex> lock(mu_);
  return drain_locked(out, capacity);
}

size_t CompletionQueue::wait(int64_t timeout_ns, Completion* out, size_t capacity) {
  std::unique_lock<std::mutex> lock(mu_);
  auto ready = [this] { return head_ < items_.size() || closed_; };
  ++waiters_;
  if (timeout_ns < 0) {
    cv_.wait(lock, ready);
  } else {
    cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), ready);
  }
  --waiters_;
  return drain_locked(out, capacity);
}

void CompletionQueue::close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

void CompletionQueue::discard_all() {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = head_; i < items_.size(); ++i) {
    ir_response_release(items_[i].response);
    ir_error_free(items_[i].error);
  }
  items_.clear();
  head_ = 0;
  nonempty_.store(false, std::memory_order_relaxed);
}

}  // namespace ir
