/*
 * infer_runtime.h -- the C ABI of the infer-runtime engine.
 *
 * This header is the whole contract: anything not declared here is private and may
 * change. build.py feeds the region between the IR_CDEF_BEGIN / IR_CDEF_END markers to
 * cffi's cdef parser, so that region holds plain declarations only (no macros inside
 * prototypes, no #include, no #ifdef).
 *
 * Conventions
 *   - Enumerations document values; parameters that carry caller-chosen enum values are
 *     plain ints, checked on entry (an out-of-range enum value is undefined in C++).
 *   - Every fallible function returns ir_error*: NULL means success, otherwise the caller
 *     owns the error and frees it with ir_error_free. Out-pointers are written only on
 *     success.
 *   - No C++ exception ever crosses this boundary; an escaped exception becomes
 *     IR_ERROR_INTERNAL (or IR_ERROR_RESOURCE_EXHAUSTED for std::bad_alloc).
 *   - Ownership phrasebook: "caller owns; free with X", "borrowed; valid until <owner> is
 *     freed", "borrowed for the duration of the call".
 *   - Versioning: MAJOR changes on any incompatible change, MINOR on additions. A client
 *     built against MAJOR.MINOR works with a library of the same MAJOR and MINOR >= its own.
 *     While MAJOR is 0 the ABI is not stable: any MINOR change may be incompatible, and the
 *     Python package requires an exact match.
 */
#ifndef INFER_RUNTIME_H
#define INFER_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define IR_API __declspec(dllexport)
#else
#define IR_API __attribute__((visibility("default")))
#endif

/* IR_CDEF_BEGIN */

#define IR_ABI_VERSION_MAJOR 0
#define IR_ABI_VERSION_MINOR 12

/* ---- Versions --------------------------------------------------------------------
 * Threading: safe from any thread.
 */

/* The ABI version of the loaded library, (MAJOR << 16) | MINOR. */
uint32_t ir_abi_version(void);

/* ---- Errors ----------------------------------------------------------------------
 * An ir_error is an immutable heap object carrying a code and a message.
 * Ownership: the caller owns every ir_error* returned to it; free with ir_error_free.
 * Threading: an error may be read and freed from any thread, but by one thread at a time.
 */

typedef enum ir_code {
    IR_ERROR_UNKNOWN = 1,             /* should not happen; a bug */
    IR_ERROR_INVALID_ARGUMENT = 2,    /* bad input: names, dtypes, shapes, values */
    IR_ERROR_NOT_FOUND = 3,           /* unknown model, tensor or registry entry */
    IR_ERROR_UNAVAILABLE = 4,         /* not ready, shutting down */
    IR_ERROR_RESOURCE_EXHAUSTED = 5,  /* queue full, out of memory */
    IR_ERROR_DEADLINE_EXCEEDED = 6,   /* queued past its timeout */
    IR_ERROR_INTERNAL = 7,            /* an engine invariant broke */
    IR_ERROR_CANCELLED = 8,           /* cancelled by the caller or by shutdown */
    IR_ERROR_BACKEND = 9              /* the backend failed while running a batch */
} ir_code;

typedef struct ir_error ir_error;

/* Creates an error. `code` is one of ir_code (passed as int: codes from callers are
 * checked, and an out-of-range one becomes IR_ERROR_UNKNOWN). `message` is borrowed for
 * the duration of the call (copied); NULL reads as "".
 * Ownership: caller owns the result; free with ir_error_free. Returns NULL only when
 * memory is exhausted. */
ir_error* ir_error_new(int code, const char* message);

/* The error's code. `error` must not be NULL. */
ir_code ir_error_code(const ir_error* error);

/* The error's message, NUL-terminated UTF-8.
 * Ownership: borrowed; valid until `error` is freed. */
const char* ir_error_message(const ir_error* error);

/* The stable upper-case name of a code ("INVALID_ARGUMENT", ...); "UNKNOWN" for values
 * outside ir_code.
 * Ownership: borrowed; static storage. */
const char* ir_code_name(int code);

/* Frees an error. NULL is a harmless no-op. */
void ir_error_free(ir_error* error);

/* ---- Self-test hooks (for the ABI tests; cheap, side-effect free) ---------------- */

typedef enum ir_selftest_mode {
    IR_SELFTEST_OK = 0,              /* returns NULL */
    IR_SELFTEST_STATUS = 1,          /* returns an error built from a C++ Status */
    IR_SELFTEST_THROW_STD = 2,       /* throws std::runtime_error(message) inside */
    IR_SELFTEST_THROW_BAD_ALLOC = 3, /* throws std::bad_alloc inside */
    IR_SELFTEST_THROW_OTHER = 4      /* throws a non-std type inside */
} ir_selftest_mode;

/* Exercises the error path: returns the error `mode` (one of ir_selftest_mode) asks for,
 * with `code` (one of ir_code) and `message` (borrowed for the duration of the call),
 * proving exceptions stay inside the engine. An unknown mode is INVALID_ARGUMENT.
 * Threading: safe from any thread. */
ir_error* ir_selftest_fail(int mode, int code, const char* message);

/* ---- Tensors ---------------------------------------------------------------------- */

