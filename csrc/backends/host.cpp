// The host table every backend is given: errors, logs, and the output sink of a batch.
#include "host.hpp"

#include <cstdio>
#include <new>

#include "../engine/batch.hpp"
#include "../engine/buffer.hpp"

static_assert(sizeof(irb_tensor) == sizeof(ir::TensorRef), "irb_tensor and TensorRef share a layout");

namespace ir {

namespace {

Batch& batch_of(irb_sink* sink) { return *reinterpret_cast<Batch*>(sink); }

// Host functions never let an exception out: the caller is a backend, maybe a plugin.
template <typename Body>
irb_error* guarded(Body&& body) noexcept {
  try {
    Status s = body();
    return s.ok() ? nullptr : make_backend_error(s.code(), s.message().c_str());
  } catch (const std::bad_alloc&) {
    return make_backend_error(IR_ERROR_RESOURCE_EXHAUSTED, "out of memory");
  } catch (...) {
    return make_backend_error(IR_ERROR_INTERNAL, "internal error in the host");
  }
}

irb_error* host_error_new(int32_t code, const char* message) { return make_backend_error(code, message); }

void host_log(int32_t level, const char* backend, const char* message) {
  static const char* const kLevels[] = {"debug", "info", "warning", "error"};
  if (level < IRB_LOG_WARNING) return;  // the host's logs are structured; backends' chatter is not
  std::fprintf(stderr, "infer-runtime backend %s [%s]: %s\n", backend != nullptr ? backend : "?", kLevels[level > 3 ? 3 : level], message != nullptr ? message : "");
}

irb_error* host_output_alloc(irb_sink* sink, const char* name, int32_t dtype, int32_t ndim, const int64_t* shape, uint64_t bytes, void** data) {
  return guarded([&] {
    if (sink == nullptr || data == nullptr) return Status(IR_ERROR_INVALID_ARGUMENT, "sink or data is NULL");
    return batch_of(sink).alloc_output(name, dtype, ndim, shape, bytes, data);
  });
}

irb_error* host_output_copy(irb_sink* sink, const irb_tensor* tensor) {
  return guarded([&] {
    if (sink == nullptr || tensor == nullptr) return Status(IR_ERROR_INVALID_ARGUMENT, "sink or tensor is NULL");
    return batch_of(sink).add_output(*reinterpret_cast<const TensorRef*>(tensor), nullptr);
  });
}

irb_error* host_output_adopt(irb_sink* sink, const irb_tensor* tensor, irb_release_fn release, void* owner) {
  if (release == nullptr) return make_backend_error(IR_ERROR_INVALID_ARGUMENT, "output_adopt needs a release function");
  std::shared_ptr<Buffer> held;
  try {
    held = Buffer::Adopt(const_cast<void*>(tensor != nullptr ? tensor->data : nullptr), tensor != nullptr ? tensor->byte_size : 0, release, owner);
  } catch (...) {
    return make_backend_error(IR_ERROR_RESOURCE_EXHAUSTED, "out of memory");  // Adopt released owner
  }
  return guarded([&] {
    if (sink == nullptr || tensor == nullptr) return Status(IR_ERROR_INVALID_ARGUMENT, "sink or tensor is NULL");
    return batch_of(sink).add_output(*reinterpret_cast<const TensorRef*>(tensor), std::move(held));
  });
}

void host_request_fail(irb_sink* sink, int32_t request, irb_error* error) {
  Status status = take_backend_error(error);
  if (status.ok()) status = Status(IR_ERROR_BACKEND, "the backend failed this request");
  try {
    if (sink != nullptr) batch_of(sink).fail_request(request, std::move(status));
  } catch (...) {
  }
}

irb_error out_of_memory_error{IR_ERROR_RESOURCE_EXHAUSTED, std::string()};  // when even an error cannot be allocated

const irb_host kHost = {
    sizeof(irb_host), IRB_ABI_VERSION, &host_error_new, &host_log, &host_output_alloc, &host_output_copy, &host_output_adopt, &host_request_fail,
};

}  // namespace

const irb_host* backend_host() { return &kHost; }

irb_error* make_backend_error(int32_t code, const char* message) {
  const ir_code checked = code >= IR_ERROR_UNKNOWN && code <= IR_ERROR_BACKEND ? static_cast<ir_code>(code) : IR_ERROR_UNKNOWN;
  auto* error = new (std::nothrow) irb_error{checked, std::string()};
  if (error == nullptr) return &out_of_memory_error;  // never freed: take_backend_error recognises it
  try {
    error->message = message != nullptr ? message : "";
  } catch (...) {
  }
  return error;
}

Status take_backend_error(irb_error* error) {
  if (error == nullptr) return Status::Ok();
  if (error == &out_of_memory_error) return Status(IR_ERROR_RESOURCE_EXHAUSTED, "out of memory");
  Status status(error->code, std::move(error->message));
  delete error;
  return status;
}

}  // namespace ir
