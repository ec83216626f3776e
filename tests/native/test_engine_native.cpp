// Drives the engine through the C ABI with no Python in the process (run under ASan,
// UBSan and LeakSanitizer by tests/sanitizers/run.sh): identity and external models,
// concurrent submitters, a backend error, timeouts, and shutdown with work still queued.
// Every response and error must be released exactly once.
#include <atomic>
#include <chrono>
#include <string>
#include <cstring>
#include <thread>
#include <vector>

#include "check.hpp"
#include "infer_runtime.h"

namespace {

ir_model* add_model(ir_engine* engine, const char* name, int backend, int batching, ir_tensor* sig, int64_t timeout_us) {
  ir_model_config cfg = base_config(name, backend, sig);
  cfg.instances = 2;
  cfg.batching = batching;
  cfg.max_batch_size = 8;
  cfg.max_queue_delay_us = 200;
  int64_t preferred[] = {4};
  cfg.preferred_batch_sizes = preferred;
  cfg.n_preferred = 1;
  cfg.default_timeout_us = timeout_us;
  cfg.priority_levels = 2;
  cfg.idle_spin_us = 20;
  ir_model* model = nullptr;
  ir_error* err = ir_engine_add_model(engine, &cfg, &model);
  CHECK(err == nullptr);
  ir_error_free(err);
  return model;
}

// Collects `expected` completions; checks each successful value against its cookie.
int collect(ir_engine* engine, int expected, int* errors) {
  int seen = 0;
  ir_completion done[64];
  while (seen < expected) {
    size_t n = ir_engine_wait(engine, 2000000, done, 64);
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i, ++seen) {
      if (done[i].error != nullptr) {
        ++*errors;
        ir_error_free(done[i].error);
        continue;
      }
      ir_tensor out[4];
      int32_t k = ir_response_describe(done[i].response, out, 4);
      CHECK(k == 1);
      CHECK(out[0].ndim == 2 && out[0].shape[1] == 3);
      const float* v = static_cast<const float*>(out[0].data);
      CHECK(v[0] == static_cast<float>(done[i].cookie));
      ir_response_release(done[i].response);
    }
  }
  return seen;
}

void identity_under_concurrency() {
  ir_engine* engine = nullptr;
  CHECK(ir_engine_create(&engine) == nullptr);
  int64_t sig_shape[] = {-1, 3};
  ir_tensor sig{"x", IR_DTYPE_FLOAT32, 2, sig_shape, nullptr, 0};
  ir_model* model = add_model(engine, "echo", IR_BACKEND_IDENTITY, 1, &sig, 0);
  constexpr int kThreads = 4, kPerThread = 500;
  std::vector<std::vector<float>> data(kThreads * kPerThread, std::vector<float>(3));
  std::vector<std::thread> submitters;
  for (int t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&, t] {
      int64_t shape[] = {1, 3};
      for (int i = 0; i < kPerThread; ++i) {
        int id = t * kPerThread + i;
        data[id][0] = static_cast<float>(id);
        ir_tensor in{"x", IR_DTYPE_FLOAT32, 2, shape, data[id].data(), 12};
        ir_error* err = ir_model_submit(model, static_cast<uint64_t>(id), &in, 1, id % 2, 0, 0);
        CHECK(err == nullptr);
        ir_error_free(err);
      }
    });
  }
  int errors = 0;
  int seen = collect(engine, kThreads * kPerThread, &errors);
  for (auto& t : submitters) t.join();
  CHECK(seen == kThreads * kPerThread);
  CHECK(errors == 0);
  ir_model_stats stats{};
  stats.struct_size = sizeof(stats);
  CHECK(ir_model_stats_get(model, &stats) == nullptr);
  CHECK(stats.succeeded == static_cast<uint64_t>(kThreads * kPerThread));
  CHECK(stats.in_flight == 0);
  ir_engine_destroy(engine);
  ir_model_release(model);  // handles outlive the engine harmlessly
}