typedef enum ir_dtype {
    IR_DTYPE_BOOL = 1,
    IR_DTYPE_UINT8 = 2,
    IR_DTYPE_UINT16 = 3,
    IR_DTYPE_UINT32 = 4,
    IR_DTYPE_UINT64 = 5,
    IR_DTYPE_INT8 = 6,
    IR_DTYPE_INT16 = 7,
    IR_DTYPE_INT32 = 8,
    IR_DTYPE_INT64 = 9,
    IR_DTYPE_FLOAT16 = 10,
    IR_DTYPE_FLOAT32 = 11,
    IR_DTYPE_FLOAT64 = 12,
    IR_DTYPE_BYTES = 13      /* variable-length elements: each is a 4-byte little-endian length
                                followed by that many bytes, back to back (as Triton) */
} ir_dtype;

/* A tensor descriptor: a small plain struct, never owned by itself. Who owns `name`,
 * `shape` and `data` is stated by each function that takes or fills one. In a model's
 * signature, -1 in `shape` means "any size". */
typedef struct ir_tensor {
    const char* name;
    int32_t dtype;          /* one of ir_dtype */
    int32_t ndim;
    const int64_t* shape;
    const void* data;
    uint64_t byte_size;
} ir_tensor;

/* ---- Engine ------------------------------------------------------------------------
 * An engine owns a table of models by name, their worker threads, a timekeeper thread that
 * fails queued requests at their deadline, and one completion queue.
 * Ownership: caller owns the engine; free with ir_engine_destroy.
 * Threading: every function of this section is safe from any thread, concurrently with
 * submission. Completions are delivered to one consumer: either the eventfd +
 * ir_engine_drain pair (asyncio) or ir_engine_wait (a blocking thread), not both.
 */

typedef struct ir_engine ir_engine;
typedef struct ir_model ir_model;
typedef struct ir_pipeline ir_pipeline;
typedef struct ir_response ir_response;
typedef struct ir_batch ir_batch;
typedef struct ir_backend ir_backend;

/* Creates an empty engine (its timekeeper thread starts).
 * Ownership: caller owns *out; free with ir_engine_destroy. Errors: RESOURCE_EXHAUSTED when no
 * eventfd or thread can be made. */
ir_error* ir_engine_create(ir_engine** out);

/* Stops the engine if still running (ir_engine_stop with timeout 0), joins its native
 * threads and frees every model, queued request and undrained completion. Call it only
 * after the threads serving external backends (ir_model_next_batch) have returned. Model
 * handles still held afterwards answer UNAVAILABLE and must still be released.
 * NULL is a harmless no-op. Threading: not concurrently with any other call on the engine. */
void ir_engine_destroy(ir_engine* engine);

/* A non-blocking eventfd that becomes readable when completions are waiting; read it
 * (8 bytes) to re-arm, then call ir_engine_drain until it returns fewer than `capacity`.
 * Ownership: borrowed; valid until the engine is destroyed. */
int ir_engine_event_fd(const ir_engine* engine);

typedef enum ir_backend_kind {
    IR_BACKEND_IDENTITY = 1,   /* native identity (outputs are the inputs); shorthand for a
                                  backend opened as "identity" */
    IR_BACKEND_EXTERNAL = 2,   /* batches are pulled by the host with ir_model_next_batch */
    IR_BACKEND_NATIVE = 3      /* an opened ir_backend (config.native), run by engine threads */
} ir_backend_kind;

typedef struct ir_model_config {
    uint32_t struct_size;              /* sizeof(ir_model_config) */
    const char* name;
    int32_t backend;                   /* one of ir_backend_kind */
    int32_t instances;                 /* >= 1 */
    int32_t batching;                  /* 0: one request at a time per instance */
    int64_t max_batch_size;            /* rows, when batching */
    int64_t max_queue_delay_us;        /* [0, 2^40] */
    const int64_t* preferred_batch_sizes;
    int32_t n_preferred;
    int64_t max_queue_size;            /* >= 1 */
    int64_t default_timeout_us;        /* [0, 2^40]; 0: none */
    int32_t priority_levels;           /* [1, 64] */
    const ir_tensor* inputs;           /* the signature (data unused); NULL with n_inputs -1: any */
    int32_t n_inputs;
    int64_t idle_spin_us;              /* an idle worker polls for new work this long before
                                          sleeping: lower latency, some CPU; 0 = never */
    ir_backend* native;                /* IR_BACKEND_NATIVE: the opened backend; else NULL */
    const ir_tensor* outputs;          /* declared outputs (data unused), checked against every
                                          batch's outputs; NULL: unchecked */
    int32_t n_outputs;
    int64_t execution_timeout_us;      /* a batch running longer fails its requests with
                                          DEADLINE_EXCEEDED (see ir_model_stats); 0: none */
    int32_t adaptive;                  /* 1: dispatch before max_queue_delay_us when no arrival
                                          is expected to pay for the wait (docs/batching.md) */
} ir_model_config;

/* Adds a model under a new name and starts its native workers. `config` and everything it
 * points to are borrowed for the call (copied), except `native`: on success the model takes
 * it over (the handle is freed; do not use or free it again); on failure the caller still
 * owns it. A native model's inputs must be the backend's (ir_backend_tensor), in order; a -1
 * dimension may be narrowed.
 * Ownership: caller owns *out (a handle on this model); release with ir_model_release. The
 * engine holds its own reference while the model is in its table.
 * Errors: INVALID_ARGUMENT for a bad config or a name already in the table; UNAVAILABLE once
 * the engine stopped. */
ir_error* ir_engine_add_model(ir_engine* engine, const ir_model_config* config, ir_model** out);

