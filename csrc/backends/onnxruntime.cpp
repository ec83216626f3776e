// The native ONNX Runtime backend: sessions run on the engine's instance threads through the
// ONNX Runtime C API of a shared library loaded at run time (the one the onnxruntime wheel
// ships), so a batch never needs the Python interpreter. One session per instance.
//
// Config (JSON): {"library": path, "model_path": path, "intra_op_threads": 1,
// "inter_op_threads": 1, "graph_optimization_level": 0|1|2|99, "parallel_execution": false}.
#include <dlfcn.h>
#include <sys/stat.h>

#include <map>
#include <memory>
#include <new>
#include <string>
#include <mutex>
#include <utility>
#include <vector>

#include "../common/json.hpp"
#include "../engine/dtype.hpp"
#include "backend.hpp"
#include "host.hpp"
#include "ort_api.hpp"

namespace ir {
namespace {

// One loaded copy of ONNX Runtime: the function table, one environment, the CPU memory
// description. Never unloaded: sessions may outlive any one engine, and unloading ONNX
// Runtime while its thread pools exist is unsafe.
class OrtLibrary {
 public:
  static Status Load(const std::string& path, const OrtLibrary** out) {
    static std::mutex mu;
    // Never destroyed, like the libraries it holds (no exit-time teardown race with threads
    // still using a session; and everything loaded stays reachable, not leaked).
    static auto& loaded = *new std::map<std::string, OrtLibrary*>();
    std::lock_guard<std::mutex> lock(mu);
    auto it = loaded.find(path);
    if (it != loaded.end()) {
      *out = it->second;
      return Status::Ok();
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return Status(IR_ERROR_NOT_FOUND, "onnxruntime library not found: " + path);
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) return Status(IR_ERROR_UNAVAILABLE, std::string("cannot load the onnxruntime library: ") + ::dlerror());
    auto get_base = reinterpret_cast<ort::GetApiBaseFn>(::dlsym(handle, "OrtGetApiBase"));
    const ort::ApiBase* base = get_base != nullptr ? get_base() : nullptr;
    const void* api = base != nullptr ? base->get_api(ort::kApiVersion) : nullptr;
    if (api == nullptr) {
      ::dlclose(handle);
      return Status(IR_ERROR_UNAVAILABLE, path + " does not provide ONNX Runtime C API version " + std::to_string(ort::kApiVersion) + " (ONNX Runtime 1.13 or newer is needed)");
    }
    std::unique_ptr<OrtLibrary> lib(new OrtLibrary(static_cast<const void* const*>(api), base->get_version_string()));
    Status status = lib->init();
    if (!status.ok()) return status;  // the handle stays open: ONNX Runtime may have started threads
    *out = loaded[path] = lib.release();
    return Status::Ok();
  }

  template <typename Fn>
  [[nodiscard]] Fn fn(ort::Slot slot) const {
    return reinterpret_cast<Fn>(const_cast<void*>(table_[slot]));
  }

  // Turns an ONNX Runtime status into ours (and frees it). NULL means success. `context`
  // is a C string so that the success path (every call of every batch) builds nothing.
  Status check(ort::Status* status, ir_code code, const char* context) const {
    if (status == nullptr) return Status::Ok();
    std::string message = std::string(context) + ": " + fn<ort::GetErrorMessageFn>(ort::kGetErrorMessage)(status);
    release(ort::kReleaseStatus, status);
    return Status(code, message);
  }

  template <typename T>
  void release(ort::Slot slot, T* object) const {
    if (object != nullptr) fn<ort::ReleaseFn<T>>(slot)(object);
  }

  [[nodiscard]] const ort::Env* env() const { return env_; }
  [[nodiscard]] const ort::MemoryInfo* cpu() const { return cpu_; }
  [[nodiscard]] const std::string& version() const { return version_; }

 private:
  OrtLibrary(const void* const* table, const char* version) : table_(table), version_(version != nullptr ? version : "?") {}

