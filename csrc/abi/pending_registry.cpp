// TRANSITIONAL: the registry reader's ABI until csrc/registry/ lands (deleted then).
#include "seam.hpp"

extern "C" {
IR_API ir_error* ir_registry_resolve(const char*, const char*, ir_registry_entry**) {
  return ir_error_new(IR_ERROR_UNAVAILABLE, "the registry reader is not built yet");
}
IR_API const char* ir_registry_entry_field(const ir_registry_entry*, const char*) { return nullptr; }
IR_API void ir_registry_entry_free(ir_registry_entry*) {}
}