void external_backend_with_errors_and_shutdown() {
  ir_engine* engine = nullptr;
  CHECK(ir_engine_create(&engine) == nullptr);
  int64_t sig_shape[] = {-1, 3};
  ir_tensor sig{"x", IR_DTYPE_FLOAT32, 2, sig_shape, nullptr, 0};
  ir_model* model = add_model(engine, "ext", IR_BACKEND_EXTERNAL, 1, &sig, 0);
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int instance = 0; instance < 2; ++instance) {
    workers.emplace_back([&, instance] {
      for (;;) {
        ir_batch* batch = nullptr;
        ir_tensor described[2];
        int32_t n_described = 0;
        ir_error* err = ir_model_next_batch(model, instance, -1, &batch, described, 2, &n_described);
        if (err != nullptr) {  // UNAVAILABLE after stop
          CHECK(ir_error_code(err) == IR_ERROR_UNAVAILABLE);
          ir_error_free(err);
          return;
        }
        if (batch == nullptr) continue;
        ir_tensor in;
        ir_batch_input(batch, 0, &in);
        CHECK(n_described == 1 && described[0].data == in.data && described[0].byte_size == in.byte_size);
        const float* v = static_cast<const float*>(in.data);
        bool negative = false;
        for (int64_t row = 0; row < in.shape[0]; ++row) negative = negative || v[row * 3] < 0;
        if (negative) {  // a backend failure fails the whole batch
          ir_batch_finish(batch, ir_error_new(IR_ERROR_BACKEND, "negative"));
          continue;
        }
        ir_tensor out{"y", IR_DTYPE_FLOAT32, in.ndim, in.shape, in.data, in.byte_size};
        if (instance == 0) {
          ir_error* set = ir_batch_set_output(batch, &out);
          CHECK(set == nullptr);
          ir_batch_finish(batch, set);
        } else {
          ir_batch_complete(batch, &out, 1);
        }
      }
    });
  }
  std::vector<std::vector<float>> data(300, std::vector<float>(3));
  int64_t shape[] = {1, 3};
  for (int id = 0; id < 300; ++id) {
    data[id][0] = id == 7 ? -1.0f : static_cast<float>(id);
    ir_tensor in{"x", IR_DTYPE_FLOAT32, 2, shape, data[id].data(), 12};
    ir_error* err = ir_model_submit(model, static_cast<uint64_t>(id == 7 ? 7 : id), &in, 1, 0, 0, id % 3 ? IR_SUBMIT_NO_WAKE : 0);
    CHECK(err == nullptr);
    ir_error_free(err);
  }
  ir_model_wake(model);  // the burst used IR_SUBMIT_NO_WAKE: ring the doorbell once
  int errors = 0;
  // Request 7 fails, and so does every request batched with it.
  int seen = collect(engine, 300, &errors);
  CHECK(seen == 300);
  CHECK(errors >= 1);
  // Work still queued at shutdown is cancelled, never lost.
  data[7][0] = 7.0f;
  for (int id = 0; id < 50; ++id) {
    ir_tensor in{"x", IR_DTYPE_FLOAT32, 2, shape, data[id].data(), 12};
    ir_error_free(ir_model_submit(model, static_cast<uint64_t>(id), &in, 1, 0, 0, 0));
  }
  ir_engine_stop(engine, 0);
  // A batch an external worker took before the stop completes after it, possibly after
  // ir_engine_wait stopped blocking (the engine is stopped): keep draining, bounded.
  int late_errors = 0;
  int late = 0;
  for (int tries = 0; late < 50 && tries < 200; ++tries) {
    late += collect(engine, 50 - late, &late_errors);
    if (late < 50) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(late == 50);
  // After stop, submission is refused at once.
  ir_tensor in{"x", IR_DTYPE_FLOAT32, 2, shape, data[0].data(), 12};
  ir_error* refused = ir_model_submit(model, 1, &in, 1, 0, 0, 0);
  CHECK(refused != nullptr && ir_error_code(refused) == IR_ERROR_UNAVAILABLE);
  ir_error_free(refused);
  for (auto& w : workers) w.join();
  ir_engine_destroy(engine);
  ir_model_release(model);  // handles outlive the engine harmlessly
}

