#include "batcher.hpp"

#include <algorithm>
#include <utility>

namespace ir {

namespace {

// Caps that keep every product below 2^63 (and the Python reference free of overflow
// differences): observations beyond ~18 minutes or ~10^12 rows say nothing more.
constexpr int64_t kMaxObservedNs = int64_t{1} << 40;
constexpr int64_t kMaxObservedRows = int64_t{1} << 40;
constexpr int64_t kCostCap = int64_t{1} << 62;

int64_t ewma8(int64_t average, int64_t sample) { return (7 * average + sample) / 8; }

}  // namespace

Batcher::Batcher(BatchPolicy policy) : policy_(std::move(policy)) {
  if (policy_.priority_levels < 1) policy_.priority_levels = 1;
  levels_.resize(static_cast<size_t>(policy_.priority_levels));
}

bool Batcher::push(Request* request) {
  if (static_cast<int64_t>(size_) >= policy_.max_queue_size) return false;
  levels_[static_cast<size_t>(request->priority)].push_back(request);
  ++size_;
  if (request->deadline_ns != kNever) ++with_deadline_;
  if (policy_.adaptive) {
    const int64_t t = request->enqueue_ns;
    if (last_arrival_ns_ != kNever) {
      // A gap longer than a few windows says only "nothing comes within the window"; the cap
      // lets the estimate recover within a few dozen arrivals once traffic resumes.
      const int64_t cap = 8 * policy_.max_queue_delay_ns;
      const int64_t gap = std::min(std::max<int64_t>(t - last_arrival_ns_, 0), cap);
      gap_ewma_ns_ = gap_ewma_ns_ == kNever ? gap : ewma8(gap_ewma_ns_, gap);
      last_arrival_ns_ = std::max(last_arrival_ns_, t);  // staged bursts may land out of order
    } else {
      last_arrival_ns_ = t;
    }
  }
  return true;
}

void Batcher::expire(int64_t now, std::vector<Request*>& expired) {
  if (with_deadline_ == 0) return;
  for (auto level = levels_.rbegin(); level != levels_.rend(); ++level) {
    auto keep = std::stable_partition(level->begin(), level->end(), [now](const Request* r) { return r->deadline_ns > now; });
    for (auto it = keep; it != level->end(); ++it) expired.push_back(*it);
    size_t removed = static_cast<size_t>(level->end() - keep);
    level->erase(keep, level->end());
    size_ -= removed;
    with_deadline_ -= removed;
  }
}

Batcher::Candidate Batcher::candidate() const {
  Candidate c;
  const Request* head = nullptr;
  for (auto level = levels_.rbegin(); level != levels_.rend(); ++level) {
    for (const Request* r : *level) {
      if (head == nullptr) {
        head = r;
        c.oldest_ns = r->enqueue_ns;
      } else if (!policy_.batching || c.rows + r->rows > policy_.max_batch_size || !compatible(*head, *r)) {
        c.blocked = true;
        return c;
      }
      c.rows += r->rows;
      c.oldest_ns = std::min(c.oldest_ns, r->enqueue_ns);
      ++c.count;
      if (std::binary_search(policy_.preferred.begin(), policy_.preferred.end(), c.rows)) c.preferred_count = c.count;
      if (!policy_.batching || c.rows >= policy_.max_batch_size) return c;
    }
  }
  return c;
}

bool Batcher::worth_waiting(const Candidate& c, int64_t now, const InstanceLoad& load) const {
  if (gap_ewma_ns_ == kNever) return false;  // no rate known yet: no arrival is expected
  int64_t d = 0;  // another idle instance: a newcomer would start at once elsewhere
  if (load.idle <= 1) {
    d = expected_exec_ns(c.rows);
    if (load.busy_until_ns != kNever) d = std::min(d, std::max<int64_t>(load.busy_until_ns - now, 0));
  }
  // Whatever the instances, a separate batch waits its turn at a host that lags behind.
  d = std::max(d, std::max<int64_t>(load.host_lag_ns, 0));
  const int64_t tau = std::max(gap_ewma_ns_, now - last_arrival_ns_);  // a silence longer than usual lowers the rate
  if (tau >= d) return false;
  const __int128 cost = static_cast<__int128>(c.count + 1) * tau + static_cast<__int128>(2) * per_row_ns_ * c.rows;
  return cost < d;
}

DispatchReason Batcher::form(int64_t now, std::vector<Request*>& batch, const InstanceLoad& load) {
  if (size_ == 0) return DispatchReason::kNone;
  Candidate c = candidate();
  DispatchReason reason = DispatchReason::kNone;
  if (!policy_.batching || c.rows >= policy_.max_batch_size || c.blocked) {
    reason = DispatchReason::kFull;
  } else if (c.preferred_count > 0) {
    reason = DispatchReason::kPreferred;
    c.count = c.preferred_count;
  } else if (now - c.oldest_ns >= policy_.max_queue_delay_ns) {
    reason = DispatchReason::kDelay;
  } else if (policy_.adaptive && !worth_waiting(c, now, load)) {
    reason = DispatchReason::kEarly;
  }
  if (reason == DispatchReason::kNone) return reason;
  size_t taken = 0;
  for (auto level = levels_.rbegin(); level != levels_.rend() && taken < c.count; ++level) {
    while (!level->empty() && taken < c.count) {
      Request* r = level->front();
      level->pop_front();
      if (r->deadline_ns != kNever) --with_deadline_;
      batch.push_back(r);
      ++taken;
    }
  }
  size_ -= taken;
  return reason;
}

int64_t Batcher::next_event() const {
  if (size_ == 0) return kNever;
  int64_t next = kNever;
  if (with_deadline_ > 0) {
    for (const auto& level : levels_) {
      for (const Request* r : level) next = std::min(next, r->deadline_ns);
    }
  }
  if (!policy_.batching) return std::min(next, int64_t{0});  // dispatchable at once
  Candidate c = candidate();
  int64_t due = c.oldest_ns > kNever - policy_.max_queue_delay_ns ? kNever : c.oldest_ns + policy_.max_queue_delay_ns;
  return std::min(next, due);
}

int64_t Batcher::next_event(int64_t now, const InstanceLoad& load) const {
  const int64_t bound = next_event();
  if (!policy_.adaptive || size_ == 0 || !policy_.batching) return bound;
  Candidate c = candidate();
  if (c.blocked || c.rows >= policy_.max_batch_size || c.preferred_count > 0) return bound;
  const int64_t due = c.oldest_ns > kNever - policy_.max_queue_delay_ns ? kNever : c.oldest_ns + policy_.max_queue_delay_ns;
  if (now >= due) return bound;
  if (!worth_waiting(c, now, load)) return std::min(bound, now);
  // Waiting pays now and stops paying as the silence grows and busy instances near their
  // end (the rule is monotone in time): find the first moment it stops, at most the delay.
  int64_t lo = now;
  int64_t hi = due;
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (worth_waiting(c, mid, load)) lo = mid;
    else hi = mid;
  }
  return std::min(bound, hi);
}