/* Replaces the model called config->name with a new one, as ir_engine_add_model builds it.
 * The new model admits at once; the old one stops admitting (a submission through an old
 * handle goes to the new model), finishes what it admitted, then its workers stop and it is
 * freed when the engine is (its backend as soon as its workers stop). No request is lost or answered by a half-torn model.
 * Ownership and `native`: as ir_engine_add_model. Errors: NOT_FOUND when no model has that
 * name; otherwise as ir_engine_add_model (the old model keeps serving on any error). */
ir_error* ir_engine_replace_model(ir_engine* engine, const ir_model_config* config, ir_model** out);

/* Takes the model called `name` out of the table: it stops admitting (UNAVAILABLE), finishes
 * what it admitted in the background, then its workers stop. `name` is borrowed for the call.
 * Errors: NOT_FOUND. */
ir_error* ir_engine_retire_model(ir_engine* engine, const char* name);

/* A handle on the model currently called `name`. `name` is borrowed for the call.
 * Ownership: caller owns *out; release with ir_model_release. Errors: NOT_FOUND. */
ir_error* ir_engine_find_model(ir_engine* engine, const char* name, ir_model** out);

/* Releases a model handle. NULL is a harmless no-op. Threading: any thread, once per handle. */
void ir_model_release(ir_model* model);

/* Stops admission (new submissions fail with UNAVAILABLE), waits up to `timeout_us` (-1:
 * forever) for queued and running work to finish, then fails what is still queued with
 * CANCELLED and wakes every ir_model_next_batch caller with UNAVAILABLE. A native instance
 * still inside its backend gets a short grace (0.2 s), then its batch fails with UNAVAILABLE
 * and its thread is left behind (with its model) rather than waited for. A batch still
 * running on an external (pulled) instance completes later, when its host finishes it.
 * Idempotent; a concurrent second call returns at once while the first drains. */
void ir_engine_stop(ir_engine* engine, int64_t timeout_us);

/* ---- Submission --------------------------------------------------------------------
 * Submits one request. `inputs` follow the model's signature order (`name` is read only
 * for models without a fixed signature); the descriptors are borrowed for the call, and
 * the `data` they point to is borrowed until this request's completion is delivered.
 * `priority` is in [0, priority_levels), larger is more urgent. `timeout_us` > 0 may only
 * shorten the model's default timeout (any value, however large, is safe); 0 keeps it. A
 * model without a fixed signature takes at most 64 inputs.
 * Errors, at once and without enqueuing: INVALID_ARGUMENT (shape/dtype/rows), UNAVAILABLE
 * (stopping), RESOURCE_EXHAUSTED (queue full).
 * Threading: safe from any thread; never blocks on the model's work. */
ir_error* ir_model_submit(ir_model* model, uint64_t cookie, const ir_tensor* inputs, int32_t n_inputs, int32_t priority, int64_t timeout_us, uint32_t flags);

/* Submits `n_requests` requests whose inputs lie back to back in one set of descriptors:
 * a host that coalesces a burst of small requests (one concatenation per input, one call)
 * instead of crossing the ABI once per request. Request k is rows
 * [rows[0] + ... + rows[k-1], rows[0] + ... + rows[k]) of every input, with the cookie
 * `first_cookie + k`; each input's leading dimension is the sum of `rows`, each rows[k] is
 * 1 to max_batch_size. From then on each is a request like any other: batched, timed out,
 * completed and counted on its own (requests that land in one batch in their submitted
 * order are run on the caller's memory without a gather). Batching models only; BYTES inputs
 * are refused (their rows have no fixed size). `priority`, `timeout_us` and `flags` apply to
 * all. The data is borrowed until the last of them is delivered.
 * Requests are admitted in order. On a refusal returns its error and `*admitted` says how
 * many went in before it; the others are refused and never run: all of them for
 * INVALID_ARGUMENT and UNAVAILABLE, the tail for RESOURCE_EXHAUSTED (counted as rejected).
 * Threading: as ir_model_submit. */
ir_error* ir_model_submit_many(ir_model* model, uint64_t first_cookie, const ir_tensor* inputs, int32_t n_inputs, const int64_t* rows, int32_t n_requests, int32_t priority, int64_t timeout_us, uint32_t flags, int32_t* admitted);

/* ir_model_submit flags. IR_SUBMIT_NO_WAKE admits the request without waking the model's idle
 * workers: a host submitting a burst (an event loop resuming many callers at once) sets it
 * on all but the first request and calls ir_model_wake once at the end, so the burst is
 * batched instead of being picked up one request at a time. Staged requests that add up to
 * max_batch_size rows are handed over at once (that batch cannot grow), so an instance runs
 * it while the host is still submitting. Nothing waits for the wake longer than the host. */
#define IR_SUBMIT_NO_WAKE 1

/* Wakes the model's idle workers to look at the queue (see IR_SUBMIT_NO_WAKE).
 * Threading: safe from any thread. */
void ir_model_wake(ir_model* model);

/* Cancels the request submitted with `cookie` if it is still queued: it completes at once with
 * CANCELLED (counted as cancelled) and never runs. Returns 1 if it was cancelled, 0 if it is
 * running, finished or unknown (its completion comes as usual). Host cookies stay below 2^62:
 * the HTTP front end's requests carry bit 62, pipeline steps' bit 63, so a cancel reaches only
 * the submitter's own request. Threading: any thread. */
int32_t ir_model_cancel(ir_model* model, uint64_t cookie);

