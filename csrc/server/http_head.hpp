// The head of an HTTP/1.1 request (request line and headers), read conservatively: the
// native front end takes only plain HTTP/1.1 heads it fully understands and declines the
// rest (obsolete folding, bare LF, chunked bodies, upgrades, Expect, any encoding), which
// the Python server then reads with its full parser and answers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ir::http {

struct Head {
  std::string_view method;
  std::string_view target;
  int64_t content_length = -1;           // -1: absent
  int64_t inference_header_length = -1;  // Triton's Inference-Header-Content-Length; -1: absent
  bool close = false;                    // "Connection: close"
  std::string_view request_id;           // X-Request-ID (empty: absent)
  size_t size = 0;                       // bytes of the head, through the blank line
};

enum class HeadResult { kIncomplete, kComplete, kDecline };

constexpr size_t kMaxHead = 65536;
constexpr int kMaxHeaders = 100;

// Reads the head at the start of `data` (`n` bytes so far). kIncomplete: more bytes are
// needed (and fewer than kMaxHead have come); `out` is filled only for kComplete.
// `scanned` (optional; 0 for a new head) carries how far earlier calls on the same growing
// head have looked, so a head sent a byte at a time costs linear, not quadratic, time.
HeadResult parse_head(const char* data, size_t n, Head* out, size_t* scanned = nullptr);

}  // namespace ir::http
