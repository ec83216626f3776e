// The rules backend alone (no Python, no engine queue): a policy over 5 input facts per row,
// in batches of 64 and of 1. The file is either a backend config (bench/native/rules_policy.json,
// inputs generated here: score, country, amount, velocity, age) or {"config": ..., "inputs":
// {name: {"dtype": "FP64"|"BYTES", "shape": [...], "data": [...]}}} (rows taken in turn).
// Build: g++ -O2 -std=c++17 -Icsrc/include csrc/common/json.cpp csrc/rules/*.cpp csrc/backends/rules.cpp
//          bench/native/rules.cpp -o build/rules_bench  (one line)
// Run:   build/rules_bench [bench/native/rules_policy.json] [seconds per size]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../../csrc/backends/rules.hpp"
#include "../../csrc/common/json.hpp"

namespace {

// The host's irb_error and irb_sink stay opaque (the engine defines them when linked in).
struct Err {
  std::string message;
};
struct Sink {
  std::vector<std::vector<uint8_t>> buffers;
  size_t used = 0;
  size_t failed = 0;
};

irb_error* error_new(int32_t, const char* m) { return reinterpret_cast<irb_error*>(new Err{m != nullptr ? m : ""}); }
void log_fn(int32_t, const char*, const char*) {}
irb_error* alloc(irb_sink* sink, const char*, int32_t, int32_t, const int64_t*, uint64_t size, void** data) {
  Sink* s = reinterpret_cast<Sink*>(sink);
  if (s->used == s->buffers.size()) s->buffers.emplace_back();
  auto& b = s->buffers[s->used++];
  b.resize(size + 1);
  *data = b.data();
  return nullptr;
}
void request_fail(irb_sink* sink, int32_t, irb_error* e) {
  ++reinterpret_cast<Sink*>(sink)->failed;
  delete reinterpret_cast<Err*>(e);
}
const irb_host kHost = {sizeof(irb_host), IRB_ABI_VERSION, error_new, log_fn, alloc, nullptr, nullptr, request_fail};

uint64_t lcg(uint64_t* s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 33;
}

struct Inputs {
  std::vector<double> score, amount, velocity, age;
  std::vector<uint8_t> country;
  std::vector<int64_t> shape2, shape1;
  std::vector<irb_tensor> tensors;
};

// Rows [lo, lo + rows) of the inputs given in the file.
struct Given {
  std::vector<std::string> names;
  std::vector<std::vector<double>> numbers;  // per input, flattened
  std::vector<std::vector<std::string>> strings;
  std::vector<int64_t> width;  // elements per row
  int64_t rows = 0;
};

struct Slice {
  std::vector<std::vector<uint8_t>> data;
  std::vector<std::vector<int64_t>> shapes;
  std::vector<irb_tensor> tensors;
};

Slice slice(const Given& g, int64_t lo, int64_t rows) {
  Slice s;
  for (size_t i = 0; i < g.names.size(); ++i) {
    std::vector<uint8_t> bytes;
    const int64_t w = g.width[i];
    for (int64_t e = lo * w; e < (lo + rows) * w; ++e) {
      if (g.strings[i].empty()) {
        const double d = g.numbers[i][static_cast<size_t>(e)];
        const auto* p = reinterpret_cast<const uint8_t*>(&d);
        bytes.insert(bytes.end(), p, p + 8);
      } else {
        const std::string& t = g.strings[i][static_cast<size_t>(e)];
        const auto n = static_cast<uint32_t>(t.size());
        for (int k = 0; k < 4; ++k) bytes.push_back(static_cast<uint8_t>(n >> (8 * k)));
        bytes.insert(bytes.end(), t.begin(), t.end());
      }
    }
    s.data.push_back(std::move(bytes));
    s.shapes.push_back(w == 1 ? std::vector<int64_t>{rows} : std::vector<int64_t>{rows, w});
  }
  for (size_t i = 0; i < g.names.size(); ++i) {
    s.tensors.push_back({g.names[i].c_str(), g.strings[i].empty() ? IRB_DTYPE_FLOAT64 : IRB_DTYPE_BYTES,
                         static_cast<int32_t>(s.shapes[i].size()), s.shapes[i].data(), s.data[i].data(), s.data[i].size()});
  }
  return s;
}

Inputs make_inputs(int64_t rows, uint64_t seed) {
  static const char* kCountries[] = {"US", "FR", "NG", "RU", "DE", "BR", "KP", "GB"};
  Inputs in;
  for (int64_t r = 0; r < rows; ++r) {
    const double fraud = static_cast<double>(lcg(&seed) % 1000) / 1000.0;
    in.score.push_back(1.0 - fraud);
    in.score.push_back(fraud);
    in.amount.push_back(static_cast<double>(lcg(&seed) % 200000) / 3.0);
    in.velocity.push_back(static_cast<double>(lcg(&seed) % 10));
    in.age.push_back(static_cast<double>(lcg(&seed) % 400));
    const char* c = kCountries[lcg(&seed) % 8];
    const uint32_t n = static_cast<uint32_t>(std::strlen(c));
    for (int i = 0; i < 4; ++i) in.country.push_back(static_cast<uint8_t>(n >> (8 * i)));
    in.country.insert(in.country.end(), c, c + n);
  }
  in.shape2 = {rows, 2};
  in.shape1 = {rows};
  in.tensors = {{"score", IRB_DTYPE_FLOAT64, 2, in.shape2.data(), in.score.data(), in.score.size() * 8},
                {"country", IRB_DTYPE_BYTES, 1, in.shape1.data(), in.country.data(), in.country.size()},
                {"amount", IRB_DTYPE_FLOAT64, 1, in.shape1.data(), in.amount.data(), in.amount.size() * 8},
                {"velocity", IRB_DTYPE_FLOAT64, 1, in.shape1.data(), in.velocity.data(), in.velocity.size() * 8},
                {"age", IRB_DTYPE_FLOAT64, 1, in.shape1.data(), in.age.data(), in.age.size() * 8}};
  return in;
}

}  // namespace

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : "bench/native/rules_policy.json";
  const double seconds = argc > 2 ? std::atof(argv[2]) : 2.0;
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string config = ss.str();
  ir::json::Value doc;
  if (!ir::json::parse(config, &doc).ok()) {
    std::fprintf(stderr, "%s: not JSON\n", path);
    return 1;
  }
  Given given;
  if (const ir::json::Value* cfg = doc.find("config"); cfg != nullptr) {
    config = ir::json::dump(*cfg);
    for (const auto& [name, t] : doc.find("inputs")->members()) {
      given.names.push_back(name);
      given.numbers.emplace_back();
      given.strings.emplace_back();
      const auto& shape = t.find("shape")->items();
      given.rows = shape[0].as_int();
      given.width.push_back(shape.size() > 1 ? shape[1].as_int() : 1);
      for (const auto& v : t.find("data")->items()) {
        if (v.is_string()) {
          given.strings.back().push_back(v.as_string());
        } else {
          given.numbers.back().push_back(v.as_number());
        }
      }
    }
  }
  const irb_backend* b = ir::builtin_rules_backend();
  irb_create_args args{};
  args.struct_size = sizeof(args);
  args.model_name = "policy";
  args.config_json = config.c_str();
  args.n_inputs = -1;
  args.n_outputs = -1;
  args.instances = 1;
  args.max_batch_rows = 64;
  void* state = nullptr;
  if (irb_error* e = b->create(&kHost, &args, &state)) {
    std::fprintf(stderr, "create: %s\n", reinterpret_cast<Err*>(e)->message.c_str());
    delete reinterpret_cast<Err*>(e);
    return 1;
  }
  std::printf("%s\n", b->describe(state));
  for (int64_t rows : {64, 1}) {
    // Batches over the given rows in turn (or one generated batch).
    std::vector<Slice> slices;
    Inputs in = make_inputs(rows, 42);
    if (given.rows > 0) {
      for (int64_t lo = 0; lo + rows <= given.rows; lo += rows) slices.push_back(slice(given, lo, rows));
    }
    std::vector<int64_t> request_rows(static_cast<size_t>(rows), 1);
    Sink sink;
    irb_batch batch{sizeof(irb_batch), static_cast<int32_t>(in.tensors.size()), in.tensors.data(), rows, static_cast<int32_t>(rows),
                    request_rows.data(), reinterpret_cast<irb_sink*>(&sink)};
    size_t next = 0;
    auto pick = [&]() {
      if (slices.empty()) return;
      const Slice& s = slices[next++ % slices.size()];
      batch.inputs = s.tensors.data();
      batch.n_inputs = static_cast<int32_t>(s.tensors.size());
    };
    // Warm up, then time whole batches.
    for (int i = 0; i < 100; ++i) {
      pick();
      sink.used = 0;
      if (irb_error* e = b->execute(state, &batch)) {
        std::fprintf(stderr, "execute: %s\n", reinterpret_cast<Err*>(e)->message.c_str());
        delete reinterpret_cast<Err*>(e);
        return 1;
      }
    }
    uint64_t batches = 0;
    const auto t0 = std::chrono::steady_clock::now();
    double elapsed = 0.0;
    while (elapsed < seconds) {
      for (int i = 0; i < 50; ++i) {
        pick();
        sink.used = 0;
        delete reinterpret_cast<Err*>(b->execute(state, &batch));
      }
      batches += 50;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    const double n = static_cast<double>(batches * static_cast<uint64_t>(rows));
    std::printf("batch %3lld: %10.0f rows/s  %7.2f us/row  (%llu failed rows)\n", static_cast<long long>(rows), n / elapsed,
                elapsed / n * 1e6, static_cast<unsigned long long>(sink.failed));
  }
  b->destroy(state);
  return 0;
}
