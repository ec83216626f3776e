// The HTTP front end behind the C ABI.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "../server/http_front.hpp"
#include "../server/http_head.hpp"
#include "../server/v2_fast.hpp"
#include "handles.hpp"
#include "seam.hpp"

struct ir_http {
  std::unique_ptr<ir::http::HttpFront> front;
  std::mutex poll_mu;
  std::vector<ir::http::Event> polled;  // what the last ir_http_poll lent out
};

IR_API ir_error* ir_http_create(ir_engine* engine, const ir_http_options* options, ir_http** out) {
  return ir::abi::guard([&]() -> ir::Status {
    if (engine == nullptr || options == nullptr || out == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "engine, options or out is NULL");
    if (options->max_request_bytes <= 0 || options->read_timeout_ms <= 0 || options->keepalive_timeout_ms < 0)
      return ir::Status(IR_ERROR_INVALID_ARGUMENT, "max_request_bytes and read_timeout_ms must be > 0, keepalive_timeout_ms >= 0");
    ir::http::FrontOptions o;
    o.max_request_bytes = options->max_request_bytes;
    constexpr int64_t kLongest = int64_t{1} << 40;  // ms (35 years): no overflow in ns
    o.read_timeout_ns = std::min(options->read_timeout_ms, kLongest) * 1000000;
    o.keepalive_timeout_ns = std::min(options->keepalive_timeout_ms, kLongest) * 1000000;
    auto handle = std::make_unique<ir_http>();
    IR_RETURN_IF_ERROR(ir::http::HttpFront::Create(o, &handle->front));
    *out = handle.release();
    return ir::Status::Ok();
  });
}

IR_API void ir_http_destroy(ir_http* http) { delete http; }

IR_API ir_error* ir_http_route(ir_http* http, const char* name, const char* version, ir_model* model) {
  return ir::abi::guard([&]() -> ir::Status {
    if (http == nullptr || name == nullptr || version == nullptr || model == nullptr) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "http, name, version or model is NULL");
    http->front->route(name, version, model->model);
    return ir::Status::Ok();
  });
}

IR_API void ir_http_unroute(ir_http* http, const char* name) {
  if (http == nullptr || name == nullptr) return;
  try {
    http->front->unroute(name);
  } catch (...) {  // allocation of the key: the route stays; nothing else can fail
  }
}

IR_API void ir_http_set_admitting(ir_http* http, int admitting) {
  if (http != nullptr) http->front->set_admitting(admitting != 0);
}

IR_API ir_error* ir_http_adopt(ir_http* http, int fd) {
  return ir::abi::guard([&]() -> ir::Status {
    if (http == nullptr || fd < 0) return ir::Status(IR_ERROR_INVALID_ARGUMENT, "http is NULL or fd is negative");
    return http->front->adopt(fd);
  });
}

IR_API int ir_http_event_fd(const ir_http* http) { return http == nullptr ? -1 : http->front->event_fd(); }

IR_API int32_t ir_http_poll(ir_http* http, ir_http_event* out, int32_t capacity) {
  if (http == nullptr || out == nullptr || capacity <= 0) return 0;
  std::lock_guard<std::mutex> lock(http->poll_mu);
  try {
    http->front->poll(&http->polled, static_cast<size_t>(capacity));
  } catch (...) {
    return 0;
  }
  const auto n = static_cast<int32_t>(http->polled.size());
  for (int32_t i = 0; i < n; ++i) {
    const ir::http::Event& e = http->polled[static_cast<size_t>(i)];
    out[i].kind = static_cast<int32_t>(e.kind);
    out[i].fd = e.fd;
    out[i].status = e.status;
    out[i].model = e.model.c_str();
    out[i].request_id = e.request_id.c_str();
    out[i].data = e.data.c_str();
    out[i].size = e.data.size();
  }
  return n;
}

IR_API int64_t ir_http_last_inference_ms(ir_http* http, const char* name) {
  if (http == nullptr || name == nullptr) return 0;
  try {
    return http->front->last_answer_ms(name);
  } catch (...) {
    return 0;
  }
}

IR_API uint64_t ir_http_served(const ir_http* http) { return http == nullptr ? 0 : http->front->served(); }
IR_API uint64_t ir_http_handed_off(const ir_http* http) { return http == nullptr ? 0 : http->front->handed_off(); }

IR_API int32_t ir_selftest_http_head(const char* data, size_t size, uint64_t* head_size, int64_t* content_length, int64_t* header_length) {
  if (data == nullptr && size > 0) return 2;
  ir::http::Head head;
  switch (ir::http::parse_head(data, size, &head)) {
    case ir::http::HeadResult::kIncomplete: return 0;
    case ir::http::HeadResult::kDecline: return 2;
    case ir::http::HeadResult::kComplete: break;
  }
  if (head_size != nullptr) *head_size = head.size;
  if (content_length != nullptr) *content_length = head.content_length;
  if (header_length != nullptr) *header_length = head.inference_header_length;
  return 1;
}

namespace {

// The test hooks' text transforms: `transform` of the input, copied out when it fits; its
// length (0 when it could not be made).
template <typename Transform>
size_t selftest_text(const char* data, size_t size, char* out, size_t capacity, Transform transform) {
  std::string text;
  try {
    text = transform(std::string_view(data, size));
  } catch (...) {
    return 0;
  }
  if (out != nullptr && text.size() <= capacity) std::memcpy(out, text.data(), text.size());
  return text.size();
}

}  // namespace

IR_API size_t ir_selftest_utf8_replace(const char* data, size_t size, char* out, size_t capacity) {
  return selftest_text(data, size, out, capacity, [](std::string_view in) {
    std::string text;
    ir::http::append_utf8_replacing(reinterpret_cast<const uint8_t*>(in.data()), in.size(), &text);
    return text;
  });
}

IR_API size_t ir_selftest_redact(const char* data, size_t size, char* out, size_t capacity) {
  return selftest_text(data, size, out, capacity, [](std::string_view in) { return ir::http::redact_paths(in); });
}
