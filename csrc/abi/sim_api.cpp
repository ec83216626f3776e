// ir_batcher_simulate: the production Batcher on a virtual clock, for the cross-language
// test against the Python reference (tests/reference/batching.py). The event loop below
// is the same contract the live Model follows: arrivals are admitted (or rejected) in
// order; whenever an instance is idle, expired requests are failed and batches are formed
// until the policy says wait; time then jumps to the next arrival, the next moment an
// instance frees up (if work is queued), or the batcher's next event.
//
// Adaptive policy: the simulator is the scheduler the Batcher expects. Each batch runs
// exec_base_ns + exec_per_row_ns * rows; when the clock passes its end, it is reported with
// Batcher::observe (in order of end time, then instance), before that moment's arrivals. Every
// form() and next_event() gets the InstanceLoad at that moment: idle = instances whose batch
// has ended, busy_until = the earliest end the Batcher expected (dispatch time +
// expected_exec_ns(rows) at dispatch) among the others. With work queued and an instance
// idle, time also stops when a busy instance ends (a change of load may change the decision).
//
// The host (ir_batcher_simulate_host): one consumer takes each ended batch's results, in
// the order the batches were reported, spending host_ns on each: a batch ended at e is taken
// at s = max(e, when the host finished the previous one). Once the clock passes s, the lag
// s - e (capped at 1 s) enters an EWMA (1/8) exactly as the engine's completion queue keeps
// it, and every later InstanceLoad carries it as host_lag_ns. host_ns = 0: no lag, ever.
#include <algorithm>
#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "../engine/batcher.hpp"
#include "../engine/clock.hpp"
#include "seam.hpp"

