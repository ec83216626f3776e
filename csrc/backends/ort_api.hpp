// The part of the ONNX Runtime C API this backend calls, declared here in our own terms.
//
// ONNX Runtime exports one symbol, OrtGetApiBase; everything else is a table of function
// pointers (OrtApi) returned by GetApi(version). The table only ever grows at its end, so a
// function's slot index is fixed for every release that has it; we index the table by slot
// instead of compiling against ONNX Runtime's header, which no package on this machine ships
// (the Python wheel carries the library alone). Slots are those of the documented OrtApi
// struct; OrtLibrary::Load checks a few of them (the status round trip) before any use.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ir::ort {

// Opaque ONNX Runtime objects.
struct Status;
struct Env;
struct Session;
struct SessionOptions;
struct Value;
struct TypeInfo;
struct TensorInfo;  // OrtTensorTypeAndShapeInfo
struct MemoryInfo;
struct Allocator;

// The API version we ask for: the oldest table that holds every slot below (ORT 1.13).
constexpr uint32_t kApiVersion = 13;

struct ApiBase {
  const void* (*get_api)(uint32_t version);
  const char* (*get_version_string)();
};
using GetApiBaseFn = const ApiBase* (*)();

// Slot indices into OrtApi.
enum Slot : int {
  kCreateStatus = 0,
  kGetErrorCode = 1,
  kGetErrorMessage = 2,
  kCreateEnv = 3,
  kCreateSession = 7,
  kRun = 9,
  kCreateSessionOptions = 10,
  kSetSessionExecutionMode = 13,
  kSetSessionGraphOptimizationLevel = 23,
  kSetIntraOpNumThreads = 24,
  kSetInterOpNumThreads = 25,
  kSessionGetInputCount = 30,
  kSessionGetOutputCount = 31,
  kSessionGetInputTypeInfo = 33,
  kSessionGetOutputTypeInfo = 34,
  kSessionGetInputName = 36,
  kSessionGetOutputName = 37,
  kCreateTensorWithDataAsOrtValue = 49,
  kGetTensorMutableData = 51,
  kCastTypeInfoToTensorInfo = 55,
  kGetOnnxTypeFromTypeInfo = 56,
  kGetTensorElementType = 60,
  kGetDimensionsCount = 61,
  kGetDimensions = 62,
  kGetTensorTypeAndShape = 65,
  kCreateCpuMemoryInfo = 69,
  kAllocatorFree = 76,
  kGetAllocatorWithDefaultOptions = 78,
  kReleaseEnv = 92,
  kReleaseStatus = 93,
  kReleaseMemoryInfo = 94,
  kReleaseSession = 95,
  kReleaseValue = 96,
  kReleaseTypeInfo = 98,
  kReleaseTensorInfo = 99,
  kReleaseSessionOptions = 100,
};

// Function types of those slots (enums cross as int: same size and ABI on every platform
// ONNX Runtime supports; the calling convention is the platform's default off Windows).
using CreateStatusFn = Status* (*)(int code, const char* message);
using GetErrorCodeFn = int (*)(const Status*);
using GetErrorMessageFn = const char* (*)(const Status*);
using CreateEnvFn = Status* (*)(int log_level, const char* log_id, Env** out);
using CreateSessionFn = Status* (*)(const Env*, const char* path, const SessionOptions*, Session** out);
using RunFn = Status* (*)(Session*, const void* run_options, const char* const* input_names, const Value* const* inputs, size_t n_inputs,
                          const char* const* output_names, size_t n_outputs, Value** outputs);
using CreateSessionOptionsFn = Status* (*)(SessionOptions** out);
using SetIntOptionFn = Status* (*)(SessionOptions*, int value);  // execution mode, optimization level, thread counts
using CountFn = Status* (*)(const Session*, size_t* out);
using TypeInfoFn = Status* (*)(const Session*, size_t index, TypeInfo** out);
using NameFn = Status* (*)(const Session*, size_t index, Allocator*, char** out);
using CreateTensorWithDataFn = Status* (*)(const MemoryInfo*, void* data, size_t bytes, const int64_t* shape, size_t ndim, int element_type, Value** out);
using GetTensorMutableDataFn = Status* (*)(Value*, void** out);
using CastTypeInfoFn = Status* (*)(const TypeInfo*, const TensorInfo** out);
using GetOnnxTypeFn = Status* (*)(const TypeInfo*, int* out);
using GetElementTypeFn = Status* (*)(const TensorInfo*, int* out);
using GetDimensionsCountFn = Status* (*)(const TensorInfo*, size_t* out);
using GetDimensionsFn = Status* (*)(const TensorInfo*, int64_t* dims, size_t n);
using GetTensorTypeAndShapeFn = Status* (*)(const Value*, TensorInfo** out);
using CreateCpuMemoryInfoFn = Status* (*)(int allocator_type, int mem_type, MemoryInfo** out);
using AllocatorFreeFn = Status* (*)(Allocator*, void* p);
using GetDefaultAllocatorFn = Status* (*)(Allocator** out);
template <typename T>
using ReleaseFn = void (*)(T*);

// Constants of the C API that cross as ints.
constexpr int kLoggingWarning = 2;      // OrtLoggingLevel
constexpr int kErrorInvalidArgument = 2;  // OrtErrorCode
constexpr int kArenaAllocator = 1;      // OrtAllocatorType
constexpr int kMemTypeDefault = 0;      // OrtMemType
constexpr int kOnnxTypeTensor = 1;      // ONNXType

// ONNXTensorElementDataType values.
enum ElementType : int {
  kFloat = 1, kUint8 = 2, kInt8 = 3, kUint16 = 4, kInt16 = 5, kInt32 = 6, kInt64 = 7, kString = 8,
  kBool = 9, kFloat16 = 10, kDouble = 11, kUint32 = 12, kUint64 = 13,
};

}  // namespace ir::ort
