// Monotonic time in nanoseconds (the one clock of the scheduler), and the pause used by
// the short busy-waits that save a sleep and a wake-up.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>

namespace ir {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Tells the CPU this is a spin-wait, `rounds` times (cheap on the sibling core and the bus).
inline void cpu_relax(int rounds) {
  for (int i = 0; i < rounds; ++i) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
}

}  // namespace ir