void destroy_with_undrained_completions() {
  ir_engine* engine = nullptr;
  CHECK(ir_engine_create(&engine) == nullptr);
  int64_t sig_shape[] = {-1, 3};
  ir_tensor sig{"x", IR_DTYPE_FLOAT32, 2, sig_shape, nullptr, 0};
  ir_model* model = add_model(engine, "echo", IR_BACKEND_IDENTITY, 0, &sig, 0);
  float v[3] = {1, 2, 3};
  int64_t shape[] = {1, 3};
  for (int i = 0; i < 20; ++i) {
    ir_tensor in{"x", IR_DTYPE_FLOAT32, 2, shape, v, 12};
    ir_error_free(ir_model_submit(model, 1, &in, 1, 0, 0, 0));
  }
  ir_engine_destroy(engine);  // frees queued requests and undrained responses
  ir_model_release(model);
}

std::string serialize(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    uint32_t n = static_cast<uint32_t>(item.size());
    for (int b = 0; b < 4; ++b) out.push_back(static_cast<char>((n >> (8 * b)) & 0xFF));
    out += item;
  }
  return out;
}

void bytes_rows_are_scattered_by_byte_offsets() {
  ir_engine* engine = nullptr;
  CHECK(ir_engine_create(&engine) == nullptr);
  int64_t sig_shape[] = {-1, 2};
  ir_tensor sig{"s", IR_DTYPE_BYTES, 2, sig_shape, nullptr, 0};
  ir_model_config cfg = base_config("echo_bytes", IR_BACKEND_IDENTITY, &sig);
  cfg.batching = 1;
  cfg.max_batch_size = 16;
  cfg.max_queue_delay_us = 20000;  // long enough for every request below to share a batch
  cfg.max_queue_size = 64;
  ir_model* model = nullptr;
  CHECK(ir_engine_add_model(engine, &cfg, &model) == nullptr);
  std::vector<std::string> payloads;
  std::vector<int64_t> rows_of;
  for (int r = 0; r < 5; ++r) {
    std::vector<std::string> items;
    int64_t rows = 1 + r % 3;
    for (int64_t i = 0; i < rows * 2; ++i) items.push_back(std::string(static_cast<size_t>(r * 7 + i), static_cast<char>('a' + r)) + std::string(1, '\0'));
    payloads.push_back(serialize(items));
    rows_of.push_back(rows);
  }
  for (int r = 0; r < 5; ++r) {
    int64_t shape[] = {rows_of[r], 2};
    ir_tensor in{"s", IR_DTYPE_BYTES, 2, shape, payloads[r].data(), payloads[r].size()};
    ir_error* err = ir_model_submit(model, static_cast<uint64_t>(r), &in, 1, 0, 0, 0);
    CHECK(err == nullptr);
    ir_error_free(err);
  }
  std::string bad = serialize({"x"}) + "junk";  // trailing bytes: refused at submission
  int64_t bad_shape[] = {1, 2};
  ir_tensor bad_in{"s", IR_DTYPE_BYTES, 2, bad_shape, bad.data(), bad.size()};
  ir_error* refused = ir_model_submit(model, 99, &bad_in, 1, 0, 0, 0);
  CHECK(refused != nullptr && ir_error_code(refused) == IR_ERROR_INVALID_ARGUMENT);
  ir_error_free(refused);
  int seen = 0;
  ir_completion done[8];
  while (seen < 5) {
    size_t n = ir_engine_wait(engine, 5000000, done, 8);
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i, ++seen) {
      CHECK(done[i].error == nullptr);
      if (done[i].error != nullptr) continue;
      ir_tensor out;
      ir_response_output(done[i].response, 0, &out);
      size_t r = static_cast<size_t>(done[i].cookie);
      CHECK(out.dtype == IR_DTYPE_BYTES && out.shape[0] == rows_of[r]);
      CHECK(out.byte_size == payloads[r].size() && std::memcmp(out.data, payloads[r].data(), out.byte_size) == 0);
      ir_response_release(done[i].response);
    }
  }
  CHECK(seen == 5);
  ir_model_stats stats{};
  stats.struct_size = sizeof(stats);
  ir_model_stats_get(model, &stats);
  CHECK(stats.batches == 1);  // all five shared one batch, so the scatter was exercised
  ir_engine_destroy(engine);
  ir_model_release(model);  // handles outlive the engine harmlessly
}

