// ir_error objects and the ABI version: the first pieces of the C ABI.
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "seam.hpp"

struct ir_error {
  ir_code code;
  std::string message;
};

namespace {

// Converts a caller-supplied int to ir_code only when it names one (no UB casts).
ir_code checked_code(int code) {
  return code >= IR_ERROR_UNKNOWN && code <= IR_ERROR_BACKEND ? static_cast<ir_code>(code) : IR_ERROR_UNKNOWN;
}

struct NotAStdException {
  int value;
};

}  // namespace

namespace ir::abi {

ir_error* to_error(const Status& status) noexcept {
  if (status.ok()) return nullptr;
  // nothrow new; the string copy may still throw bad_alloc, so fall back to an empty message.
  auto* err = new (std::nothrow) ir_error{status.code(), std::string()};
  if (err == nullptr) return nullptr;
  try {
    err->message = status.message();
  } catch (...) {
  }
  return err;
}

}  // namespace ir::abi

extern "C" {

IR_API uint32_t ir_abi_version(void) {
  return (static_cast<uint32_t>(IR_ABI_VERSION_MAJOR) << 16) | IR_ABI_VERSION_MINOR;
}

IR_API ir_error* ir_error_new(int code, const char* message) {
  return ir::abi::to_error(ir::Status(checked_code(code), message != nullptr ? message : ""));
}

IR_API ir_code ir_error_code(const ir_error* error) { return error->code; }

IR_API const char* ir_error_message(const ir_error* error) { return error->message.c_str(); }

IR_API const char* ir_code_name(int code) {
  switch (checked_code(code)) {
    case IR_ERROR_UNKNOWN: return "UNKNOWN";
    case IR_ERROR_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case IR_ERROR_NOT_FOUND: return "NOT_FOUND";
    case IR_ERROR_UNAVAILABLE: return "UNAVAILABLE";
    case IR_ERROR_RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case IR_ERROR_DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case IR_ERROR_INTERNAL: return "INTERNAL";
    case IR_ERROR_CANCELLED: return "CANCELLED";
    case IR_ERROR_BACKEND: return "BACKEND";
  }
  return "UNKNOWN";
}

IR_API void ir_error_free(ir_error* error) { delete error; }

IR_API ir_error* ir_selftest_fail(int mode, int code, const char* message) {
  std::string text = message != nullptr ? message : "";
  return ir::abi::guard([&]() -> ir::Status {
    switch (mode) {
      case IR_SELFTEST_OK: return ir::Status::Ok();
      case IR_SELFTEST_STATUS: return ir::Status(checked_code(code), text);
      case IR_SELFTEST_THROW_STD: throw std::runtime_error(text);
      case IR_SELFTEST_THROW_BAD_ALLOC: throw std::bad_alloc();
      case IR_SELFTEST_THROW_OTHER: throw NotAStdException{42};
    }
    return ir::Status(IR_ERROR_INVALID_ARGUMENT, "unknown selftest mode " + std::to_string(mode));
  });
}

}  // extern "C"
