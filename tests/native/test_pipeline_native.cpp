// Drives pipelines through the C ABI with no Python in the process (run under ASan, UBSan
// and LeakSanitizer by tests/sanitizers/run.sh): a three-step graph with a fan-out over an
// identity model and an external (host-run) step, concurrent submitters, a failing step,
// cancellation, a step model replaced while requests are in flight, and a stop with
// requests mid-graph. Every request completes exactly once; nothing leaks.
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "check.hpp"
#include "infer_runtime.h"

namespace {

int64_t kSigShape[] = {-1, 3};
ir_tensor kSig{"x", IR_DTYPE_FLOAT32, 2, kSigShape, nullptr, 0};

ir_model* add(ir_engine* engine, const char* name, int backend, bool replace = false) {
  ir_model_config cfg = base_config(name, backend, &kSig);
  cfg.instances = 2;
  cfg.batching = 1;
  cfg.max_batch_size = 16;
  cfg.max_queue_delay_us = 100;
  cfg.priority_levels = 2;
  cfg.adaptive = 1;
  ir_model* model = nullptr;
  ir_error* err = replace ? ir_engine_replace_model(engine, &cfg, &model) : ir_engine_add_model(engine, &cfg, &model);
  CHECK(err == nullptr);
  ir_error_free(err);
  return model;
}

// The external step: y = x + 1; fails a batch holding a row whose first value is negative.
void serve_external(ir_model* model, int instance) {
  for (;;) {
    ir_batch* batch = nullptr;
    ir_error* err = ir_model_next_batch(model, instance, -1, &batch, nullptr, 0, nullptr);
    if (err != nullptr) {
      ir_error_free(err);
      return;
    }
    if (batch == nullptr) continue;
    ir_tensor in;
    ir_batch_input(batch, 0, &in);
    const float* v = static_cast<const float*>(in.data);
    std::vector<float> y(static_cast<size_t>(in.byte_size / sizeof(float)));
    bool negative = false;
    for (size_t i = 0; i < y.size(); ++i) {
      y[i] = v[i] + 1.0f;
      negative = negative || (i % 3 == 0 && v[i] < 0);
    }
    if (negative) {
      ir_batch_finish(batch, ir_error_new(IR_ERROR_BACKEND, "negative input"));
      continue;
    }
    ir_tensor out{"x", IR_DTYPE_FLOAT32, in.ndim, in.shape, y.data(), in.byte_size};
    ir_batch_complete(batch, &out, 1);
  }
}

// request.x → first (identity) → plus (external: +1) → {left, right} (identity, both reading
// plus). Outputs: left.x, right.x, first.x.
ir_pipeline* add_pipeline(ir_engine* engine) {
  ir_pipeline_binding from_request[] = {{"x", -1, "x"}};
  ir_pipeline_binding from_first[] = {{"x", 0, "x"}};
  ir_pipeline_binding from_plus[] = {{"x", 1, "x"}};
  ir_pipeline_step steps[] = {
      {"first", "echo", from_request, 1},
      {"plus", "plus", from_first, 1},
      {"left", "echo", from_plus, 1},
      {"right", "echo", from_plus, 1},
  };
  ir_pipeline_binding outputs[] = {{"left", 2, "x"}, {"right", 3, "x"}, {"mid", 0, "x"}};
  ir_pipeline_config cfg{};
  cfg.struct_size = sizeof(cfg);
  cfg.name = "graph";
  cfg.inputs = &kSig;
  cfg.n_inputs = 1;
  cfg.steps = steps;
  cfg.n_steps = 4;
  cfg.outputs = outputs;
  cfg.n_outputs = 3;
  cfg.priority_levels = 2;
  ir_pipeline* pipeline = nullptr;
  ir_error* err = ir_engine_add_pipeline(engine, &cfg, &pipeline);
  CHECK(err == nullptr);
  ir_error_free(err);
  return pipeline;
}

// Collects up to `expected` completions; checks each answer against its cookie (the value
// of its first element); counts errors.
int collect(ir_engine* engine, int expected, int* errors, int64_t wait_us = 2000000) {
  int seen = 0;
  ir_completion done[64];
  while (seen < expected) {
    size_t n = ir_engine_wait(engine, wait_us, done, 64);
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i, ++seen) {
      if (done[i].error != nullptr) {
        ++*errors;
        ir_error_free(done[i].error);
        continue;
      }
      CHECK(done[i].batch == nullptr);
      ir_tensor out[4];
      CHECK(ir_response_describe(done[i].response, out, 4) == 3);
      const float id = static_cast<float>(done[i].cookie);
      CHECK(std::strcmp(out[0].name, "left") == 0 && std::strcmp(out[2].name, "mid") == 0);
      CHECK(static_cast<const float*>(out[0].data)[0] == id + 1.0f);
      CHECK(static_cast<const float*>(out[1].data)[0] == id + 1.0f);
      CHECK(static_cast<const float*>(out[2].data)[0] == id);
      CHECK(out[0].ndim == 2 && out[0].shape[0] == 1 && out[0].shape[1] == 3);
      ir_response_release(done[i].response);
    }
  }
  return seen;
}

