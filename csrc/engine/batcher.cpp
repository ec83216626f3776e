#include "batcher.hpp"

#include <algorithm>
#include <utility>

#include "clock.hpp"

namespace ir {

Batcher::Batcher(BatchPolicy policy) : policy_(std::move(policy)) {
  if (policy_.priority_levels < 1) policy_.priority_levels = 1;
  levels_.resize(static_cast<size_t>(policy_.priority_levels));
}

bool Batcher::push(Request* request) {
  if (static_cast<int64_t>(size_) >= policy_.max_queue_size) return false;
  levels_[static_cast<size_t>(request->priority)].push_back(request);
  ++size_;
  if (request->deadline_ns != kNever) ++with_deadline_;
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

DispatchReason Batcher::form(int64_t now, std::vector<Request*>& batch) {
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
