// The rules backend alone (no Python, no engine queue): the 30-rule policy of
// bench/native/rules_policy.json over 5 input facts per row, in batches of 64 and of 1.
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

struct irb_error {
  std::string message;
};
struct irb_sink {
  std::vector<std::vector<uint8_t>> buffers;
  size_t used = 0;
  size_t fired = 0;
};

namespace {

irb_error* error_new(int32_t, const char* m) { return new irb_error{m != nullptr ? m : ""}; }
void log_fn(int32_t, const char*, const char*) {}
irb_error* alloc(irb_sink* s, const char*, int32_t, int32_t, const int64_t*, uint64_t size, void** data) {
  if (s->used == s->buffers.size()) s->buffers.emplace_back();
  auto& b = s->buffers[s->used++];
  b.resize(size + 1);
  *data = b.data();
  return nullptr;
}
void request_fail(irb_sink* s, int32_t, irb_error* e) {
  ++s->fired;
  delete e;
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
  const std::string config = ss.str();
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
    std::fprintf(stderr, "create: %s\n", e->message.c_str());
    delete e;
    return 1;
  }
  std::printf("%s\n", b->describe(state));
  for (int64_t rows : {64, 1}) {
    Inputs in = make_inputs(rows, 42);
    std::vector<int64_t> request_rows(static_cast<size_t>(rows), 1);
    irb_sink sink;
    irb_batch batch{sizeof(irb_batch), 5, in.tensors.data(), rows, static_cast<int32_t>(rows), request_rows.data(), &sink};
    // Warm up, then time whole batches.
    for (int i = 0; i < 100; ++i) {
      sink.used = 0;
      if (irb_error* e = b->execute(state, &batch)) {
        std::fprintf(stderr, "execute: %s\n", e->message.c_str());
        delete e;
        return 1;
      }
    }
    uint64_t batches = 0;
    const auto t0 = std::chrono::steady_clock::now();
    double elapsed = 0.0;
    while (elapsed < seconds) {
      for (int i = 0; i < 50; ++i) {
        sink.used = 0;
        delete b->execute(state, &batch);
      }
      batches += 50;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    const double n = static_cast<double>(batches * static_cast<uint64_t>(rows));
    std::printf("batch %3lld: %10.0f rows/s  %7.2f us/row  (%llu failed rows)\n", static_cast<long long>(rows), n / elapsed,
                elapsed / n * 1e6, static_cast<unsigned long long>(sink.fired));
  }
  b->destroy(state);
  return 0;
}
