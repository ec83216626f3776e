// The rules backend: config -> compiled RuleSet, tensors -> facts -> tensors per row.
#include "rules.hpp"

#include <cmath>
#include <cstddef>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "../common/json.hpp"
#include "../engine/dtype.hpp"
#include "../rules/ruleset.hpp"
#include "../rules/session.hpp"

namespace ir {
namespace {

using rules::Kind;
using rules::kNone;
using rules::Val;

bool numeric(int32_t dtype) { return dtype >= IRB_DTYPE_BOOL && dtype <= IRB_DTYPE_FLOAT64; }

uint16_t double_to_half(double d) {
  // Round to nearest even through float, the usual route; exact for every half value.
  const float f = static_cast<float>(d);
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  const uint32_t absx = x & 0x7FFFFFFF;
  if (absx >= 0x7F800000) return static_cast<uint16_t>(sign | 0x7C00 | (absx > 0x7F800000 ? 0x200 : 0));
  if (absx >= 0x477FF000) return static_cast<uint16_t>(sign | 0x7C00);  // rounds past 65504
  if (absx < 0x38800000) {                                                // subnormal or zero
    const float mag = std::fabs(f) * 16777216.0f;                         // units of 2^-24
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(mag)));
  }
  uint32_t m = absx + 0xC8000FFF + ((absx >> 13) & 1);  // rebias exponent and round
  return static_cast<uint16_t>(sign | (m >> 13));
}

double read_number(const uint8_t* p, int32_t dtype) {
  switch (dtype) {
    case IRB_DTYPE_BOOL: return *p != 0 ? 1.0 : 0.0;
    case IRB_DTYPE_UINT8: return *p;
    case IRB_DTYPE_INT8: return static_cast<int8_t>(*p);
#define IR_READ(code, T)       \
  case code: {                 \
    T v;                       \
    std::memcpy(&v, p, sizeof v); \
    return static_cast<double>(v); \
  }
    IR_READ(IRB_DTYPE_UINT16, uint16_t)
    IR_READ(IRB_DTYPE_INT16, int16_t)
    IR_READ(IRB_DTYPE_UINT32, uint32_t)
    IR_READ(IRB_DTYPE_INT32, int32_t)
    IR_READ(IRB_DTYPE_UINT64, uint64_t)
    IR_READ(IRB_DTYPE_INT64, int64_t)
    IR_READ(IRB_DTYPE_FLOAT32, float)
    IR_READ(IRB_DTYPE_FLOAT64, double)
#undef IR_READ
    case IRB_DTYPE_FLOAT16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return half_to_double(h);
    }
    default: return 0.0;
  }
}

// Writes `d` as `dtype`; false when it does not fit (not a whole number for an integer type,
// out of range, not 0 or 1 for BOOL).
bool write_number(double d, int32_t dtype, uint8_t* p) {
  auto whole_in = [&](double lo, double hi) { return std::isfinite(d) && std::floor(d) == d && d >= lo && d <= hi; };
  switch (dtype) {
    case IRB_DTYPE_BOOL:
      if (d != 0.0 && d != 1.0) return false;
      *p = d != 0.0 ? 1 : 0;
      return true;
#define IR_WRITE(code, T, lo, hi)                       \
  case code: {                                          \
    if (!whole_in(lo, hi)) return false;                \
    const T v = static_cast<T>(d);                      \
    std::memcpy(p, &v, sizeof v);                       \
    return true;                                        \
  }
    IR_WRITE(IRB_DTYPE_UINT8, uint8_t, 0.0, 255.0)
    IR_WRITE(IRB_DTYPE_INT8, int8_t, -128.0, 127.0)
    IR_WRITE(IRB_DTYPE_UINT16, uint16_t, 0.0, 65535.0)
    IR_WRITE(IRB_DTYPE_INT16, int16_t, -32768.0, 32767.0)
    IR_WRITE(IRB_DTYPE_UINT32, uint32_t, 0.0, 4294967295.0)
    IR_WRITE(IRB_DTYPE_INT32, int32_t, -2147483648.0, 2147483647.0)
    IR_WRITE(IRB_DTYPE_UINT64, uint64_t, 0.0, 18446744073709549568.0)
    IR_WRITE(IRB_DTYPE_INT64, int64_t, -9223372036854775808.0, 9223372036854774784.0)
#undef IR_WRITE
    case IRB_DTYPE_FLOAT16: {
      const uint16_t h = double_to_half(d);
      std::memcpy(p, &h, 2);
      return true;
    }
    case IRB_DTYPE_FLOAT32: {
      const auto f = static_cast<float>(d);
      std::memcpy(p, &f, 4);
      return true;
    }
    case IRB_DTYPE_FLOAT64:
      std::memcpy(p, &d, 8);
      return true;
    default: return false;
  }
}