void Batcher::observe(int64_t rows, int64_t exec_ns) {
  if (rows < 1) return;
  rows = std::min(rows, kMaxObservedRows);
  exec_ns = std::min(std::max<int64_t>(exec_ns, 0), kMaxObservedNs);
  int bucket = 0;
  while (bucket + 1 < kCostBuckets && (rows >> (bucket + 1)) != 0) ++bucket;
  CostCell& cell = cost_[static_cast<size_t>(bucket)];
  ++observed_;
  if (!cell.seen || observed_ - cell.fed_at > kFreshBatches) {  // new, or stale: start afresh
    cell = CostCell{true, rows * 256, exec_ns, observed_};
  } else {
    cell.rows_x256 = ewma8(cell.rows_x256, rows * 256);
    cell.exec_ns = ewma8(cell.exec_ns, exec_ns);
    cell.fed_at = observed_;
  }
  // a and b from the smallest and the largest sizes fed lately (the current one always is):
  // one size alone gives no slope, and then the whole cost counts as fixed (which favours
  // waiting, as the fixed window does).
  const CostCell* lo = nullptr;
  const CostCell* hi = nullptr;
  for (const CostCell& c : cost_) {
    if (!c.seen || observed_ - c.fed_at >= kFreshBatches) continue;
    if (lo == nullptr) lo = &c;
    hi = &c;
  }
  per_row_ns_ = 0;
  if (lo != hi && hi->exec_ns > lo->exec_ns) per_row_ns_ = (hi->exec_ns - lo->exec_ns) * 256 / (hi->rows_x256 - lo->rows_x256);
  const __int128 row_part = static_cast<__int128>(per_row_ns_) * lo->rows_x256 / 256;
  fixed_ns_ = row_part >= lo->exec_ns ? 0 : lo->exec_ns - static_cast<int64_t>(row_part);
}

int64_t Batcher::expected_exec_ns(int64_t rows) const {
  const __int128 e = static_cast<__int128>(fixed_ns_) + static_cast<__int128>(per_row_ns_) * std::max<int64_t>(rows, 0);
  return e > kCostCap ? kCostCap : static_cast<int64_t>(e);
}

const Request* Batcher::head() const {
  for (auto level = levels_.rbegin(); level != levels_.rend(); ++level) {
    if (!level->empty()) return level->front();
  }
  return nullptr;
}

void Batcher::drain_all(std::vector<Request*>& out) {
  for (auto level = levels_.rbegin(); level != levels_.rend(); ++level) {
    for (Request* r : *level) out.push_back(r);
    level->clear();
  }
  size_ = 0;
  with_deadline_ = 0;
}

Request* Batcher::take(uint64_t cookie) {
  for (auto& level : levels_) {
    auto it = std::find_if(level.begin(), level.end(), [cookie](const Request* r) { return r->cookie == cookie; });
    if (it == level.end()) continue;
    Request* r = *it;
    level.erase(it);
    --size_;
    if (r->deadline_ns != kNever) --with_deadline_;
    return r;
  }
  return nullptr;
}

}  // namespace ir
