// Engine-only round trip (no Python): submit one request to an identity model, block in
// ir_engine_wait for its completion, repeat. Measures the engine's hand-off floor.
// Build: g++ -O2 -std=c++17 -Icsrc/include $(find csrc -name '*.cpp') bench/native/roundtrip.cpp -o build/roundtrip -pthread
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "infer_runtime.h"

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  ir_engine* engine = nullptr;
  ir_engine_create(&engine);
  int64_t shape[2] = {1, 16};
  ir_tensor sig{"x", IR_DTYPE_FLOAT32, 2, shape, nullptr, 0};
  ir_model_config cfg{};
  cfg.struct_size = sizeof(cfg);
  cfg.name = "echo";
  cfg.backend = IR_BACKEND_IDENTITY;
  cfg.instances = 1;
  cfg.max_queue_size = 1024;
  cfg.priority_levels = 1;
  cfg.inputs = &sig;
  cfg.n_inputs = 1;
  cfg.idle_spin_us = argc > 2 ? std::atoi(argv[2]) : 0;
  ir_model* model = nullptr;
  if (ir_error* e = ir_engine_add_model(engine, &cfg, &model)) { std::puts(ir_error_message(e)); return 1; }
  float data[16] = {};
  ir_tensor in{"x", IR_DTYPE_FLOAT32, 2, shape, data, sizeof(data)};
  ir_completion done[4];
  std::vector<double> us;
  for (int i = 0; i < n; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    ir_model_submit(model, i, &in, 1, 0, 0, 0);
    size_t k = 0;
    while (k == 0) k = ir_engine_wait(engine, -1, done, 4);
    auto t1 = std::chrono::steady_clock::now();
    ir_response_release(done[0].response);
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::sort(us.begin(), us.end());
  std::printf("engine round trip: p50 %.1f us  p99 %.1f us  (n=%d)\n", us[us.size() / 2], us[us.size() * 99 / 100], n);
  ir_engine_destroy(engine);
  ir_model_release(model);
}