/* ---- Completions -------------------------------------------------------------------
 * Completions wait in the engine's queue until the host drains them: every admitted request
 * completes exactly once (success, or an error: DEADLINE_EXCEEDED, CANCELLED, BACKEND,
 * UNAVAILABLE). Threading: drain, poll and wait are for one consumer thread at a time.
 */

typedef struct ir_completion {
    uint64_t cookie;
    ir_response* response;  /* on success: caller owns; release with ir_response_release */
    ir_error* error;        /* on failure: caller owns; free with ir_error_free */
    /* For requests of a batching model: the outputs of all requests of one batch live in
     * shared buffers, and this request owns rows [row_offset, row_offset + rows) of the
     * batch's batch_rows. `batch` identifies the batch (NULL for models that do not batch);
     * the completions of one batch are delivered consecutively, in row order, so a host can
     * wrap the batch's buffers once (ir_response_describe_batch) and hand out row views. */
    const void* batch;
    int64_t row_offset;
    int64_t rows;
    int64_t batch_rows;
} ir_completion;

/* Moves up to `capacity` completions into `out` (caller-owned, `capacity` entries); returns
 * how many. Each written entry's response or error is the caller's from now on. Never blocks. */
size_t ir_engine_drain(ir_engine* engine, ir_completion* out, size_t capacity);

/* Like ir_engine_drain, but first busy-waits (no sleep) up to `spin_us` for a completion.
 * For a host that just submitted a lone request to a fast model: catching its completion
 * here saves the consumer a sleep and a wake-up (the eventfd stays signalled; the next drain
 * may find nothing). Returns how many were written. Same consumer rules as ir_engine_drain. */
size_t ir_engine_poll(ir_engine* engine, int64_t spin_us, ir_completion* out, size_t capacity);

/* Like ir_engine_drain, but blocks up to `timeout_us` (-1: forever) until at least one
 * completion is available or the engine stops. Returns how many were written. Once the
 * engine has stopped it returns 0 as soon as nothing is queued, even while a batch an
 * external worker was running at the stop timeout has yet to complete (native instances
 * finish theirs inside ir_engine_stop): after joining the external workers, drain once
 * more before ir_engine_destroy. */
size_t ir_engine_wait(ir_engine* engine, int64_t timeout_us, ir_completion* out, size_t capacity);

/* A response: the outputs of one successful request (its rows of its batch's outputs).
 * Ownership: the caller's, from the completion on; release with ir_response_release. The
 * output memory lives until the last response of its batch is released.
 * Threading: a response may be read from several threads at once and released from any
 * thread, once. `response` must not be NULL in the functions below. */

/* The number of outputs. */
int32_t ir_response_output_count(const ir_response* response);

/* Fills `out` for output `index` (0 <= index < ir_response_output_count: out-of-range
 * indices are undefined); every pointer in it is borrowed until the response is released. */
void ir_response_output(const ir_response* response, int32_t index, ir_tensor* out);

/* Fills `out[0 .. min(count, capacity))` like ir_response_output, in one call; returns
 * the number of outputs (which may exceed `capacity`). */
int32_t ir_response_describe(const ir_response* response, ir_tensor* out, int32_t capacity);

/* Like ir_response_describe, but describes the whole batch this response belongs to (the
 * leading dimension is the batch's rows). Pointers are borrowed until this response is
 * released; the memory is shared with the other responses of the batch. */
int32_t ir_response_describe_batch(const ir_response* response, ir_tensor* out, int32_t capacity);

/* Releases the response and its hold on the output memory. NULL is a no-op. */
void ir_response_release(ir_response* response);

/* Releases the response or frees the error of each of completions[0 .. n) and sets both
 * NULL: one call for a host that has taken what it needs from a run of completions (say,
 * the first response of a batch, whose buffers it wraps once) and drops the rest. */
void ir_completions_release(ir_completion* completions, size_t n);

/* ---- External backends (the pull side) ----------------------------------------------
 * A host thread per instance calls ir_model_next_batch in a loop, runs the batch and calls
 * ir_batch_finish or ir_batch_complete. Batching decisions, timeouts, gather and scatter stay
 * in the engine. A batch is the same object a native backend runs (its outputs are checked
 * against the model's declared outputs the same way).
 * Ownership: a batch is borrowed from its model's instance from ir_model_next_batch until
 * ir_batch_finish/_complete, which must be called exactly once (also after the engine
 * stopped: the model stays alive for it). Threading: one thread per batch.
 */

/* Blocks until a batch is formed for `instance` (or `timeout_us` passes; -1: forever).
 * On success `*out` is a batch owned by the caller until ir_batch_finish/_complete, or
 * NULL on timeout; when `inputs` is not NULL, its first min(count, capacity) entries
 * describe the gathered inputs (as ir_batch_input) and `*n_inputs` gets the count, saving
 * the host one call per batch. Errors: UNAVAILABLE once the engine stops;
 * INVALID_ARGUMENT for a native model or an instance out of range.
 * Threading: one caller per instance. Blocks without needing the caller's locks. */
ir_error* ir_model_next_batch(ir_model* model, int32_t instance, int64_t timeout_us, ir_batch** out,
                              ir_tensor* inputs, int32_t capacity, int32_t* n_inputs);

/* The gathered inputs of the batch (leading dimension = the batch's rows when batching),
 * 0 <= index < ir_batch_input_count. Pointers are borrowed until ir_batch_finish. */
int32_t ir_batch_input_count(const ir_batch* batch);
void ir_batch_input(const ir_batch* batch, int32_t index, ir_tensor* out);

