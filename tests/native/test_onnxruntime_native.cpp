// Drives the native ONNX Runtime host through the C ABI with no Python in the process (run
// under ASan, UBSan and LeakSanitizer by tests/sanitizers/run.sh, which passes the library
// and a model in IR_TEST_ORT_LIBRARY / IR_TEST_ORT_MODEL): open errors, the signature,
// concurrent batched submissions that must all equal a lone request's result, and responses
// released after the engine (and its sessions) are gone.
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "check.hpp"
#include "infer_runtime.h"

namespace {

ir_backend* open(const char* library, const char* model, ir_code* code) {
  std::string config = std::string("{\"library\": \"") + library + "\", \"model_path\": \"" + model + "\", \"intra_op_threads\": 1, \"graph_optimization_level\": 99}";
  ir_backend_options o{};
  o.struct_size = sizeof(o);
  o.kind = "onnxruntime";
  o.model_name = "mlp";
  o.config_json = config.c_str();
  o.n_inputs = -1;
  o.n_outputs = -1;
  o.instances = 2;
  ir_backend* backend = nullptr;
  ir_error* err = ir_backend_open(&o, &backend);
  *code = err != nullptr ? ir_error_code(err) : static_cast<ir_code>(0);
  ir_error_free(err);
  return backend;
}

// Drains until `want` completions arrived; keeps the responses (caller releases them).
std::vector<ir_completion> collect(ir_engine* engine, size_t want) {
  std::vector<ir_completion> done;
  ir_completion buf[64];
  while (done.size() < want) {
    size_t n = ir_engine_wait(engine, 5000000, buf, 64);
    CHECK(n > 0);
    if (n == 0) break;
    done.insert(done.end(), buf, buf + n);
  }
  return done;
}

}  // namespace

int main() {
  const char* library = std::getenv("IR_TEST_ORT_LIBRARY");
  const char* model_path = std::getenv("IR_TEST_ORT_MODEL");
  if (library == nullptr || *library == 0 || model_path == nullptr || *model_path == 0) {
    std::fprintf(stderr, "test_onnxruntime_native: skipped (IR_TEST_ORT_LIBRARY / IR_TEST_ORT_MODEL unset)\n");
    return 0;
  }
  ir_code code{};
  CHECK(open("/nonexistent/libonnxruntime.so", model_path, &code) == nullptr && code == IR_ERROR_NOT_FOUND);
  CHECK(open(library, "/nonexistent/model.onnx", &code) == nullptr && code == IR_ERROR_NOT_FOUND);
  ir_backend* backend = open(library, model_path, &code);
  CHECK(backend != nullptr);
  if (backend == nullptr) return ir_test::failures();
  CHECK(std::strncmp(ir_backend_info(backend), "onnxruntime ", 12) == 0);
  CHECK(ir_backend_tensor_count(backend, 0) == 1);
  ir_tensor in_sig{};
  CHECK(ir_backend_tensor(backend, 0, 0, &in_sig) == nullptr);
  ir_error* err = ir_backend_tensor(backend, 0, 5, &in_sig);
  CHECK(err != nullptr && ir_error_code(err) == IR_ERROR_NOT_FOUND);
  ir_error_free(err);
  CHECK(ir_backend_tensor(backend, 0, 0, &in_sig) == nullptr);
  CHECK(in_sig.dtype == IR_DTYPE_FLOAT32 && in_sig.ndim == 2 && in_sig.shape[0] == -1);
  const int64_t width = in_sig.shape[1];

  ir_engine* engine = nullptr;
  CHECK(ir_engine_create(&engine) == nullptr);
  ir_model_config cfg = base_config("mlp", IR_BACKEND_NATIVE, &in_sig);
  cfg.batching = 1;
  cfg.max_batch_size = 16;
  cfg.max_queue_delay_us = 300;
  cfg.native = backend;  // instances = 1, but it was opened for 2: refused, and the backend stays ours
  ir_model* model = nullptr;
  err = ir_engine_add_model(engine, &cfg, &model);
  CHECK(err != nullptr && ir_error_code(err) == IR_ERROR_INVALID_ARGUMENT);
  ir_error_free(err);
  cfg.instances = 2;
  CHECK(ir_engine_add_model(engine, &cfg, &model) == nullptr);  // consumed

  // Every request sends the same rows: each result must equal the lone request's.
  std::vector<float> rows(static_cast<size_t>(3 * width));
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>(i % 17) * 0.25f;
  auto submit = [&](uint64_t cookie, int64_t k) {
    int64_t shape[2] = {k, width};
    ir_tensor t{"input", IR_DTYPE_FLOAT32, 2, shape, rows.data(), static_cast<uint64_t>(k * width) * sizeof(float)};
    ir_error* e = ir_model_submit(model, cookie, &t, 1, 0, 0, 0);
    CHECK(e == nullptr);
    ir_error_free(e);
  };
  submit(0, 3);
  std::vector<ir_completion> lone = collect(engine, 1);
  CHECK(lone.size() == 1 && lone[0].error == nullptr);
  ir_tensor expected[4];
  const int32_t n_outputs = ir_response_describe(lone[0].response, expected, 4);
  CHECK(n_outputs >= 1);

  constexpr int kThreads = 4;
  constexpr int kPerThread = 150;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) submit(static_cast<uint64_t>(1 + t * kPerThread + i), 1 + (i % 3));
    });
  }
  for (std::thread& t : threads) t.join();
  std::vector<ir_completion> done = collect(engine, kThreads * kPerThread);
  for (const ir_completion& c : done) {
    CHECK(c.error == nullptr);
    if (c.error != nullptr) continue;
    const int64_t k = 1 + static_cast<int64_t>((c.cookie - 1) % kPerThread % 3);
    ir_tensor got[4];
    CHECK(ir_response_describe(c.response, got, 4) == n_outputs);
    for (int32_t o = 0; o < n_outputs; ++o) {
      CHECK(got[o].shape[0] == k && got[o].dtype == expected[o].dtype);
      const uint64_t per_row = expected[o].byte_size / 3;
      CHECK(got[o].byte_size == per_row * static_cast<uint64_t>(k));
      CHECK(std::memcmp(got[o].data, expected[o].data, got[o].byte_size) == 0);
    }
  }
  ir_model_stats stats{};
  stats.struct_size = sizeof(stats);
  CHECK(ir_model_stats_get(model, &stats) == nullptr);
  CHECK(stats.succeeded == 1 + kThreads * kPerThread && stats.batches < stats.succeeded);

  ir_engine_stop(engine, 1000000);
  ir_engine_destroy(engine);  // sessions are gone; the adopted output tensors are not
  ir_model_release(model);
  for (const ir_completion& c : done) {
    if (c.response != nullptr) {
      ir_tensor got[4];
      ir_response_describe(c.response, got, 4);
      CHECK(std::memcmp(got[0].data, expected[0].data, got[0].byte_size) == 0);
    }
    ir_response_release(c.response);
    ir_error_free(c.error);
  }
  ir_response_release(lone[0].response);
  std::fprintf(stderr, "test_onnxruntime_native: %s\n", ir_test::failures() ? "FAILED" : "ok");
  return ir_test::failures();
}
