// scaler: a feature standardizer plugin for infer-runtime.
//
//   y[r, c] = (x[r, c] - mean[c]) / std[c]        optionally clipped to [-clip, clip]
//
// The usual first step in front of a linear model or a tree ensemble trained on standardized
// features, run on the engine's threads inside the batch (no Python, no copy of the input).
// Config (the spec's [models.<name>.plugin.config] table, given as JSON):
//   mean   = [..]   one number per feature (required)
//   std    = [..]   one positive number per feature, same length (required)
//   clip   = 5.0    optional: clamp each result to [-clip, clip]
//   input  = "x"    optional tensor names
//   output = "y"
// Input: float32 [rows, features]; output: float32 [rows, features].
//
// Builds against infer_runtime_backend.h alone and links nothing but libc/libstdc++:
//   c++ -std=c++17 -O2 -fPIC -shared -fvisibility=hidden -I"$INCLUDE" scaler.cpp -o libscaler.so
// with INCLUDE=$(python -c 'import infer_runtime; print(infer_runtime.get_include())').
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "infer_runtime_backend.h"

namespace {

const irb_host* g_host = nullptr;  // set once by irb_plugin_init, before any other call

// ---- A minimal JSON reader: the config is a flat object of numbers, strings and number arrays.
// Nested values are parsed and skipped, so any config the host sends is read without error.
struct Config {
  std::vector<double> mean, std;
  double clip = 0;  // 0: no clipping
  std::string input = "x", output = "y";
};

class Reader {
 public:
  explicit Reader(const char* text) : p_(text) {}

  // Parses the top-level object into `cfg`; false with `error` set on malformed text or a bad key.
  bool read(Config* cfg, std::string* error) {
    error_ = error;
    ws();
    if (!eat('{')) return fail("the config is not a JSON object");
    ws();
    if (eat('}')) return true;
    for (;;) {
      std::string key;
      ws();
      if (!string(&key)) return fail("expected a key");
      ws();
      if (!eat(':')) return fail("expected ':' after \"" + key + "\"");
      ws();
      bool ok = key == "mean"     ? numbers(&cfg->mean, key)
                : key == "std"    ? numbers(&cfg->std, key)
                : key == "clip"   ? number(&cfg->clip, key)
                : key == "input"  ? string(&cfg->input) || fail("\"input\" must be a string")
                : key == "output" ? string(&cfg->output) || fail("\"output\" must be a string")
                                  : skip();
      if (!ok) return false;
      ws();
      if (eat('}')) return true;
      if (!eat(',')) return fail("expected ',' or '}'");
    }
  }