namespace {

ir::Status simulate(const ir_model_config* c, const ir_sim_request* requests, size_t n, int32_t instances, int64_t base_ns,
                    int64_t per_row_ns, int64_t host_ns, std::vector<ir_sim_event>* events) {
  if (c == nullptr || c->struct_size < sizeof(ir_model_config)) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "bad config");
  if (instances < 1) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "instances must be >= 1");
  if (host_ns < 0) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "host_ns must be >= 0");
  ir::BatchPolicy policy;
  policy.batching = c->batching != 0;
  policy.max_batch_size = c->batching ? c->max_batch_size : 1;
  policy.max_queue_delay_ns = c->max_queue_delay_us * 1000;
  policy.preferred.assign(c->preferred_batch_sizes, c->preferred_batch_sizes + std::max(c->n_preferred, 0));
  policy.max_queue_size = c->max_queue_size;
  policy.priority_levels = c->priority_levels;
  policy.adaptive = c->adaptive != 0;
  ir::Batcher batcher(policy);

  std::vector<std::unique_ptr<ir::Request>> owned;
  std::vector<ir::Request*> order;
  for (size_t i = 0; i < n; ++i) {
    const ir_sim_request& s = requests[i];
    if (s.priority < 0 || s.priority >= policy.priority_levels || s.rows < 1 || (policy.batching && s.rows > policy.max_batch_size))
      return ir::Status(IR_ERROR_INVALID_ARGUMENT, "simulated request " + std::to_string(s.id) + " is invalid");
    auto r = std::make_unique<ir::Request>();
    r->id = s.id;
    r->cookie = s.id;
    r->rows = s.rows;
    r->priority = s.priority;
    r->enqueue_ns = s.arrival_ns;
    r->deadline_ns = s.deadline_ns < 0 ? ir::kNever : s.deadline_ns;
    ir::InputView view;  // the shape class stands in for the non-batch dimensions
    view.dtype = IR_DTYPE_FLOAT32;
    view.shape = {s.rows, s.shape_class};
    r->inputs.push_back(view);
    order.push_back(r.get());
    owned.push_back(std::move(r));
  }
  std::stable_sort(order.begin(), order.end(), [](const ir::Request* a, const ir::Request* b) {
    return a->enqueue_ns != b->enqueue_ns ? a->enqueue_ns < b->enqueue_ns : a->id < b->id;
  });

  const auto slots = static_cast<size_t>(instances);
  std::vector<int64_t> free_at(slots, 0);
  std::vector<int64_t> expected_end(slots, 0);  // what the Batcher predicted at dispatch
  std::vector<int64_t> running_rows(slots, 0);  // > 0: a batch not yet reported to observe()
  size_t next = 0;
  int64_t batch_index = 0;
  int64_t t = order.empty() ? 0 : order.front()->enqueue_ns;
  std::vector<ir::Request*> scratch;
  int64_t host_free = 0;                            // when the host is done with what it took
  std::deque<std::pair<int64_t, int64_t>> host_takes;  // (taken at, lag) not yet passed by the clock
  int64_t host_lag = 0;                             // the EWMA the load carries
  auto load_at = [&](int64_t now) {
    ir::InstanceLoad load;
    load.host_lag_ns = host_lag;
    load.idle = 0;
    for (size_t i = 0; i < slots; ++i) {
      if (free_at[i] <= now) ++load.idle;
      else load.busy_until_ns = std::min(load.busy_until_ns, expected_end[i]);
    }
    return load;
  };
  while (next < order.size() || !batcher.empty()) {
    for (;;) {  // batches that ended by now, earliest first
      size_t done = slots;
      for (size_t i = 0; i < slots; ++i) {
        if (running_rows[i] > 0 && free_at[i] <= t && (done == slots || free_at[i] < free_at[done])) done = i;
      }
      if (done == slots) break;
      batcher.observe(running_rows[done], base_ns + per_row_ns * running_rows[done]);
      running_rows[done] = 0;
      const int64_t taken = std::max(free_at[done], host_free);
      host_free = taken + host_ns;
      host_takes.emplace_back(taken, taken - free_at[done]);
    }
    for (; !host_takes.empty() && host_takes.front().first <= t; host_takes.pop_front()) {
      host_lag = (7 * host_lag + std::min<int64_t>(host_takes.front().second, 1'000'000'000)) / 8;
    }
    for (; next < order.size() && order[next]->enqueue_ns <= t; ++next) {
      if (!batcher.push(order[next])) events->push_back(ir_sim_event{t, IR_SIM_REJECTED, order[next]->id, -1, 0, -1});
    }
    auto idle = [&] { return std::find_if(free_at.begin(), free_at.end(), [t](int64_t f) { return f <= t; }); };
    if (idle() != free_at.end()) {
      scratch.clear();
      batcher.expire(t, scratch);
      for (ir::Request* r : scratch) events->push_back(ir_sim_event{t, IR_SIM_EXPIRED, r->id, -1, 0, -1});
      for (auto slot = idle(); slot != free_at.end(); slot = idle()) {
        scratch.clear();
        ir::DispatchReason reason = batcher.form(t, scratch, load_at(t));
        if (reason == ir::DispatchReason::kNone) break;
        int64_t rows = 0;
        for (ir::Request* r : scratch) {
          events->push_back(ir_sim_event{t, IR_SIM_BATCH, r->id, batch_index, static_cast<int32_t>(reason), static_cast<int32_t>(slot - free_at.begin())});
          rows += r->rows;
        }
        ++batch_index;
        const auto i = static_cast<size_t>(slot - free_at.begin());
        expected_end[i] = t + batcher.expected_exec_ns(rows);
        running_rows[i] = rows;
        *slot = t + base_ns + per_row_ns * rows;
      }
    }
    int64_t upcoming = next < order.size() ? order[next]->enqueue_ns : ir::kNever;
    if (!batcher.empty()) {
      if (idle() != free_at.end()) {
        upcoming = std::min(upcoming, batcher.next_event(t, load_at(t)));
        if (policy.adaptive) {
          for (int64_t f : free_at) {
            if (f > t) upcoming = std::min(upcoming, f);
          }
        }
      } else {
        upcoming = std::min(upcoming, *std::min_element(free_at.begin(), free_at.end()));
      }
    }
    if (upcoming == ir::kNever) break;
    t = std::max(upcoming, t + 1);  // time always moves forward
  }
  return ir::Status::Ok();
}

}  // namespace

extern "C" {

IR_API ir_error* ir_batcher_simulate_host(const ir_model_config* config, const ir_sim_request* requests, size_t n_requests,
                                          int32_t instances, int64_t exec_base_ns, int64_t exec_per_row_ns, int64_t host_ns,
                                          ir_sim_event* out, size_t capacity, size_t* n_out) {
  return ir::abi::guard([&]() -> ir::Status {
    if ((n_requests > 0 && requests == nullptr) || n_out == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "NULL argument");
    std::vector<ir_sim_event> events;
    IR_RETURN_IF_ERROR(simulate(config, requests, n_requests, instances, exec_base_ns, exec_per_row_ns, host_ns, &events));
    *n_out = events.size();
    for (size_t i = 0; i < events.size() && i < capacity; ++i) out[i] = events[i];
    return ir::Status::Ok();
  });
}

IR_API ir_error* ir_batcher_simulate(const ir_model_config* config, const ir_sim_request* requests, size_t n_requests,
                                     int32_t instances, int64_t exec_base_ns, int64_t exec_per_row_ns, ir_sim_event* out,
                                     size_t capacity, size_t* n_out) {
  return ir_batcher_simulate_host(config, requests, n_requests, instances, exec_base_ns, exec_per_row_ns, 0, out, capacity, n_out);
}

}  // extern "C"
