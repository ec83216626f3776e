// Strict RFC 8259 parser (recursive descent with an explicit depth limit) and canonical writer.
#include "json.hpp"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

namespace ir::json {

Value Value::make_bool(bool b) {
  Value v;
  v.type_ = Type::kBool;
  v.bool_ = b;
  return v;
}
Value Value::make_number(double d) {
  Value v;
  v.type_ = Type::kNumber;
  v.number_ = d;
  return v;
}
Value Value::make_string(std::string s) {
  Value v;
  v.type_ = Type::kString;
  v.string_ = std::move(s);
  return v;
}
Value Value::make_array(std::vector<Value> items) {
  Value v;
  v.type_ = Type::kArray;
  v.items_ = std::move(items);
  return v;
}
Value Value::make_object(std::vector<std::pair<std::string, Value>> members) {
  Value v;
  v.type_ = Type::kObject;
  v.members_ = std::move(members);
  return v;
}

Value Value::make_int_token(double d, int64_t exact) {
  Value v = make_number(d);
  v.int_token_ = true;
  v.int_ = exact;
  return v;
}

bool Value::is_integer() const {
  // 2^63 itself is out of range; -2^63 is in.
  return type_ == Type::kNumber && std::isfinite(number_) && std::floor(number_) == number_ &&
         number_ >= -9223372036854775808.0 && number_ < 9223372036854775808.0;
}

const Value* Value::find(std::string_view key) const {
  if (type_ != Type::kObject) return nullptr;
  for (const auto& m : members_) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

namespace {

constexpr int kMaxDepth = 256;

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Status run(Value* out) {
    skip_ws();
    IR_RETURN_IF_ERROR(value(out, 0));
    skip_ws();
    if (pos_ != s_.size()) return error("extra data after the JSON value");
    return Status::Ok();
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;

  Status error(const std::string& what) const { return error_at(pos_, what); }
  Status error_at(size_t at, const std::string& what) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return Status(IR_ERROR_INVALID_ARGUMENT,
                  "line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + what);
  }

  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return s_[pos_]; }

  void skip_ws() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else {
        break;
      }
    }
  }

