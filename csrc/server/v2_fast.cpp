#include "v2_fast.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "../common/json.hpp"
#include "../engine/dtype.hpp"

namespace ir::http {

namespace {

constexpr size_t kMaxName = 256;
constexpr int64_t kMaxTimeoutUs = 1000000000000;  // above this a timeout means "the default" (as Python)

// A name Python's check_name would take, restricted further to printable ASCII (the fast
// path does not judge what Python would say of the rest).
bool plain_name(const std::string& s) {
  if (s.empty() || s.size() > kMaxName) return false;
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// Writes one JSON number into `dst` as `dtype`, exactly as numpy.asarray(data, dtype) would
// convert it; false for anything numpy would refuse, round or convert surprisingly.
bool put_number(const json::Value& v, int32_t dtype, uint8_t* dst) {
  if (!v.is_number()) return false;
  switch (dtype) {
    case IR_DTYPE_FLOAT32: {
      const double d = v.as_number();
      const auto f = static_cast<float>(d);
      if (!std::isfinite(f)) return false;  // overflow: numpy warns and stores inf
      std::memcpy(dst, &f, sizeof f);
      return true;
    }
    case IR_DTYPE_FLOAT64: {
      const double d = v.as_number();
      std::memcpy(dst, &d, sizeof d);
      return true;
    }
    default:
      break;
  }
  if (!v.is_int_token()) return false;  // numpy truncates a float into an integer array
  const int64_t x = v.int_token();
  auto put = [&](auto typed) {
    using T = decltype(typed);
    if (x < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
        (x > 0 && static_cast<uint64_t>(x) > static_cast<uint64_t>(std::numeric_limits<T>::max())))
      return false;
    const T t = static_cast<T>(x);
    std::memcpy(dst, &t, sizeof t);
    return true;
  };
  switch (dtype) {
    case IR_DTYPE_INT8: return put(int8_t{});
    case IR_DTYPE_INT16: return put(int16_t{});
    case IR_DTYPE_INT32: return put(int32_t{});
    case IR_DTYPE_INT64: return put(int64_t{});
    case IR_DTYPE_UINT8: return put(uint8_t{});
    case IR_DTYPE_UINT16: return put(uint16_t{});
    case IR_DTYPE_UINT32: return put(uint32_t{});
    case IR_DTYPE_UINT64: return put(uint64_t{});
    default: return false;  // BOOL, FP16, BYTES: Python converts those
  }
}

// Flattens JSON tensor data that is either flat or nested exactly as `shape`.
bool flatten(const json::Value& data, const std::vector<int64_t>& shape, uint64_t elements, int32_t dtype, std::vector<uint8_t>* out) {
  const size_t width = dtype_size(dtype);
  out->resize(static_cast<size_t>(elements) * width);
  if (!data.is_array()) return false;
  const bool flat = data.items().empty() || !data.items().front().is_array();
  if (flat) {  // flat (or a rank-1 tensor)
    if (data.items().size() != elements) return false;
    uint8_t* dst = out->data();
    for (const json::Value& v : data.items()) {
      if (!put_number(v, dtype, dst)) return false;
      dst += width;
    }
    return true;
  }
  size_t written = 0;
  // Nested: each level must have exactly its dimension's length.
  struct Walk {
    const std::vector<int64_t>& shape;
    int32_t dtype;
    size_t width;
    uint8_t* base;
    size_t* written;
    bool go(const json::Value& v, size_t depth) {
      if (depth == shape.size()) {
        if (!put_number(v, dtype, base + *written * width)) return false;
        ++*written;
        return true;
      }
      if (!v.is_array() || v.items().size() != static_cast<size_t>(shape[depth])) return false;
      for (const json::Value& item : v.items()) {
        if (!go(item, depth + 1)) return false;
      }
      return true;
    }
  } walk{shape, dtype, width, out->data(), &written};
  return shape.size() > 1 && walk.go(data, 0) && written == elements;
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

void append_int(int64_t v, std::string* out) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, res.ptr);
}

void append_uint(uint64_t v, std::string* out) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, res.ptr);
}

