#include "reference.hpp"

namespace ir::registry {
namespace {

constexpr size_t kMaxLength = 128;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_alpha(char c) { return is_lower(c) || (c >= 'A' && c <= 'Z'); }

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > kMaxLength || !(is_lower(s[0]) || is_digit(s[0]))) return false;
  for (char c : s) {
    if (!(is_lower(c) || is_digit(c) || c == '_' || c == '-')) return false;
  }
  return true;
}

// Versions and environments share the tail alphabet: letters, digits, '.', '_', '-'.
bool valid_tail(const std::string& s) {
  if (s.size() > kMaxLength) return false;
  for (size_t i = 1; i < s.size(); ++i) {
    char c = s[i];
    if (!(is_alpha(c) || is_digit(c) || c == '.' || c == '_' || c == '-')) return false;
  }
  return true;
}

std::string quoted(const std::string& s) { return "'" + s + "'"; }

}  // namespace

Status parse_reference(const std::string& text, Reference* out) {
  const size_t at = text.find('@');
  const std::string name = text.substr(0, at);
  if (text.empty() || !valid_name(name)) {
    return Status(IR_ERROR_INVALID_ARGUMENT, "invalid reference " + quoted(text) + ": expected name, name@version or name@environment, the name in lower-case letters, digits, '_' and '-'");
  }
  *out = Reference{name, "", ""};
  if (at == std::string::npos) return Status::Ok();
  const std::string suffix = text.substr(at + 1);
  if (!suffix.empty() && is_digit(suffix[0]) && valid_tail(suffix)) {
    out->version = suffix;
    return Status::Ok();
  }
  if (!suffix.empty() && is_alpha(suffix[0]) && valid_tail(suffix)) {
    out->environment = suffix;
    return Status::Ok();
  }
  return Status(IR_ERROR_INVALID_ARGUMENT, "invalid reference " + quoted(text) + ": after '@' put a version (starting with a digit) or an environment (starting with a letter), then letters, digits, '.', '_' or '-'");
}

}  // namespace ir::registry
