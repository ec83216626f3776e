// extern "C" seam of the registry reader (csrc/registry/): checks arguments, never throws.
#include <memory>
#include <new>
#include <string>

#include "../registry/reader.hpp"
#include "seam.hpp"

struct ir_registry_entry {
  ir::registry::Entry entry;
};

extern "C" {

IR_API ir_error* ir_registry_resolve(const char* db_path, const char* reference, ir_registry_entry** out) {
  return ir::abi::guard([&]() -> ir::Status {
    if (out == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "out is NULL");
    *out = nullptr;
    if (db_path == nullptr || reference == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "db_path and reference must not be NULL");
    auto result = std::make_unique<ir_registry_entry>();
    IR_RETURN_IF_ERROR(ir::registry::resolve(db_path, reference, &result->entry));
    *out = result.release();
    return ir::Status::Ok();
  });
}

IR_API const char* ir_registry_entry_field(const ir_registry_entry* entry, const char* field) {
  if (entry == nullptr || field == nullptr) return nullptr;
  try {
    const std::string* value = entry->entry.find(field);
    return value != nullptr ? value->c_str() : nullptr;
  } catch (...) {  // std::string construction may throw bad_alloc
    return nullptr;
  }
}

IR_API void ir_registry_entry_free(ir_registry_entry* entry) { delete entry; }

}