// The JSON data of a BYTES output: each length-prefixed element as a string, invalid UTF-8
// replaced as Python's bytes.decode("utf-8", "replace") does.
void append_bytes_data(const uint8_t* p, uint64_t size, uint64_t elements, std::string* out) {
  out->push_back('[');
  uint64_t offset = 0;
  std::string text;
  for (uint64_t i = 0; i < elements && size - offset >= 4; ++i) {
    const uint32_t length = static_cast<uint32_t>(p[offset]) | (static_cast<uint32_t>(p[offset + 1]) << 8) | (static_cast<uint32_t>(p[offset + 2]) << 16) |
                            (static_cast<uint32_t>(p[offset + 3]) << 24);
    offset += 4;
    const uint64_t take = length <= size - offset ? length : size - offset;
    text.clear();
    append_utf8_replacing(p + offset, static_cast<size_t>(take), &text);
    offset += take;
    if (i) out->push_back(',');
    json::dump_string(text, out);
  }
  out->push_back(']');
}

// Whether a float output's elements are all finite (other types: true).
bool all_finite(int32_t dtype, const uint8_t* p, uint64_t elements) {
  for (uint64_t i = 0; i < elements; ++i) {
    if (dtype == IR_DTYPE_FLOAT32) {
      float f;
      std::memcpy(&f, p + 4 * i, 4);
      if (!std::isfinite(f)) return false;
    } else if (dtype == IR_DTYPE_FLOAT64) {
      double d;
      std::memcpy(&d, p + 8 * i, 8);
      if (!std::isfinite(d)) return false;
    } else if (dtype == IR_DTYPE_FLOAT16) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      if ((h & 0x7c00u) == 0x7c00u) return false;
    } else {
      return true;
    }
  }
  return true;
}

// The JSON data of one output: its elements in C order. `wide`: FP32 and FP16 as the
// shortest double text of their value, as Python's json writes them (the form its server
// falls back to when an output holds NaN or an infinity, which orjson cannot write).
void append_data(int32_t dtype, const uint8_t* p, uint64_t elements, bool wide, std::string* out) {
  out->push_back('[');
  const size_t width = dtype_size(dtype);
  for (uint64_t i = 0; i < elements; ++i, p += width) {
    if (i) out->push_back(',');
    switch (dtype) {
      case IR_DTYPE_BOOL: out->append(*p ? "true" : "false"); break;
      case IR_DTYPE_FLOAT32: {
        float f;
        std::memcpy(&f, p, 4);
        if (wide) append_double(f, out);
        else append_float(f, out);
        break;
      }
      case IR_DTYPE_FLOAT64: { double d; std::memcpy(&d, p, 8); append_double(d, out); break; }
      case IR_DTYPE_FLOAT16: {
        uint16_t h;
        std::memcpy(&h, p, 2);
        if (wide) append_double(half_to_double(h), out);
        else append_float(static_cast<float>(half_to_double(h)), out);
        break;
      }
      case IR_DTYPE_INT8: append_int(static_cast<int8_t>(*p), out); break;
      case IR_DTYPE_UINT8: append_uint(*p, out); break;
      case IR_DTYPE_INT16: { int16_t v; std::memcpy(&v, p, 2); append_int(v, out); break; }
      case IR_DTYPE_UINT16: { uint16_t v; std::memcpy(&v, p, 2); append_uint(v, out); break; }
      case IR_DTYPE_INT32: { int32_t v; std::memcpy(&v, p, 4); append_int(v, out); break; }
      case IR_DTYPE_UINT32: { uint32_t v; std::memcpy(&v, p, 4); append_uint(v, out); break; }
      case IR_DTYPE_INT64: { int64_t v; std::memcpy(&v, p, 8); append_int(v, out); break; }
      case IR_DTYPE_UINT64: { uint64_t v; std::memcpy(&v, p, 8); append_uint(v, out); break; }
      default: out->append("null"); break;  // unreachable: BYTES has append_bytes_data
    }
  }
  out->push_back(']');
}

