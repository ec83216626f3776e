// Batcher: the dynamic batching policy, and nothing else (no threads, no clock of its own).
// The scheduler drives it under its lock with the real clock; ir_batcher_simulate drives the
// very same class on a virtual clock, which is what the Python reference is tested against.
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
//    DELAY     the candidate's oldest request has waited max_queue_delay: all of it goes;
//    EARLY     (adaptive only) waiting for one more arrival is not expected to lower the
//              latency of the requests involved (the cost model below): all of it goes.
//  * Unbatched models dispatch the head request alone at once (reason FULL).
//  * Requests whose deadline has passed are removed by expire() and never run.
//
// Adaptive cost model (integer arithmetic only, so the Python reference agrees bit for bit):
//  * A batch of R rows runs in E(R) = a + b*R, learned from finished batches (observe()):
//    the line through the smallest and the largest sizes fed within the last 128 batches.
//  * tau, the expected time to the next arrival, is max(g, now - last arrival), where g is an
//    EWMA (1/8) of inter-arrival gaps kept by push(), each gap capped at 8 windows.
//  * D is how long a newcomer would wait if the candidate left now: for an instance (0 when
//    another is idle, else E(R), or less when a busy instance is expected to end sooner:
//    InstanceLoad::busy_until_ns), or for the host to take its batch's results, h (the
//    host's recent delivery lag, InstanceLoad::host_lag_ns), whichever is longer: a batch of
//    its own costs the host a pass of its own, and a host that lags is the bottleneck.
//  * Waiting for one more arrival (of R/n rows) costs the n waiting requests n*tau + b*R and
//    saves the newcomer (D - tau) + E(R/n) - E(R + R/n) = D - tau - b*R; it pays iff
//        (n + 1) * tau + 2 * b * R < D.
//    Otherwise the candidate goes now (EARLY); max_queue_delay stays the bound (DELAY).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <vector>

#include "clock.hpp"
#include "request.hpp"

namespace ir {

enum class DispatchReason : int { kNone = 0, kFull = 1, kPreferred = 2, kDelay = 3, kEarly = 4 };

struct BatchPolicy {
  bool batching = false;
  int64_t max_batch_size = 1;
  int64_t max_queue_delay_ns = 0;
  std::vector<int64_t> preferred;  // ascending, each <= max_batch_size
  int64_t max_queue_size = 1024;
  int32_t priority_levels = 1;
  bool adaptive = false;  // false: wait out max_queue_delay exactly as before (Triton's window)
};

// What the scheduler knows about its instances when it asks the policy (adaptive only; the
// fixed window ignores it). The defaults describe one instance, the caller, and nothing running.
struct InstanceLoad {
  // Instances idle now, counting the one asking for a batch. More than one: a newcomer could
  // start at once on another, so waiting for it never pays.
  int32_t idle = 1;
  // Earliest expected end of a batch running on another instance: its dispatch time plus
  // expected_exec_ns(its rows) taken at dispatch. kNever: none running, or unknown.
  int64_t busy_until_ns = kNever;
  // How long completed batches have recently waited for their consumer to take them (the
  // completion sink's delivery lag, an EWMA; 0: taken at once, or no host in between).
  int64_t host_lag_ns = 0;
};

class Batcher {
 public:
  explicit Batcher(BatchPolicy policy);

  // Admits a request (ownership stays with the caller) and, with adaptive, records its
  // arrival (enqueue_ns) in the inter-arrival estimate. False when the queue is full.
  bool push(Request* request);

  // Moves every queued request whose deadline is <= now into `expired` (queue order).
  void expire(int64_t now, std::vector<Request*>& expired);

  // Forms a batch if the policy says so now: fills `batch` (queue order), returns why.
  // The first form assumes the default InstanceLoad (one idle instance, nothing running).
  DispatchReason form(int64_t now, std::vector<Request*>& batch) { return form(now, batch, InstanceLoad{}); }
  DispatchReason form(int64_t now, std::vector<Request*>& batch, const InstanceLoad& load);

  // Earliest time after which form() or expire() may act; kNever when nothing is queued.
  // The first form knows no clock: with adaptive it returns the delay bound, which is late
  // only for an EARLY decision that silence alone would trigger.
  [[nodiscard]] int64_t next_event() const;
  [[nodiscard]] int64_t next_event(int64_t now, const InstanceLoad& load) const;

  // A batch of `rows` rows finished after running `exec_ns` (its dispatch to its end):
  // feeds the cost model E(R) = a + b*R. O(1); cheap enough to call for every batch.
  void observe(int64_t rows, int64_t exec_ns);

  // The cost model's estimate of a batch of `rows` rows (0 before anything was observed).
  [[nodiscard]] int64_t expected_exec_ns(int64_t rows) const;

  // Removes and returns everything queued (shutdown).
  void drain_all(std::vector<Request*>& out);

  // Removes the queued request with this cookie (cancellation); nullptr when none is queued.
  Request* take(uint64_t cookie);

  // Whether any queued request has a deadline (the timekeeper sleeps while none has).
  [[nodiscard]] bool has_deadlines() const { return with_deadline_ > 0; }

  // The first request in queue order (the head of the candidate batch); nullptr when empty.
  [[nodiscard]] const Request* head() const;

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
  // The adaptive rule: true while waiting for one more arrival is expected to pay at `now`.
  [[nodiscard]] bool worth_waiting(const Candidate& c, int64_t now, const InstanceLoad& load) const;

  BatchPolicy policy_;
  std::vector<std::deque<Request*>> levels_;  // index = priority; served high to low
  size_t size_ = 0;
  size_t with_deadline_ = 0;  // queued requests that have a deadline (skip scans when 0)

  // Arrival estimate (adaptive): EWMA of inter-arrival gaps; kNever until two arrivals.
  int64_t last_arrival_ns_ = kNever;
  int64_t gap_ewma_ns_ = kNever;

  // Cost model: per log2(rows) bucket, EWMAs of rows (x256) and execution time, and when the
  // bucket was last fed. A bucket not fed within the last kFreshBatches batches is left out
  // of the fit: a size seen once (often a backend's slow first run at a new shape) and never
  // again would otherwise fix a and b for good.
  static constexpr int kCostBuckets = 24;
  static constexpr int64_t kFreshBatches = 128;
  struct CostCell {
    bool seen = false;
    int64_t rows_x256 = 0;
    int64_t exec_ns = 0;
    int64_t fed_at = 0;  // observed_ when last fed
  };
  std::array<CostCell, kCostBuckets> cost_{};
  int64_t observed_ = 0;  // batches fed to the cost model
  int64_t fixed_ns_ = 0;    // a
  int64_t per_row_ns_ = 0;  // b
};

}  // namespace ir