void append_bytes(std::string* blob, std::string_view s) {
  const auto n = static_cast<uint32_t>(s.size());
  const char len[4] = {static_cast<char>(n & 0xFF), static_cast<char>((n >> 8) & 0xFF), static_cast<char>((n >> 16) & 0xFF),
                       static_cast<char>((n >> 24) & 0xFF)};
  blob->append(len, 4);
  blob->append(s.data(), s.size());
}

struct Binding {
  std::string input;
  uint32_t pred = 0;
};

struct Output {
  std::string name;
  uint32_t pred = kNone;  // kNone for _fired / _facts
  int32_t dtype = IRB_DTYPE_BYTES;
  bool has_default = false;
  double default_number = 0.0;
  std::string default_text;
  // Per batch: the value of each row (strings as symbols, valid until the next batch).
  std::vector<Val> values;
  std::vector<uint8_t> is_default;
  std::string blob;  // BYTES outputs, serialized
};

class Instance {
 public:
  explicit Instance(const irb_host* host) : host_(host) {}

  Status configure(const irb_create_args* args);
  int32_t signature(int32_t outputs, irb_tensor* out, int32_t capacity) const;
  // Runs the batch; a failure of the whole batch comes back as an irb_error*.
  irb_error* execute(const irb_batch* batch);
  const char* describe() const { return describe_.c_str(); }
  const irb_host* host() const { return host_; }

 private:
  Status invalid(const std::string& what) const { return Status(IR_ERROR_INVALID_ARGUMENT, what); }
  Status read_row_output(Output& o, int64_t row);
  Status run_rows(const irb_batch* batch);
  void default_row_output(Output& o, int64_t row);

  const irb_host* host_;
  std::string model_;
  rules::RuleSet rs_;
  std::unique_ptr<rules::Session> session_;
  std::vector<Binding> bindings_;
  std::vector<Output> outputs_;
  bool explain_ = false, trace_ = false;
  uint64_t max_iterations_ = 1000;
  std::string describe_;

  // Signatures (pointers handed out stay valid until destroy).
  bool inputs_declared_ = false;
  std::vector<std::string> in_names_, out_names_;
  std::vector<std::vector<int64_t>> in_shapes_;
  std::vector<irb_tensor> in_sig_, out_sig_;
  int64_t out_shape_ = -1;

  // Per-batch scratch, reused.
  struct Source {
    const irb_tensor* tensor = nullptr;
    uint32_t pred = 0;
    int64_t k = 1;
    std::vector<uint64_t> offsets;  // BYTES: where each element starts
  };
  std::vector<Source> sources_;
  std::vector<Val> args_;
  std::vector<std::string> row_errors_;
  std::vector<uint8_t> row_failed_;
  std::vector<int32_t> row_codes_;
  std::string text_;
};

