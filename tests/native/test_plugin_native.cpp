// Drives the plugin loader (csrc/backends/plugin.cpp) and real plugins through the backend
// contract with no Python in the process (run under ASan, UBSan and LeakSanitizer by
// tests/sanitizers/run.sh): every refusal the loader owes (missing file, not a library, no
// entry symbol, another IRB_ABI_VERSION, a short table, a NULL member, an entry that fails or
// throws), one load per canonical path even under concurrent callers, and create / signature /
// execute / destroy of the identity, scaler and failing plugins against a recording host table;
// then the same plugins opened with ir_backend_open and run by the engine with its own host table.
// The plugins are compiled here, with this driver's sanitizers, from the repository root.
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../../csrc/backends/host.hpp"
#include "../../csrc/backends/plugin.hpp"
#include "check.hpp"

namespace fs = std::filesystem;

namespace {

#if defined(__SANITIZE_ADDRESS__)
const char* kSanitize = " -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1";
#else
const char* kSanitize = " -O2";
#endif

// ---- A recording host: errors are the engine's, outputs land in a TestSink ------------------

struct Output {
  std::string name;
  int32_t dtype = 0;
  std::vector<int64_t> shape;
  std::vector<char> bytes;
};

struct TestSink {
  std::vector<Output> outputs;
  std::vector<std::pair<int32_t, std::string>> failed;  // request, message
  std::vector<std::pair<irb_release_fn, void*>> releases;
};

TestSink* sink_of(irb_sink* sink) { return reinterpret_cast<TestSink*>(sink); }

std::atomic<int> g_logs{0};

void host_log(int32_t /*level*/, const char* /*backend*/, const char* /*message*/) { g_logs.fetch_add(1); }

Output& add(irb_sink* sink, const char* name, int32_t dtype, int32_t ndim, const int64_t* shape, uint64_t byte_size) {
  Output out;
  out.name = name;
  out.dtype = dtype;
  out.shape.assign(shape, shape + ndim);
  out.bytes.resize(byte_size);
  sink_of(sink)->outputs.push_back(std::move(out));
  return sink_of(sink)->outputs.back();
}

irb_error* host_alloc(irb_sink* sink, const char* name, int32_t dtype, int32_t ndim, const int64_t* shape, uint64_t byte_size, void** data) {
  *data = add(sink, name, dtype, ndim, shape, byte_size).bytes.data();
  return nullptr;
}

irb_error* host_copy(irb_sink* sink, const irb_tensor* t) {
  Output& out = add(sink, t->name, t->dtype, t->ndim, t->shape, t->byte_size);
  if (t->byte_size > 0) std::memcpy(out.bytes.data(), t->data, t->byte_size);
  return nullptr;
}

irb_error* host_adopt(irb_sink* sink, const irb_tensor* t, irb_release_fn release, void* owner) {
  host_copy(sink, t);
  sink_of(sink)->releases.emplace_back(release, owner);  // released after execute returns, as the engine may
  return nullptr;
}

void host_request_fail(irb_sink* sink, int32_t request, irb_error* error) {
  sink_of(sink)->failed.emplace_back(request, ir::take_backend_error(error).message());
}

const irb_host kHost = {sizeof(irb_host), IRB_ABI_VERSION, ir::make_backend_error, host_log, host_alloc, host_copy, host_adopt, host_request_fail};

// ---- Helpers ---------------------------------------------------------------------------------

bool contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return true;
  std::fprintf(stderr, "  expected '%s' in: %s\n", part.c_str(), text.c_str());
  return false;
}

std::string compile(const fs::path& dir, const std::string& source, const std::string& name, const std::string& defines = "") {
  const char* cxx = std::getenv("CXX");
  fs::path out = dir / ("lib" + name + ".so");
  std::string cmd = std::string(cxx != nullptr && *cxx ? cxx : "c++") + " -std=c++17 -fPIC -shared -fvisibility=hidden -Wall -Wextra" + kSanitize +
                    " -Icsrc/include " + defines + " " + source + " -o " + out.string();
  int rc = std::system(cmd.c_str());
  if (rc != 0) std::fprintf(stderr, "compile failed (%d): %s\n", rc, cmd.c_str());
  CHECK(rc == 0);
  return out.string();
}

