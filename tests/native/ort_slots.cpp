// Proves csrc/backends/ort_api.hpp against ONNX Runtime's official C API header: every
// slot index is the member's position in OrtApi, every function type is the member's type
// (opaque types renamed, enums as int), and every constant is the header's enumerator.
// Built and run by tests/test_ort_slots.py; prints one line per check and exits 1 if any fails.
#include <onnxruntime_c_api.h>

#include <cstddef>
#include <cstdio>
#include <type_traits>

// The test swaps in a deliberately wrong copy of ort_api.hpp to prove this program fails.
#ifdef IR_ORT_API_HPP
#include IR_ORT_API_HPP
#else
#include "../../csrc/backends/ort_api.hpp"
#endif

// OrtApi's members carry warn_unused_result, which decltype into a template argument drops:
// harmless here (no call is made), and not part of the type.
#pragma GCC diagnostic ignored "-Wignored-attributes"

namespace {

namespace ort = ir::ort;

// Canon<T>: an official type in our terms. Each opaque Ort* struct becomes ours, enums
// become int (ort_api.hpp passes them as int), noexcept is dropped (calling a noexcept
// function through a plain pointer is well defined); everything else stays as it is, so
// arity, pointer depth, constness and scalar types must match exactly.
template <typename T, typename = void>
struct Canon {
  using type = T;
};
template <typename T>
using canon_t = typename Canon<T>::type;
template <typename T>
struct Canon<T*> {
  using type = canon_t<T>*;
};
template <typename T>
struct Canon<const T> {
  using type = const canon_t<T>;
};
template <typename T>
struct Canon<T, std::enable_if_t<std::is_enum_v<T> && !std::is_const_v<T>>> {
  static_assert(sizeof(T) == sizeof(int), "an ONNX Runtime enum is not int-sized, so it cannot cross as int");
  using type = int;
};
template <typename R, typename... A>
struct Canon<R(A...)> {
  using type = canon_t<R>(canon_t<A>...);
};
template <typename R, typename... A>
struct Canon<R(A...) noexcept> {
  using type = canon_t<R>(canon_t<A>...);
};
#define IR_OPAQUE(official, ours) \
  template <>                     \
  struct Canon<official> {        \
    using type = ours;            \
  };
IR_OPAQUE(OrtStatus, ort::Status)
IR_OPAQUE(OrtEnv, ort::Env)
IR_OPAQUE(OrtSession, ort::Session)
IR_OPAQUE(OrtSessionOptions, ort::SessionOptions)
IR_OPAQUE(OrtValue, ort::Value)
IR_OPAQUE(OrtTypeInfo, ort::TypeInfo)
IR_OPAQUE(OrtTensorTypeAndShapeInfo, ort::TensorInfo)
IR_OPAQUE(OrtMemoryInfo, ort::MemoryInfo)
IR_OPAQUE(OrtAllocator, ort::Allocator)
IR_OPAQUE(OrtApiBase, ort::ApiBase)
IR_OPAQUE(OrtRunOptions, void)  // always passed as NULL
IR_OPAQUE(OrtApi, void)         // the table we index by slot
#undef IR_OPAQUE

int failures = 0;

// One line per check: "ok|FAIL <kind> <ours> <our value> <official> <official value>".
void report(bool ok, const char* kind, const char* ours, long long ours_value, const char* official, long long official_value) {
  if (!ok) ++failures;
  std::printf("%s %s %s %lld %s %lld\n", ok ? "ok" : "FAIL", kind, ours, ours_value, official, official_value);
}

// A type check: "ok|FAIL type <ours> <our type> <official>".
void report_type(bool ok, const char* ours, const char* our_type, const char* official) {
  if (!ok) ++failures;
  std::printf("%s type %s %s %s\n", ok ? "ok" : "FAIL", ours, our_type, official);
}

// One OrtApi slot: its index, and the function type we call it through.
#define IR_SLOT(ours, official, Fn)                                                                                     \
  do {                                                                                                                 \
    constexpr std::size_t offset = offsetof(OrtApi, official);                                                         \
    report(offset % sizeof(void*) == 0 && offset / sizeof(void*) == static_cast<std::size_t>(ort::ours), "slot", #ours, \
           ort::ours, "OrtApi::" #official, static_cast<long long>(offset / sizeof(void*)));                          \
    report_type(std::is_same_v<canon_t<decltype(OrtApi::official)>, ort::Fn>, #ours, #Fn, "OrtApi::" #official);        \
  } while (0)

// One constant that crosses as an int.
#define IR_CONST(ours, official)                                                                                       \
  report(static_cast<long long>(ours) == static_cast<long long>(official), "const", #ours, static_cast<long long>(ours), \
         #official, static_cast<long long>(official))

}  // namespace

int main() {
  static_assert(std::is_standard_layout_v<OrtApi>, "offsetof needs a standard-layout OrtApi");

  // The table of API version kApiVersion must exist in every header that proves it; slots
  // only ever append, so a newer header proves the same indices.
  report(ort::kApiVersion <= ORT_API_VERSION, "version", "kApiVersion", ort::kApiVersion, "ORT_API_VERSION", ORT_API_VERSION);

  // The entry point and its two functions.
  report_type(std::is_same_v<canon_t<decltype(&OrtGetApiBase)>, ort::GetApiBaseFn>, "OrtGetApiBase", "GetApiBaseFn", "OrtGetApiBase");
  report(sizeof(ort::ApiBase) == sizeof(OrtApiBase), "size", "ApiBase", sizeof(ort::ApiBase), "OrtApiBase", sizeof(OrtApiBase));
  report_type(std::is_same_v<canon_t<decltype(OrtApiBase::GetApi)>, decltype(ort::ApiBase::get_api)>, "ApiBase::get_api", "get_api", "OrtApiBase::GetApi");
  report_type(std::is_same_v<canon_t<decltype(OrtApiBase::GetVersionString)>, decltype(ort::ApiBase::get_version_string)>, "ApiBase::get_version_string",
              "get_version_string", "OrtApiBase::GetVersionString");
  report(offsetof(ort::ApiBase, get_api) == offsetof(OrtApiBase, GetApi), "offset", "ApiBase::get_api", offsetof(ort::ApiBase, get_api),
         "OrtApiBase::GetApi", offsetof(OrtApiBase, GetApi));
  report(offsetof(ort::ApiBase, get_version_string) == offsetof(OrtApiBase, GetVersionString), "offset", "ApiBase::get_version_string",
         offsetof(ort::ApiBase, get_version_string), "OrtApiBase::GetVersionString", offsetof(OrtApiBase, GetVersionString));

  // Every ort::Slot, with the type csrc/backends/onnxruntime.cpp calls it through.
  IR_SLOT(kCreateStatus, CreateStatus, CreateStatusFn);
  IR_SLOT(kGetErrorCode, GetErrorCode, GetErrorCodeFn);
  IR_SLOT(kGetErrorMessage, GetErrorMessage, GetErrorMessageFn);
  IR_SLOT(kCreateEnv, CreateEnv, CreateEnvFn);
  IR_SLOT(kCreateSession, CreateSession, CreateSessionFn);
  IR_SLOT(kRun, Run, RunFn);
  IR_SLOT(kCreateSessionOptions, CreateSessionOptions, CreateSessionOptionsFn);
  IR_SLOT(kSetSessionExecutionMode, SetSessionExecutionMode, SetIntOptionFn);
  IR_SLOT(kSetSessionGraphOptimizationLevel, SetSessionGraphOptimizationLevel, SetIntOptionFn);
  IR_SLOT(kSetIntraOpNumThreads, SetIntraOpNumThreads, SetIntOptionFn);
  IR_SLOT(kSetInterOpNumThreads, SetInterOpNumThreads, SetIntOptionFn);
  IR_SLOT(kSessionGetInputCount, SessionGetInputCount, CountFn);
  IR_SLOT(kSessionGetOutputCount, SessionGetOutputCount, CountFn);
  IR_SLOT(kSessionGetInputTypeInfo, SessionGetInputTypeInfo, TypeInfoFn);
  IR_SLOT(kSessionGetOutputTypeInfo, SessionGetOutputTypeInfo, TypeInfoFn);
  IR_SLOT(kSessionGetInputName, SessionGetInputName, NameFn);
  IR_SLOT(kSessionGetOutputName, SessionGetOutputName, NameFn);
  IR_SLOT(kCreateTensorWithDataAsOrtValue, CreateTensorWithDataAsOrtValue, CreateTensorWithDataFn);
  IR_SLOT(kGetTensorMutableData, GetTensorMutableData, GetTensorMutableDataFn);
  IR_SLOT(kCastTypeInfoToTensorInfo, CastTypeInfoToTensorInfo, CastTypeInfoFn);
  IR_SLOT(kGetOnnxTypeFromTypeInfo, GetOnnxTypeFromTypeInfo, GetOnnxTypeFn);
  IR_SLOT(kGetTensorElementType, GetTensorElementType, GetElementTypeFn);
  IR_SLOT(kGetDimensionsCount, GetDimensionsCount, GetDimensionsCountFn);
  IR_SLOT(kGetDimensions, GetDimensions, GetDimensionsFn);
  IR_SLOT(kGetTensorTypeAndShape, GetTensorTypeAndShape, GetTensorTypeAndShapeFn);
  IR_SLOT(kCreateCpuMemoryInfo, CreateCpuMemoryInfo, CreateCpuMemoryInfoFn);
  IR_SLOT(kAllocatorFree, AllocatorFree, AllocatorFreeFn);
  IR_SLOT(kGetAllocatorWithDefaultOptions, GetAllocatorWithDefaultOptions, GetDefaultAllocatorFn);
  IR_SLOT(kReleaseEnv, ReleaseEnv, ReleaseFn<ort::Env>);
  IR_SLOT(kReleaseStatus, ReleaseStatus, ReleaseFn<ort::Status>);
  IR_SLOT(kReleaseMemoryInfo, ReleaseMemoryInfo, ReleaseFn<ort::MemoryInfo>);
  IR_SLOT(kReleaseSession, ReleaseSession, ReleaseFn<ort::Session>);
  IR_SLOT(kReleaseValue, ReleaseValue, ReleaseFn<ort::Value>);
  IR_SLOT(kReleaseTypeInfo, ReleaseTypeInfo, ReleaseFn<ort::TypeInfo>);
  IR_SLOT(kReleaseTensorInfo, ReleaseTensorTypeAndShapeInfo, ReleaseFn<ort::TensorInfo>);
  IR_SLOT(kReleaseSessionOptions, ReleaseSessionOptions, ReleaseFn<ort::SessionOptions>);

  // The constants of ort_api.hpp.
  IR_CONST(ort::kLoggingWarning, ORT_LOGGING_LEVEL_WARNING);
  IR_CONST(ort::kErrorInvalidArgument, ORT_INVALID_ARGUMENT);
  IR_CONST(ort::kArenaAllocator, OrtArenaAllocator);
  IR_CONST(ort::kMemTypeDefault, OrtMemTypeDefault);
  IR_CONST(ort::kOnnxTypeTensor, ONNX_TYPE_TENSOR);
  IR_CONST(ort::kFloat, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
  IR_CONST(ort::kUint8, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8);
  IR_CONST(ort::kInt8, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8);
  IR_CONST(ort::kUint16, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16);
  IR_CONST(ort::kInt16, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16);
  IR_CONST(ort::kInt32, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32);
  IR_CONST(ort::kInt64, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64);
  IR_CONST(ort::kString, ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING);
  IR_CONST(ort::kBool, ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL);
  IR_CONST(ort::kFloat16, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16);
  IR_CONST(ort::kDouble, ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE);
  IR_CONST(ort::kUint32, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32);
  IR_CONST(ort::kUint64, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64);

  // Literals that csrc passes straight through the SetIntOptionFn slots: execution mode
  // (onnxruntime.cpp: parallel_execution ? 1 : 0) and the optimisation levels
  // backend_api.cpp accepts (0, 1, 2, 99).
  IR_CONST(0, ORT_SEQUENTIAL);
  IR_CONST(1, ORT_PARALLEL);
  IR_CONST(0, ORT_DISABLE_ALL);
  IR_CONST(1, ORT_ENABLE_BASIC);
  IR_CONST(2, ORT_ENABLE_EXTENDED);
  IR_CONST(99, ORT_ENABLE_ALL);

  std::printf("%s: %d failure(s) against ONNX Runtime C API %d\n", failures == 0 ? "ok" : "FAIL", failures, ORT_API_VERSION);
  return failures == 0 ? 0 : 1;
}
