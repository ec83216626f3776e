#include "batch.hpp"

#include <algorithm>
#include <cstring>

#include "dtype.hpp"

namespace ir {

Status Batch::check_output(const TensorRef& t, uint64_t elements) const {
  const std::string label = t.name;
  if (batching && (t.ndim < 1 || t.shape[0] != rows))
    return Status(IR_ERROR_BACKEND, "output '" + label + "' has shape " + shape_text(t.shape, t.ndim) + " but the batch has " + std::to_string(rows) + " rows");
  for (const BatchOutput& existing : outputs) {
    if (existing.name == label) return Status(IR_ERROR_BACKEND, "output '" + label + "' set twice");
  }
  if (declared == nullptr) return Status::Ok();
  auto it = std::find_if(declared->begin(), declared->end(), [&](const TensorSig& s) { return s.name == label; });
  if (it == declared->end()) {
    std::string names;
    for (const TensorSig& s : *declared) names += (names.empty() ? "'" : ", '") + s.name + "'";
    return Status(IR_ERROR_BACKEND, "output '" + label + "' is not one the model declares (" + names + ")");
  }
  if (it->dtype != t.dtype)
    return Status(IR_ERROR_BACKEND, "output '" + label + "' has dtype " + dtype_name(t.dtype) + ", the model declares " + dtype_name(it->dtype));
  bool ok = static_cast<size_t>(t.ndim) == it->shape.size();
  for (int32_t d = batching ? 1 : 0; ok && d < t.ndim; ++d) ok = it->shape[static_cast<size_t>(d)] == -1 || it->shape[static_cast<size_t>(d)] == t.shape[d];
  if (!ok) return Status(IR_ERROR_BACKEND, "output '" + label + "' has shape " + shape_text(t.shape, t.ndim) + ", the model declares " + shape_text(it->shape));
  (void)elements;
  return Status::Ok();
}

Status Batch::add_output(const TensorRef& t, std::shared_ptr<Buffer> owner) {
  if (t.name == nullptr || *t.name == '\0') return Status(IR_ERROR_BACKEND, "output needs a name");
  uint64_t elements = 0;
  std::string problem;
  if (!describe_tensor(t, &elements, &problem)) return Status(IR_ERROR_BACKEND, "output '" + std::string(t.name) + "': " + problem);
  IR_RETURN_IF_ERROR(check_output(t, elements));
  BatchOutput out;
  out.name = t.name;
  out.dtype = t.dtype;
  out.shape.assign(t.shape, t.shape + t.ndim);
  if (is_bytes(t.dtype) && batching) {
    // Row boundaries are found once here, so each request's rows are sliced without a scan.
    const uint64_t per_row = rows > 0 ? elements / static_cast<uint64_t>(rows) : 0;
    if (per_row == 0) {
      out.row_starts.assign(static_cast<size_t>(rows) + 1, 0);
    } else {
      out.row_starts.reserve(static_cast<size_t>(rows) + 1);
      parse_bytes(static_cast<const uint8_t*>(t.data), t.byte_size, elements, per_row, &out.row_starts);
    }
  }
  if (owner != nullptr && owner->data() == t.data && owner->size() >= t.byte_size) {
    out.buffer = std::move(owner);
  } else {
    out.buffer = Buffer::Allocate(t.byte_size);
    if (t.byte_size > 0) std::memcpy(out.buffer->data(), t.data, t.byte_size);
  }
  outputs.push_back(std::move(out));
  return Status::Ok();
}

Status Batch::alloc_output(const char* name, int32_t dtype, int32_t ndim, const int64_t* shape, uint64_t bytes, void** data) {
  if (name == nullptr || *name == '\0') return Status(IR_ERROR_BACKEND, "output needs a name");
  uint64_t elements = 0;
  std::string problem;
  if (!dtype_valid(dtype)) return Status(IR_ERROR_BACKEND, "output '" + std::string(name) + "': unsupported dtype " + std::to_string(dtype));
  if (!shape_elements(shape, ndim, &elements, &problem)) return Status(IR_ERROR_BACKEND, "output '" + std::string(name) + "': " + problem);
  // BYTES content is not there yet: its length prefixes are checked once the backend returns.
  if (!is_bytes(dtype) && elements * dtype_size(dtype) != bytes) return Status(IR_ERROR_BACKEND, "output '" + std::string(name) + "': byte_size does not match shape and dtype");
  auto buffer = Buffer::Allocate(bytes);
  TensorRef t{name, dtype, ndim, shape, buffer->data(), bytes};
  IR_RETURN_IF_ERROR(check_output(t, elements));
  if (is_bytes(dtype)) unparsed_.push_back(outputs.size());
  BatchOutput out;
  out.name = name;
  out.dtype = dtype;
  out.shape.assign(shape, shape + ndim);
  out.buffer = std::move(buffer);
  *data = out.buffer->data();
  outputs.push_back(std::move(out));
  return Status::Ok();
}

void Batch::fail_request(int32_t index, Status error) {
  if (index < 0 || index >= static_cast<int32_t>(requests.size())) return;
  for (auto& f : failed) {
    if (f.first == index) return;  // the first failure of a request stands
  }
  failed.emplace_back(index, std::move(error));
}

Status Batch::check_complete() {
  // BYTES outputs written into allocated memory: now that they hold their elements, check the
  // length prefixes and find the rows.
  for (size_t index : unparsed_) {
    BatchOutput& o = outputs[index];
    uint64_t elements = 1;
    for (int64_t d : o.shape) elements *= static_cast<uint64_t>(d);
    const uint64_t per_row = batching && rows > 0 ? elements / static_cast<uint64_t>(rows) : 0;
    o.row_starts.clear();
    bool ok = parse_bytes(o.buffer->data(), o.buffer->size(), elements, per_row, batching ? &o.row_starts : nullptr);
    if (batching && per_row == 0) o.row_starts.assign(static_cast<size_t>(rows) + 1, 0);
    if (!ok) return Status(IR_ERROR_BACKEND, "output '" + o.name + "': BYTES data does not hold " + std::to_string(elements) + " length-prefixed elements");
  }
  unparsed_.clear();
  if (declared == nullptr) return Status::Ok();
  for (const TensorSig& s : *declared) {
    bool found = std::any_of(outputs.begin(), outputs.end(), [&](const BatchOutput& o) { return o.name == s.name; });
    if (!found) return Status(IR_ERROR_BACKEND, "the backend did not set output '" + s.name + "'");
  }
  return Status::Ok();
}

void Batch::complete_into(const Status& error, int64_t done_ns, std::vector<Completion>* out) {
  (void)done_ns;
  out->reserve(out->size() + requests.size());
  if (!error.ok()) {
    for (Request* r : requests) out->push_back(Completion{r->cookie, nullptr, error, 0, r->rows, rows});
    outputs.clear();
    return;
  }
  auto result = std::make_shared<BatchResult>();
  result->outputs = std::move(outputs);
  outputs.clear();
  result->rows = rows;
  result->sliced = batching;
  int64_t row = 0;
  for (size_t k = 0; k < requests.size(); ++k) {
    Request* r = requests[k];
    auto failure = std::find_if(failed.begin(), failed.end(), [k](const auto& f) { return f.first == static_cast<int32_t>(k); });
    if (failure != failed.end()) {
      out->push_back(Completion{r->cookie, nullptr, failure->second, row, r->rows, rows});
    } else {
      out->push_back(Completion{r->cookie, result, Status::Ok(), row, r->rows, rows});
    }
    row += r->rows;
  }
}

void Batch::clear() {
  unparsed_.clear();
  requests.clear();
  request_rows.clear();
  outputs.clear();
  failed.clear();
  rows = 0;
  reason = DispatchReason::kNone;
}

}  // namespace ir