  Status literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return error("invalid literal");
    pos_ += word.size();
    return Status::Ok();
  }

  Status value(Value* out, int depth) {
    if (at_end()) return error("unexpected end of input, expected a value");
    switch (peek()) {
      case '{':
        return object(out, depth + 1);
      case '[':
        return array(out, depth + 1);
      case '"': {
        std::string s;
        IR_RETURN_IF_ERROR(string(&s));
        *out = Value::make_string(std::move(s));
        return Status::Ok();
      }
      case 't':
        IR_RETURN_IF_ERROR(literal("true"));
        *out = Value::make_bool(true);
        return Status::Ok();
      case 'f':
        IR_RETURN_IF_ERROR(literal("false"));
        *out = Value::make_bool(false);
        return Status::Ok();
      case 'n':
        IR_RETURN_IF_ERROR(literal("null"));
        *out = Value();
        return Status::Ok();
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return number(out);
        return error("expected a value");
    }
  }

  static bool digit(char c) { return c >= '0' && c <= '9'; }

  Status number(Value* out) {
    const size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (at_end()) return error("unexpected end of input in a number");
    if (peek() == '0') {
      ++pos_;
    } else if (digit(peek())) {
      while (!at_end() && digit(peek())) ++pos_;
    } else {
      return error("expected a digit");
    }
    const size_t integer_end = pos_;
    if (!at_end() && peek() == '.') {
      ++pos_;
      if (at_end() || !digit(peek())) return error("expected a digit after the decimal point");
      while (!at_end() && digit(peek())) ++pos_;
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (at_end() || !digit(peek())) return error("expected a digit in the exponent");
      while (!at_end() && digit(peek())) ++pos_;
    }
    const char* first = s_.data() + start;
    const char* last = s_.data() + pos_;
    double d = 0.0;
    auto res = std::from_chars(first, last, d);
    if (res.ec == std::errc::result_out_of_range) {
      // from_chars leaves d untouched on underflow too; strtod tells the two apart.
      std::string copy(first, last);
      d = std::strtod(copy.c_str(), nullptr);
      if (!std::isfinite(d)) return error_at(start, "number out of range");
    } else if (res.ec != std::errc() || res.ptr != last) {
      return error_at(start, "invalid number");
    }
    int64_t exact = 0;
    if (pos_ == integer_end) {
      auto as_int = std::from_chars(first, last, exact);
      if (as_int.ec == std::errc() && as_int.ptr == last) {
        *out = Value::make_int_token(d, exact);
        return Status::Ok();
      }
    }
    *out = Value::make_number(d);
    return Status::Ok();
  }

  static void put_utf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  Status hex4(uint32_t* cp) {
    if (s_.size() - pos_ < 4) return error("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_ + i];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return error_at(pos_ + i, "invalid hex digit in \\u escape");
      }
    }
    pos_ += 4;
    *cp = v;
    return Status::Ok();
  }

  // Validates one raw UTF-8 sequence starting at pos_ (a non-ASCII byte) and copies it.
  Status utf8(std::string* out) {
    const auto b0 = static_cast<unsigned char>(s_[pos_]);
    int n = 0;
    uint32_t cp = 0, min = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      n = 1, cp = b0 & 0x1F, min = 0x80;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      n = 2, cp = b0 & 0x0F, min = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      n = 3, cp = b0 & 0x07, min = 0x10000;
    } else {
      return error("invalid UTF-8");
    }
    if (s_.size() - pos_ <= static_cast<size_t>(n)) return error("invalid UTF-8");
    for (int i = 1; i <= n; ++i) {
      const auto b = static_cast<unsigned char>(s_[pos_ + i]);
      if ((b & 0xC0) != 0x80) return error("invalid UTF-8");
      cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return error("invalid UTF-8");
    out->append(s_.data() + pos_, static_cast<size_t>(n) + 1);
    pos_ += static_cast<size_t>(n) + 1;
    return Status::Ok();
  }

  Status string(std::string* out) {
    ++pos_;  // opening quote
    for (;;) {
      if (at_end()) return error("unterminated string");
      const char c = peek();
      if (c == '"') {
        ++pos_;
        return Status::Ok();
      }
      if (static_cast<unsigned char>(c) < 0x20) return error("control character in a string");
      if (static_cast<unsigned char>(c) >= 0x80) {
        IR_RETURN_IF_ERROR(utf8(out));
        continue;
      }
      if (c != '\\') {
        out->push_back(c);
        ++pos_;
        continue;
      }
      const size_t esc = pos_;
      ++pos_;
      if (at_end()) return error("unterminated string");
      const char e = peek();
      ++pos_;
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          IR_RETURN_IF_ERROR(hex4(&cp));
          if (cp >= 0xDC00 && cp <= 0xDFFF) return error_at(esc, "lone low surrogate in \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.substr(pos_, 2) != "\\u") return error_at(esc, "lone high surrogate in \\u escape");
            pos_ += 2;
            uint32_t lo = 0;
            IR_RETURN_IF_ERROR(hex4(&lo));
            if (lo < 0xDC00 || lo > 0xDFFF) return error_at(esc, "lone high surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          put_utf8(cp, out);
          break;
        }
        default:
          return error_at(esc, "invalid escape");
      }
    }
  }

  Status array(Value* out, int depth) {
    if (depth > kMaxDepth) return error("nesting deeper than 256 levels");
    ++pos_;
    std::vector<Value> items;
    skip_ws();
    if (!at_end() && peek() == ']') {
      ++pos_;
      *out = Value::make_array(std::move(items));
      return Status::Ok();
    }
    for (;;) {
      skip_ws();
      items.emplace_back();
      IR_RETURN_IF_ERROR(value(&items.back(), depth));
      skip_ws();
      if (at_end()) return error("unexpected end of input in an array");
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        break;
      }
      return error("expected ',' or ']'");
    }
    *out = Value::make_array(std::move(items));
    return Status::Ok();
  }

  Status object(Value* out, int depth) {
    if (depth > kMaxDepth) return error("nesting deeper than 256 levels");
    ++pos_;
    std::vector<std::pair<std::string, Value>> members;
    std::unordered_map<std::string, size_t> index;  // only for large objects
    skip_ws();
    if (!at_end() && peek() == '}') {
      ++pos_;
      *out = Value::make_object(std::move(members));
      return Status::Ok();
    }
    for (;;) {
      skip_ws();
      if (at_end()) return error("unexpected end of input in an object");
      if (peek() != '"') return error("expected a string key");
      std::string key;
      IR_RETURN_IF_ERROR(string(&key));
      skip_ws();
      if (at_end() || peek() != ':') return error("expected ':'");
      ++pos_;
      skip_ws();
      Value v;
      IR_RETURN_IF_ERROR(value(&v, depth));
      // A duplicate key keeps its first position and its last value (Python's dict does).
      size_t found = members.size();
      if (members.size() < 16) {
        for (size_t i = 0; i < members.size(); ++i) {
          if (members[i].first == key) {
            found = i;
            break;
          }
        }
      } else {
        if (index.empty()) {
          for (size_t i = 0; i < members.size(); ++i) index.emplace(members[i].first, i);
        }
        auto it = index.find(key);
        if (it != index.end()) found = it->second;
      }
      if (found < members.size()) {
        members[found].second = std::move(v);
      } else {
        if (!index.empty()) index.emplace(key, members.size());
        members.emplace_back(std::move(key), std::move(v));
      }
      skip_ws();
      if (at_end()) return error("unexpected end of input in an object");
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        break;
      }
      return error("expected ',' or '}'");
    }
    *out = Value::make_object(std::move(members));
    return Status::Ok();
  }
};

}  // namespace

