#include "completion_queue.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <iterator>

namespace ir {

Status CompletionQueue::Create(std::shared_ptr<CompletionQueue>* out) {
  std::shared_ptr<CompletionQueue> queue(new CompletionQueue());
  queue->event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (queue->event_fd_ < 0) return Status(IR_ERROR_RESOURCE_EXHAUSTED, "cannot create an eventfd");
  queue->items_.reserve(1024);
  *out = std::move(queue);
  return Status::Ok();
}

CompletionQueue::~CompletionQueue() {
  if (event_fd_ >= 0) ::close(event_fd_);
}

void CompletionQueue::complete(std::vector<Completion>& done) {
  if (done.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool was_empty = head_ == items_.size();
    items_.insert(items_.end(), std::make_move_iterator(done.begin()), std::make_move_iterator(done.end()));
    nonempty_.store(true, std::memory_order_release);
    if (was_empty) {
      nonempty_since_ns_ = now_ns();
      uint64_t one = 1;
      // A full counter (EAGAIN) still reads as readable: nothing is lost.
      [[maybe_unused]] ssize_t n = ::write(event_fd_, &one, sizeof(one));
    }
    if (waiters_ > 0) cv_.notify_all();
  }
  done.clear();
}

void CompletionQueue::note_lag_locked(bool emptied) {
  const int64_t now = now_ns();
  // A lag beyond a second says nothing more (a consumer that stopped); the cap also keeps
  // the EWMA's arithmetic far from overflow.
  const int64_t sample = std::min<int64_t>(std::max<int64_t>(now - nonempty_since_ns_, 0), 1'000'000'000);
  const int64_t previous = lag_ewma_ns_.load(std::memory_order_relaxed);
  lag_ewma_ns_.store((7 * previous + sample) / 8, std::memory_order_relaxed);
  // A partial drain leaves newer completions: their wait is counted from now (an underestimate).
  if (!emptied) nonempty_since_ns_ = now;
}

void CompletionQueue::close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

}  // namespace ir