  Status init() {
    // The slots are ours, not ONNX Runtime's header: prove the first ones before relying
    // on the table (a status made with a code and a message must read back as such).
    ort::Status* probe = fn<ort::CreateStatusFn>(ort::kCreateStatus)(ort::kErrorInvalidArgument, "infer-runtime probe");
    bool ok = probe != nullptr && fn<ort::GetErrorCodeFn>(ort::kGetErrorCode)(probe) == ort::kErrorInvalidArgument &&
              std::string(fn<ort::GetErrorMessageFn>(ort::kGetErrorMessage)(probe)) == "infer-runtime probe";
    release(ort::kReleaseStatus, probe);
    if (!ok) return Status(IR_ERROR_UNAVAILABLE, "the onnxruntime library's function table is not laid out as expected");
    IR_RETURN_IF_ERROR(check(fn<ort::CreateEnvFn>(ort::kCreateEnv)(ort::kLoggingWarning, "infer-runtime", &env_), IR_ERROR_UNAVAILABLE, "onnxruntime environment"));
    return check(fn<ort::CreateCpuMemoryInfoFn>(ort::kCreateCpuMemoryInfo)(ort::kArenaAllocator, ort::kMemTypeDefault, &cpu_), IR_ERROR_UNAVAILABLE, "onnxruntime memory info");
  }