Status Instance::configure(const irb_create_args* args) {
  model_ = args->model_name != nullptr ? args->model_name : "";
  json::Value cfg;
  Status st = json::parse(args->config_json != nullptr ? args->config_json : "{}", &cfg);
  if (!st.ok()) return Status(IR_ERROR_INVALID_ARGUMENT, "rules config: " + st.message());
  if (!cfg.is_object()) return invalid("rules config: must be a JSON object");
  const json::Value* ruleset = cfg.find("ruleset");
  if (ruleset == nullptr || !ruleset->is_object()) return invalid("rules config: 'ruleset' (an object with facts and rules) is required");

  auto string_map = [&](const char* key, std::vector<std::pair<std::string, std::string>>* out) -> Status {
    const json::Value* m = cfg.find(key);
    if (m == nullptr || m->is_null()) return Status::Ok();
    if (!m->is_object()) return invalid(std::string("rules config: '") + key + "' must be an object");
    for (const auto& [k, v] : m->members()) {
      if (!v.is_string() || v.as_string().empty()) {
        return invalid(std::string("rules config: ") + key + "." + k + " must be a predicate name");
      }
      out->emplace_back(k, v.as_string());
    }
    return Status::Ok();
  };
  std::vector<std::pair<std::string, std::string>> bindings, outputs;
  IR_RETURN_IF_ERROR(string_map("bindings", &bindings));
  IR_RETURN_IF_ERROR(string_map("outputs", &outputs));
  if (const json::Value* v = cfg.find("explain"); v != nullptr && !v->is_null()) {
    if (!v->is_bool()) return invalid("rules config: 'explain' must be true or false");
    explain_ = v->as_bool();
  }
  if (const json::Value* v = cfg.find("trace"); v != nullptr && !v->is_null()) {
    if (!v->is_bool()) return invalid("rules config: 'trace' must be true or false");
    trace_ = v->as_bool();
  }
  if (const json::Value* v = cfg.find("max_iterations"); v != nullptr && !v->is_null()) {
    if (!v->is_integer() || v->as_int() < 1) return invalid("rules config: 'max_iterations' must be an integer >= 1");
    max_iterations_ = static_cast<uint64_t>(v->as_int());
  }

  std::vector<std::string> extra;
  for (const auto& b : bindings) extra.push_back(b.second);
  for (const auto& o : outputs) extra.push_back(o.second);
  IR_RETURN_IF_ERROR(rules::RuleSet::compile(*ruleset, extra, &rs_));
  session_ = std::make_unique<rules::Session>(&rs_);

  for (const auto& [input, pred] : bindings) {
    bindings_.push_back(Binding{input, static_cast<uint32_t>(rs_.symbols.find(pred))});
  }
  const json::Value* defaults = cfg.find("defaults");
  if (defaults != nullptr && !defaults->is_null() && !defaults->is_object()) return invalid("rules config: 'defaults' must be an object");
  for (const auto& [name, pred] : outputs) {
    Output o;
    o.name = name;
    o.pred = static_cast<uint32_t>(rs_.symbols.find(pred));
    const json::Value* d = defaults != nullptr ? defaults->find(name) : nullptr;
    if (d != nullptr && !d->is_null()) {
      if (d->is_string()) {
        o.default_text = d->as_string();
      } else if (d->is_number()) {
        o.default_number = d->as_number();
        o.dtype = IRB_DTYPE_FLOAT64;
      } else {
        return invalid("rules config: defaults." + name + " must be a string or a number");
      }
      o.has_default = true;
    }
    outputs_.push_back(std::move(o));
  }
  if (defaults != nullptr && defaults->is_object()) {
    for (const auto& m : defaults->members()) {
      bool known = false;
      for (const Output& o : outputs_) known = known || o.name == m.first;
      if (!known) return invalid("rules config: defaults." + m.first + " names no output of rules.outputs");
    }
  }
  for (const auto& [extra_name, wanted] : {std::pair<const char*, bool>{"_fired", explain_}, {"_facts", trace_}}) {
    if (wanted) {
      Output o;  // BYTES, no predicate
      o.name = extra_name;
      outputs_.push_back(std::move(o));
    }
  }
  for (size_t i = 0; i < outputs_.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (outputs_[i].name == outputs_[j].name) return invalid("rules config: output '" + outputs_[i].name + "' is produced twice");
    }
  }

  // Declared outputs decide dtypes; each must be one this backend produces.
  if (args->n_outputs >= 0 && args->outputs != nullptr) {
    for (int32_t i = 0; i < args->n_outputs; ++i) {
      const irb_tensor& d = args->outputs[i];
      const std::string name = d.name != nullptr ? d.name : "";
      Output* o = nullptr;
      for (Output& cand : outputs_) o = cand.name == name ? &cand : o;
      if (o == nullptr) return invalid("declared output '" + name + "' is not produced by the rules backend (see rules.outputs)");
      if (!numeric(d.dtype) && d.dtype != IRB_DTYPE_BYTES) return invalid("declared output '" + name + "': unsupported dtype");
      if (o->pred == kNone && d.dtype != IRB_DTYPE_BYTES) return invalid("declared output '" + name + "' must be BYTES");
      if (o->has_default) {
        const bool text = !o->default_text.empty() || o->dtype == IRB_DTYPE_BYTES;
        if (text && d.dtype != IRB_DTYPE_BYTES) return invalid("output '" + name + "': a string default for a " + v2_name(d.dtype) + " output");
        uint8_t scratch[8];
        if (!text && (d.dtype == IRB_DTYPE_BYTES || !write_number(o->default_number, d.dtype, scratch))) {
          return invalid("output '" + name + "': the default does not fit " + v2_name(d.dtype));
        }
      }
      o->dtype = d.dtype;
    }
  }
  // Declared inputs: every binding must name one; the signature is the declaration.
  inputs_declared_ = args->n_inputs >= 0 && args->inputs != nullptr;
  if (inputs_declared_) {
    for (int32_t i = 0; i < args->n_inputs; ++i) {
      const irb_tensor& d = args->inputs[i];
      in_names_.emplace_back(d.name != nullptr ? d.name : "");
      in_shapes_.emplace_back(d.shape, d.shape + (d.ndim > 0 ? d.ndim : 0));
      if (!numeric(d.dtype) && d.dtype != IRB_DTYPE_BYTES) return invalid("declared input '" + in_names_.back() + "': unsupported dtype");
    }
    for (int32_t i = 0; i < args->n_inputs; ++i) {
      in_sig_.push_back(irb_tensor{in_names_[i].c_str(), args->inputs[i].dtype, static_cast<int32_t>(in_shapes_[i].size()),
                                   in_shapes_[i].data(), nullptr, 0});
    }
    for (const Binding& b : bindings_) {
      bool found = false;
      for (const std::string& n : in_names_) found = found || n == b.input;
      if (!found) return invalid("rules.bindings names input '" + b.input + "', which the model does not declare");
    }
    for (const std::string& n : in_names_) {
      bool bound = false;
      for (const Binding& b : bindings_) bound = bound || b.input == n;
      if (!bound && host_->log != nullptr) {
        host_->log(IRB_LOG_WARNING, "rules", ("model '" + model_ + "': input '" + n + "' is bound to no predicate and is ignored").c_str());
      }
    }
  }
  out_shape_ = -1;  // one value per row: row r of [N] or [N, k] inputs is one working memory, batching or not (DESIGN §10)
  for (const Output& o : outputs_) out_names_.push_back(o.name);
  for (size_t i = 0; i < outputs_.size(); ++i) {
    out_sig_.push_back(irb_tensor{out_names_[i].c_str(), outputs_[i].dtype, 1, &out_shape_, nullptr, 0});
  }
  describe_ = "rules (" + std::to_string(rs_.rules.size()) + " rules, " + std::to_string(rs_.alphas.size()) + " alpha memories)";
  return Status::Ok();
}

