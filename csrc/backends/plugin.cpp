// The plugin loader: dlopen once per canonical path, call the entry, check and normalize its table.
#include "plugin.hpp"

#include <dlfcn.h>
#include <limits.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

#include "host.hpp"

namespace ir {
namespace {

// Bytes of a table that reach the end of `member`.
#define IRB_END_OF(type, member) (offsetof(type, member) + sizeof(static_cast<type*>(nullptr)->member))

constexpr size_t kMinBackendSize = IRB_END_OF(irb_backend, destroy);

// One library, loaded at most once. `done` is set when loading reached a verdict that another
// call must not retry (a loaded library with its table, or its refusal): dlopen returns the same
// handle for a path that is still loaded, so retrying would only repeat the verdict.
struct Entry {
  std::mutex mutex;
  bool done = false;
  Status status;
  irb_backend table{};
  std::string name;  // storage for table.name when the plugin gave none
};

std::mutex& registry_mutex() {
  static std::mutex mutex;
  return mutex;
}

// Entries are never erased, so a pointer into the map stays valid after the registry lock is released.
std::map<std::string, std::unique_ptr<Entry>>& registry() {
  static auto* entries = new std::map<std::string, std::unique_ptr<Entry>>();  // leaked: libraries outlive exit handlers
  return *entries;
}

std::string base_name(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

Status refuse(const std::string& library, const std::string& why) {
  return Status(IR_ERROR_INVALID_ARGUMENT, "plugin library '" + library + "' " + why);
}

// Calls the entry and checks what it returned; fills entry->table on success.
Status initialize(const std::string& library, void* handle, const irb_host* host, Entry* entry) {
  void* symbol = dlsym(handle, IRB_ENTRY_SYMBOL);  // dlerror's text would only repeat the path and the name
  if (symbol == nullptr) {
    return refuse(library, std::string("does not export the entry symbol '") + IRB_ENTRY_SYMBOL +
                               "' (declare it extern \"C\" IRB_EXPORT, as infer_runtime_backend.h shows)");
  }
  auto init = reinterpret_cast<irb_plugin_init_fn>(symbol);
  const irb_backend* table = nullptr;
  irb_error* error = nullptr;
  try {  // the contract forbids exceptions across it; a plugin that breaks that must not take the host down
    error = init(host, &table);
  } catch (...) {
    return refuse(library, std::string("threw a C++ exception out of ") + IRB_ENTRY_SYMBOL + " (wrap every entry point in try/catch)");
  }
  if (error != nullptr) {
    Status status = take_backend_error(error);
    return refuse(library, std::string(IRB_ENTRY_SYMBOL) + " failed: " + status.message());
  }
  if (table == nullptr) return refuse(library, std::string(IRB_ENTRY_SYMBOL) + " returned no backend table");
  if (table->abi_version != IRB_ABI_VERSION) {
    return refuse(library, "was built for IRB_ABI_VERSION " + std::to_string(table->abi_version) +
                               ", but this infer-runtime has IRB_ABI_VERSION " + std::to_string(IRB_ABI_VERSION) +
                               ": rebuild it against this version's infer_runtime_backend.h (infer_runtime.get_include())");
  }
  if (table->struct_size < kMinBackendSize) {
    return refuse(library, "has a backend table of " + std::to_string(table->struct_size) +
                               " bytes (struct_size); IRB_ABI_VERSION " + std::to_string(IRB_ABI_VERSION) +
                               " needs at least " + std::to_string(kMinBackendSize));
  }
  const char* missing = table->create == nullptr      ? "create"
                        : table->signature == nullptr ? "signature"
                        : table->execute == nullptr   ? "execute"
                        : table->destroy == nullptr   ? "destroy"
                                                      : nullptr;
  if (missing != nullptr) return refuse(library, std::string("has no '") + missing + "' function in its backend table (required)");

  // The host's view: only what lies within the plugin's struct_size, so that every reader can
  // use the table's members directly (an older plugin's shorter table reads as NULLs).
  size_t size = table->struct_size < sizeof(irb_backend) ? table->struct_size : sizeof(irb_backend);
  std::memset(&entry->table, 0, sizeof(entry->table));
  std::memcpy(&entry->table, table, size);
  entry->table.struct_size = static_cast<uint32_t>(size);
  if (entry->table.name == nullptr || entry->table.name[0] == '\0') {
    entry->name = base_name(library);
    entry->table.name = entry->name.c_str();
  }
  return Status::Ok();
}

}  // namespace

Status load_plugin(const std::string& path, const irb_host* host, const irb_backend** out) {
  *out = nullptr;
  if (host == nullptr) return Status(IR_ERROR_INVALID_ARGUMENT, "load_plugin: host table is NULL");
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) return Status(IR_ERROR_NOT_FOUND, "plugin library '" + path + "' not found");
    return Status(IR_ERROR_UNAVAILABLE, "plugin library '" + path + "': " + std::strerror(err));
  }
  struct stat info {};
  if (::stat(resolved, &info) != 0 || !S_ISREG(info.st_mode)) {
    return Status(IR_ERROR_NOT_FOUND, "plugin library '" + path + "' is not a file");
  }
  std::string canonical(resolved);

  Entry* entry = nullptr;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto& slot = registry()[canonical];
    if (!slot) slot = std::make_unique<Entry>();
    entry = slot.get();
  }
  // Per-library lock: a second caller of the same path waits for the first's verdict, while
  // other libraries load in parallel.
  std::lock_guard<std::mutex> lock(entry->mutex);
  if (!entry->done) {
    // RTLD_LOCAL: two plugins may define the same symbols without seeing each other's.
    void* handle = ::dlopen(canonical.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = dlerror();
      return Status(IR_ERROR_UNAVAILABLE, "plugin library '" + canonical + "' cannot be loaded: " + (why != nullptr ? why : "dlopen failed"));
    }
    // Never dlclose: instances, adopted buffers and release callbacks may point into the library.
    entry->status = initialize(canonical, handle, host, entry);
    entry->done = true;
  }
  if (!entry->status.ok()) return entry->status;
  *out = &entry->table;
  return Status::Ok();
}

}  // namespace ir
