// Conversions the ABI seams share: declared signatures in, counters out.
#pragma once

#include <string>
#include <vector>

#include "../engine/stats.hpp"
#include "../engine/status.hpp"
#include "../engine/tensor.hpp"
#include "infer_runtime.h"

namespace ir::abi {

// Reads `n` signature descriptors (data unused); `what` names them in errors.
Status read_tensors(const ir_tensor* tensors, int32_t n, const char* what, std::vector<TensorSig>* out);

// A snapshot of a model's (or a pipeline's) counters; struct_size and the fields counters do
// not hold (unhealthy_instances) are left to the caller.
void fill_stats(const ModelStats& s, ir_model_stats* out);

}  // namespace ir::abi
