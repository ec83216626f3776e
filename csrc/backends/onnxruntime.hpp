// The native ONNX Runtime backend: sessions run on the engine's instance threads through
// the ONNX Runtime C API of a shared library loaded at run time (the one the onnxruntime
// wheel ships), so a batch never needs the Python interpreter.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "native_backend.hpp"

namespace ir {

struct OnnxRuntimeOptions {
  std::string library;     // path of libonnxruntime
  std::string model_path;
  int32_t instances = 1;   // one session each
  int32_t intra_op_threads = 1;
  int32_t inter_op_threads = 1;
  int32_t graph_optimization_level = 99;  // 0, 1, 2 or 99, as ONNX Runtime numbers them
  bool parallel_execution = false;
};

// Loads the library (once per path, for the life of the process), opens the sessions and
// reads the model's signature. Errors: NOT_FOUND (library or model file missing),
// UNAVAILABLE (the library cannot be used), INVALID_ARGUMENT (the model cannot be loaded
// or has tensors the engine cannot carry).
Status open_onnxruntime(const OnnxRuntimeOptions& options, std::unique_ptr<NativeBackend>* out);

}  // namespace ir
