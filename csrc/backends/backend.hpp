// Backend: an opened backend as the engine runs it -- a contract table (infer_runtime_backend.h)
// with one instance per model instance, its signature and batch range. Built-in backends are
// found by name in one factory table; plugins come from a shared library.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../engine/status.hpp"
#include "../engine/tensor.hpp"
#include "infer_runtime_backend.h"

namespace ir {

struct Batch;

struct BackendOptions {
  std::string kind;          // "identity", "onnxruntime", "rules", "plugin"
  std::string library;       // plugin: the shared library
  std::string model_name;
  std::string config_json = "{}";
  bool inputs_declared = false;
  std::vector<TensorSig> inputs;
  bool outputs_declared = false;
  std::vector<TensorSig> outputs;
  int32_t instances = 1;
  int64_t max_batch_rows = 0;
};

class Backend {
 public:
  // Finds the backend's table (built-in or plugin) and creates every instance.
  static Status Open(const BackendOptions& options, std::unique_ptr<Backend>* out);
  ~Backend();
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  [[nodiscard]] int32_t instances() const { return static_cast<int32_t>(states_.size()); }
  // nullptr: the backend takes whatever it is given (identity).
  [[nodiscard]] const std::vector<TensorSig>* inputs() const { return any_inputs_ ? nullptr : &inputs_; }
  [[nodiscard]] const std::vector<TensorSig>* outputs() const { return any_outputs_ ? nullptr : &outputs_; }
  [[nodiscard]] int64_t min_rows() const { return min_rows_; }
  [[nodiscard]] int64_t max_rows() const { return max_rows_; }
  [[nodiscard]] const std::string& info() const { return info_; }

  // Runs `batch` on `instance` (from that instance's thread only).
  Status execute(int32_t instance, Batch& batch);

 private:
  Backend() = default;
  Status read_signature(int32_t outputs, std::vector<TensorSig>* out, bool* any) const;

  const irb_backend* table_ = nullptr;
  std::vector<void*> states_;
  std::vector<TensorSig> inputs_, outputs_;
  bool any_inputs_ = false, any_outputs_ = false;
  int64_t min_rows_ = 1, max_rows_ = INT64_MAX;
  std::string info_;
  std::string name_;
};

// Built-in backends (the factory table).
const irb_backend* builtin_identity_backend();
const irb_backend* builtin_onnxruntime_backend();
const irb_backend* builtin_rules_backend();

}  // namespace ir