template <typename T>
void append_real(T v, std::string* out) {
  if (std::isnan(v)) {
    out->append("NaN");
    return;
  }
  if (std::isinf(v)) {
    out->append(v > 0 ? "Infinity" : "-Infinity");
    return;
  }
  char buf[48];
  auto res = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip digits
  const size_t start = out->size();
  out->append(buf, res.ptr);
  if (out->find_first_of(".e", start) == std::string::npos) out->append(".0");  // a float, as Python writes it
}

void append_head(int status, std::string_view content_type, uint64_t body_size, int64_t header_size, bool closing, std::string* out) {
  out->append("HTTP/1.1 ");
  append_int(status, out);
  out->push_back(' ');
  out->append(reason(status));
  out->append("\r\nContent-Type: ");
  out->append(content_type);
  out->append("\r\nContent-Length: ");
  append_uint(body_size, out);
  if (header_size >= 0) {
    out->append("\r\nInference-Header-Content-Length: ");
    append_int(header_size, out);
  }
  if (closing) out->append("\r\nConnection: close");
  out->append("\r\n\r\n");
}

}  // namespace

void append_float(float v, std::string* out) { append_real(v, out); }

std::string redact_paths(std::string_view message) {
  // Python's: (?<![\w.:/])(?:/SEG)+/(SEG) -> the last SEG, SEG = [^\s/'"():,;]+ (ASCII here;
  // bytes of multi-byte UTF-8 count as SEG and as \w).
  auto space = [](unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f); };
  auto seg = [&](unsigned char c) { return !space(c) && std::strchr("/'\"():,;", c) == nullptr; };
  auto before_ok = [](unsigned char c) {
    const bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
    return !word && c != '.' && c != ':' && c != '/';
  };
  std::string out;
  out.reserve(message.size());
  size_t i = 0;
  while (i < message.size()) {
    if (message[i] == '/' && (i == 0 || before_ok(static_cast<unsigned char>(message[i - 1])))) {
      // Segments "/seg" back to back from i; the last one's text replaces them all.
      size_t j = i, segments = 0, last = i;
      while (j < message.size() && message[j] == '/' && j + 1 < message.size() && seg(static_cast<unsigned char>(message[j + 1]))) {
        last = j + 1;
        j = last;
        while (j < message.size() && seg(static_cast<unsigned char>(message[j]))) ++j;
        ++segments;
      }
      if (segments >= 2) {
        out.append(message.substr(last, j - last));
        i = j;
        continue;
      }
    }
    out.push_back(message[i]);
    ++i;
  }
  return out;
}
void append_double(double v, std::string* out) { append_real(v, out); }

bool model_fast(const ModelConfig& config) {
  if (!config.fixed_signature) return false;
  for (const TensorSig& s : config.inputs) {
    if (is_bytes(s.dtype)) return false;
  }
  return true;
}