/* Copies one output of the whole batch into engine memory. `output` is borrowed for the
 * call. When batching, its leading dimension must equal the batch's rows.
 * Errors: INVALID_ARGUMENT (dtype, shape, size). */
ir_error* ir_batch_set_output(ir_batch* batch, const ir_tensor* output);

/* Completes every request of the batch: with the outputs set so far when `error` is NULL
 * (a declared output never set fails the batch), else with `error` (ownership moves to the
 * engine). The batch goes back to its instance; do not use it again. A batch that ran past
 * the model's execution_timeout_us was failed already: its outputs are dropped. */
void ir_batch_finish(ir_batch* batch, ir_error* error);

/* ir_batch_set_output for each of `outputs[0 .. n)` (borrowed for the call), then
 * ir_batch_finish, in one call. If an output is rejected, the batch fails with a BACKEND
 * error naming it. The batch is freed. */
void ir_batch_complete(ir_batch* batch, const ir_tensor* outputs, int32_t n_outputs);

/* ---- Backends ------------------------------------------------------------------------
 * A native backend runs batches on the engine's own instance threads through the backend
 * contract (infer_runtime_backend.h): a built-in one found by name, or a plugin library. It is
 * opened first (instances created, the signature read, so the host can check it against its
 * own declarations), then given to ir_engine_add_model or ir_engine_replace_model.
 * Ownership: caller owns an opened backend until a model takes it; free it with
 * ir_backend_free otherwise. Threading: one thread at a time per backend.
 */

typedef struct ir_backend_options {
    uint32_t struct_size;              /* sizeof(ir_backend_options) */
    const char* kind;                  /* a built-in ("identity", "onnxruntime", "rules") or
                                          "plugin" */
    const char* library;               /* "plugin": path of the shared library; else NULL */
    const char* model_name;            /* for messages */
    const char* config_json;           /* the backend's options as JSON; NULL reads as "{}" */
    const ir_tensor* inputs;           /* declared signature (data unused); NULL with -1: none */
    int32_t n_inputs;
    const ir_tensor* outputs;
    int32_t n_outputs;
    int32_t instances;                 /* instances to create, >= 1 */
    int64_t max_batch_rows;            /* the model's max_batch_size; 0: it does not batch */
} ir_backend_options;

/* Opens a backend: loads a plugin library (once per path for the life of the process; its
 * entry symbol and IRB_ABI_VERSION checked), then creates `instances` instances.
 * `options` and everything it points to are borrowed for the call.
 * Errors: NOT_FOUND (unknown kind, library or file missing), INVALID_ARGUMENT (the backend
 * refused its config or signature, the library lacks irb_plugin_init or was built for another
 * IRB_ABI_VERSION -- the message names both), UNAVAILABLE (a library that cannot be loaded). */
ir_error* ir_backend_open(const ir_backend_options* options, ir_backend** out);

/* The backend's signature as its first instance reports it: inputs (`outputs` = 0) or
 * outputs (`outputs` = 1). Count is -1 for backends that take any tensors (identity). In
 * `out` (data unused), -1 in `shape` is any size; pointers are borrowed until the backend is
 * freed or taken over. Errors: NOT_FOUND for an index out of range. */
int32_t ir_backend_tensor_count(const ir_backend* backend, int32_t outputs);
ir_error* ir_backend_tensor(const ir_backend* backend, int32_t outputs, int32_t index, ir_tensor* out);

/* The batch rows the backend accepts (its instances' batch_range): [*min_rows, *max_rows]. */
void ir_backend_batch_range(const ir_backend* backend, int64_t* min_rows, int64_t* max_rows);

/* One line describing what runs the model, e.g. "onnxruntime 1.31.1 (CPUExecutionProvider)".
 * Ownership: borrowed; valid until the backend is freed or taken over. */
const char* ir_backend_info(const ir_backend* backend);

/* Runs one batch of `inputs` (borrowed for the call; one request) on every instance of an
 * opened backend and drops the outputs: a host warms a new version this way before it swaps
 * the version in (first-run allocations, lazy initialisation). Errors: the first instance's
 * failure, as the backend reported it. Threading: not concurrently with other calls on it. */
ir_error* ir_backend_warm(ir_backend* backend, const ir_tensor* inputs, int32_t n_inputs);

/* Frees a backend no model took over (destroying its instances). NULL is a harmless no-op. */
void ir_backend_free(ir_backend* backend);

/* The IRB_ABI_VERSION of the backend contract this engine implements. */
uint32_t ir_backend_abi_version(void);

/* ---- Statistics -------------------------------------------------------------------- */

#define IR_DURATION_BUCKETS 25   /* upper bounds 1us * 2^i, i = 0..23, then +Inf */
#define IR_BATCH_BUCKETS 18      /* upper bounds 2^i rows, i = 0..16, then +Inf */

