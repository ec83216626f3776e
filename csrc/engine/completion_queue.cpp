#include "completion_queue.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

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
      uint64_t one = 1;
      // A full counter (EAGAIN) still reads as readable: nothing is lost.
      [[maybe_unused]] ssize_t n = ::write(event_fd_, &one, sizeof(one));
    }
    if (waiters_ > 0) cv_.notify_all();
  }
  done.clear();
}

void CompletionQueue::close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

}  // namespace ir
