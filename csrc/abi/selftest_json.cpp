// ir_selftest_json: the JSON reader behind the C ABI, so Python tests can compare it with json.
#include <cstring>

#include "../common/json.hpp"
#include "seam.hpp"

extern "C" {
IR_API ir_error* ir_selftest_json(const char* text, size_t size, char* out, size_t capacity, size_t* n_out) {
  return ir::abi::guard([&]() -> ir::Status {
    if (text == nullptr && size != 0) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "text is NULL");
    ir::json::Value v;
    IR_RETURN_IF_ERROR(ir::json::parse(std::string_view(text == nullptr ? "" : text, size), &v));
    const std::string canonical = ir::json::dump(v);
    if (n_out != nullptr) *n_out = canonical.size();
    if (out != nullptr && canonical.size() <= capacity) std::memcpy(out, canonical.data(), canonical.size());
    return ir::Status::Ok();
  });
}
}
