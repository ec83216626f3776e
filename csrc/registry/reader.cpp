// One short read transaction per call: every query of a resolution sees the same snapshot,
// and the connection is closed before returning (nothing is cached between calls).
#include "reader.hpp"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <memory>

#include "reference.hpp"
#include "sqlite_api.hpp"

namespace ir::registry {
namespace {

constexpr int kBusyTimeoutMs = 2000;
constexpr long long kApplicationId = 0x49525247;  // "IRRG", as in registry/_schema.py
constexpr long long kSchemaVersion = 2;
constexpr long long kMinReadable = 1;

using sqlite::Api;

std::string quoted(const std::string& s) { return "'" + s + "'"; }

// A prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(const Api* api, sqlite3_stmt* stmt) : api_(api), stmt_(stmt) {}
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() {
    if (stmt_ != nullptr) api_->finalize(stmt_);
  }
  sqlite3_stmt* get() const { return stmt_; }

 private:
  const Api* api_;
  sqlite3_stmt* stmt_;
};

class Reader {
 public:
  Reader(const Api* api, std::string path) : api_(api), path_(std::move(path)) {}
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  ~Reader() {
    if (db_ != nullptr) api_->close_v2(db_);
  }

  Status open() {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return Status(IR_ERROR_NOT_FOUND, path_ + ": no registry file there");
    char resolved[PATH_MAX];
    if (::realpath(path_.c_str(), resolved) == nullptr) return Status(IR_ERROR_UNAVAILABLE, path_ + ": cannot resolve the registry's path");
    std::string full(resolved);
    root_ = full.substr(0, full.rfind('/'));
    int rc = api_->open_v2(path_.c_str(), &db_, sqlite::kOpenReadOnly, nullptr);
    if (rc != sqlite::kOk) return failure("cannot open the registry");
    api_->busy_timeout(db_, kBusyTimeoutMs);
    return Status::Ok();
  }

  // Runs `sql` with text parameters; calls on_row for each row. Errors name the file.
  template <typename OnRow>
  Status query(const char* sql, const std::vector<std::string>& params, OnRow&& on_row) {
    sqlite3_stmt* raw = nullptr;
    if (api_->prepare_v2(db_, sql, -1, &raw, nullptr) != sqlite::kOk) return failure("cannot read the registry");
    Stmt stmt(api_, raw);
    for (size_t i = 0; i < params.size(); ++i) {
      if (api_->bind_text(raw, static_cast<int>(i + 1), params[i].c_str(), static_cast<int>(params[i].size()), sqlite::transient()) != sqlite::kOk) {
        return failure("cannot read the registry");
      }
    }
    while (true) {
      int rc = api_->step(raw);
      if (rc == sqlite::kDone) return Status::Ok();
      if (rc != sqlite::kRow) return failure("cannot read the registry");
      on_row(raw);
    }
  }

  std::string text(sqlite3_stmt* stmt, int col) const {
    const unsigned char* t = api_->column_text(stmt, col);
    return t != nullptr ? std::string(reinterpret_cast<const char*>(t)) : std::string();
  }

  long long integer(sqlite3_stmt* stmt, int col) const { return api_->column_int64(stmt, col); }

  Status exec(const char* sql) {
    return query(sql, {}, [](sqlite3_stmt*) {});
  }

  Status pragma(const char* sql, long long* out) {
    *out = 0;
    return query(sql, {}, [&](sqlite3_stmt* s) { *out = integer(s, 0); });
  }

  const std::string& root() const { return root_; }
  const std::string& path() const { return path_; }

 private:
  Status failure(const std::string& what) const {
    const int code = api_->errcode(db_) & 0xFF;
    const std::string detail = db_ != nullptr ? api_->errmsg(db_) : "out of memory";
    if (code == sqlite::kNotADb || code == sqlite::kCorrupt) {
      return Status(IR_ERROR_UNAVAILABLE, path_ + ": the registry file is corrupt or not a SQLite database (" + detail + ")");
    }
    if (code == sqlite::kBusy || code == sqlite::kLocked) return Status(IR_ERROR_UNAVAILABLE, path_ + ": the registry stayed locked (" + detail + "); try again");
    return Status(IR_ERROR_UNAVAILABLE, path_ + ": " + what + " (" + detail + ")");
  }