void append_utf8_replacing(const uint8_t* p, size_t n, std::string* out) {
  static const char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD
  size_t i = 0;
  while (i < n) {
    const uint8_t lead = p[i];
    if (lead < 0x80) {
      out->push_back(static_cast<char>(lead));
      ++i;
      continue;
    }
    // The sequence's length and the range of its second byte (the first continuation byte
    // is narrowed for E0, ED, F0 and F4: no overlong forms, surrogates or code points past
    // U+10FFFF); the others are 80..BF.
    size_t length = 0;
    uint8_t low = 0x80, high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) length = 2;
    else if (lead == 0xE0) length = 3, low = 0xA0;
    else if (lead == 0xED) length = 3, high = 0x9F;
    else if (lead >= 0xE1 && lead <= 0xEF) length = 3;
    else if (lead == 0xF0) length = 4, low = 0x90;
    else if (lead == 0xF4) length = 4, high = 0x8F;
    else if (lead >= 0xF1 && lead <= 0xF3) length = 4;
    if (length == 0) {  // never a lead byte: replaced alone
      out->append(kReplacement, 3);
      ++i;
      continue;
    }
    size_t k = 1;
    for (; k < length && i + k < n; ++k) {
      const uint8_t b = p[i + k];
      const uint8_t lo = k == 1 ? low : 0x80;
      const uint8_t hi = k == 1 ? high : 0xBF;
      if (b < lo || b > hi) break;
    }
    if (k == length) {
      out->append(reinterpret_cast<const char*>(p + i), length);
    } else {  // the maximal valid prefix of a sequence is one replacement (as Python decodes)
      out->append(kReplacement, 3);
    }
    i += k;
  }
}

void DecodedRequest::clear() {
  has_id = false;
  id.clear();
  priority = 0;
  timeout_us = 0;
  binary_default = false;
  all_outputs = true;
  wanted.clear();
  refs.clear();
}