int32_t Instance::signature(int32_t outputs, irb_tensor* out, int32_t capacity) const {
  const std::vector<irb_tensor>& sig = outputs != 0 ? out_sig_ : in_sig_;
  if (outputs == 0 && !inputs_declared_) return -1;
  for (int32_t i = 0; i < capacity && i < static_cast<int32_t>(sig.size()); ++i) out[i] = sig[i];
  return static_cast<int32_t>(sig.size());
}

void Instance::default_row_output(Output& o, int64_t row) {
  o.is_default[row] = 1;
  o.values[row] = Val::number(o.default_number);
}

// The row's value of output `o` from the final working memory; an error when it does not fit.
Status Instance::read_row_output(Output& o, int64_t row) {
  const uint32_t fact = o.pred == kNone ? kNone : session_->newest(o.pred);
  if (fact == kNone) {
    if (!o.has_default && o.dtype != IRB_DTYPE_BYTES) {
      return Status(IR_ERROR_BACKEND, "output '" + o.name + "': no fact of its predicate and no default");
    }
    default_row_output(o, row);
    return Status::Ok();
  }
  if (session_->arity(fact) == 0) {
    return Status(IR_ERROR_BACKEND, "output '" + o.name + "': the newest fact of its predicate has no argument");
  }
  const Val v = session_->args(fact)[0];
  if ((o.dtype == IRB_DTYPE_BYTES) != (v.kind == Kind::kStr)) {
    return Status(IR_ERROR_BACKEND, "output '" + o.name + "' (" + v2_name(o.dtype) + ") cannot hold " +
                                                 (v.kind == Kind::kStr ? "the string \"" + std::string(session_->symbols().text(v.id)) + "\""
                                                                       : "the number " + std::to_string(v.num)));
  }
  uint8_t scratch[8];
  if (v.kind == Kind::kNum && !write_number(v.num, o.dtype, scratch)) {
    return Status(IR_ERROR_BACKEND, "output '" + o.name + "' (" + v2_name(o.dtype) + ") cannot hold " + std::to_string(v.num));
  }
  o.is_default[row] = 0;
  o.values[row] = v;
  return Status::Ok();
}

