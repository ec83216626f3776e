// The KServe v2 inference request and response in C++: the native HTTP front end's fast path.
//
// Conservative by design. decode() takes only requests it understands completely (the shapes
// perf_analyzer, tritonclient and plain JSON clients send to a model with a fixed signature)
// and declines everything else: an error, an unusual parameter, a datatype it does not
// convert. A declined request is answered by the Python server, which owns every error
// message; so the fast path can only be faster, never different.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../engine/completion.hpp"
#include "../engine/model.hpp"
#include "../engine/tensor.hpp"

namespace ir::http {

// Whether a model can take fast-path requests at all: a fixed signature without BYTES inputs
// (their JSON form needs Python's text handling; BYTES outputs are written here).
bool model_fast(const ModelConfig& config);

struct WantedOutput {
  std::string name;
  bool binary = false;
};

// One decoded request. Kept per connection and reused, so steady-state decoding does not
// allocate once the vectors have grown.
struct DecodedRequest {
  bool has_id = false;
  std::string id;
  int32_t priority = 0;
  int64_t timeout_us = 0;                  // 0: the model's default
  bool binary_default = false;             // parameters.binary_data_output
  bool all_outputs = true;                 // no "outputs" list: every output, in result order
  std::vector<WantedOutput> wanted;        // the "outputs" list, in its order
  std::vector<TensorRef> refs;             // in signature order, pointing into the body or `json_data`
  std::vector<std::vector<int64_t>> shapes;
  std::vector<std::vector<uint8_t>> json_data;  // inputs sent as JSON numbers, converted
  void clear();
};

// Decodes the JSON header (and the binary part after it, Triton's binary tensor extension)
// of a request to `config`'s model. False: decline (the Python server answers). On true,
// `out->refs` borrow `binary` and `out`'s own buffers.
bool decode(const ModelConfig& config, std::string_view header, const uint8_t* binary, uint64_t binary_size, DecodedRequest* out);

// Appends the whole HTTP response for a successful completion: status line, headers (and
// `Connection: close` when `closing`) and body, as the Python server would answer it.
// False (nothing appended, *problem set) when a requested output is not among the results:
// Python's 400, which the caller answers.
bool encode_response(std::string_view model, std::string_view version, const DecodedRequest& request, const Completion& done, bool closing,
                     std::string* out, std::string* problem);

// Appends an HTTP error response: {"error": message}.
void encode_error(int status, std::string_view message, bool closing, std::string* out);

// Appends `n` bytes as UTF-8, each maximal invalid subsequence replaced by U+FFFD, as
// Python's bytes.decode("utf-8", "replace") does.
void append_utf8_replacing(const uint8_t* p, size_t n, std::string* out);

// `message` with each absolute path cut to its last component, as Python's v2.redact does
// (what a client may see of an error).
std::string redact_paths(std::string_view message);

// A number as the JSON of a v2 response (shortest round-trip digits; a float always has a
// '.' or an exponent, as Python writes it; NaN and infinities as Python's json writes them).
void append_float(float v, std::string* out);
void append_double(double v, std::string* out);

}  // namespace ir::http
