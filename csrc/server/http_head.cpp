#include "http_head.hpp"

#include <cstring>

namespace ir::http {

namespace {

constexpr size_t kMaxRequestLine = 8190;  // aiohttp's max_line_size: longer is its 400 at once
constexpr std::string_view kVersion = "HTTP/1.1";

bool tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// A request-target byte the front end takes: visible ASCII without '%', '?' or '#' (so the
// path needs no decoding and has no query).
bool target_char(char c) { return c >= 0x21 && c <= 0x7e && c != '%' && c != '?' && c != '#'; }

// A header value byte: visible ASCII, space or tab (no CTL, no obs-text).
bool value_char(char c) { return (c >= 0x20 && c <= 0x7e) || c == '\t'; }

bool same(std::string_view a, const char* lower) {
  const size_t n = std::strlen(lower);
  if (a.size() != n) return false;
  for (size_t i = 0; i < n; ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

// A decimal length of 1 to 18 digits (no sign, no space, no leading '+'), or -1.
int64_t length_of(std::string_view v) {
  if (v.empty() || v.size() > 18) return -1;
  int64_t x = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return -1;
    x = x * 10 + (c - '0');
  }
  return x;
}

// A host[:port] of letters, digits, '.', '-', ':' and brackets (IPv6): nothing a parser
// could read two ways.
bool plain_host(std::string_view v) {
  if (v.empty() || v.size() > 255) return false;
  for (char c : v) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':' || c == '[' || c == ']')) return false;
  }
  return true;
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// "close" and "keep-alive" tokens only; anything else (upgrade, ...) is declined.
bool read_connection(std::string_view v, bool* close) {
  while (!v.empty()) {
    size_t comma = v.find(',');
    std::string_view token = trim(v.substr(0, comma));
    if (same(token, "close")) *close = true;
    else if (!same(token, "keep-alive")) return false;
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  return true;
}

// Whether `line` (without its CRLF) is, or with `partial` could still become, a request line
// the front end takes: POST SP /target SP HTTP/1.1 (only inference requests are its; the
// rest go to Python at their first byte).
bool request_line_ok(std::string_view line, bool partial) {
  constexpr std::string_view kMethod = "POST ";
  if (line.size() > kMaxRequestLine) return false;
  if (line.size() < kMethod.size()) return partial && kMethod.substr(0, line.size()) == line;
  if (line.substr(0, kMethod.size()) != kMethod) return false;
  size_t i = kMethod.size();
  if (i == line.size()) return partial;
  if (line[i] != '/') return false;
  while (i < line.size() && target_char(line[i])) ++i;
  if (i == line.size()) return partial;
  if (line[i] != ' ') return false;
  const std::string_view version = line.substr(i + 1);
  return partial ? kVersion.substr(0, version.size()) == version : version == kVersion;
}

// Whether `line` is, or with `partial` could still become, a header field line the front end
// reads: token ":" value, with no obsolete folding.
bool header_line_ok(std::string_view line, bool partial) {
  size_t i = 0;
  while (i < line.size() && tchar(line[i])) ++i;
  if (i == line.size()) return partial;
  if (i == 0 || line[i] != ':') return false;
  for (++i; i < line.size(); ++i) {
    if (!value_char(line[i])) return false;
  }
  return true;
}

}  // namespace

HeadResult parse_head(const char* data, size_t n, Head* out, size_t* scanned) {
  const size_t limit = n < kMaxHead ? n : kMaxHead;
  const std::string_view all(data, limit);
  // Pass 1, from where an earlier call on this growing head stopped (the start of its last
  // unfinished line): every line so far must be one the front end takes, and a line still
  // arriving must be able to become one. So a client never waits on the front end for
  // bytes after which aiohttp would already have answered, and a head sent a byte at a
  // time costs linear time.
  size_t pos = scanned != nullptr ? *scanned : 0;
  size_t end = std::string_view::npos;
  for (;;) {
    const size_t eol = all.find('\n', pos);
    if (eol == std::string_view::npos) {
      std::string_view rest = all.substr(pos);
      // A line whose CR has come is whole but for its LF: judged as complete (parsers
      // reject a bad line at its CR), unless it is the empty line that ends the head.
      const bool whole = !rest.empty() && rest.back() == '\r';
      if (whole) rest.remove_suffix(1);
      if (rest.find('\r') != std::string_view::npos) return HeadResult::kDecline;  // a bare CR
      const bool ok = (whole && rest.empty() && pos != 0) ||
                      (pos == 0 ? request_line_ok(rest, !whole) : header_line_ok(rest, !whole));
      if (!ok || n >= kMaxHead) return HeadResult::kDecline;
      if (scanned != nullptr) *scanned = pos;
      return HeadResult::kIncomplete;
    }
    if (eol == pos || all[eol - 1] != '\r') return HeadResult::kDecline;  // a bare LF
    const std::string_view line = all.substr(pos, eol - 1 - pos);
    if (line.find('\r') != std::string_view::npos) return HeadResult::kDecline;
    if (line.empty()) {
      if (pos == 0) return HeadResult::kDecline;  // a leading empty line
      end = eol + 1;
      break;
    }
    if (!(pos == 0 ? request_line_ok(line, false) : header_line_ok(line, false))) return HeadResult::kDecline;
    pos = eol + 1;
  }
  // Pass 2, once, over the whole head: the fields the front end needs.
  Head head;
  head.size = end;
  size_t eol = all.find("\r\n");
  std::string_view line = all.substr(0, eol);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = line.find(' ', sp1 + 1);
  head.method = line.substr(0, sp1);
  head.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  pos = eol + 2;
  int count = 0;
  bool has_host = false;  // HTTP/1.1 requires exactly one (aiohttp answers 400 without)
  while (pos + 2 < end) {
    eol = all.find("\r\n", pos);
    line = all.substr(pos, eol - pos);
    pos = eol + 2;
    if (++count > kMaxHeaders) return HeadResult::kDecline;
    const size_t colon = line.find(':');
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (same(name, "content-length")) {
      if (head.content_length >= 0 || (head.content_length = length_of(value)) < 0) return HeadResult::kDecline;
    } else if (same(name, "inference-header-content-length")) {
      if (head.inference_header_length >= 0 || (head.inference_header_length = length_of(value)) < 0) return HeadResult::kDecline;
    } else if (same(name, "connection")) {
      if (!read_connection(value, &head.close)) return HeadResult::kDecline;
    } else if (same(name, "content-encoding")) {
      if (!value.empty() && !same(value, "identity")) return HeadResult::kDecline;
    } else if (same(name, "host")) {
      if (has_host || !plain_host(value)) return HeadResult::kDecline;
      has_host = true;
    } else if (same(name, "x-request-id")) {
      head.request_id = value;
    } else if (same(name, "transfer-encoding") || same(name, "expect") || same(name, "upgrade")) {
      return HeadResult::kDecline;
    }
  }
  if (!has_host) return HeadResult::kDecline;
  *out = head;
  return HeadResult::kComplete;
}

}  // namespace ir::http