Status Instance::run_rows(const irb_batch* batch) {
  const int64_t rows = batch->rows;
  if (rows < 0) return invalid("negative row count");
  // Inputs -> sources, checked once per batch.
  sources_.resize(bindings_.size());
  for (size_t b = 0; b < bindings_.size(); ++b) {
    Source& s = sources_[b];
    s.tensor = nullptr;
    s.pred = bindings_[b].pred;
    for (int32_t i = 0; i < batch->n_inputs; ++i) {
      if (batch->inputs[i].name != nullptr && bindings_[b].input == batch->inputs[i].name) s.tensor = &batch->inputs[i];
    }
    if (s.tensor == nullptr) return invalid("missing input '" + bindings_[b].input + "' (bound to a predicate in rules.bindings)");
    const irb_tensor& t = *s.tensor;
    if (!numeric(t.dtype) && t.dtype != IRB_DTYPE_BYTES) return invalid("input '" + bindings_[b].input + "': unsupported dtype");
    uint64_t elements = 1;
    for (int32_t d = 0; d < t.ndim; ++d) {
      if (t.shape[d] < 0) return invalid("input '" + bindings_[b].input + "': negative dimension");
      elements *= static_cast<uint64_t>(t.shape[d]);
    }
    if (t.ndim < 1 || t.ndim > 2 || t.shape[0] != rows) {
      return invalid("input '" + bindings_[b].input + "': expected shape [N] or [N, k] with N = " + std::to_string(rows) + " rows");
    }
    s.k = t.ndim == 2 ? t.shape[1] : 1;
    if (t.dtype == IRB_DTYPE_BYTES) {
      s.offsets.clear();
      const auto* p = static_cast<const uint8_t*>(t.data);
      uint64_t off = 0;
      for (uint64_t e = 0; e < elements; ++e) {
        if (t.byte_size - off < 4) return invalid("input '" + bindings_[b].input + "': truncated BYTES data");
        const uint32_t len = static_cast<uint32_t>(p[off]) | (static_cast<uint32_t>(p[off + 1]) << 8) |
                             (static_cast<uint32_t>(p[off + 2]) << 16) | (static_cast<uint32_t>(p[off + 3]) << 24);
        s.offsets.push_back(off);
        off += 4;
        if (t.byte_size - off < len) return invalid("input '" + bindings_[b].input + "': truncated BYTES data");
        off += len;
      }
    } else if (t.byte_size != elements * dtype_size(t.dtype)) {
      return invalid("input '" + bindings_[b].input + "': byte size does not match its shape");
    }
  }

  session_->begin_batch();
  for (Output& o : outputs_) {
    o.values.assign(static_cast<size_t>(rows), Val{});
    o.is_default.assign(static_cast<size_t>(rows), 1);
    o.blob.clear();
  }
  row_failed_.assign(static_cast<size_t>(rows), 0);
  row_errors_.resize(static_cast<size_t>(rows));
  row_codes_.resize(static_cast<size_t>(rows));
  Output* fired_out = nullptr;
  Output* facts_out = nullptr;
  for (Output& o : outputs_) {
    if (o.name == "_fired" && o.pred == kNone) fired_out = &o;
    if (o.name == "_facts" && o.pred == kNone) facts_out = &o;
  }

  for (int64_t r = 0; r < rows; ++r) {
    session_->begin_row();
    for (const Source& s : sources_) {
      const irb_tensor& t = *s.tensor;
      args_.resize(static_cast<size_t>(s.k));
      for (int64_t j = 0; j < s.k; ++j) {
        const uint64_t e = static_cast<uint64_t>(r * s.k + j);
        if (t.dtype == IRB_DTYPE_BYTES) {
          const auto* p = static_cast<const uint8_t*>(t.data) + s.offsets[e];
          const uint32_t len = static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
                               (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
          args_[j] = Val::symbol(session_->intern(std::string_view(reinterpret_cast<const char*>(p + 4), len)));
        } else {
          args_[j] = Val::number(read_number(static_cast<const uint8_t*>(t.data) + e * dtype_size(t.dtype), t.dtype));
        }
      }
      session_->assert_fact(s.pred, args_.data(), static_cast<uint32_t>(args_.size()));
    }
    Status st = session_->run(max_iterations_);
    for (Output& o : outputs_) {
      if (!st.ok() || o.pred == kNone) break;
      st = read_row_output(o, r);
    }
    if (!st.ok()) {
      row_failed_[r] = 1;
      row_codes_[r] = st.code();
      row_errors_[r] = "row " + std::to_string(r) + ": " + st.message();
      for (Output& o : outputs_) default_row_output(o, r);
    }
    if (fired_out != nullptr) {
      text_.clear();
      for (size_t i = 0; i < session_->fired().size(); ++i) {
        if (i != 0) text_.push_back(',');
        text_.append(rs_.rules[session_->fired()[i]].name);
      }
      append_bytes(&fired_out->blob, text_);
    }
    if (facts_out != nullptr) {
      text_.assign("[");
      bool first = true;
      for (uint32_t f = 0; f < session_->fact_count(); ++f) {
        if (!session_->alive(f)) continue;
        text_.append(first ? "[" : ",[");
        first = false;
        json::dump_string(session_->symbols().text(session_->pred(f)), &text_);
        for (uint32_t a = 0; a < session_->arity(f); ++a) {
          text_.push_back(',');
          const Val& v = session_->args(f)[a];
          if (v.kind == Kind::kStr) {
            json::dump_string(session_->symbols().text(v.id), &text_);
          } else {
            json::dump_number(v.num, &text_);
          }
        }
        text_.push_back(']');
      }
      text_.push_back(']');
      append_bytes(&facts_out->blob, text_);
    }
    // BYTES outputs of rule predicates are serialized as rows complete: symbols of this row
    // stay valid until the next batch, but the text is cheap to copy now.
    for (Output& o : outputs_) {
      if (o.pred == kNone || o.dtype != IRB_DTYPE_BYTES) continue;
      if (o.is_default[r]) {
        append_bytes(&o.blob, o.default_text);
      } else {
        append_bytes(&o.blob, session_->symbols().text(o.values[r].id));
      }
    }
  }

  return Status::Ok();
}

irb_error* Instance::execute(const irb_batch* batch) {
  Status st = run_rows(batch);
  if (!st.ok()) return host_->error_new(st.code(), ("model '" + model_ + "': " + st.message()).c_str());
  const int64_t rows = batch->rows;
  const int64_t out_rows = rows;
  for (Output& o : outputs_) {
    int64_t shape[1] = {out_rows};
    void* data = nullptr;
    if (o.dtype == IRB_DTYPE_BYTES) {
      if (irb_error* err = host_->output_alloc(batch->sink, o.name.c_str(), o.dtype, 1, shape, o.blob.size(), &data)) return err;
      if (!o.blob.empty()) std::memcpy(data, o.blob.data(), o.blob.size());
      continue;
    }
    const size_t es = dtype_size(o.dtype);
    if (irb_error* err = host_->output_alloc(batch->sink, o.name.c_str(), o.dtype, 1, shape, static_cast<uint64_t>(rows) * es, &data)) {
      return err;
    }
    auto* p = static_cast<uint8_t*>(data);
    for (int64_t r = 0; r < rows; ++r) {
      const double v = o.is_default[r] ? o.default_number : o.values[r].num;
      if (!write_number(v, o.dtype, p + r * es)) std::memset(p + r * es, 0, es);
    }
  }
  // Failed rows fail their requests, one error per request (its first failed row). A host
  // without request_fail gets the whole batch failed instead.
  const bool can_fail_one = host_->struct_size >= offsetof(irb_host, request_fail) + sizeof(host_->request_fail) &&
                            host_->request_fail != nullptr;
  if (!can_fail_one) {
    for (int64_t r = 0; r < rows; ++r) {
      if (row_failed_[r]) return host_->error_new(row_codes_[r], ("model '" + model_ + "', " + row_errors_[r]).c_str());
    }
    return nullptr;
  }
  int64_t start = 0;
  for (int32_t q = 0; q < batch->n_requests; ++q) {
    const int64_t n = batch->request_rows[q];
    for (int64_t r = start; r < start + n && r < rows; ++r) {
      if (row_failed_[r]) {
        host_->request_fail(batch->sink, q, host_->error_new(row_codes_[r], ("model '" + model_ + "', " + row_errors_[r]).c_str()));
        break;
      }
    }
    start += n;
  }
  return nullptr;
}

// ---- the contract's entry points: no exception crosses them ----------------------------

irb_error* from_exception(const irb_host* host) {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return host->error_new(IRB_ERROR_RESOURCE_EXHAUSTED, "rules backend: out of memory");
  } catch (const std::exception& e) {
    return host->error_new(IRB_ERROR_INTERNAL, (std::string("rules backend: internal error: ") + e.what()).c_str());
  } catch (...) {
    return host->error_new(IRB_ERROR_INTERNAL, "rules backend: internal error");
  }
}

irb_error* rules_create(const irb_host* host, const irb_create_args* args, void** state) {
  try {
    auto inst = std::make_unique<Instance>(host);
    Status st = inst->configure(args);
    if (!st.ok()) return host->error_new(st.code(), st.message().c_str());
    *state = inst.release();
    return nullptr;
  } catch (...) {
    return from_exception(host);
  }
}

int32_t rules_signature(void* state, int32_t outputs, irb_tensor* out, int32_t capacity) {
  return static_cast<Instance*>(state)->signature(outputs, out, capacity);
}

irb_error* rules_execute(void* state, const irb_batch* batch) {
  auto* inst = static_cast<Instance*>(state);
  try {
    return inst->execute(batch);
  } catch (...) {
    return from_exception(inst->host());
  }
}

void rules_destroy(void* state) { delete static_cast<Instance*>(state); }

const char* rules_describe(void* state) { return static_cast<Instance*>(state)->describe(); }

const irb_backend kRulesBackend = {
    sizeof(irb_backend), IRB_ABI_VERSION, "rules", rules_create, rules_signature, nullptr, rules_execute, rules_destroy, rules_describe,
};

}  // namespace

const irb_backend* builtin_rules_backend() { return &kRulesBackend; }

}  // namespace ir
