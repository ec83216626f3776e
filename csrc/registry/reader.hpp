// Read-only resolution of registry references (docs/registry.md), the C++ twin of
// infer_runtime.registry's resolver: same schema checks, same answers, same error codes.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "../engine/status.hpp"

namespace ir::registry {

// A resolved entry: the fields ir_registry_entry_field exposes, as text.
struct Entry {
  std::vector<std::pair<std::string, std::string>> fields;

  // nullptr for an unknown field.
  const std::string* find(const std::string& field) const;
};

// Resolves `reference` in the registry file `db_path` on a fresh read-only connection.
Status resolve(const std::string& db_path, const std::string& reference, Entry* out);

}  // namespace ir::registry