// ir_model_submit_many from two threads at once on an identity model with a small queue: every
// admitted request completes with its own rows (value = its cookie), the refused tail is
// reported, and ir_completions_release drops a run of completions in one call.
void submit_many_from_threads() {
  ir_engine* engine = nullptr;
  CHECK(ir_engine_create(&engine) == nullptr);
  int64_t sig_shape[] = {-1, 3};
  ir_tensor sig{"x", IR_DTYPE_FLOAT32, 2, sig_shape, nullptr, 0};
  ir_model_config cfg = base_config("many", IR_BACKEND_IDENTITY, &sig);
  cfg.instances = 2;
  cfg.batching = 1;
  cfg.max_batch_size = 8;
  cfg.max_queue_size = 40;
  ir_model* model = nullptr;
  CHECK(ir_engine_add_model(engine, &cfg, &model) == nullptr);
  constexpr int kThreads = 2, kCalls = 30, kParts = 6;
  std::atomic<int> admitted_total{0};
  std::vector<std::vector<float>> data(kThreads * kCalls);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int c = 0; c < kCalls; ++c) {
        int call = t * kCalls + c;
        uint64_t first = static_cast<uint64_t>(call) * kParts + 1;
        int64_t rows[kParts];
        int64_t total = 0;
        for (int k = 0; k < kParts; ++k) total += rows[k] = 1 + (call + k) % 3;
        std::vector<float>& v = data[static_cast<size_t>(call)];
        v.resize(static_cast<size_t>(total) * 3);
        for (int k = 0, row = 0; k < kParts; ++k) {
          for (int64_t r = 0; r < rows[k]; ++r, ++row) {
            for (int j = 0; j < 3; ++j) v[static_cast<size_t>(row) * 3 + j] = static_cast<float>(first + static_cast<uint64_t>(k));
          }
        }
        int64_t shape[] = {total, 3};
        ir_tensor in{"x", IR_DTYPE_FLOAT32, 2, shape, v.data(), static_cast<uint64_t>(total) * 12};
        int32_t admitted = -1;
        ir_error* err = ir_model_submit_many(model, first, &in, 1, rows, kParts, 0, 0, 0, &admitted);
        CHECK(admitted >= 0 && admitted <= kParts);
        CHECK((err == nullptr) == (admitted == kParts));
        if (err != nullptr) CHECK(ir_error_code(err) == IR_ERROR_RESOURCE_EXHAUSTED);
        ir_error_free(err);
        admitted_total += admitted;
        if (c % 5 == 4) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  for (auto& t : threads) t.join();
  int errors = 0;
  int seen = collect(engine, admitted_total.load(), &errors);  // checks each value == cookie
  CHECK(seen == admitted_total.load() && errors == 0);
  ir_model_stats stats{};
  stats.struct_size = sizeof(stats);
  ir_model_stats_get(model, &stats);
  CHECK(stats.submitted == static_cast<uint64_t>(kThreads * kCalls * kParts));
  CHECK(stats.succeeded + stats.rejected_queue_full == stats.submitted);
  // A run of completions released in one call (nothing may leak under LSan).
  float v[6] = {1, 1, 1, 2, 2, 2};
  int64_t rows[] = {1, 1};
  int64_t shape[] = {2, 3};
  ir_tensor in{"x", IR_DTYPE_FLOAT32, 2, shape, v, 24};
  int32_t admitted = 0;
  CHECK(ir_model_submit_many(model, 1, &in, 1, rows, 2, 0, 0, 0, &admitted) == nullptr && admitted == 2);
  ir_completion done[2];
  size_t got = 0;
  for (int tries = 0; got < 2 && tries < 100; ++tries) got += ir_engine_wait(engine, 100000, done + got, 2 - got);
  CHECK(got == 2);
  ir_completions_release(done, got);
  CHECK(done[0].response == nullptr && done[1].response == nullptr);
  ir_engine_destroy(engine);
  ir_model_release(model);  // handles outlive the engine harmlessly
}

