// A tiny test harness for C++ drivers of the C ABI (run under ASan/UBSan/LSan by
// tests/sanitizers/run.sh). Each CHECK failure prints where and counts; main returns the
// number of failures.
#pragma once

#include <cstdio>
#include <cstring>

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
