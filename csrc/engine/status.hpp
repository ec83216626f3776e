// Status: how fallible engine code reports failure without exceptions.
// The ABI seam (csrc/abi/) turns a Status into an ir_error*; nothing else does.
#pragma once

#include <string>
#include <utility>

#include "infer_runtime.h"

namespace ir {

class Status {
 public:
  Status() = default;  // success
  Status(ir_code code, std::string message) : code_(code), ok_(false), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] ir_code code() const { return code_; }
  [[nodiscard]] const std::string& message() const { return message_; }

 private:
  ir_code code_ = IR_ERROR_UNKNOWN;  // meaningless when ok_
  bool ok_ = true;
  std::string message_;
};

}  // namespace ir

#define IR_RETURN_IF_ERROR(expr)          \
  do {                                    \
    ::ir::Status ir_status__ = (expr);    \
    if (!ir_status__.ok()) return ir_status__; \
  } while (false)
