// The ABI's opaque handles and the engine objects behind them: typed casts in one place.
#pragma once

#include <memory>
#include <vector>

#include "../backends/backend.hpp"
#include "../engine/batch.hpp"
#include "../engine/engine.hpp"
#include "../engine/model.hpp"
#include "../engine/pipeline.hpp"
#include "infer_runtime.h"

// A handle on one model: a reference that keeps it alive (ir_model_release drops it).
struct ir_model {
  std::shared_ptr<ir::Model> model;
};

// A handle on one pipeline (ir_pipeline_release drops it).
struct ir_pipeline {
  std::shared_ptr<ir::Pipeline> pipeline;
};

// An opened backend no model has taken yet.
struct ir_backend {
  std::unique_ptr<ir::Backend> impl;
};

// One request's outputs: a range of rows of a shared batch result. One small allocation per
// request; no copy of output data.
struct ir_response {
  std::shared_ptr<const ir::BatchResult> result;
  int64_t row_offset = 0;
  int64_t rows = 0;
  std::vector<std::vector<int64_t>> shapes;  // per-request shapes, built on first describe
};

namespace ir::abi {

inline Engine* engine_of(ir_engine* e) { return reinterpret_cast<Engine*>(e); }
inline const Engine* engine_of(const ir_engine* e) { return reinterpret_cast<const Engine*>(e); }
inline ir_engine* handle_of(Engine* e) { return reinterpret_cast<ir_engine*>(e); }
inline Batch* batch_of(ir_batch* b) { return reinterpret_cast<Batch*>(b); }
inline const Batch* batch_of(const ir_batch* b) { return reinterpret_cast<const Batch*>(b); }
inline ir_batch* handle_of(Batch* b) { return reinterpret_cast<ir_batch*>(b); }
inline const TensorRef* refs_of(const ir_tensor* t) { return reinterpret_cast<const TensorRef*>(t); }

}  // namespace ir::abi
