// The `plugin` backend's loader: a user's shared library that implements the backend contract
// (infer_runtime_backend.h) and exports irb_plugin_init.
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
//
// On success *out is a table owned by the loader (static storage, valid for the life of the process):
// the plugin's table as the host may read it -- members beyond the plugin's struct_size read as NULL,
// struct_size is min(the plugin's, the host's) and name is never NULL (the library's file name when
// the plugin gave none). A later call with the same canonical path returns the same table, or the same
// refusal, without calling the entry again; `host` is then ignored. A library that could not be opened
// at all is tried again on the next call. Thread-safe: concurrent calls for one path load it once.
Status load_plugin(const std::string& path, const irb_host* host, const irb_backend** out);

}  // namespace ir
