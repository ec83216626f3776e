#include "onnxruntime.hpp"

#include <dlfcn.h>
#include <sys/stat.h>

#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "../engine/dtype.hpp"
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

// The per-instance state: a session and the arrays Run takes, reused for every batch.
struct Instance {
  ort::Session* session = nullptr;
  std::vector<ort::Value*> inputs;
  std::vector<ort::Value*> outputs;
  std::vector<int64_t> dims;
};

class OnnxRuntimeBackend final : public NativeBackend {
 public:
  explicit OnnxRuntimeBackend(const OrtLibrary* lib) : lib_(lib) {}
  ~OnnxRuntimeBackend() override {
    for (Instance& inst : instances_) lib_->release(ort::kReleaseSession, inst.session);
  }
  OnnxRuntimeBackend(const OnnxRuntimeBackend&) = delete;
  OnnxRuntimeBackend& operator=(const OnnxRuntimeBackend&) = delete;

  Status open(const OnnxRuntimeOptions& o) {
    struct stat st {};
    if (::stat(o.model_path.c_str(), &st) != 0) return Status(IR_ERROR_NOT_FOUND, "model file not found: " + o.model_path);
    if (o.instances < 1) return Status(IR_ERROR_INVALID_ARGUMENT, "instances must be >= 1");
    ort::SessionOptions* so = nullptr;
    IR_RETURN_IF_ERROR(lib_->check(lib_->fn<ort::CreateSessionOptionsFn>(ort::kCreateSessionOptions)(&so), IR_ERROR_INTERNAL, "session options"));
    Status status = configure(so, o);
    for (int32_t i = 0; status.ok() && i < o.instances; ++i) {
      Instance inst;
      const std::string context = "onnxruntime cannot load " + o.model_path;
      status = lib_->check(lib_->fn<ort::CreateSessionFn>(ort::kCreateSession)(lib_->env(), o.model_path.c_str(), so, &inst.session),
                           IR_ERROR_INVALID_ARGUMENT, context.c_str());
      if (status.ok()) instances_.push_back(std::move(inst));
    }
    lib_->release(ort::kReleaseSessionOptions, so);
    IR_RETURN_IF_ERROR(status);
    IR_RETURN_IF_ERROR(read_signature(false, &inputs_));
    IR_RETURN_IF_ERROR(read_signature(true, &outputs_));
    for (const TensorSig& t : inputs_) input_names_.push_back(t.name.c_str());
    for (const TensorSig& t : outputs_) output_names_.push_back(t.name.c_str());
    for (Instance& inst : instances_) {
      inst.inputs.assign(inputs_.size(), nullptr);
      inst.outputs.assign(outputs_.size(), nullptr);
      inst.dims.reserve(8);
    }
    info_ = "onnxruntime " + lib_->version() + " (CPUExecutionProvider)";
    return Status::Ok();
  }

  [[nodiscard]] int32_t instances() const override { return static_cast<int32_t>(instances_.size()); }
  [[nodiscard]] const std::vector<TensorSig>& inputs() const override { return inputs_; }
  [[nodiscard]] const std::vector<TensorSig>& outputs() const override { return outputs_; }
  [[nodiscard]] const std::string& info() const override { return info_; }