ir::Status load(const std::string& path, const irb_backend** table) { return ir::load_plugin(path, &kHost, table); }

void expect_refusal(const std::string& path, ir_code code, const std::vector<std::string>& parts) {
  const irb_backend* table = reinterpret_cast<const irb_backend*>(&kHost);  // must be reset to NULL
  ir::Status status = load(path, &table);
  CHECK(!status.ok());
  CHECK(status.code() == code);
  CHECK(table == nullptr);
  for (const std::string& part : parts) CHECK(contains(status.message(), part));
  ir::Status again = load(path, &table);  // the same verdict, without loading again
  CHECK(again.code() == code);
  CHECK(again.message() == status.message());
}

struct Instance {
  const irb_backend* table;
  void* state = nullptr;
};

// Creates an instance with `config_json`; returns the status of create.
ir::Status create(const irb_backend* table, const char* config_json, Instance* instance) {
  irb_create_args args{};
  args.struct_size = sizeof(args);
  args.model_name = "m";
  args.config_json = config_json;
  args.n_inputs = -1;
  args.n_outputs = -1;
  args.instance = 0;
  args.instances = 1;
  args.max_batch_rows = 8;
  instance->table = table;
  return ir::take_backend_error(table->create(&kHost, &args, &instance->state));
}

// Runs one batch of `inputs` split into requests of `request_rows`; releases adopted buffers after.
ir::Status execute(const Instance& instance, const std::vector<irb_tensor>& inputs, std::vector<int64_t> request_rows, TestSink* sink) {
  irb_batch batch{};
  batch.struct_size = sizeof(batch);
  batch.n_inputs = static_cast<int32_t>(inputs.size());
  batch.inputs = inputs.data();
  batch.rows = 0;
  for (int64_t rows : request_rows) batch.rows += rows;
  batch.n_requests = static_cast<int32_t>(request_rows.size());
  batch.request_rows = request_rows.data();
  batch.sink = reinterpret_cast<irb_sink*>(sink);
  ir::Status status = ir::take_backend_error(instance.table->execute(instance.state, &batch));
  for (auto& [release, owner] : sink->releases) release(owner);
  sink->releases.clear();
  return status;
}

// ---- The checks ------------------------------------------------------------------------------

void refusals(const fs::path& dir) {
  expect_refusal((dir / "missing.so").string(), IR_ERROR_NOT_FOUND, {"missing.so", "not found"});
  expect_refusal(dir.string(), IR_ERROR_NOT_FOUND, {"not a file"});
  fs::path text = dir / "libtext.so";
  std::ofstream(text) << "not a shared library\n";
  {
    const irb_backend* table = nullptr;
    ir::Status status = load(text.string(), &table);
    CHECK(status.code() == IR_ERROR_UNAVAILABLE);
    CHECK(contains(status.message(), "cannot be loaded"));
    CHECK(contains(status.message(), "libtext.so"));  // dlerror's text names the file
  }
  const std::string src = "tests/plugins/broken_plugin.cpp";
  expect_refusal(compile(dir, src, "abi", "-DBROKEN_ABI"), IR_ERROR_INVALID_ARGUMENT,
                 {"libabi.so", "IRB_ABI_VERSION " + std::to_string(IRB_ABI_VERSION + 1), "IRB_ABI_VERSION " + std::to_string(IRB_ABI_VERSION)});
  expect_refusal(compile(dir, src, "noentry", "-DBROKEN_NO_ENTRY"), IR_ERROR_INVALID_ARGUMENT, {"libnoentry.so", "irb_plugin_init"});
  expect_refusal(compile(dir, src, "noexec", "-DBROKEN_NO_EXECUTE"), IR_ERROR_INVALID_ARGUMENT, {"'execute'"});
  expect_refusal(compile(dir, src, "small", "-DBROKEN_SMALL_TABLE"), IR_ERROR_INVALID_ARGUMENT, {"struct_size", "needs at least"});
  expect_refusal(compile(dir, src, "initerr", "-DBROKEN_INIT_ERROR"), IR_ERROR_INVALID_ARGUMENT, {"libiniterr.so", "irb_plugin_init failed", "no licence key in BROKEN_LICENCE"});
  expect_refusal(compile(dir, src, "throws", "-DBROKEN_INIT_THROWS"), IR_ERROR_INVALID_ARGUMENT, {"exception"});
  // Without a macro the same source is a valid plugin: each refusal above is its macro's doing.
  const irb_backend* table = nullptr;
  CHECK(load(compile(dir, src, "unbroken"), &table).ok());
  CHECK(table != nullptr && std::strcmp(table->name, "broken") == 0);
  CHECK(table != nullptr && table->describe != nullptr && table->struct_size == sizeof(irb_backend));
  // Within one IRB_ABI_VERSION tables grow at the end: an older, shorter table loads with the
  // members it lacks read as NULL; a newer, longer one loads as far as this host knows.
  const irb_backend* old_table = nullptr;
  CHECK(load(compile(dir, src, "old", "-DOLD_TABLE"), &old_table).ok());
  CHECK(old_table != nullptr && old_table->describe == nullptr && old_table->execute != nullptr);
  CHECK(old_table != nullptr && old_table->struct_size == offsetof(irb_backend, describe));
  const irb_backend* future = nullptr;
  CHECK(load(compile(dir, src, "future", "-DFUTURE_TABLE"), &future).ok());
  CHECK(future != nullptr && std::strcmp(future->name, "future") == 0 && future->describe != nullptr);
  CHECK(future != nullptr && future->struct_size == sizeof(irb_backend));
}