  const Api* api_;
  std::string path_;
  std::string root_;
  sqlite3* db_ = nullptr;
};

constexpr const char* kModelCols = "name, version, artifact, filename, format, backend, sha256, size, created_at, metadata";

std::string join(const std::vector<std::string>& items, const std::string& empty) {
  if (items.empty()) return empty;
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

Status check_schema(Reader& r) {
  long long version = 0;
  long long app_id = 0;
  IR_RETURN_IF_ERROR(r.pragma("PRAGMA user_version", &version));
  IR_RETURN_IF_ERROR(r.pragma("PRAGMA application_id", &app_id));
  if (version > kSchemaVersion) {
    return Status(IR_ERROR_INVALID_ARGUMENT, r.path() + ": registry schema version " + std::to_string(version) + " is newer than this infer-runtime supports (" + std::to_string(kSchemaVersion) + "); upgrade infer-runtime");
  }
  if (version < kMinReadable || app_id != kApplicationId) return Status(IR_ERROR_UNAVAILABLE, r.path() + ": not a model registry (empty, or created by something else)");
  return Status::Ok();
}

Status versions_of(Reader& r, const std::string& name, std::vector<std::string>* out) {
  return r.query("SELECT version FROM models WHERE name = ? ORDER BY id", {name}, [&](sqlite3_stmt* s) { out->push_back(r.text(s, 0)); });
}

Status require_name(Reader& r, const std::string& name) {
  std::vector<std::string> versions;
  IR_RETURN_IF_ERROR(versions_of(r, name, &versions));
  if (!versions.empty()) return Status::Ok();
  std::vector<std::string> names;
  IR_RETURN_IF_ERROR(r.query("SELECT DISTINCT name FROM models ORDER BY name", {}, [&](sqlite3_stmt* s) { names.push_back(r.text(s, 0)); }));
  return Status(IR_ERROR_NOT_FOUND, "no model " + quoted(name) + " in the registry " + r.path() + "; models: " + join(names, "none registered yet"));
}

Status model_row(Reader& r, const std::string& sql, const std::vector<std::string>& params, bool* found, Entry* out) {
  *found = false;
  return r.query(sql.c_str(), params, [&](sqlite3_stmt* s) {
    *found = true;
    static const char* const kNames[] = {"name", "version", "artifact", "filename", "format", "backend", "sha256", "size", "created_at", "metadata"};
    for (int i = 0; i < 10; ++i) {
      std::string value = i == 7 ? std::to_string(r.integer(s, i)) : r.text(s, i);
      if (i == 2) value = r.root() + "/" + value;  // stored relative to the registry's directory
      out->fields.emplace_back(kNames[i], std::move(value));
    }
  });
}

Status by_version(Reader& r, const std::string& name, const std::string& version, Entry* out) {
  bool found = false;
  IR_RETURN_IF_ERROR(model_row(r, std::string("SELECT ") + kModelCols + " FROM models WHERE name = ? AND version = ?", {name, version}, &found, out));
  if (found) return Status::Ok();
  IR_RETURN_IF_ERROR(require_name(r, name));
  std::vector<std::string> versions;
  IR_RETURN_IF_ERROR(versions_of(r, name, &versions));
  return Status(IR_ERROR_NOT_FOUND, "model " + quoted(name) + " has no version " + quoted(version) + "; versions: " + join(versions, ""));
}

Status latest(Reader& r, const std::string& name, Entry* out) {
  bool found = false;
  IR_RETURN_IF_ERROR(model_row(r, std::string("SELECT ") + kModelCols + " FROM models WHERE name = ? ORDER BY id DESC LIMIT 1", {name}, &found, out));
  return found ? Status::Ok() : require_name(r, name);
}

Status by_environment(Reader& r, const std::string& name, const std::string& environment, Entry* out) {
  IR_RETURN_IF_ERROR(require_name(r, name));
  std::string version;
  bool deployed = false;
  IR_RETURN_IF_ERROR(r.query("SELECT version FROM deployments WHERE name = ? AND environment = ? ORDER BY id DESC LIMIT 1", {name, environment}, [&](sqlite3_stmt* s) {
    deployed = true;
    version = r.text(s, 0);
  }));
  if (!deployed) {
    std::vector<std::string> envs;
    IR_RETURN_IF_ERROR(r.query(
        "SELECT d.environment, d.version FROM deployments d WHERE d.name = ? AND d.id = "
        "(SELECT MAX(id) FROM deployments WHERE name = d.name AND environment = d.environment) ORDER BY d.environment",
        {name}, [&](sqlite3_stmt* s) { envs.push_back(r.text(s, 0) + " (version " + r.text(s, 1) + ")"); }));
    std::string where = envs.empty() ? "not deployed in any environment yet (promote a version first)" : "deployed in: " + join(envs, "");
    return Status(IR_ERROR_NOT_FOUND, "model " + quoted(name) + " is not deployed in " + quoted(environment) + "; " + where);
  }
  return by_version(r, name, version, out);
}

}  // namespace

const std::string* Entry::find(const std::string& field) const {
  for (const auto& [key, value] : fields) {
    if (key == field) return &value;
  }
  return nullptr;
}

Status resolve(const std::string& db_path, const std::string& reference, Entry* out) {
  Reference ref;
  IR_RETURN_IF_ERROR(parse_reference(reference, &ref));
  std::string why;
  const Api* api = sqlite::api(&why);
  if (api == nullptr) return Status(IR_ERROR_UNAVAILABLE, why);
  Reader reader(api, db_path);
  IR_RETURN_IF_ERROR(reader.open());
  IR_RETURN_IF_ERROR(reader.exec("BEGIN"));
  IR_RETURN_IF_ERROR(check_schema(reader));
  Entry entry;
  if (!ref.version.empty()) {
    IR_RETURN_IF_ERROR(by_version(reader, ref.name, ref.version, &entry));
  } else if (!ref.environment.empty()) {
    IR_RETURN_IF_ERROR(by_environment(reader, ref.name, ref.environment, &entry));
  } else {
    IR_RETURN_IF_ERROR(latest(reader, ref.name, &entry));
  }
  entry.fields.emplace_back("environment", ref.environment);
  IR_RETURN_IF_ERROR(reader.exec("COMMIT"));
  *out = std::move(entry);
  return Status::Ok();
}

}  // namespace ir::registry
