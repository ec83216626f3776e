// The extern "C" seam: converts Status and escaped exceptions into ir_error*.
// Every ABI function body that can fail runs inside ir::abi::guard(...).
#pragma once

#include <exception>
#include <new>
#include <string>

#include "../engine/status.hpp"
#include "infer_runtime.h"

#if defined(_WIN32)
#define IR_API __declspec(dllexport)
#else
#define IR_API __attribute__((visibility("default")))
#endif

namespace ir::abi {

// Never throws: returns NULL on success, else a heap ir_error the caller owns.
ir_error* to_error(const Status& status) noexcept;

// Runs `body` (returning Status) and maps any exception that escapes it.
template <typename Body>
ir_error* guard(Body&& body) noexcept {
  try {
    return to_error(body());
  } catch (const std::bad_alloc&) {
    return to_error(Status(IR_ERROR_RESOURCE_EXHAUSTED, "out of memory"));
  } catch (const std::exception& e) {
    return to_error(Status(IR_ERROR_INTERNAL, std::string("internal error: ") + e.what()));
  } catch (...) {
    return to_error(Status(IR_ERROR_INTERNAL, "internal error: unknown exception"));
  }
}

}  // namespace ir::abi
