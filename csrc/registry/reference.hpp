// References to registry entries: "name", "name@version" (starts with a digit) or
// "name@environment" (starts with a letter). Same grammar as infer_runtime/registry/refs.py.
#pragma once

#include <string>

#include "../engine/status.hpp"

namespace ir::registry {

struct Reference {
  std::string name;
  std::string version;      // set for name@version
  std::string environment;  // set for name@environment
};

// Parses `text`; INVALID_ARGUMENT naming the problem otherwise.
Status parse_reference(const std::string& text, Reference* out);

}  // namespace ir::registry
