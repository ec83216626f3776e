// A tiny test harness for C++ drivers of the C ABI (run under ASan/UBSan/LSan by
// tests/sanitizers/run.sh). Each CHECK failure prints where and counts; main returns the
// number of failures.
#pragma once

#include <cstdio>
#include <cstring>

#include "infer_runtime.h"

namespace ir_test {
inline int& failures() {
  static int count = 0;
  return count;
}
}  // namespace ir_test

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++ir_test::failures();                                                     \
    }                                                                            \
  } while (false)

#define CHECK_STREQ(a, b) CHECK(std::strcmp((a), (b)) == 0)

// A model config with what every driver sets (one instance, one priority level, a 4096
// queue, one input signature); drivers change the rest.
inline ir_model_config base_config(const char* name, int backend, const ir_tensor* inputs) {
  ir_model_config cfg{};
  cfg.struct_size = sizeof(cfg);
  cfg.name = name;
  cfg.backend = backend;
  cfg.instances = 1;
  cfg.max_queue_size = 4096;
  cfg.priority_levels = 1;
  cfg.inputs = inputs;
  cfg.n_inputs = 1;
  return cfg;
}