 private:
  bool fail(const std::string& why) {
    if (error_->empty()) *error_ = why;
    return false;
  }
  void ws() {
    while (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t') ++p_;
  }
  bool eat(char c) {
    if (*p_ != c) return false;
    ++p_;
    return true;
  }
  bool string(std::string* out) {
    if (!eat('"')) return false;
    out->clear();
    while (*p_ != '"') {
      if (*p_ == '\0') return false;
      if (*p_ == '\\') {  // escapes are kept verbatim but for \" and \\, enough for names
        ++p_;
        if (*p_ == '\0') return false;
      }
      out->push_back(*p_++);
    }
    ++p_;
    return true;
  }
  bool number(double* out, const std::string& key) {
    char* end = nullptr;
    double value = std::strtod(p_, &end);
    if (end == p_) return fail("\"" + key + "\" must be a number");
    p_ = end;
    *out = value;
    return true;
  }
  bool numbers(std::vector<double>* out, const std::string& key) {
    if (!eat('[')) return fail("\"" + key + "\" must be an array of numbers");
    out->clear();
    ws();
    if (eat(']')) return true;
    for (;;) {
      double value = 0;
      ws();
      if (!number(&value, key)) return false;
      out->push_back(value);
      ws();
      if (eat(']')) return true;
      if (!eat(',')) return fail("\"" + key + "\": expected ',' or ']'");
    }
  }
  bool skip() {  // any JSON value
    ws();
    std::string ignored;
    if (*p_ == '"') return string(&ignored) || fail("unterminated string");
    if (*p_ == '{' || *p_ == '[') {
      char close = *p_ == '{' ? '}' : ']';
      ++p_;
      ws();
      if (eat(close)) return true;
      for (;;) {
        ws();
        if (close == '}' && !(string(&ignored) && (ws(), eat(':')))) return fail("malformed object");
        if (!skip()) return false;
        ws();
        if (eat(close)) return true;
        if (!eat(',')) return fail("malformed array or object");
      }
    }
    for (const char* word : {"true", "false", "null"}) {
      size_t n = std::strlen(word);
      if (std::strncmp(p_, word, n) == 0) {
        p_ += n;
        return true;
      }
    }
    double ignored_number = 0;
    return number(&ignored_number, "value");
  }

  const char* p_;
  std::string* error_ = nullptr;
};

// ---- The backend ------------------------------------------------------------------------------

struct Scaler {
  Config cfg;
  std::vector<float> mean, inv_std;  // float: the hot loop stays in single precision
  int64_t shape[2] = {-1, 0};        // both tensors: [-1 (rows), features]
  irb_tensor input{}, output{};
  std::string describe;
};

irb_error* invalid(const std::string& message) { return g_host->error_new(IRB_ERROR_INVALID_ARGUMENT, message.c_str()); }

irb_error* create(const irb_host* /*host*/, const irb_create_args* args, void** state) {
  try {
    std::string error;
    auto scaler = std::make_unique<Scaler>();
    Config& cfg = scaler->cfg;
    if (!Reader(args->config_json != nullptr ? args->config_json : "{}").read(&cfg, &error)) return invalid("config: " + error);
    if (cfg.mean.empty()) return invalid("config: \"mean\" is required (one number per feature)");
    if (cfg.std.size() != cfg.mean.size()) {
      return invalid("config: \"std\" has " + std::to_string(cfg.std.size()) + " numbers, \"mean\" has " + std::to_string(cfg.mean.size()));
    }
    if (cfg.clip < 0) return invalid("config: \"clip\" must be positive (0: no clipping)");
    for (size_t c = 0; c < cfg.std.size(); ++c) {
      if (!(cfg.std[c] > 0) || !std::isfinite(cfg.std[c])) return invalid("config: std[" + std::to_string(c) + "] must be a positive number");
      scaler->mean.push_back(static_cast<float>(cfg.mean[c]));
      scaler->inv_std.push_back(static_cast<float>(1.0 / cfg.std[c]));
    }
    scaler->shape[1] = static_cast<int64_t>(cfg.mean.size());
    scaler->input = {scaler->cfg.input.c_str(), IRB_DTYPE_FLOAT32, 2, scaler->shape, nullptr, 0};
    scaler->output = {scaler->cfg.output.c_str(), IRB_DTYPE_FLOAT32, 2, scaler->shape, nullptr, 0};
    scaler->describe = "scaler (" + std::to_string(cfg.mean.size()) + " features" + (cfg.clip > 0 ? ", clip " + std::to_string(cfg.clip) : "") + ")";
    *state = scaler.release();
    return nullptr;
  } catch (const std::bad_alloc&) {
    return g_host->error_new(IRB_ERROR_RESOURCE_EXHAUSTED, "scaler: out of memory");
  } catch (...) {
    return g_host->error_new(IRB_ERROR_INTERNAL, "scaler: unexpected exception in create");
  }
}

int32_t signature(void* state, int32_t outputs, irb_tensor* out, int32_t capacity) {
  auto* scaler = static_cast<Scaler*>(state);
  if (capacity >= 1) out[0] = outputs ? scaler->output : scaler->input;
  return 1;
}

irb_error* run(Scaler* scaler, const irb_batch* batch) {
  if (batch->n_inputs != 1) return invalid("expected 1 input, got " + std::to_string(batch->n_inputs));
  const irb_tensor& x = batch->inputs[0];
  const int64_t features = scaler->shape[1];
  if (x.dtype != IRB_DTYPE_FLOAT32 || x.ndim != 2 || x.shape[1] != features) {
    return invalid("input '" + std::string(x.name) + "' must be float32 [rows, " + std::to_string(features) + "]");
  }
  // The host allocates the output; we write straight into it (no allocation of ours per batch).
  void* data = nullptr;
  irb_error* error = g_host->output_alloc(batch->sink, scaler->output.name, IRB_DTYPE_FLOAT32, 2, x.shape, x.byte_size, &data);
  if (error != nullptr) return error;
  const float* in = static_cast<const float*>(x.data);
  float* out = static_cast<float*>(data);
  const float* mean = scaler->mean.data();
  const float* inv_std = scaler->inv_std.data();
  const int64_t rows = x.shape[0];
  const float clip = static_cast<float>(scaler->cfg.clip);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = in + r * features;
    float* yr = out + r * features;
    for (int64_t c = 0; c < features; ++c) yr[c] = (xr[c] - mean[c]) * inv_std[c];
    if (clip > 0) {
      for (int64_t c = 0; c < features; ++c) yr[c] = std::fmin(std::fmax(yr[c], -clip), clip);
    }
  }
  return nullptr;
}

irb_error* execute(void* state, const irb_batch* batch) {
  try {
    return run(static_cast<Scaler*>(state), batch);
  } catch (...) {  // only the error messages allocate; nothing may escape the contract
    return g_host->error_new(IRB_ERROR_INTERNAL, "scaler: unexpected exception in execute");
  }
}

void destroy(void* state) { delete static_cast<Scaler*>(state); }

const char* describe(void* state) { return static_cast<Scaler*>(state)->describe.c_str(); }

const irb_backend kScaler = {
    sizeof(irb_backend), IRB_ABI_VERSION, "scaler", create, signature, /*batch_range=*/nullptr, execute, destroy, describe,
};

}  // namespace

extern "C" IRB_EXPORT irb_error* irb_plugin_init(const irb_host* host, const irb_backend** backend) {
  g_host = host;
  *backend = &kScaler;
  return nullptr;
}