  Status run(int32_t instance, ir_batch* batch) override {
    Instance& inst = instances_[static_cast<size_t>(instance)];
    if (batch->inputs.size() != inputs_.size()) return Status(IR_ERROR_INTERNAL, "batch has the wrong number of inputs");
    static uint8_t empty = 0;  // ONNX Runtime wants a pointer even for zero bytes
    Status status = Status::Ok();
    for (size_t i = 0; status.ok() && i < inputs_.size(); ++i) {
      const InputView& in = batch->inputs[i];
      void* data = in.byte_size > 0 ? const_cast<void*>(in.data) : &empty;  // ONNX Runtime only reads inputs
      ort::Status* failed = lib_->fn<ort::CreateTensorWithDataFn>(ort::kCreateTensorWithDataAsOrtValue)(
          lib_->cpu(), data, in.byte_size, in.shape.data(), in.shape.size(), to_element_type(in.dtype), &inst.inputs[i]);
      if (failed != nullptr) status = lib_->check(failed, IR_ERROR_BACKEND, ("onnxruntime input '" + inputs_[i].name + "'").c_str());
    }
    if (status.ok()) {
      status = lib_->check(lib_->fn<ort::RunFn>(ort::kRun)(inst.session, nullptr, input_names_.data(), inst.inputs.data(), inst.inputs.size(),
                                                         output_names_.data(), output_names_.size(), inst.outputs.data()),
                           IR_ERROR_BACKEND, "onnxruntime");
    }
    for (ort::Value*& v : inst.inputs) {
      lib_->release(ort::kReleaseValue, v);
      v = nullptr;
    }
    // Each output tensor is handed to a Buffer as soon as it is looked at, so none leaks
    // whatever fails after this point.
    for (size_t j = 0; j < outputs_.size(); ++j) {
      ort::Value* value = inst.outputs[j];
      inst.outputs[j] = nullptr;
      if (value == nullptr) continue;
      if (!status.ok()) {
        lib_->release(ort::kReleaseValue, value);
        continue;
      }
      status = adopt_output(inst, j, value, batch);
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
    const ort::Session* session = instances_.front().session;
    const char* kind = outputs ? "output" : "input";
    size_t count = 0;
    IR_RETURN_IF_ERROR(lib_->check(lib_->fn<ort::CountFn>(outputs ? ort::kSessionGetOutputCount : ort::kSessionGetInputCount)(session, &count), IR_ERROR_INTERNAL, kind));
    ort::Allocator* allocator = nullptr;
    IR_RETURN_IF_ERROR(lib_->check(lib_->fn<ort::GetDefaultAllocatorFn>(ort::kGetAllocatorWithDefaultOptions)(&allocator), IR_ERROR_INTERNAL, "allocator"));
    for (size_t i = 0; i < count; ++i) {
      TensorSig sig;
      char* name = nullptr;
      IR_RETURN_IF_ERROR(lib_->check(lib_->fn<ort::NameFn>(outputs ? ort::kSessionGetOutputName : ort::kSessionGetInputName)(session, i, allocator, &name), IR_ERROR_INTERNAL, kind));
      sig.name = name;
      IR_RETURN_IF_ERROR(lib_->check(lib_->fn<ort::AllocatorFreeFn>(ort::kAllocatorFree)(allocator, name), IR_ERROR_INTERNAL, kind));
      ort::TypeInfo* type = nullptr;
      IR_RETURN_IF_ERROR(lib_->check(lib_->fn<ort::TypeInfoFn>(outputs ? ort::kSessionGetOutputTypeInfo : ort::kSessionGetInputTypeInfo)(session, i, &type), IR_ERROR_INTERNAL, kind));
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

  // Describes output j (taking ownership of `value`) and hands it to the batch without a copy.
  Status adopt_output(Instance& inst, size_t j, ort::Value* value, ir_batch* batch) const {
    const OrtLibrary* lib = lib_;
    ort::TensorInfo* info = nullptr;
    Status status = lib->check(lib->fn<ort::GetTensorTypeAndShapeFn>(ort::kGetTensorTypeAndShape)(value, &info), IR_ERROR_BACKEND, "onnxruntime output");
    int element = 0;
    size_t ndim = 0;
    if (status.ok()) status = lib->check(lib->fn<ort::GetElementTypeFn>(ort::kGetTensorElementType)(info, &element), IR_ERROR_BACKEND, "onnxruntime output");
    if (status.ok()) status = lib->check(lib->fn<ort::GetDimensionsCountFn>(ort::kGetDimensionsCount)(info, &ndim), IR_ERROR_BACKEND, "onnxruntime output");
    if (status.ok()) {
      inst.dims.assign(ndim, 0);
      status = lib->check(lib->fn<ort::GetDimensionsFn>(ort::kGetDimensions)(info, inst.dims.data(), ndim), IR_ERROR_BACKEND, "onnxruntime output");
    }
    lib->release(ort::kReleaseTensorInfo, info);
    void* data = nullptr;
    if (status.ok()) status = lib->check(lib->fn<ort::GetTensorMutableDataFn>(ort::kGetTensorMutableData)(value, &data), IR_ERROR_BACKEND, "onnxruntime output");
    if (!status.ok()) {
      lib->release(ort::kReleaseValue, value);
      return status;
    }
    uint64_t elements = 1;
    for (int64_t d : inst.dims) elements *= static_cast<uint64_t>(d);
    const int32_t dtype = to_ir_dtype(element);
    if (dtype == 0) {
      lib->release(ort::kReleaseValue, value);
      return Status(IR_ERROR_BACKEND, "output '" + outputs_[j].name + "' has ONNX element type " + std::to_string(element) + ", which the engine does not carry");
    }
    const uint64_t bytes = elements * dtype_size(dtype);
    Owned* owned = nullptr;
    try {
      owned = new Owned{lib, value};
    } catch (...) {
      lib->release(ort::kReleaseValue, value);
      throw;
    }
    auto owner = Buffer::Adopt(data, bytes, &OnnxRuntimeBackend::release_value, owned);  // owns `owned` from here
    ir_tensor t{outputs_[j].name.c_str(), dtype, static_cast<int32_t>(ndim), inst.dims.data(), data, bytes};
    return batch->model->set_output(batch, t, std::move(owner));
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
  std::vector<Instance> instances_;
  std::vector<TensorSig> inputs_;
  std::vector<TensorSig> outputs_;
  std::vector<const char*> input_names_;
  std::vector<const char*> output_names_;
  std::string info_;
};

}  // namespace

Status open_onnxruntime(const OnnxRuntimeOptions& options, std::unique_ptr<NativeBackend>* out) {
  const OrtLibrary* lib = nullptr;
  IR_RETURN_IF_ERROR(OrtLibrary::Load(options.library, &lib));
  auto backend = std::make_unique<OnnxRuntimeBackend>(lib);
  IR_RETURN_IF_ERROR(backend->open(options));
  *out = std::move(backend);
  return Status::Ok();
}

}  // namespace ir
