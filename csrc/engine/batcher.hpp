// Batcher: the dynamic batching policy, and nothing else (no threads, no clock of its own).
// Model drives it under its lock with the real clock; ir_batcher_simulate drives the very
// same class on a virtual clock, which is what the Python reference is tested against.
//
// Policy (see docs/batching.md):
//  * Queue order: higher priority first, FIFO within a priority.
//  * The candidate batch is the longest prefix of the queue order whose requests are
//    compatible with the head and whose rows fit in max_batch_size; it stops at the first
//    request that does not fit or is incompatible (no overtaking).
//  * Dispatch now, in this order of precedence:
//    FULL      the candidate has max_batch_size rows, or is blocked by the next request
//              (waiting cannot grow it): the whole candidate goes;
//    PREFERRED some prefix of the candidate has exactly a preferred size: the longest such
//              prefix goes at once (as Triton: delay only when no preferred size can form);
//    DELAY     the candidate's oldest request has waited max_queue_delay: all of it goes.
//  * Unbatched models dispatch the head request alone at once (reason FULL).
//  * Requests whose deadline has passed are removed by expire() and never run.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "request.hpp"

namespace ir {

enum class DispatchReason : int { kNone = 0, kFull = 1, kPreferred = 2, kDelay = 3 };

struct BatchPolicy {
  bool batching = false;
  int64_t max_batch_size = 1;
  int64_t max_queue_delay_ns = 0;
  std::vector<int64_t> preferred;  // ascending, each <= max_batch_size
  int64_t max_queue_size = 1024;
  int32_t priority_levels = 1;
  bool adaptive = false;  // dispatch before the delay when no arrival is expected (see docs/batching.md)
};

class Batcher {
 public:
  explicit Batcher(BatchPolicy policy);

  // Admits a request (ownership stays with the caller). False when the queue is full.
  bool push(Request* request);

  // Moves every queued request whose deadline is <= now into `expired` (queue order).
  void expire(int64_t now, std::vector<Request*>& expired);

  // Forms a batch if the policy says so now: fills `batch` (queue order), returns why.
  DispatchReason form(int64_t now, std::vector<Request*>& batch);

  // Earliest time after which form() or expire() may act; kNever when nothing is queued.
  [[nodiscard]] int64_t next_event() const;

  // Removes and returns everything queued (shutdown).
  void drain_all(std::vector<Request*>& out);

  // Removes the queued request with this cookie (cancellation); nullptr when none is queued.
  Request* take(uint64_t cookie);

  // Whether any queued request has a deadline (the timekeeper sleeps while none has).
  [[nodiscard]] bool has_deadlines() const { return with_deadline_ > 0; }

  [[nodiscard]] size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }
  [[nodiscard]] const BatchPolicy& policy() const { return policy_; }

 private:
  // Walks the candidate batch; returns its row count and oldest enqueue time.
  struct Candidate {
    int64_t rows = 0;
    int64_t oldest_ns = 0;
    size_t count = 0;
    bool blocked = false;
    size_t preferred_count = 0;  // requests in the longest prefix whose rows are a preferred size
  };
  [[nodiscard]] Candidate candidate() const;

  BatchPolicy policy_;
  std::vector<std::deque<Request*>> levels_;  // index = priority; served high to low
  size_t size_ = 0;
  size_t with_deadline_ = 0;  // queued requests that have a deadline (skip scans when 0)
};

}  // namespace ir
