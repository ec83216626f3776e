/*
 * infer_runtime_backend.h -- the backend contract (plugin ABI) of the infer-runtime engine.
 *
 * Every backend the engine runs on its own threads goes through this contract: the built-in
 * ones (identity, onnxruntime, rules) inside the engine, and user plugins in a shared library.
 * A plugin includes this header alone and links nothing of ours: everything it may call on the
 * host comes through the irb_host table it is given.
 *
 * A plugin exports exactly one symbol, irb_plugin_init (see the end of this file), returning a
 * static irb_backend table. The host loads the library with RTLD_NOW | RTLD_LOCAL, calls the
 * entry once, checks the table's abi_version against its own IRB_ABI_VERSION (a mismatch is
 * refused, naming both), and from then on creates one instance per model instance.
 *
 * Conventions
 *   - Every fallible function returns irb_error*: NULL is success; otherwise an error made
 *     with host->error_new, which the host takes over. No C++ exception, longjmp or abort may
 *     cross this boundary: wrap each entry point in try/catch.
 *   - Ownership phrasebook as in infer_runtime.h: "borrowed for the call", "borrowed until
 *     <x>", "ownership moves to <y>".
 *   - Tables start with struct_size and abi_version. A member exists for the other side only if
 *     it lies within struct_size and is not NULL; members are only ever appended.
 *   - dtype codes and error codes have the values of ir_dtype and ir_code in infer_runtime.h.
 *
 * Threading
 *   - create and destroy of one backend's instances are called from one host thread at a
 *     time, never while that instance executes.
 *   - execute is never called concurrently on one instance; different instances of one model
 *     execute in parallel, each always on the same engine thread (thread-local state and
 *     device contexts stay put).
 *   - Host table functions may be called from any thread.
 *   - The Python interpreter is never involved: no GIL is held around any of these calls.
 */
#ifndef INFER_RUNTIME_BACKEND_H
#define INFER_RUNTIME_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define IRB_EXPORT __declspec(dllexport)
#else
#define IRB_EXPORT __attribute__((visibility("default")))
#endif

/* The contract's version: one number, bumped on any incompatible change. A plugin built
 * against another version is refused at load with a message naming both. */
#define IRB_ABI_VERSION 1

/* The name of the one symbol a plugin exports. */
#define IRB_ENTRY_SYMBOL "irb_plugin_init"

/* Error codes (the values of ir_code). */
#define IRB_ERROR_UNKNOWN 1
#define IRB_ERROR_INVALID_ARGUMENT 2
#define IRB_ERROR_NOT_FOUND 3
#define IRB_ERROR_UNAVAILABLE 4
#define IRB_ERROR_RESOURCE_EXHAUSTED 5
#define IRB_ERROR_DEADLINE_EXCEEDED 6
#define IRB_ERROR_INTERNAL 7
#define IRB_ERROR_CANCELLED 8
#define IRB_ERROR_BACKEND 9

/* Element types (the values of ir_dtype). BYTES elements are each a 4-byte little-endian
 * length followed by that many bytes, back to back. */
#define IRB_DTYPE_BOOL 1
#define IRB_DTYPE_UINT8 2
#define IRB_DTYPE_UINT16 3
#define IRB_DTYPE_UINT32 4
#define IRB_DTYPE_UINT64 5
#define IRB_DTYPE_INT8 6
#define IRB_DTYPE_INT16 7
#define IRB_DTYPE_INT32 8
#define IRB_DTYPE_INT64 9
#define IRB_DTYPE_FLOAT16 10
#define IRB_DTYPE_FLOAT32 11
#define IRB_DTYPE_FLOAT64 12
#define IRB_DTYPE_BYTES 13

/* Log levels of irb_host.log. */
#define IRB_LOG_DEBUG 0
#define IRB_LOG_INFO 1
#define IRB_LOG_WARNING 2
#define IRB_LOG_ERROR 3

/* An error, made by the host (irb_host.error_new) and handed back to it. */
typedef struct irb_error irb_error;

/* Where one batch's outputs go: host-owned, valid only during the execute call it came with. */
typedef struct irb_sink irb_sink;

/* A tensor descriptor (the layout of ir_tensor). In a signature `data` is NULL and -1 in
 * `shape` means "any size". Who owns the pointers is stated where a descriptor is passed. */
typedef struct irb_tensor {
    const char* name;
    int32_t dtype;
    int32_t ndim;
    const int64_t* shape;
    const void* data;
    uint64_t byte_size;
} irb_tensor;

/* Called by the host exactly once, from any thread, possibly after execute returned and after
 * the instance was destroyed, when it no longer needs memory a backend handed over. */
typedef void (*irb_release_fn)(void* owner);

/* What the host offers a backend. Borrowed: valid until the library is unloaded (the host
 * never unloads a library while any of its instances or adopted buffers live). */
