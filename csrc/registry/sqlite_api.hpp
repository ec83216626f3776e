// The few SQLite C API functions the registry reader uses, declared here and resolved at
// run time (dlopen/dlsym), so the engine builds and installs without SQLite's headers or a
// link-time dependency. The C API is stable; tests/test_registry_native.py compiles these
// declarations against the real sqlite3.h where one exists (types and constants must match).
#pragma once

#include <string>

extern "C" {
typedef struct sqlite3 sqlite3;            // same spelling as sqlite3.h (compatible redeclaration)
typedef struct sqlite3_stmt sqlite3_stmt;
}

namespace ir::registry::sqlite {

using open_v2_fn = int (*)(const char*, sqlite3**, int, const char*);
using close_v2_fn = int (*)(sqlite3*);
using busy_timeout_fn = int (*)(sqlite3*, int);
using prepare_v2_fn = int (*)(sqlite3*, const char*, int, sqlite3_stmt**, const char**);
using bind_text_fn = int (*)(sqlite3_stmt*, int, const char*, int, void (*)(void*));
using step_fn = int (*)(sqlite3_stmt*);
using column_text_fn = const unsigned char* (*)(sqlite3_stmt*, int);
using column_int64_fn = long long (*)(sqlite3_stmt*, int);
using column_type_fn = int (*)(sqlite3_stmt*, int);
using finalize_fn = int (*)(sqlite3_stmt*);
using errmsg_fn = const char* (*)(sqlite3*);
using errcode_fn = int (*)(sqlite3*);
using libversion_number_fn = int (*)(void);

constexpr int kOk = 0;               // SQLITE_OK
constexpr int kBusy = 5;             // SQLITE_BUSY
constexpr int kLocked = 6;           // SQLITE_LOCKED
constexpr int kCorrupt = 11;         // SQLITE_CORRUPT
constexpr int kCantOpen = 14;        // SQLITE_CANTOPEN
constexpr int kNotADb = 26;          // SQLITE_NOTADB
constexpr int kRow = 100;            // SQLITE_ROW
constexpr int kDone = 101;           // SQLITE_DONE
constexpr int kNull = 5;             // SQLITE_NULL (column type)
constexpr int kOpenReadOnly = 0x00000001;  // SQLITE_OPEN_READONLY
constexpr int kMinVersion = 3007000;       // 3.7.0: WAL

struct Api {
  open_v2_fn open_v2;
  close_v2_fn close_v2;
  busy_timeout_fn busy_timeout;
  prepare_v2_fn prepare_v2;
  bind_text_fn bind_text;
  step_fn step;
  column_text_fn column_text;
  column_int64_fn column_int64;
  column_type_fn column_type;
  finalize_fn finalize;
  errmsg_fn errmsg;
  errcode_fn errcode;
  libversion_number_fn libversion_number;
};

// The resolved API, loaded once per process; nullptr when no usable SQLite library was found
// (then *why, if given, says what was tried). Thread-safe.
const Api* api(std::string* why);

// SQLITE_TRANSIENT: SQLite copies the bound text before bind returns.
inline void (*transient())(void*) { return reinterpret_cast<void (*)(void*)>(-1); }

}  // namespace ir::registry::sqlite