bool decode(const ModelConfig& config, std::string_view header, const uint8_t* binary, uint64_t binary_size, DecodedRequest* out) {
  out->clear();
  json::Value root;
  if (!json::parse(header, &root).ok() || !root.is_object()) return false;
  const json::Value* inputs = nullptr;
  const json::Value* outputs = nullptr;
  for (const auto& [key, value] : root.members()) {
    if (key == "id") {
      if (!value.is_string()) return false;
      if (!value.as_string().empty() && !plain_name(value.as_string())) return false;
      out->has_id = true;
      out->id = value.as_string();
    } else if (key == "inputs") {
      inputs = &value;
    } else if (key == "outputs") {
      outputs = &value;
    } else if (key == "parameters") {
      if (!value.is_object()) return false;
      for (const auto& [pkey, pvalue] : value.members()) {
        if (pkey == "binary_data_output") {
          if (!pvalue.is_bool()) return false;
          out->binary_default = pvalue.as_bool();
        } else if (pkey == "priority") {
          if (!pvalue.is_int_token() || pvalue.int_token() < 0 || pvalue.int_token() >= config.policy.priority_levels) return false;
          out->priority = static_cast<int32_t>(pvalue.int_token());
        } else if (pkey == "timeout") {
          if (!pvalue.is_int_token() || pvalue.int_token() < 0) return false;
          const int64_t t = pvalue.int_token();
          out->timeout_us = t > kMaxTimeoutUs ? 0 : t;  // 0 keeps the default; the engine only ever shortens it
        } else {
          return false;
        }
      }
    } else {
      return false;
    }
  }
  const size_t n = config.inputs.size();
  if (inputs == nullptr || !inputs->is_array() || inputs->items().size() != n) return false;
  out->refs.assign(n, TensorRef{nullptr, 0, 0, nullptr, nullptr, 0});
  if (out->shapes.size() < n) out->shapes.resize(n);
  if (out->json_data.size() < n) out->json_data.resize(n);
  uint64_t offset = 0;
  for (const json::Value& entry : inputs->items()) {
    if (!entry.is_object()) return false;
    const json::Value* name = nullptr;
    const json::Value* datatype = nullptr;
    const json::Value* shape = nullptr;
    const json::Value* data = nullptr;
    const json::Value* size = nullptr;
    for (const auto& [key, value] : entry.members()) {
      if (key == "name") name = &value;
      else if (key == "datatype") datatype = &value;
      else if (key == "shape") shape = &value;
      else if (key == "data") data = &value;
      else if (key == "parameters") {
        if (!value.is_object()) return false;
        for (const auto& [pkey, pvalue] : value.members()) {
          if (pkey != "binary_data_size") return false;
          size = &pvalue;
        }
      } else {
        return false;
      }
    }
    if (name == nullptr || !name->is_string() || datatype == nullptr || !datatype->is_string() || shape == nullptr || !shape->is_array()) return false;
    size_t slot = n;
    for (size_t i = 0; i < n; ++i) {
      if (config.inputs[i].name == name->as_string()) slot = i;
    }
    if (slot == n || out->refs[slot].name != nullptr) return false;  // unknown, or twice
    const int32_t dtype = v2_dtype(datatype->as_string());
    if (dtype == 0 || is_bytes(dtype) || dtype != config.inputs[slot].dtype) return false;
    std::vector<int64_t>& dims = out->shapes[slot];
    dims.clear();
    if (shape->items().size() > 32) return false;
    for (const json::Value& d : shape->items()) {
      if (!d.is_int_token() || d.int_token() < 0) return false;
      dims.push_back(d.int_token());
    }
    uint64_t elements = 0;
    std::string problem;
    if (!shape_elements(dims.data(), static_cast<int32_t>(dims.size()), &elements, &problem)) return false;
    TensorRef& ref = out->refs[slot];
    ref.name = config.inputs[slot].name.c_str();
    ref.dtype = dtype;
    ref.ndim = static_cast<int32_t>(dims.size());
    ref.shape = dims.data();
    const uint64_t bytes = elements * dtype_size(dtype);
    if (size != nullptr) {
      if (data != nullptr || !size->is_int_token() || size->int_token() < 0) return false;
      const auto declared = static_cast<uint64_t>(size->int_token());
      if (declared != bytes || declared > binary_size - offset) return false;
      ref.data = binary + offset;
      ref.byte_size = bytes;
      offset += bytes;
    } else {
      if (data == nullptr) return false;
      std::vector<uint8_t>& buffer = out->json_data[slot];
      if (!flatten(*data, dims, elements, dtype, &buffer)) return false;
      ref.data = buffer.data();
      ref.byte_size = bytes;
    }
  }
  if (offset != binary_size) return false;  // binary data no input claims
  if (outputs != nullptr) {
    if (!outputs->is_array()) return false;
    out->all_outputs = false;
    for (const json::Value& entry : outputs->items()) {
      if (!entry.is_object()) return false;
      WantedOutput want;
      bool named = false;
      bool binary_set = false;
      for (const auto& [key, value] : entry.members()) {
        if (key == "name") {
          if (!value.is_string()) return false;
          want.name = value.as_string();
          named = true;
        } else if (key == "parameters") {
          if (!value.is_object()) return false;
          for (const auto& [pkey, pvalue] : value.members()) {
            if (pkey != "binary_data" || !pvalue.is_bool()) return false;
            want.binary = pvalue.as_bool();
            binary_set = true;
          }
        } else {
          return false;
        }
      }
      if (!named) return false;
      if (!binary_set) want.binary = out->binary_default;
      if (!plain_name(want.name)) return false;  // Python judges odd names before running
      for (const WantedOutput& w : out->wanted) {
        if (w.name == want.name) return false;
      }
      out->wanted.push_back(std::move(want));
    }
  }
  return true;
}

void encode_error(int status, std::string_view message, bool closing, std::string* out) {
  std::string body = "{\"error\":";
  json::dump_string(message, &body);
  body.push_back('}');
  append_head(status, "application/json", body.size(), -1, closing, out);
  out->append(body);
}