typedef struct irb_host {
    uint32_t struct_size;   /* sizeof(irb_host) as the host was built */
    uint32_t abi_version;   /* the host's IRB_ABI_VERSION */

    /* Makes an error to return. `message` is borrowed for the call (copied); NULL reads as "".
     * An unknown code becomes IRB_ERROR_UNKNOWN. Never returns NULL. */
    irb_error* (*error_new)(int32_t code, const char* message);

    /* Writes one log event (structured on the host side). Strings are borrowed for the call. */
    void (*log)(int32_t level, const char* backend, const char* message);

    /* Outputs of a batch, one of three ways per output (each output name once per batch):
     *   output_alloc: host memory of `byte_size` bytes for the output, which the backend fills
     *     before execute returns; *data is borrowed until execute returns. No copy, no callback.
     *   output_copy: the host copies `tensor` (borrowed for the call) now.
     *   output_adopt: the host takes `tensor->data` as it is (no copy) and calls
     *     release(owner) once when it is done with it -- also when this call fails.
     * When the model batches, every output's leading dimension must be the batch's rows. Errors:
     * INVALID_ARGUMENT for a bad descriptor, a duplicate name, or a shape or dtype that
     * contradicts the model's declared outputs. */
    irb_error* (*output_alloc)(irb_sink* sink, const char* name, int32_t dtype, int32_t ndim,
                               const int64_t* shape, uint64_t byte_size, void** data);
    irb_error* (*output_copy)(irb_sink* sink, const irb_tensor* tensor);
    irb_error* (*output_adopt)(irb_sink* sink, const irb_tensor* tensor, irb_release_fn release,
                               void* owner);

    /* Fails one request of the batch (`request` indexes irb_batch.request_rows) with `error`,
     * whose ownership moves to the host: that request completes with the error while the
     * others get their rows of the outputs (the outputs must still cover every row). For a
     * failure that concerns one row's data, not the batch. */
    void (*request_fail)(irb_sink* sink, int32_t request, irb_error* error);
} irb_host;

/* What create is given. Everything it points to is borrowed for the call. */
typedef struct irb_create_args {
    uint32_t struct_size;
    const char* model_name;
    const char* config_json;        /* the spec's table for this backend, as JSON ("{}" if none) */
    const irb_tensor* inputs;       /* the model's declared inputs; NULL with n_inputs = -1:
                                       none declared */
    int32_t n_inputs;
    const irb_tensor* outputs;      /* declared outputs, likewise */
    int32_t n_outputs;
    int32_t instance;               /* which instance this is, 0 .. instances-1 */
    int32_t instances;
    int64_t max_batch_rows;         /* the model's max_batch_size; 0 when it does not batch */
} irb_create_args;

/* One batch to run. Borrowed for the call; inputs are read-only. */
typedef struct irb_batch {
    uint32_t struct_size;
    int32_t n_inputs;
    const irb_tensor* inputs;       /* gathered and contiguous, in signature order; when the model
                                       batches, each leading dimension is `rows` */
    int64_t rows;                   /* rows in the batch; for a model that does not batch, the
                                       leading dimension of the first input (1 for a scalar) */
    int32_t n_requests;             /* requests packed into the batch */
    const int64_t* request_rows;    /* rows of each request, in order (n_requests entries) */
    irb_sink* sink;                 /* pass to the host's output functions */
} irb_batch;

/* A backend: a static table the plugin returns from irb_plugin_init. */
typedef struct irb_backend {
    uint32_t struct_size;   /* sizeof(irb_backend) as the plugin was built */
    uint32_t abi_version;   /* the IRB_ABI_VERSION the plugin was built against */
    const char* name;       /* for messages and logs, e.g. "scaler" */

    /* Creates one instance. *state is the backend's own, passed back to every other call.
     * On error nothing was created and destroy is not called. Errors: INVALID_ARGUMENT for a
     * config or signature the backend cannot serve (say which key or tensor), NOT_FOUND for a
     * missing file. */
    irb_error* (*create)(const irb_host* host, const irb_create_args* args, void** state);

    /* The instance's inputs (`outputs` = 0) or outputs (1): fills out[0 .. min(n, capacity))
     * and returns n, or returns -1 for a backend that takes whatever it is given (identity).
     * Pointers are borrowed until destroy. The host checks them against the spec's declared
     * signature (the spec may narrow a -1, never rename or retype). */
    int32_t (*signature)(void* state, int32_t outputs, irb_tensor* out, int32_t capacity);

    /* The batch rows the instance accepts, fixed after create: the host never calls execute
     * with fewer than *min_rows or more than *max_rows rows (a model whose max_batch_size
     * exceeds *max_rows is refused at load). May be NULL: any rows. */
    void (*batch_range)(void* state, int64_t* min_rows, int64_t* max_rows);

    /* Runs one batch and sets every output through the host's output functions. An error fails
     * exactly the requests of this batch; the model keeps serving. */
    irb_error* (*execute)(void* state, const irb_batch* batch);

    /* Frees the instance (joining any thread it started). Called once per successful create. */
    void (*destroy)(void* state);

    /* One line for logs ("onnxruntime 1.20.1 (CPUExecutionProvider)"), borrowed until destroy.
     * May be NULL. */
    const char* (*describe)(void* state);
} irb_backend;

/* The entry point a plugin exports (extern "C", the only visible symbol): sets *backend to its
 * static table. `host` is borrowed until the library is unloaded. Called once per load. */
typedef irb_error* (*irb_plugin_init_fn)(const irb_host* host, const irb_backend** backend);

#ifdef __cplusplus
}
#endif

#endif /* INFER_RUNTIME_BACKEND_H */