void loads_once(const fs::path& dir, const std::string& identity) {
  int before = g_logs.load();
  const irb_backend* a = nullptr;
  const irb_backend* b = nullptr;
  const irb_backend* c = nullptr;
  CHECK(load(identity, &a).ok());
  CHECK(load(identity, &b).ok());
  fs::path link = dir / "liblink.so";
  fs::create_symlink(identity, link);
  CHECK(load(link.string(), &c).ok());
  CHECK(a != nullptr && a == b && b == c);
  CHECK(g_logs.load() - before == 1);  // the entry logs once per call: one load
  CHECK(a != nullptr && a->struct_size == sizeof(irb_backend) && a->abi_version == IRB_ABI_VERSION);

  // Eight threads load a library nobody loaded yet, at once: one load, one table.
  fs::path fresh = dir / "libfresh.so";
  fs::copy_file(identity, fresh);
  before = g_logs.load();
  std::vector<const irb_backend*> tables(8, nullptr);
  std::atomic<int> ok{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (size_t i = 0; i < tables.size(); ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      if (load(fresh.string(), &tables[i]).ok()) ok.fetch_add(1);
    });
  }
  go.store(true);
  for (auto& t : threads) t.join();
  CHECK(ok.load() == 8);
  CHECK(g_logs.load() - before == 1);
  for (const irb_backend* t : tables) CHECK(t == tables[0] && t != a);  // another file, another library
}

void identity_modes(const std::string& identity) {
  const irb_backend* table = nullptr;
  CHECK(load(identity, &table).ok());
  if (table == nullptr) return;
  const float x[6] = {1, 2, 3, 4, 5, 6};
  const int64_t x_shape[2] = {3, 2};
  const int64_t ids[3] = {7, 8, 9};
  const int64_t ids_shape[1] = {3};
  std::vector<irb_tensor> inputs = {{"x", IRB_DTYPE_FLOAT32, 2, x_shape, x, sizeof x}, {"ids", IRB_DTYPE_INT64, 1, ids_shape, ids, sizeof ids}};
  for (const char* config : {"{}", "{\"mode\": \"alloc\"}", "{\"mode\": \"adopt\"}"}) {
    Instance instance{table};
    CHECK(create(table, config, &instance).ok());
    CHECK(table->signature(instance.state, 0, nullptr, 0) == -1);
    CHECK(std::strstr(table->describe(instance.state), "identity plugin") != nullptr);
    for (int round = 0; round < 3; ++round) {
      TestSink sink;
      CHECK(execute(instance, inputs, {1, 2}, &sink).ok());
      CHECK(sink.outputs.size() == 2);
      if (sink.outputs.size() != 2) continue;
      CHECK(sink.outputs[0].name == "x" && sink.outputs[0].dtype == IRB_DTYPE_FLOAT32);
      CHECK((sink.outputs[0].shape == std::vector<int64_t>{3, 2}));
      CHECK(std::memcmp(sink.outputs[0].bytes.data(), x, sizeof x) == 0);
      CHECK(sink.outputs[1].name == "ids" && std::memcmp(sink.outputs[1].bytes.data(), ids, sizeof ids) == 0);
    }
    table->destroy(instance.state);
  }
}