typedef struct ir_model_stats {
    uint32_t struct_size;
    uint64_t submitted;
    uint64_t succeeded;
    uint64_t failed_invalid;
    uint64_t rejected_queue_full;
    uint64_t timed_out;
    uint64_t failed_backend;
    uint64_t cancelled;
    uint64_t batches;
    uint64_t batches_full;
    uint64_t batches_preferred;
    uint64_t batches_delay;
    uint64_t batched_rows;
    int64_t queue_depth;
    int64_t in_flight;                  /* admitted and not yet completed */
    uint64_t queue_ns_sum;              /* over requests that ran */
    uint64_t compute_ns_sum;            /* over batches */
    uint64_t queue_ns_buckets[25];      /* IR_DURATION_BUCKETS */
    uint64_t compute_ns_buckets[25];
    uint64_t request_ns_buckets[25];  /* submit to completion, successes */
    uint64_t request_ns_sum;
    uint64_t batch_rows_buckets[18];    /* IR_BATCH_BUCKETS */
    uint64_t batches_early;             /* dispatched before the delay: no arrival expected (adaptive) */
    uint64_t execution_timeouts;        /* batches failed for running past execution_timeout_us */
    int64_t unhealthy_instances;        /* instances out of service: a batch ran past its timeout
                                           and has not returned; all of them = the model is unready */
} ir_model_stats;

/* A consistent-enough snapshot (each counter is atomic). `out->struct_size` must be set. */
ir_error* ir_model_stats_get(const ir_model* model, ir_model_stats* out);

/* ---- Pipelines -----------------------------------------------------------------------
 * A pipeline is a graph of steps, each a model of the engine's table, run inside the
 * engine: a step's outputs (its rows of its batch's buffers, not copied) feed the next
 * steps' requests as soon as it completes; every step batches with its own model's policy;
 * independent steps are in flight at once. The pipeline's outputs complete the caller's
 * request: when every output comes from one step, the answers from one batch of that step
 * share one result (ir_completion.batch set, as for a model's batch: a host resolves them as
 * a run; batch_rows is where that run ends), else each response is the request's own
 * (batch NULL). Submission,
 * completion, cancellation and statistics work as for a model. A failing step fails the
 * request naming the pipeline, the step and its model, and cancels the request's other
 * queued steps; the request completes once none of its steps still runs (so its inputs
 * are never read after its completion). A request's timeout bounds every step (each is
 * submitted with what is left of it); its priority goes to every step, clamped to that
 * step's model's priority_levels. A step whose model is replaced sends new requests to the
 * new model; admitted ones finish on the old. */

typedef struct ir_pipeline_binding {
    const char* tensor;         /* the step model's input (or the pipeline's output) it fills */
    int32_t source_step;        /* an earlier step's index; -1: the pipeline's request */
    const char* source_tensor;  /* that step's output, or the request's input */
} ir_pipeline_binding;

typedef struct ir_pipeline_step {
    const char* name;                    /* unique within the pipeline; named in errors */
    const char* model;                   /* a model of the engine's table */
    const ir_pipeline_binding* inputs;   /* one per input of the model (fixed signature) */
    int32_t n_inputs;
} ir_pipeline_step;

typedef struct ir_pipeline_config {
    uint32_t struct_size;                /* sizeof(ir_pipeline_config) */
    const char* name;                    /* shares the models' namespace */
    const ir_tensor* inputs;             /* what a request brings, in order (data unused) */
    int32_t n_inputs;
    const ir_pipeline_step* steps;       /* 1..64, in dependency order (a step reads earlier ones) */
    int32_t n_steps;
    const ir_pipeline_binding* outputs;  /* >= 1 */
    int32_t n_outputs;
    int64_t default_timeout_us;          /* [0, 2^40]; 0: none */
    int32_t priority_levels;             /* [1, 64] */
} ir_pipeline_config;

/* Adds a pipeline over models already in the table; `config` is borrowed for the call.
 * Ownership: caller owns *out; release with ir_pipeline_release.
 * Errors: INVALID_ARGUMENT (a bad graph, a binding the models' signatures refuse, a name in
 * use), NOT_FOUND (a step's model), UNAVAILABLE (the engine stopped). */
ir_error* ir_engine_add_pipeline(ir_engine* engine, const ir_pipeline_config* config, ir_pipeline** out);

/* A handle on the pipeline called `name`. Errors: NOT_FOUND. */
ir_error* ir_engine_find_pipeline(ir_engine* engine, const char* name, ir_pipeline** out);

/* Releases a pipeline handle. NULL is a no-op. */
void ir_pipeline_release(ir_pipeline* pipeline);

/* Submits one request (inputs in the config's order; descriptors borrowed for the call,
 * data until the completion). Errors at once: INVALID_ARGUMENT (inputs, priority,
 * timeout), UNAVAILABLE (stopping). Everything later, a full queue at any step included,
 * completes the request with the step's error. `flags`: IR_SUBMIT_NO_WAKE admits the first
 * steps without waking their models (call ir_pipeline_wake after a burst).
 * Threading: any thread; never blocks on model work. */
ir_error* ir_pipeline_submit(ir_pipeline* pipeline, uint64_t cookie, const ir_tensor* inputs, int32_t n_inputs, int32_t priority, int64_t timeout_us, uint32_t flags);

/* Submits `n_requests` requests whose inputs lie back to back in one set of descriptors, as
 * ir_model_submit_many does for a model (request k = rows [sum(rows[<k]), sum(rows[<=k])),
 * cookie first_cookie + k; fixed-size inputs only, all sharing the leading dimension): one
 * call for a host's coalesced burst. Admitted in order; `*admitted` says how many (the rest
 * were refused with the error returned). Everything later completes each request alone. */
ir_error* ir_pipeline_submit_many(ir_pipeline* pipeline, uint64_t first_cookie, const ir_tensor* inputs, int32_t n_inputs, const int64_t* rows, int32_t n_requests,
                                  int32_t priority, int64_t timeout_us, uint32_t flags, int32_t* admitted);