void graph_under_concurrency_failures_swaps_and_stop() {
  ir_engine* engine = nullptr;
  CHECK(ir_engine_create(&engine) == nullptr);
  ir_model* echo = add(engine, "echo", IR_BACKEND_IDENTITY);
  ir_model* plus = add(engine, "plus", IR_BACKEND_EXTERNAL);
  std::vector<std::thread> workers;
  for (int instance = 0; instance < 2; ++instance) workers.emplace_back(serve_external, plus, instance);
  ir_pipeline* pipeline = add_pipeline(engine);

  constexpr int kThreads = 3, kPerThread = 400;
  std::vector<std::vector<float>> data(kThreads * kPerThread, std::vector<float>(3));
  std::atomic<bool> swapping{true};
  ir_model* replaced = nullptr;
  std::thread swapper([&] {  // replaces `echo` (a step model) while requests flow
    for (int k = 0; k < 5 && swapping.load(); ++k) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      ir_model_release(replaced);
      replaced = add(engine, "echo", IR_BACKEND_IDENTITY, true);
    }
  });
  std::vector<std::thread> submitters;
  for (int t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&, t] {
      int64_t shape[] = {1, 3};
      for (int i = 0; i < kPerThread; ++i) {
        const int id = t * kPerThread + i;
        data[id][0] = static_cast<float>(id);
        ir_tensor in{"x", IR_DTYPE_FLOAT32, 2, shape, data[id].data(), 12};
        ir_error* err = ir_pipeline_submit(pipeline, static_cast<uint64_t>(id), &in, 1, id % 2, 0, id % 4 ? IR_SUBMIT_NO_WAKE : 0);
        CHECK(err == nullptr);
        ir_error_free(err);
        if (id % 4 == 3) ir_pipeline_wake(pipeline);
      }
      ir_pipeline_wake(pipeline);
    });
  }
  for (auto& s : submitters) s.join();
  int errors = 0;
  CHECK(collect(engine, kThreads * kPerThread, &errors) == kThreads * kPerThread);
  CHECK(errors == 0);
  swapping = false;
  swapper.join();

  // A failing step fails its request (and whatever shared its batch), naming the step.
  int64_t shape[] = {1, 3};
  std::vector<float> negative{-5.0f, 0.0f, 0.0f};
  ir_tensor bad{"x", IR_DTYPE_FLOAT32, 2, shape, negative.data(), 12};
  CHECK(ir_pipeline_submit(pipeline, 999999, &bad, 1, 0, 0, 0) == nullptr);
  ir_completion done[4];
  size_t n = ir_engine_wait(engine, 2000000, done, 4);
  CHECK(n == 1 && done[0].error != nullptr);
  if (n == 1 && done[0].error != nullptr) {
    CHECK(ir_error_code(done[0].error) == IR_ERROR_BACKEND);
    CHECK(std::strstr(ir_error_message(done[0].error), "step 'plus' (model 'plus')") != nullptr);
    ir_error_free(done[0].error);
  }
  // Bad requests are refused at once.
  std::vector<float> wide(4);
  int64_t wide_shape[] = {1, 4};
  ir_tensor wrong{"x", IR_DTYPE_FLOAT32, 2, wide_shape, wide.data(), 16};
  ir_error* refused = ir_pipeline_submit(pipeline, 1, &wrong, 1, 0, 0, 0);
  CHECK(refused != nullptr && ir_error_code(refused) == IR_ERROR_INVALID_ARGUMENT);
  ir_error_free(refused);
  refused = ir_pipeline_submit(pipeline, 1, &bad, 1, 2, 0, 0);  // priority out of range
  CHECK(refused != nullptr && ir_error_code(refused) == IR_ERROR_INVALID_ARGUMENT);
  ir_error_free(refused);

  // Cancel one request right after submitting it; it completes once, either way.
  ir_tensor five{"x", IR_DTYPE_FLOAT32, 2, shape, data[5].data(), 12};
  CHECK(ir_pipeline_submit(pipeline, 5, &five, 1, 0, 0, 0) == nullptr);
  ir_pipeline_cancel(pipeline, 5);
  errors = 0;
  int answered = 0;
  for (int tries = 0; answered < 1 && tries < 100; ++tries) answered += collect(engine, 1, &errors, 20000);
  CHECK(answered == 1);

  // Stop with requests mid-graph: each completes exactly once (answered or cancelled).
  for (int id = 0; id < 200; ++id) {
    ir_tensor in{"x", IR_DTYPE_FLOAT32, 2, shape, data[id].data(), 12};
    ir_error_free(ir_pipeline_submit(pipeline, static_cast<uint64_t>(id), &in, 1, 0, 0, 0));
  }
  ir_engine_stop(engine, 0);
  int late = 0;
  errors = 0;
  for (int tries = 0; late < 200 && tries < 400; ++tries) {
    late += collect(engine, 200 - late, &errors, 5000);
    if (late < 200) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(late == 200);
  refused = ir_pipeline_submit(pipeline, 1, &bad, 1, 0, 0, 0);
  CHECK(refused != nullptr && ir_error_code(refused) == IR_ERROR_UNAVAILABLE);
  ir_error_free(refused);
  for (auto& w : workers) w.join();
  ir_completion rest[8];
  CHECK(ir_engine_drain(engine, rest, 8) == 0);

  ir_model_stats stats{};
  stats.struct_size = sizeof(stats);
  CHECK(ir_pipeline_stats_get(pipeline, &stats) == nullptr);
  CHECK(stats.in_flight == 0 && stats.succeeded >= kThreads * kPerThread);
  ir_pipeline_step_stats step{};
  step.struct_size = sizeof(step);
  CHECK(ir_pipeline_step_stats_get(pipeline, 1, &step) == nullptr);
  CHECK(step.failed >= 1 && step.succeeded >= kThreads * kPerThread);
  ir_error* out_of_range = ir_pipeline_step_stats_get(pipeline, 4, &step);
  CHECK(out_of_range != nullptr);
  ir_error_free(out_of_range);

  ir_pipeline_release(pipeline);
  ir_model_release(replaced);
  ir_model_release(echo);
  ir_model_release(plus);
  ir_engine_destroy(engine);
}

}  // namespace

int main() {
  graph_under_concurrency_failures_swaps_and_stop();
  if (ir_test::failures() == 0) std::printf("test_pipeline_native: ok\n");
  return ir_test::failures();
}
