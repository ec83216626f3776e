// A plugin doing identity work (each output is the input of the same name), for tests and for
// bench/plugin_overhead.py's comparison with the built-in identity backend.
// Config: {"mode": "copy"} (default; the host copies, like the built-in identity),
// "alloc" (host memory the plugin fills) or "adopt" (a buffer of the plugin's own, handed over
// with a release callback; it allocates per batch, so it exists to test that path, not for speed).
#include <cstdlib>
#include <cstring>
#include <new>

#include "infer_runtime_backend.h"

namespace {

const irb_host* g_host = nullptr;

enum Mode { kCopy, kAlloc, kAdopt };

struct Identity {
  Mode mode;
};

void release(void* owner) { std::free(owner); }

irb_error* create(const irb_host* /*host*/, const irb_create_args* args, void** state) {
  const char* config = args->config_json != nullptr ? args->config_json : "{}";
  Mode mode = kCopy;
  if (std::strstr(config, "\"alloc\"") != nullptr) mode = kAlloc;
  if (std::strstr(config, "\"adopt\"") != nullptr) mode = kAdopt;
  auto* identity = new (std::nothrow) Identity{mode};
  if (identity == nullptr) return g_host->error_new(IRB_ERROR_RESOURCE_EXHAUSTED, "identity plugin: out of memory");
  *state = identity;
  return nullptr;
}

int32_t signature(void* /*state*/, int32_t /*outputs*/, irb_tensor* /*out*/, int32_t /*capacity*/) { return -1; }

irb_error* execute(void* state, const irb_batch* batch) {
  const Mode mode = static_cast<Identity*>(state)->mode;
  for (int32_t i = 0; i < batch->n_inputs; ++i) {
    const irb_tensor& in = batch->inputs[i];
    irb_error* error = nullptr;
    if (mode == kCopy) {
      error = g_host->output_copy(batch->sink, &in);
    } else if (mode == kAlloc) {
      void* data = nullptr;
      error = g_host->output_alloc(batch->sink, in.name, in.dtype, in.ndim, in.shape, in.byte_size, &data);
      if (error == nullptr && in.byte_size > 0) std::memcpy(data, in.data, in.byte_size);
    } else {
      void* copy = std::malloc(in.byte_size > 0 ? in.byte_size : 1);
      if (copy == nullptr) return g_host->error_new(IRB_ERROR_RESOURCE_EXHAUSTED, "identity plugin: out of memory");
      if (in.byte_size > 0) std::memcpy(copy, in.data, in.byte_size);
      irb_tensor out = in;
      out.data = copy;
      error = g_host->output_adopt(batch->sink, &out, release, copy);  // released by the host even on error
    }
    if (error != nullptr) return error;
  }
  return nullptr;
}

void destroy(void* state) { delete static_cast<Identity*>(state); }

const char* describe(void* state) {
  switch (static_cast<Identity*>(state)->mode) {
    case kAlloc: return "identity plugin (output_alloc)";
    case kAdopt: return "identity plugin (output_adopt)";
    default: return "identity plugin (output_copy)";
  }
}

const irb_backend kIdentity = {
    sizeof(irb_backend), IRB_ABI_VERSION, "identity-plugin", create, signature, nullptr, execute, destroy, describe,
};

}  // namespace

extern "C" IRB_EXPORT irb_error* irb_plugin_init(const irb_host* host, const irb_backend** backend) {
  g_host = host;
  host->log(IRB_LOG_DEBUG, "identity-plugin", "loaded");  // tests count these: one per load
  *backend = &kIdentity;
  return nullptr;
}
