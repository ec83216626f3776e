// Finds SQLite at run time. Order (first that provides every function wins):
//  1. $IR_SQLITE_LIBRARY, when set (an explicit choice beats discovery);
//  2. symbols already visible in the process (a Python linked with SQLite statically);
//  3. an already-loaded library whose path mentions "sqlite" (Python's _sqlite3 module pulls
//     in libsqlite3.so.0, or carries a static copy);
//  4. dlopen("libsqlite3.so.0") (the system library every Linux distribution ships).
#include "sqlite_api.hpp"

#include <dlfcn.h>
#if defined(__linux__)
#include <link.h>
#endif

#include <cstdlib>
#include <string>
#include <vector>

namespace ir::registry::sqlite {
namespace {

template <typename Fn>
bool bind(void* handle, const char* name, Fn* out) {
  void* sym = dlsym(handle, name);
  if (sym == nullptr) return false;
  *out = reinterpret_cast<Fn>(sym);
  return true;
}

bool fill(void* handle, Api* a) {
  return bind(handle, "sqlite3_open_v2", &a->open_v2) && bind(handle, "sqlite3_close_v2", &a->close_v2) &&
         bind(handle, "sqlite3_busy_timeout", &a->busy_timeout) && bind(handle, "sqlite3_prepare_v2", &a->prepare_v2) &&
         bind(handle, "sqlite3_bind_text", &a->bind_text) && bind(handle, "sqlite3_step", &a->step) &&
         bind(handle, "sqlite3_column_text", &a->column_text) && bind(handle, "sqlite3_column_int64", &a->column_int64) &&
         bind(handle, "sqlite3_column_type", &a->column_type) && bind(handle, "sqlite3_finalize", &a->finalize) &&
         bind(handle, "sqlite3_errmsg", &a->errmsg) && bind(handle, "sqlite3_extended_errcode", &a->errcode) &&
         bind(handle, "sqlite3_libversion_number", &a->libversion_number) && a->libversion_number() >= kMinVersion;
}

#if defined(__linux__)
int collect(struct dl_phdr_info* info, size_t, void* data) {
  std::string name = info->dlpi_name != nullptr ? info->dlpi_name : "";
  if (name.find("sqlite") != std::string::npos) static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}
#endif

struct Loaded {
  Api api{};
  bool ok = false;
  std::string why;
};

Loaded load() {
  Loaded out;
  std::string tried;
  auto attempt = [&](void* handle, const std::string& what) {
    if (handle == nullptr) {
      const char* err = dlerror();
      tried += "; " + what + ": " + (err != nullptr ? err : "not found");
      return false;
    }
    // A library we opened ourselves stays loaded for the life of the process (never dlclosed):
    // the table points into it.
    if (fill(handle, &out.api)) return true;
    tried += "; " + what + ": missing functions or SQLite older than 3.7.0";
    return false;
  };
  if (const char* explicit_path = std::getenv("IR_SQLITE_LIBRARY"); explicit_path != nullptr && *explicit_path != '\0') {
    out.ok = attempt(dlopen(explicit_path, RTLD_NOW | RTLD_LOCAL), std::string("IR_SQLITE_LIBRARY=") + explicit_path);
    if (!out.ok) out.why = "no usable SQLite library" + tried;
    return out;
  }
  if (attempt(RTLD_DEFAULT, "process symbols")) {
    out.ok = true;
    return out;
  }
#if defined(__linux__)
  std::vector<std::string> loaded;
  dl_iterate_phdr(collect, &loaded);
  for (const auto& path : loaded) {
    if (attempt(dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD), path)) {
      out.ok = true;
      return out;
    }
  }
#endif
  for (const char* name : {"libsqlite3.so.0", "libsqlite3.so", "libsqlite3.dylib"}) {
    if (attempt(dlopen(name, RTLD_NOW | RTLD_LOCAL), name)) {
      out.ok = true;
      return out;
    }
  }
  out.why = "no usable SQLite library (install libsqlite3, or set IR_SQLITE_LIBRARY to its path)" + tried;
  return out;
}

}  // namespace

const Api* api(std::string* why) {
  static const Loaded loaded = load();
  if (!loaded.ok) {
    if (why != nullptr) *why = loaded.why;
    return nullptr;
  }
  return &loaded.api;
}

}  // namespace ir::registry::sqlite
