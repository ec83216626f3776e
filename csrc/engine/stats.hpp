// Per-model counters and histograms, updated with relaxed atomics on the hot path and
// read as a snapshot by the ABI seam (ir_model_stats_get) (the metrics collector reads them at scrape
// time, so serving costs no Python work per request).
#pragma once

#include <atomic>
#include <cstdint>


namespace ir {

constexpr int kDurationBuckets = 25;  // upper bounds 1us * 2^i (i < 24), then +Inf
constexpr int kBatchBuckets = 18;     // upper bounds 2^i rows (i < 17), then +Inf

inline int duration_bucket(int64_t ns) {
  int64_t bound = 1000;
  for (int i = 0; i < kDurationBuckets - 1; ++i, bound *= 2) {
    if (ns <= bound) return i;
  }
  return kDurationBuckets - 1;
}

inline int rows_bucket(int64_t rows) {
  int64_t bound = 1;
  for (int i = 0; i < kBatchBuckets - 1; ++i, bound *= 2) {
    if (rows <= bound) return i;
  }
  return kBatchBuckets - 1;
}

struct ModelStats {
  using Counter = std::atomic<uint64_t>;
  Counter submitted{0}, succeeded{0}, failed_invalid{0}, rejected_queue_full{0}, timed_out{0};
  Counter failed_backend{0}, cancelled{0};
  Counter batches{0}, batches_full{0}, batches_preferred{0}, batches_delay{0}, batches_early{0}, batched_rows{0};
  Counter execution_timeouts{0};
  std::atomic<int64_t> queue_depth{0}, in_flight{0};
  Counter queue_ns_sum{0}, compute_ns_sum{0}, request_ns_sum{0};
  Counter queue_ns_buckets[kDurationBuckets]{};
  Counter compute_ns_buckets[kDurationBuckets]{};
  Counter request_ns_buckets[kDurationBuckets]{};
  Counter batch_rows_buckets[kBatchBuckets]{};

  static void add(Counter& c, uint64_t v = 1) { c.fetch_add(v, std::memory_order_relaxed); }

};

}  // namespace ir