void scaler(const fs::path& dir) {
  const irb_backend* table = nullptr;
  CHECK(load(compile(dir, "examples/plugins/scaler.cpp", "scaler"), &table).ok());
  if (table == nullptr) return;
  CHECK(std::strcmp(table->name, "scaler") == 0);
  Instance instance{table};
  // Unknown keys and nested values are skipped.
  const char* config = R"({"note": {"a": [1, {"b": null}], "c": "x,]"}, "mean": [1.0, -2, 0.5e1], "std": [2, 0.5, 1], "clip": 3, "flag": true})";
  CHECK(create(table, config, &instance).ok());
  irb_tensor sig[2];
  CHECK(table->signature(instance.state, 0, sig, 2) == 1);
  CHECK(std::strcmp(sig[0].name, "x") == 0 && sig[0].dtype == IRB_DTYPE_FLOAT32 && sig[0].ndim == 2 && sig[0].shape[0] == -1 && sig[0].shape[1] == 3);
  CHECK(table->signature(instance.state, 1, sig, 2) == 1);
  CHECK(std::strcmp(sig[0].name, "y") == 0 && sig[0].shape[1] == 3);
  CHECK(contains(table->describe(instance.state), "3 features"));
  const float x[6] = {3, -2, 5, 100, -1, 4};
  const int64_t shape[2] = {2, 3};
  TestSink sink;
  CHECK(execute(instance, {{"x", IRB_DTYPE_FLOAT32, 2, shape, x, sizeof x}}, {2}, &sink).ok());
  CHECK(sink.outputs.size() == 1);
  if (sink.outputs.size() == 1) {
    const float* y = reinterpret_cast<const float*>(sink.outputs[0].bytes.data());
    const float expected[6] = {1, 0, 0, 3 /* 49.5 clipped */, 2, -1};
    for (int i = 0; i < 6; ++i) CHECK(std::fabs(y[i] - expected[i]) < 1e-6f);
    CHECK(sink.outputs[0].name == "y");
  }
  // A tensor of the wrong width is refused by execute, not read out of bounds.
  const int64_t wide[2] = {1, 6};
  TestSink refused;
  ir::Status status = execute(instance, {{"x", IRB_DTYPE_FLOAT32, 2, wide, x, sizeof x}}, {1}, &refused);
  CHECK(status.code() == IR_ERROR_INVALID_ARGUMENT && contains(status.message(), "[rows, 3]"));
  table->destroy(instance.state);

  struct Bad {
    const char* config;
    const char* part;
  };
  for (const Bad& bad : {Bad{"{}", "\"mean\" is required"}, Bad{R"({"mean": [1, 2], "std": [1]})", "\"std\" has 1 numbers"},
                         Bad{R"({"mean": [1, 2], "std": [1, 0]})", "std[1] must be a positive"}, Bad{R"({"mean": [1, "a"]})", "\"mean\" must be a number"},
                         Bad{R"({"mean": [1], "std": [1])", "expected ',' or '}'"}, Bad{"[1]", "not a JSON object"}}) {
    Instance failed{table};
    ir::Status st = create(table, bad.config, &failed);
    CHECK(st.code() == IR_ERROR_INVALID_ARGUMENT);
    CHECK(contains(st.message(), bad.part));
  }
}