/* Wakes the models of the pipeline's first steps (after IR_SUBMIT_NO_WAKE submissions). */
void ir_pipeline_wake(ir_pipeline* pipeline);

/* Cancels request `cookie`: its queued steps never run; it completes CANCELLED once its
 * running ones return. Returns 1 when found in flight, else 0. */
int32_t ir_pipeline_cancel(ir_pipeline* pipeline, uint64_t cookie);

/* The pipeline's counters, as a model's (the batch and queue fields stay 0; in_flight is
 * the requests between submission and completion). */
ir_error* ir_pipeline_stats_get(const ir_pipeline* pipeline, ir_model_stats* out);

typedef struct ir_pipeline_step_stats {
    uint32_t struct_size;
    uint64_t submitted;                 /* step requests submitted to its model */
    uint64_t succeeded;
    uint64_t failed;                    /* refused, failed, timed out or cancelled */
    uint64_t step_ns_sum;               /* submission to completion, successes */
    uint64_t step_ns_buckets[25];       /* IR_DURATION_BUCKETS */
} ir_pipeline_step_stats;

/* Step `index` (config order) of the pipeline. Errors: INVALID_ARGUMENT (index). */
ir_error* ir_pipeline_step_stats_get(const ir_pipeline* pipeline, int32_t index, ir_pipeline_step_stats* out);

/* ---- Test hooks: the batcher on a virtual clock ------------------------------------ */

typedef struct ir_sim_request {
    uint64_t id;
    int64_t arrival_ns;
    int64_t rows;
    int32_t priority;
    int64_t deadline_ns;     /* absolute; -1: none */
    int32_t shape_class;     /* requests batch together only within one class */
} ir_sim_request;

typedef enum ir_sim_kind { IR_SIM_BATCH = 1, IR_SIM_EXPIRED = 2, IR_SIM_REJECTED = 3 } ir_sim_kind;

typedef struct ir_sim_event {
    int64_t time_ns;
    int32_t kind;            /* one of ir_sim_kind */
    uint64_t request_id;
    int64_t batch;           /* index of the batch (IR_SIM_BATCH), else -1 */
    int32_t reason;          /* 1 full, 2 preferred, 3 delay, 4 early (IR_SIM_BATCH), else 0 */
    int32_t instance;        /* which instance ran it (IR_SIM_BATCH), else -1 */
} ir_sim_event;

/* Runs the model's batching policy (from `config`; inputs unused) over `requests` on a
 * virtual clock with `instances` workers, each batch taking exec_base_ns +
 * exec_per_row_ns * rows. Writes events in time order; `*n_out` gets the number needed
 * even when larger than `capacity` (then nothing beyond capacity is written). */
ir_error* ir_batcher_simulate(const ir_model_config* config, const ir_sim_request* requests, size_t n_requests,
                              int32_t instances, int64_t exec_base_ns, int64_t exec_per_row_ns,
                              ir_sim_event* out, size_t capacity, size_t* n_out);

/* ir_batcher_simulate with a host: one consumer takes each ended batch's results in turn,
 * spending `host_ns` on each, and the policy sees its delivery lag as the engine's completion
 * queue reports it (docs/batching.md). host_ns = 0 is ir_batcher_simulate. */
ir_error* ir_batcher_simulate_host(const ir_model_config* config, const ir_sim_request* requests, size_t n_requests,
                                   int32_t instances, int64_t exec_base_ns, int64_t exec_per_row_ns, int64_t host_ns,
                                   ir_sim_event* out, size_t capacity, size_t* n_out);

/* ---- Registry reader ---------------------------------------------------------------
 * Resolves model references against a registry file (docs/registry.md) through the SQLite C
 * API, read-only, so the engine opens the artifact a reference names.
 * Threading: safe from any thread; each call opens its own connection.
 */

typedef struct ir_registry_entry ir_registry_entry;

/* Resolves `reference` ("name@environment", "name@1.2.0" or "name" for the latest version)
 * in the registry at `db_path`. Both strings are borrowed for the call.
 * Ownership: caller owns *out; free with ir_registry_entry_free.
 * Errors: NOT_FOUND (no such file, name, version or environment: the message says what exists),
 * INVALID_ARGUMENT (a malformed reference; a registry of a newer schema), UNAVAILABLE (the file
 * is not a readable registry). */
ir_error* ir_registry_resolve(const char* db_path, const char* reference, ir_registry_entry** out);

/* A field of a resolved entry as text: "name", "version", "environment" (empty when resolved
 * by version), "artifact" (absolute path), "filename", "format", "backend", "sha256", "size",
 * "created_at", "metadata" (JSON). NULL for an unknown field.
 * Ownership: borrowed; valid until the entry is freed. */
const char* ir_registry_entry_field(const ir_registry_entry* entry, const char* field);

/* Frees an entry. NULL is a harmless no-op. */
void ir_registry_entry_free(ir_registry_entry* entry);

/* ---- Self-test hook: the engine's JSON reader (for the cross-language test) --------- */

/* Parses `size` bytes of `text` with the JSON reader the backends use and writes its
 * canonical form to `out` (compact; object members in document order; numbers as the
 * shortest text that reads back to the same double; strings with only the escapes JSON
 * requires). `*n_out` gets the length needed, even when larger than `capacity` (then nothing
 * is written). Errors: INVALID_ARGUMENT naming line and column of the first problem. */
ir_error* ir_selftest_json(const char* text, size_t size, char* out, size_t capacity, size_t* n_out);