  const void* const* table_;
  std::string version_;
  ort::Env* env_ = nullptr;
  ort::MemoryInfo* cpu_ = nullptr;
};

// ONNX element types by ir_dtype code (index); 0 where ONNX Runtime has no counterpart.
constexpr int kElementTypes[] = {0, ort::kBool, ort::kUint8, ort::kUint16, ort::kUint32, ort::kUint64, ort::kInt8, ort::kInt16,
                                 ort::kInt32, ort::kInt64, ort::kFloat16, ort::kFloat, ort::kDouble};
constexpr int32_t kMappedDtypes = static_cast<int32_t>(sizeof(kElementTypes) / sizeof(kElementTypes[0]));
static_assert(IR_DTYPE_BOOL == 1 && IR_DTYPE_FLOAT64 == 12 && kMappedDtypes == IR_DTYPE_BYTES, "kElementTypes is indexed by ir_dtype");

int to_element_type(int32_t dtype) { return dtype > 0 && dtype < kMappedDtypes ? kElementTypes[dtype] : 0; }

// The engine dtype of an ONNX element type; 0 for those the engine does not carry.
int32_t to_ir_dtype(int element_type) {
  for (int32_t dtype = 1; dtype < kMappedDtypes; ++dtype) {
    if (kElementTypes[dtype] == element_type) return dtype;
  }
  return 0;
}

struct OnnxRuntimeOptions {
  std::string library;     // path of libonnxruntime
  std::string model_path;
  int32_t intra_op_threads = 1;
  int32_t inter_op_threads = 1;
  int32_t graph_optimization_level = 99;  // 0, 1, 2 or 99, as ONNX Runtime numbers them
  bool parallel_execution = false;
};

Status parse_options(const char* config_json, OnnxRuntimeOptions* o) {
  json::Value config;
  IR_RETURN_IF_ERROR(json::parse(config_json != nullptr ? config_json : "{}", &config));
  if (!config.is_object()) return Status(IR_ERROR_INVALID_ARGUMENT, "the onnxruntime config must be a JSON object");
  for (const auto& [key, value] : config.members()) {
    auto integer = [&](int32_t* out, int64_t lo, int64_t hi) {
      if (!value.is_integer() || value.as_int() < lo || value.as_int() > hi)
        return Status(IR_ERROR_INVALID_ARGUMENT, "onnxruntime option '" + key + "' must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
      *out = static_cast<int32_t>(value.as_int());
      return Status::Ok();
    };
    if (key == "library" || key == "model_path") {
      if (!value.is_string()) return Status(IR_ERROR_INVALID_ARGUMENT, "onnxruntime option '" + key + "' must be a string");
      (key == "library" ? o->library : o->model_path) = value.as_string();
    } else if (key == "intra_op_threads") {
      IR_RETURN_IF_ERROR(integer(&o->intra_op_threads, 0, 1024));
    } else if (key == "inter_op_threads") {
      IR_RETURN_IF_ERROR(integer(&o->inter_op_threads, 0, 1024));
    } else if (key == "graph_optimization_level") {
      IR_RETURN_IF_ERROR(integer(&o->graph_optimization_level, 0, 99));
      const int32_t level = o->graph_optimization_level;
      if (level != 0 && level != 1 && level != 2 && level != 99) return Status(IR_ERROR_INVALID_ARGUMENT, "graph_optimization_level must be 0, 1, 2 or 99");
    } else if (key == "parallel_execution") {
      if (!value.is_bool()) return Status(IR_ERROR_INVALID_ARGUMENT, "onnxruntime option 'parallel_execution' must be true or false");
      o->parallel_execution = value.as_bool();
    } else {
      return Status(IR_ERROR_INVALID_ARGUMENT, "unknown onnxruntime option '" + key + "'");
    }
  }
  if (o->library.empty() || o->model_path.empty()) return Status(IR_ERROR_INVALID_ARGUMENT, "the onnxruntime config needs 'library' and 'model_path'");
  return Status::Ok();
}

// One instance: a session, its signature, and the arrays Run takes, reused for every batch.
class Session {
 public:
  Session(const OrtLibrary* lib, const irb_host* host) : lib_(lib), host_(host) {}
  ~Session() { lib_->release(ort::kReleaseSession, session_); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Status open(const OnnxRuntimeOptions& o) {
    struct stat st {};
    if (::stat(o.model_path.c_str(), &st) != 0) return Status(IR_ERROR_NOT_FOUND, "model file not found: " + o.model_path);
    ort::SessionOptions* so = nullptr;
    IR_RETURN_IF_ERROR(lib_->check(lib_->fn<ort::CreateSessionOptionsFn>(ort::kCreateSessionOptions)(&so), IR_ERROR_INTERNAL, "session options"));
    Status status = configure(so, o);
    if (status.ok()) {
      const std::string context = "onnxruntime cannot load " + o.model_path;
      status = lib_->check(lib_->fn<ort::CreateSessionFn>(ort::kCreateSession)(lib_->env(), o.model_path.c_str(), so, &session_), IR_ERROR_INVALID_ARGUMENT, context.c_str());
    }
    lib_->release(ort::kReleaseSessionOptions, so);
    IR_RETURN_IF_ERROR(status);
    IR_RETURN_IF_ERROR(read_signature(false, &inputs_));
    IR_RETURN_IF_ERROR(read_signature(true, &outputs_));
    for (const TensorSig& t : inputs_) input_names_.push_back(t.name.c_str());
    for (const TensorSig& t : outputs_) output_names_.push_back(t.name.c_str());
    input_values_.assign(inputs_.size(), nullptr);
    output_values_.assign(outputs_.size(), nullptr);
    dims_.reserve(8);
    info_ = "onnxruntime " + lib_->version() + " (CPUExecutionProvider)";
    return Status::Ok();
  }

  int32_t signature(bool outputs, irb_tensor* out, int32_t capacity) const {
    const std::vector<TensorSig>& sigs = outputs ? outputs_ : inputs_;
    for (int32_t i = 0; i < capacity && i < static_cast<int32_t>(sigs.size()); ++i) {
      const TensorSig& t = sigs[static_cast<size_t>(i)];
      out[i] = irb_tensor{t.name.c_str(), t.dtype, static_cast<int32_t>(t.shape.size()), t.shape.data(), nullptr, 0};
    }
    return static_cast<int32_t>(sigs.size());
  }

  [[nodiscard]] const char* info() const { return info_.c_str(); }

  Status run(const irb_batch& batch) {
    if (static_cast<size_t>(batch.n_inputs) != inputs_.size()) return Status(IR_ERROR_INTERNAL, "batch has the wrong number of inputs");
    static uint8_t empty = 0;  // ONNX Runtime wants a pointer even for zero bytes
    Status status = Status::Ok();
    for (size_t i = 0; status.ok() && i < inputs_.size(); ++i) {
      const irb_tensor& in = batch.inputs[i];
      void* data = in.byte_size > 0 ? const_cast<void*>(in.data) : &empty;  // ONNX Runtime only reads inputs
      ort::Status* failed = lib_->fn<ort::CreateTensorWithDataFn>(ort::kCreateTensorWithDataAsOrtValue)(
          lib_->cpu(), data, in.byte_size, in.shape, static_cast<size_t>(in.ndim), to_element_type(in.dtype), &input_values_[i]);
      if (failed != nullptr) status = lib_->check(failed, IR_ERROR_BACKEND, ("onnxruntime input '" + inputs_[i].name + "'").c_str());
    }
    if (status.ok()) {
      status = lib_->check(lib_->fn<ort::RunFn>(ort::kRun)(session_, nullptr, input_names_.data(), input_values_.data(), input_values_.size(),
                                                         output_names_.data(), output_names_.size(), output_values_.data()),
                           IR_ERROR_BACKEND, "onnxruntime");
    }
    for (ort::Value*& v : input_values_) {
      lib_->release(ort::kReleaseValue, v);
      v = nullptr;
    }
    // Each output tensor is handed to the host as soon as it is looked at, so none leaks
    // whatever fails after this point.
    for (size_t j = 0; j < outputs_.size(); ++j) {
      ort::Value* value = output_values_[j];
      output_values_[j] = nullptr;
      if (value == nullptr) continue;
      if (!status.ok()) {
        lib_->release(ort::kReleaseValue, value);
        continue;
      }
      status = adopt_output(j, value, batch.sink);
    }
    return status;
  }

 private:
  Status configure(ort::SessionOptions* so, const OnnxRuntimeOptions& o) const {
    auto set = [&](ort::Slot slot, int value, const char* what) {
      return lib_->check(lib_->fn<ort::SetIntOptionFn>(slot)(so, value), IR_ERROR_INVALID_ARGUMENT, what);
    };
    IR_RETURN_IF_ERROR(set(ort::kSetIntraOpNumThreads, o.intra_op_threads, "intra_op_threads"));
    IR_RETURN_IF_ERROR(set(ort::kSetInterOpNumThreads, o.inter_op_threads, "inter_op_threads"));
    IR_RETURN_IF_ERROR(set(ort::kSetSessionGraphOptimizationLevel, o.graph_optimization_level, "graph_optimization_level"));
    return set(ort::kSetSessionExecutionMode, o.parallel_execution ? 1 : 0, "execution_mode");
  }

  Status read_signature(bool outputs, std::vector<TensorSig>* out) const {
    const char* kind = outputs ? "output" : "input";
    size_t count = 0;
    IR_RETURN_IF_ERROR(lib_->check(lib_->fn<ort::CountFn>(outputs ? ort::kSessionGetOutputCount : ort::kSessionGetInputCount)(session_, &count), IR_ERROR_INTERNAL, kind));
    ort::Allocator* allocator = nullptr;
    IR_RETURN_IF_ERROR(lib_->check(lib_->fn<ort::GetDefaultAllocatorFn>(ort::kGetAllocatorWithDefaultOptions)(&allocator), IR_ERROR_INTERNAL, "allocator"));
    for (size_t i = 0; i < count; ++i) {
      TensorSig sig;
      char* name = nullptr;
      IR_RETURN_IF_ERROR(lib_->check(lib_->fn<ort::NameFn>(outputs ? ort::kSessionGetOutputName : ort::kSessionGetInputName)(session_, i, allocator, &name), IR_ERROR_INTERNAL, kind));
      sig.name = name;
      IR_RETURN_IF_ERROR(lib_->check(lib_->fn<ort::AllocatorFreeFn>(ort::kAllocatorFree)(allocator, name), IR_ERROR_INTERNAL, kind));
      ort::TypeInfo* type = nullptr;
      IR_RETURN_IF_ERROR(lib_->check(lib_->fn<ort::TypeInfoFn>(outputs ? ort::kSessionGetOutputTypeInfo : ort::kSessionGetInputTypeInfo)(session_, i, &type), IR_ERROR_INTERNAL, kind));
      Status status = describe(type, &sig);
      lib_->release(ort::kReleaseTypeInfo, type);
      if (!status.ok()) return Status(IR_ERROR_INVALID_ARGUMENT, std::string(kind) + " '" + sig.name + "': " + status.message());
      out->push_back(std::move(sig));
    }
    return Status::Ok();
  }

  Status describe(const ort::TypeInfo* type, TensorSig* sig) const {
    int onnx_type = 0;
    IR_RETURN_IF_ERROR(lib_->check(lib_->fn<ort::GetOnnxTypeFn>(ort::kGetOnnxTypeFromTypeInfo)(type, &onnx_type), IR_ERROR_INTERNAL, "type"));
    if (onnx_type != ort::kOnnxTypeTensor) return Status(IR_ERROR_INVALID_ARGUMENT, "is not a tensor (sequences and maps are not served)");
    const ort::TensorInfo* info = nullptr;
    IR_RETURN_IF_ERROR(lib_->check(lib_->fn<ort::CastTypeInfoFn>(ort::kCastTypeInfoToTensorInfo)(type, &info), IR_ERROR_INTERNAL, "type"));
    int element = 0;
    size_t ndim = 0;
    IR_RETURN_IF_ERROR(lib_->check(lib_->fn<ort::GetElementTypeFn>(ort::kGetTensorElementType)(info, &element), IR_ERROR_INTERNAL, "type"));
    IR_RETURN_IF_ERROR(lib_->check(lib_->fn<ort::GetDimensionsCountFn>(ort::kGetDimensionsCount)(info, &ndim), IR_ERROR_INTERNAL, "shape"));
    sig->shape.assign(ndim, -1);
    IR_RETURN_IF_ERROR(lib_->check(lib_->fn<ort::GetDimensionsFn>(ort::kGetDimensions)(info, sig->shape.data(), ndim), IR_ERROR_INTERNAL, "shape"));
    for (int64_t& d : sig->shape) d = d < 0 ? -1 : d;  // symbolic and unknown dimensions are "any size"
    sig->dtype = to_ir_dtype(element);
    if (sig->dtype == 0) return Status(IR_ERROR_INVALID_ARGUMENT, "has ONNX element type " + std::to_string(element) + ", which the engine does not carry (string tensors included)");
    return Status::Ok();
  }

  // Describes output j (taking ownership of `value`) and hands it to the host without a copy.
  Status adopt_output(size_t j, ort::Value* value, irb_sink* sink) {
    const OrtLibrary* lib = lib_;
    ort::TensorInfo* info = nullptr;
    Status status = lib->check(lib->fn<ort::GetTensorTypeAndShapeFn>(ort::kGetTensorTypeAndShape)(value, &info), IR_ERROR_BACKEND, "onnxruntime output");
    int element = 0;
    size_t ndim = 0;
    if (status.ok()) status = lib->check(lib->fn<ort::GetElementTypeFn>(ort::kGetTensorElementType)(info, &element), IR_ERROR_BACKEND, "onnxruntime output");
    if (status.ok()) status = lib->check(lib->fn<ort::GetDimensionsCountFn>(ort::kGetDimensionsCount)(info, &ndim), IR_ERROR_BACKEND, "onnxruntime output");
    if (status.ok()) {
      dims_.assign(ndim, 0);
      status = lib->check(lib->fn<ort::GetDimensionsFn>(ort::kGetDimensions)(info, dims_.data(), ndim), IR_ERROR_BACKEND, "onnxruntime output");
    }
    lib->release(ort::kReleaseTensorInfo, info);
    void* data = nullptr;
    if (status.ok()) status = lib->check(lib->fn<ort::GetTensorMutableDataFn>(ort::kGetTensorMutableData)(value, &data), IR_ERROR_BACKEND, "onnxruntime output");
    const int32_t dtype = to_ir_dtype(element);
    if (status.ok() && dtype == 0) status = Status(IR_ERROR_BACKEND, "output '" + outputs_[j].name + "' has ONNX element type " + std::to_string(element) + ", which the engine does not carry");
    if (!status.ok()) {
      lib->release(ort::kReleaseValue, value);
      return status;
    }
    uint64_t elements = 1;
    for (int64_t d : dims_) elements *= static_cast<uint64_t>(d);
    auto* owned = new (std::nothrow) Owned{lib, value};
    if (owned == nullptr) {
      lib->release(ort::kReleaseValue, value);
      return Status(IR_ERROR_RESOURCE_EXHAUSTED, "out of memory");
    }
    irb_tensor t{outputs_[j].name.c_str(), dtype, static_cast<int32_t>(ndim), dims_.data(), data, elements * dtype_size(dtype)};
    return take_backend_error(host_->output_adopt(sink, &t, &Session::release_value, owned));  // owns `owned` from here
  }

  struct Owned {
    const OrtLibrary* lib;
    ort::Value* value;
  };
  static void release_value(void* owner) {
    auto* owned = static_cast<Owned*>(owner);
    owned->lib->release(ort::kReleaseValue, owned->value);
    delete owned;
  }

  const OrtLibrary* lib_;
  const irb_host* host_;
  ort::Session* session_ = nullptr;
  std::vector<TensorSig> inputs_;
  std::vector<TensorSig> outputs_;
  std::vector<const char*> input_names_;
  std::vector<const char*> output_names_;
  std::vector<ort::Value*> input_values_;
  std::vector<ort::Value*> output_values_;
  std::vector<int64_t> dims_;
  std::string info_;
};

// The contract's functions; every one keeps exceptions inside.
template <typename Body>
irb_error* guarded(const irb_host* host, Body&& body) noexcept {
  try {
    Status s = body();
    return s.ok() ? nullptr : host->error_new(s.code(), s.message().c_str());
  } catch (const std::bad_alloc&) {
    return host->error_new(IRB_ERROR_RESOURCE_EXHAUSTED, "out of memory");
  } catch (const std::exception& e) {
    return host->error_new(IRB_ERROR_INTERNAL, e.what());
  }
}

irb_error* ort_create(const irb_host* host, const irb_create_args* args, void** state) {
  return guarded(host, [&] {
    OnnxRuntimeOptions options;
    IR_RETURN_IF_ERROR(parse_options(args->config_json, &options));
    const OrtLibrary* lib = nullptr;
    IR_RETURN_IF_ERROR(OrtLibrary::Load(options.library, &lib));
    auto session = std::make_unique<Session>(lib, host);
    IR_RETURN_IF_ERROR(session->open(options));
    *state = session.release();
    return Status::Ok();
  });
}

int32_t ort_signature(void* state, int32_t outputs, irb_tensor* out, int32_t capacity) {
  return static_cast<Session*>(state)->signature(outputs != 0, out, capacity);
}

irb_error* ort_execute(void* state, const irb_batch* batch) {
  auto* session = static_cast<Session*>(state);
  return guarded(backend_host(), [&] { return session->run(*batch); });
}

void ort_destroy(void* state) { delete static_cast<Session*>(state); }

const char* ort_describe(void* state) { return static_cast<Session*>(state)->info(); }

const irb_backend kTable = {sizeof(irb_backend), IRB_ABI_VERSION, "onnxruntime", &ort_create, &ort_signature, nullptr, &ort_execute, &ort_destroy, &ort_describe};

}  // namespace

const irb_backend* builtin_onnxruntime_backend() { return &kTable; }

}  // namespace ir