Status parse(std::string_view text, Value* out) {
  Value v;
  IR_RETURN_IF_ERROR(Parser(text).run(&v));
  *out = std::move(v);
  return Status::Ok();
}

void dump_number(double d, std::string* out) {
  if (!std::isfinite(d)) {  // not JSON; only reachable for values built in code
    out->append("null");
    return;
  }
  if (d == 0.0 && std::signbit(d)) {  // "-0" would read back as the integer 0 in Python
    out->append("-0.0");
    return;
  }
  char buf[40];
  auto res = std::to_chars(buf, buf + sizeof buf, d);  // shortest round-trip form
  out->append(buf, res.ptr);
}

void dump_string(std::string_view s, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default:
        if (u < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[u >> 4]);
          out->push_back(kHex[u & 0xF]);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

void dump_to(const Value& v, std::string* out) {
  switch (v.type()) {
    case Value::Type::kNull: out->append("null"); break;
    case Value::Type::kBool: out->append(v.as_bool() ? "true" : "false"); break;
    case Value::Type::kNumber: dump_number(v.as_number(), out); break;
    case Value::Type::kString: dump_string(v.as_string(), out); break;
    case Value::Type::kArray: {
      out->push_back('[');
      bool first = true;
      for (const auto& item : v.items()) {
        if (!first) out->push_back(',');
        first = false;
        dump_to(item, out);
      }
      out->push_back(']');
      break;
    }
    case Value::Type::kObject: {
      out->push_back('{');
      bool first = true;
      for (const auto& m : v.members()) {
        if (!first) out->push_back(',');
        first = false;
        dump_string(m.first, out);
        out->push_back(':');
        dump_to(m.second, out);
      }
      out->push_back('}');
      break;
    }
  }
}

std::string dump(const Value& v) {
  std::string out;
  dump_to(v, &out);
  return out;
}

}  // namespace ir::json