/* ---- HTTP front end -----------------------------------------------------------------
 * The engine answering KServe v2 inference requests (JSON, and Triton's binary tensor
 * extension) over HTTP/1.1 itself, on connections the host accepts and hands in. It takes only
 * requests it understands completely, to models routed to it; at the first request it does
 * not (another endpoint, an error to explain, an unusual header or parameter), it hands the
 * connection back to the host with the bytes read so far (IR_HTTP_HANDOFF), and the host
 * serves that connection from then on. See docs/http-front.md.
 * Threading: every function is safe from any thread, except ir_http_destroy (once, last). */

typedef struct ir_http ir_http;

typedef struct ir_http_options {
    int64_t max_request_bytes;     /* larger bodies are handed to the host (> 0) */
    int64_t read_timeout_ms;       /* a request must arrive whole within this (> 0) */
    int64_t keepalive_timeout_ms;  /* idle connections close after this; 0: after each response */
} ir_http_options;

typedef enum ir_http_event_kind {
    IR_HTTP_HANDOFF = 1,    /* `fd` is the host's now; `data`/`size`: the bytes already read from it */
    IR_HTTP_CLOSED = 2,     /* a connection the front end served was closed */
    IR_HTTP_FAILED = 3,     /* a request was answered with error `status`; `data`: the full message */
    IR_HTTP_TIMED_OUT = 4,  /* a connection was closed: its request did not arrive in time */
    IR_HTTP_CANCELLED = 5,  /* a client left while its request was in flight (model, request_id) */
    IR_HTTP_STALLED = 6     /* a connection was closed: its client stopped reading an answer */
} ir_http_event_kind;

typedef struct ir_http_event {
    int32_t kind;            /* one of ir_http_event_kind */
    int32_t fd;              /* IR_HTTP_HANDOFF only; else -1 */
    int32_t status;          /* IR_HTTP_FAILED only */
    const char* model;       /* IR_HTTP_FAILED, IR_HTTP_CANCELLED: the model ("" otherwise) */
    const char* request_id;  /* IR_HTTP_FAILED: the request id named in the answer; may be "" for CANCELLED */
    const char* data;        /* see the kinds; not NUL-terminated for IR_HTTP_HANDOFF */
    uint64_t size;
} ir_http_event;

/* Starts a front end and its I/O thread. `engine` must outlive it. Caller owns *out; free with
 * ir_http_destroy. Errors: INVALID_ARGUMENT (options), UNAVAILABLE (no descriptors). */
ir_error* ir_http_create(ir_engine* engine, const ir_http_options* options, ir_http** out);

/* Stops the I/O thread, closes the connections it serves and any not yet handed back, then
 * waits for the requests it submitted (call it after ir_engine_stop, which completes them). */
void ir_http_destroy(ir_http* http);

/* Routes POST /v2/models/{name}[/versions/{version}]/infer to `model` (borrowed for the call;
 * the front end keeps its own reference), answering with `version`; replaces an earlier
 * route of `name`. Models without a fixed signature, or with BYTES inputs, stay the host's.
 * Errors: INVALID_ARGUMENT (NULL arguments). */
ir_error* ir_http_route(ir_http* http, const char* name, const char* version, ir_model* model);

/* Removes the route of `name` (its requests go to the host). */
void ir_http_unroute(ir_http* http, const char* name);

/* While 0, every new request is handed to the host (a draining server answers it). */
void ir_http_set_admitting(ir_http* http, int admitting);

/* Takes a connected stream socket: the front end owns `fd` from now on (until it hands it
 * back). Errors: INVALID_ARGUMENT (not an open descriptor; `fd` is then still the caller's). */
ir_error* ir_http_adopt(ir_http* http, int fd);

/* An eventfd that is readable while events wait (watch it; ir_http_poll clears it). */
int ir_http_event_fd(const ir_http* http);

/* Takes up to `capacity` waiting events; returns how many. Their strings are borrowed until
 * the next ir_http_poll or ir_http_destroy (one poller at a time, then). */
int32_t ir_http_poll(ir_http* http, ir_http_event* out, int32_t capacity);

/* Wall-clock milliseconds of the last inference the front end answered for `name` (0: none). */
int64_t ir_http_last_inference_ms(ir_http* http, const char* name);

/* Requests the front end answered itself, and requests it handed to the host, so far. */
uint64_t ir_http_served(const ir_http* http);
uint64_t ir_http_handed_off(const ir_http* http);

/* For tests: parses an HTTP request head as the front end does. Returns 0 (incomplete),
 * 1 (complete: *head_size, *content_length and *header_length are set; -1 = absent) or
 * 2 (declined: the host would read it). */
int32_t ir_selftest_http_head(const char* data, size_t size, uint64_t* head_size, int64_t* content_length, int64_t* header_length);

/* For tests: `size` bytes as UTF-8 with each maximal invalid subsequence replaced by U+FFFD,
 * as the front end writes BYTES outputs in JSON. Returns the length of the result; writes it
 * to `out` only when it fits in `capacity`. */
size_t ir_selftest_utf8_replace(const char* data, size_t size, char* out, size_t capacity);

/* For tests: `size` bytes of an error message with absolute paths cut to their last
 * component, as the front end shows engine errors to clients; returns and writes as above. */
size_t ir_selftest_redact(const char* data, size_t size, char* out, size_t capacity);

/* IR_CDEF_END */

#ifdef __cplusplus
}
#endif

#endif /* INFER_RUNTIME_H */