// The live model table: two threads submit through a handle taken once while the main thread
// replaces the model 50 times, then retires it. Every request completes exactly once and
// succeeds (submissions through an old handle reach its successor); no leak under LSan.
void replace_while_submitting() {
  ir_engine* engine = nullptr;
  CHECK(ir_engine_create(&engine) == nullptr);
  int64_t sig_shape[] = {-1, 2};
  ir_tensor sig{"x", IR_DTYPE_FLOAT32, 2, sig_shape, nullptr, 0};
  ir_model_config cfg = base_config("live", IR_BACKEND_IDENTITY, &sig);
  cfg.batching = 1;
  cfg.max_batch_size = 8;
  cfg.max_queue_delay_us = 100;
  ir_model* first = nullptr;
  CHECK(ir_engine_add_model(engine, &cfg, &first) == nullptr);
  constexpr int kThreads = 2, kCalls = 400;
  std::atomic<bool> go{true};
  std::atomic<int> submitted{0};
  std::vector<float> data(2, 1.0f);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ir_model* mine = nullptr;
      CHECK(ir_engine_find_model(engine, "live", &mine) == nullptr);
      for (int c = 0; c < kCalls && go.load(); ++c) {
        int64_t shape[] = {1, 2};
        ir_tensor in{"x", IR_DTYPE_FLOAT32, 2, shape, data.data(), 8};
        ir_error* err = ir_model_submit(mine, static_cast<uint64_t>(t * kCalls + c + 1), &in, 1, 0, 0, 0);
        CHECK(err == nullptr);
        if (err == nullptr) ++submitted;
        ir_error_free(err);
        if (c % 20 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      ir_model_release(mine);
    });
  }
  for (int k = 0; k < 50; ++k) {
    ir_model* next = nullptr;
    CHECK(ir_engine_replace_model(engine, &cfg, &next) == nullptr);
    ir_model_release(next);
    std::this_thread::sleep_for(std::chrono::microseconds(300));
  }
  for (auto& t : threads) t.join();
  int errors = 0;
  std::vector<ir_completion> done;
  ir_completion buf[64];
  while (static_cast<int>(done.size()) < submitted.load()) {
    size_t n = ir_engine_wait(engine, 5000000, buf, 64);
    CHECK(n > 0);
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i) errors += buf[i].error != nullptr ? 1 : 0;
    done.insert(done.end(), buf, buf + n);
  }
  CHECK(static_cast<int>(done.size()) == submitted.load() && errors == 0);
  ir_completions_release(done.data(), done.size());
  ir_model* missing = nullptr;
  ir_model_config nobody = base_config("nobody", IR_BACKEND_IDENTITY, &sig);
  ir_error* err = ir_engine_replace_model(engine, &nobody, &missing);
  CHECK(err != nullptr && ir_error_code(err) == IR_ERROR_NOT_FOUND);
  ir_error_free(err);
  CHECK(ir_engine_retire_model(engine, "live") == nullptr);
  err = ir_engine_find_model(engine, "live", &missing);
  CHECK(err != nullptr && ir_error_code(err) == IR_ERROR_NOT_FOUND);
  ir_error_free(err);
  ir_engine_destroy(engine);
  ir_model_release(first);
}

}  // namespace

int main() {
  replace_while_submitting();
  identity_under_concurrency();
  external_backend_with_errors_and_shutdown();
  destroy_with_undrained_completions();
  bytes_rows_are_scattered_by_byte_offsets();
  submit_many_from_threads();
  if (ir_test::failures() == 0) std::puts("test_engine_native: ok");
  return ir_test::failures();
}