void failing(const fs::path& dir) {
  const irb_backend* table = nullptr;
  CHECK(load(compile(dir, "tests/plugins/failing_plugin.cpp", "failing"), &table).ok());
  if (table == nullptr) return;
  Instance instance{table};
  CHECK(create(table, "{}", &instance).ok());
  const int64_t shape[2] = {3, 1};
  const float good[3] = {1, 2, 3};
  const float negative[3] = {1, -2, 3};
  const float nan[3] = {1, NAN, 3};
  TestSink ok;
  CHECK(execute(instance, {{"x", IRB_DTYPE_FLOAT32, 2, shape, good, sizeof good}}, {1, 2}, &ok).ok());
  CHECK(ok.outputs.size() == 1 && ok.failed.empty());
  TestSink bad;
  ir::Status status = execute(instance, {{"x", IRB_DTYPE_FLOAT32, 2, shape, negative, sizeof negative}}, {1, 2}, &bad);
  CHECK(status.code() == IR_ERROR_BACKEND && contains(status.message(), "negative value -2 at row 1"));
  TestSink partial;  // rows 0 | 1, 2: the second request holds the NaN and fails alone
  CHECK(execute(instance, {{"x", IRB_DTYPE_FLOAT32, 2, shape, nan, sizeof nan}}, {1, 2}, &partial).ok());
  CHECK(partial.outputs.size() == 1);
  CHECK(partial.failed.size() == 1 && partial.failed[0].first == 1 && contains(partial.failed[0].second, "NaN"));
  table->destroy(instance.state);
}

// ---- Through the engine: ir_backend_open, the real host table and its sink -----------------

ir_backend* open_plugin(const std::string& library, const char* config, int32_t instances) {
  ir_backend_options o{};
  o.struct_size = sizeof(o);
  o.kind = "plugin";
  o.library = library.c_str();
  o.model_name = "plugged";
  o.config_json = config;
  o.n_inputs = -1;
  o.n_outputs = -1;
  o.instances = instances;
  o.max_batch_rows = 8;
  ir_backend* backend = nullptr;
  ir_error* err = ir_backend_open(&o, &backend);
  if (err != nullptr) std::fprintf(stderr, "ir_backend_open: %s\n", ir_error_message(err));
  CHECK(err == nullptr);
  ir_error_free(err);
  return backend;
}

ir_model* add_native(ir_engine* engine, const char* name, ir_backend* backend, const ir_tensor* sig, int32_t instances, int64_t delay_us) {
  ir_model_config cfg = base_config(name, IR_BACKEND_NATIVE, sig);
  cfg.instances = instances;
  cfg.batching = 1;
  cfg.max_batch_size = 8;
  cfg.max_queue_delay_us = delay_us;
  cfg.native = backend;
  cfg.n_outputs = -1;  // the outputs are the plugin's to name
  ir_model* model = nullptr;
  ir_error* err = ir_engine_add_model(engine, &cfg, &model);
  CHECK(err == nullptr);
  if (err != nullptr) {
    std::fprintf(stderr, "ir_engine_add_model: %s\n", ir_error_message(err));
    ir_backend_free(backend);
  }
  ir_error_free(err);
  return model;
}

// The identity plugin handing its outputs over by output_adopt: every buffer is released by the
// engine exactly once (LeakSanitizer sees any that is not), from two instances at once.
void engine_runs_an_adopting_plugin(const std::string& identity) {
  ir_engine* engine = nullptr;
  CHECK(ir_engine_create(&engine) == nullptr);
  ir_backend* backend = open_plugin(identity, "{\"mode\": \"adopt\"}", 2);
  if (backend == nullptr) return ir_engine_destroy(engine);
  CHECK(std::strstr(ir_backend_info(backend), "output_adopt") != nullptr);
  CHECK(ir_backend_tensor_count(backend, 0) == -1);
  int64_t sig_shape[] = {-1, 3};
  ir_tensor sig{"x", IR_DTYPE_FLOAT32, 2, sig_shape, nullptr, 0};
  ir_model* model = add_native(engine, "adopting", backend, &sig, 2, 200);
  constexpr int kRequests = 400;
  std::vector<std::vector<float>> data(kRequests, std::vector<float>(3));
  std::thread submitter([&] {
    int64_t shape[] = {1, 3};
    for (int id = 0; id < kRequests; ++id) {
      data[id] = {static_cast<float>(id), 1.5f, -2.0f};
      ir_tensor in{"x", IR_DTYPE_FLOAT32, 2, shape, data[id].data(), 12};
      ir_error* err = ir_model_submit(model, static_cast<uint64_t>(id), &in, 1, 0, 0, 0);
      CHECK(err == nullptr);
      ir_error_free(err);
    }
  });
  int seen = 0, failed = 0;
  ir_completion done[64];
  while (seen < kRequests) {
    size_t n = ir_engine_wait(engine, 5000000, done, 64);
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i, ++seen) {
      if (done[i].error != nullptr) {
        std::fprintf(stderr, "  request failed: %s\n", ir_error_message(done[i].error));
        ++failed;
        ir_error_free(done[i].error);
        continue;
      }
      ir_tensor out[2];
      CHECK(ir_response_describe(done[i].response, out, 2) == 1);
      const float* v = static_cast<const float*>(out[0].data);
      CHECK(v[0] == static_cast<float>(done[i].cookie) && v[1] == 1.5f && v[2] == -2.0f);
      ir_response_release(done[i].response);
    }
  }
  submitter.join();
  CHECK(seen == kRequests && failed == 0);
  ir_model_release(model);
  ir_engine_destroy(engine);
}

