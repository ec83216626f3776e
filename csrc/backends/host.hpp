// The host side of the backend contract: what irb_error is, and how the engine turns one into
// a Status. Backends never see this file; they make errors through irb_host.error_new.
#pragma once

#include <cstdint>
#include <string>

#include "../engine/status.hpp"
#include "infer_runtime_backend.h"

struct irb_error {
  ir_code code;
  std::string message;
};

namespace ir {

// The host table given to every backend (built-in or plugin); static storage.
const irb_host* backend_host();

// A heap irb_error (what irb_host.error_new returns); unknown codes become IR_ERROR_UNKNOWN.
irb_error* make_backend_error(int32_t code, const char* message);

// Converts a backend's error into a Status and frees it; NULL is success.
Status take_backend_error(irb_error* error);

}  // namespace ir