bool encode_response(std::string_view model, std::string_view version, const DecodedRequest& request, const Completion& done, bool closing,
                     std::string* out, std::string* problem) {
  const BatchResult& result = *done.result;
  // (output index, binary) in the order the response lists them.
  struct Pick {
    size_t index;
    bool binary;
  };
  std::vector<Pick> picks;
  if (request.all_outputs) {
    for (size_t i = 0; i < result.outputs.size(); ++i) picks.push_back({i, request.binary_default});
  } else {
    for (const WantedOutput& w : request.wanted) {
      size_t found = result.outputs.size();
      for (size_t i = 0; i < result.outputs.size(); ++i) {
        if (result.outputs[i].name == w.name) found = i;
      }
      if (found == result.outputs.size()) {  // not produced: Python's message
        *problem = "unknown output '" + w.name + "' (the model returns: ";
        for (size_t i = 0; i < result.outputs.size(); ++i) *problem += (i ? ", " : "") + result.outputs[i].name;
        *problem += ")";
        return false;
      }
      picks.push_back({found, w.binary});
    }
  }
  std::string json = "{\"model_name\":";
  json::dump_string(model, &json);
  json.append(",\"model_version\":");
  json::dump_string(version, &json);
  json.append(",\"outputs\":[");
  struct Chunk {
    const uint8_t* data;
    uint64_t size;
  };
  std::vector<Chunk> chunks;
  uint64_t binary_bytes = 0;
  // This request's part of each output (the whole output when the model does not batch).
  struct Part {
    std::vector<int64_t> shape;
    const uint8_t* data;
    uint64_t size;
    uint64_t elements;
  };
  std::vector<Part> parts;
  bool wide = false;  // a JSON float output holds NaN or an infinity: every float as Python's repr
  for (const Pick& pick : picks) {
    const BatchOutput& o = result.outputs[pick.index];
    Part part{o.shape, o.buffer->data(), o.buffer->size(), 1};
    if (result.sliced && result.rows > 0) {
      if (!o.row_starts.empty()) {  // BYTES: rows of variable size
        const uint64_t begin = o.row_starts[static_cast<size_t>(done.row_offset)];
        part.size = o.row_starts[static_cast<size_t>(done.row_offset + done.rows)] - begin;
        part.data += begin;
      } else {
        const uint64_t row_bytes = part.size / static_cast<uint64_t>(result.rows);
        part.data += row_bytes * static_cast<uint64_t>(done.row_offset);
        part.size = row_bytes * static_cast<uint64_t>(done.rows);
      }
      part.shape[0] = done.rows;
    }
    for (int64_t d : part.shape) part.elements *= static_cast<uint64_t>(d);
    if (!pick.binary && !wide) wide = !all_finite(o.dtype, part.data, part.elements);
    parts.push_back(std::move(part));
  }
  for (size_t k = 0; k < picks.size(); ++k) {
    const BatchOutput& o = result.outputs[picks[k].index];
    const std::vector<int64_t>& shape = parts[k].shape;
    const uint8_t* data = parts[k].data;
    const uint64_t size = parts[k].size;
    if (k) json.push_back(',');
    json.append("{\"name\":");
    json::dump_string(o.name, &json);
    json.append(",\"datatype\":\"");
    json.append(v2_name(o.dtype));
    json.append("\",\"shape\":[");
    const uint64_t elements = parts[k].elements;
    for (size_t d = 0; d < shape.size(); ++d) {
      if (d) json.push_back(',');
      append_int(shape[d], &json);
    }
    json.push_back(']');
    if (picks[k].binary) {
      json.append(",\"parameters\":{\"binary_data_size\":");
      append_uint(size, &json);
      json.append("}}");
      chunks.push_back({data, size});
      binary_bytes += size;
    } else {
      json.append(",\"data\":");
      if (is_bytes(o.dtype)) append_bytes_data(data, size, elements, &json);
      else append_data(o.dtype, data, elements, wide, &json);
      json.push_back('}');
    }
  }
  json.push_back(']');
  if (request.has_id) {
    json.append(",\"id\":");
    json::dump_string(request.id, &json);
  }
  json.push_back('}');
  if (chunks.empty()) {
    append_head(200, "application/json", json.size(), -1, closing, out);
    out->append(json);
    return true;
  }
  append_head(200, "application/octet-stream", json.size() + binary_bytes, static_cast<int64_t>(json.size()), closing, out);
  out->append(json);
  for (const Chunk& c : chunks) out->append(reinterpret_cast<const char*>(c.data), c.size);
  return true;
}

}  // namespace ir::http
