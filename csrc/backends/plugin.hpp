// Plugin libraries: a shared library exporting irb_plugin_init (infer_runtime_backend.h).
#pragma once

#include <string>

#include "../engine/status.hpp"
#include "infer_runtime_backend.h"

namespace ir {
// Loads the plugin library at `path` (once per canonical path for the life of the process; never
// unloaded), calls its irb_plugin_init(host, &table) and checks the table. Errors: NOT_FOUND (no such
// file), UNAVAILABLE (dlopen failed: dlerror's text), INVALID_ARGUMENT (no `irb_plugin_init` symbol;
// table abi_version != IRB_ABI_VERSION -- the message names the library and BOTH versions; struct_size
// too small; a required member (create, signature, execute, destroy) NULL; or the entry returned an
// error, whose message is passed through with the library's name).
Status load_plugin(const std::string& path, const irb_host* host, const irb_backend** out);
}  // namespace ir