// A batch error fails that batch's requests only; request_fail fails one request of a batch.
void engine_confines_plugin_failures(const std::string& failing) {
  ir_engine* engine = nullptr;
  CHECK(ir_engine_create(&engine) == nullptr);
  ir_backend* backend = open_plugin(failing, "{}", 1);
  if (backend == nullptr) return ir_engine_destroy(engine);
  int64_t sig_shape[] = {-1, 1};
  ir_tensor sig{"x", IR_DTYPE_FLOAT32, 2, sig_shape, nullptr, 0};
  ir_model* model = add_native(engine, "failing", backend, &sig, 1, 50000);  // 50 ms: each wave is one batch
  struct Wave {
    std::vector<float> values;
    std::vector<bool> ok;
  };
  const std::vector<Wave> waves = {{{1, -1, 2}, {false, false, false}}, {{1, NAN, 2}, {true, false, true}}, {{3, 4}, {true, true}}};
  for (const Wave& wave : waves) {
    int64_t shape[] = {1, 1};
    std::vector<float> values = wave.values;
    for (size_t i = 0; i < values.size(); ++i) {
      ir_tensor in{"x", IR_DTYPE_FLOAT32, 2, shape, &values[i], 4};
      ir_error* err = ir_model_submit(model, i, &in, 1, 0, 0, 0);
      CHECK(err == nullptr);
      ir_error_free(err);
    }
    size_t seen = 0;
    ir_completion done[8];
    while (seen < values.size()) {
      size_t n = ir_engine_wait(engine, 5000000, done, 8);
      if (n == 0) break;
      for (size_t i = 0; i < n; ++i, ++seen) {
        size_t k = done[i].cookie;
        CHECK(k < values.size() && (done[i].error == nullptr) == wave.ok[k]);
        if (done[i].error != nullptr) {
          CHECK(ir_error_code(done[i].error) == IR_ERROR_BACKEND);
          ir_error_free(done[i].error);
        } else {
          ir_tensor out[1];
          CHECK(ir_response_describe(done[i].response, out, 1) == 1);
          CHECK(*static_cast<const float*>(out[0].data) == values[k]);
          ir_response_release(done[i].response);
        }
      }
    }
    CHECK(seen == values.size());
  }
  ir_model_release(model);
  ir_engine_destroy(engine);
}

}  // namespace

int main() {
  char pattern[] = "/tmp/ir-plugin-native-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) return 1;
  fs::path dir(pattern);
  std::string identity = compile(dir, "tests/plugins/identity_plugin.cpp", "identity");
  refusals(dir);
  loads_once(dir, identity);
  identity_modes(identity);
  scaler(dir);
  failing(dir);
  // Fresh copies: a library keeps the host table of its first load, and the loads above used the
  // recording one.
  fs::copy_file(identity, dir / "libidentity_engine.so");
  fs::copy_file(dir / "libfailing.so", dir / "libfailing_engine.so");
  engine_runs_an_adopting_plugin((dir / "libidentity_engine.so").string());
  engine_confines_plugin_failures((dir / "libfailing_engine.so").string());
  fs::remove_all(dir);
  int failures = ir_test::failures();
  std::fprintf(stderr, "test_plugin_native: %s (%d failure%s)\n", failures == 0 ? "ok" : "FAILED", failures, failures == 1 ? "" : "s");
  return failures;
}
