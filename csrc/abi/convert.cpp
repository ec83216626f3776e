#include "convert.hpp"

namespace ir::abi {

Status read_tensors(const ir_tensor* tensors, int32_t n, const char* what, std::vector<TensorSig>* out) {
  if (n > 0 && tensors == nullptr) return Status(IR_ERROR_INVALID_ARGUMENT, std::string(what) + " is NULL");
  for (int32_t i = 0; i < n; ++i) {
    const ir_tensor& t = tensors[i];
    if (t.name == nullptr || t.ndim < 0 || t.ndim > 32 || (t.ndim > 0 && t.shape == nullptr))
      return Status(IR_ERROR_INVALID_ARGUMENT, "bad " + std::string(what) + " signature " + std::to_string(i));
    out->push_back(TensorSig{t.name, t.dtype, std::vector<int64_t>(t.shape, t.shape + t.ndim)});
  }
  return Status::Ok();
}

void fill_stats(const ModelStats& s, ir_model_stats* out) {
  auto get = [](const ModelStats::Counter& c) { return c.load(std::memory_order_relaxed); };
  out->submitted = get(s.submitted);
  out->succeeded = get(s.succeeded);
  out->failed_invalid = get(s.failed_invalid);
  out->rejected_queue_full = get(s.rejected_queue_full);
  out->timed_out = get(s.timed_out);
  out->failed_backend = get(s.failed_backend);
  out->cancelled = get(s.cancelled);
  out->batches = get(s.batches);
  out->batches_full = get(s.batches_full);
  out->batches_preferred = get(s.batches_preferred);
  out->batches_delay = get(s.batches_delay);
  out->batches_early = get(s.batches_early);
  out->execution_timeouts = get(s.execution_timeouts);
  out->batched_rows = get(s.batched_rows);
  out->queue_depth = s.queue_depth.load(std::memory_order_relaxed);
  out->in_flight = s.in_flight.load(std::memory_order_relaxed);
  out->queue_ns_sum = get(s.queue_ns_sum);
  out->compute_ns_sum = get(s.compute_ns_sum);
  out->request_ns_sum = get(s.request_ns_sum);
  for (int i = 0; i < kDurationBuckets; ++i) {
    out->queue_ns_buckets[i] = get(s.queue_ns_buckets[i]);
    out->compute_ns_buckets[i] = get(s.compute_ns_buckets[i]);
    out->request_ns_buckets[i] = get(s.request_ns_buckets[i]);
  }
  for (int i = 0; i < kBatchBuckets; ++i) out->batch_rows_buckets[i] = get(s.batch_rows_buckets[i]);
}

}  // namespace ir::abi
