// TRANSITIONAL: until the rules engine lands (rules.cpp); deleted then.
#include "backend.hpp"
#include "host.hpp"

namespace ir {
namespace {
irb_error* create(const irb_host* host, const irb_create_args*, void**) { return host->error_new(IRB_ERROR_UNAVAILABLE, "the rules backend is not built yet"); }
int32_t signature(void*, int32_t, irb_tensor*, int32_t) { return -1; }
irb_error* execute(void*, const irb_batch*) { return nullptr; }
void destroy(void*) {}
const irb_backend kTable = {sizeof(irb_backend), IRB_ABI_VERSION, "rules", &create, &signature, nullptr, &execute, &destroy, nullptr};
}  // namespace
const irb_backend* builtin_rules_backend() { return &kTable; }
}  // namespace ir
