// Deliberately broken plugins, one per macro (pass it in cflags: -DBROKEN_ABI and so on), each
// of which the loader must refuse with a clear message. Without a macro it is a valid plugin
// (an identity, by output_copy), which shows that each macro alone causes the refusal.
//   BROKEN_ABI          built for another IRB_ABI_VERSION (this header's + 1)
//   BROKEN_NO_ENTRY     exports a misspelt entry symbol
//   BROKEN_NO_EXECUTE   leaves the required execute member NULL
//   BROKEN_SMALL_TABLE  declares a struct_size that stops before destroy
//   BROKEN_INIT_ERROR   irb_plugin_init returns an error
//   BROKEN_INIT_THROWS  irb_plugin_init lets a C++ exception escape (forbidden by the contract)
// And two tables of other sizes within one IRB_ABI_VERSION, which must load:
//   OLD_TABLE           struct_size ends after destroy, as a plugin built before `describe`
//                       existed would say (the host must read describe as NULL, though set here)
//   FUTURE_TABLE        a table with a member appended after describe (struct_size larger than
//                       the host's irb_backend)
#include <cstddef>
#include <stdexcept>

#include "infer_runtime_backend.h"

namespace {

const irb_host* g_host = nullptr;
int g_state = 0;

irb_error* create(const irb_host*, const irb_create_args*, void** state) {
  *state = &g_state;
  return nullptr;
}
int32_t signature(void*, int32_t, irb_tensor*, int32_t) { return -1; }
[[maybe_unused]] irb_error* execute(void*, const irb_batch* batch) {
  for (int32_t i = 0; i < batch->n_inputs; ++i) {
    if (irb_error* error = g_host->output_copy(batch->sink, &batch->inputs[i])) return error;
  }
  return nullptr;
}
void destroy(void*) {}

#if defined(BROKEN_ABI)
constexpr uint32_t kVersion = IRB_ABI_VERSION + 1;
#else
constexpr uint32_t kVersion = IRB_ABI_VERSION;
#endif
#if defined(BROKEN_SMALL_TABLE)
constexpr uint32_t kSize = 3 * sizeof(void*);  // ends around `create`
#elif defined(OLD_TABLE)
constexpr uint32_t kSize = offsetof(irb_backend, describe);
#else
constexpr uint32_t kSize = sizeof(irb_backend);
#endif
#if defined(BROKEN_NO_EXECUTE)
constexpr irb_error* (*kExecute)(void*, const irb_batch*) = nullptr;
#else
constexpr irb_error* (*kExecute)(void*, const irb_batch*) = execute;
#endif

const char* describe(void*) { return "must not be read"; }

#if defined(FUTURE_TABLE)
struct FutureBackend {
  irb_backend base;
  void (*appended)(void*);  // a member a later header might add
};
const FutureBackend kFuture = {{sizeof(FutureBackend), kVersion, "future", create, signature, nullptr, kExecute, destroy, describe}, nullptr};
const irb_backend& kBroken = kFuture.base;
#else
const irb_backend kBroken = {kSize, kVersion, "broken", create, signature, nullptr, kExecute, destroy, describe};
#endif

}  // namespace

#if defined(BROKEN_NO_ENTRY)
extern "C" IRB_EXPORT irb_error* irb_plugin_initialize(const irb_host* host, const irb_backend** backend) {
#else
extern "C" IRB_EXPORT irb_error* irb_plugin_init(const irb_host* host, const irb_backend** backend) {
#endif
  g_host = host;
#if defined(BROKEN_INIT_ERROR)
  (void)backend;
  return host->error_new(IRB_ERROR_UNAVAILABLE, "no licence key in BROKEN_LICENCE");
#elif defined(BROKEN_INIT_THROWS)
  (void)backend;
  throw std::runtime_error("escaped");
#else
  *backend = &kBroken;
  return nullptr;
#endif
}
