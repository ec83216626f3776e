// Monotonic time in nanoseconds: the one clock of the scheduler.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>

namespace ir {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace ir
