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
#define IR_ABI_VERSION_MINOR 1

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

/* IR_CDEF_END */

#ifdef __cplusplus
}
#endif

#endif /* INFER_RUNTIME_H */
