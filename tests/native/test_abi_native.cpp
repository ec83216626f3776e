// Drives the error ABI from C++ with no Python in the process, so LeakSanitizer can run
// without suppressions: every ir_error created here must be freed exactly once.
#include "check.hpp"
#include "infer_runtime.h"

namespace {

void error_objects() {
  ir_error* err = ir_error_new(IR_ERROR_NOT_FOUND, "no model named 'x'");
  CHECK(err != nullptr);
  CHECK(ir_error_code(err) == IR_ERROR_NOT_FOUND);
  CHECK_STREQ(ir_error_message(err), "no model named 'x'");
  ir_error_free(err);

  err = ir_error_new(12345, nullptr);  // out-of-range code, NULL message
  CHECK(ir_error_code(err) == IR_ERROR_UNKNOWN);
  CHECK_STREQ(ir_error_message(err), "");
  ir_error_free(err);

  ir_error_free(nullptr);  // a no-op
  CHECK_STREQ(ir_code_name(IR_ERROR_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
  CHECK_STREQ(ir_code_name(-7), "UNKNOWN");
}

void exceptions_stay_inside() {
  CHECK(ir_selftest_fail(IR_SELFTEST_OK, 0, "x") == nullptr);
  struct Case {
    int mode;
    int code;
    ir_code expected;
  } cases[] = {
      {IR_SELFTEST_STATUS, IR_ERROR_DEADLINE_EXCEEDED, IR_ERROR_DEADLINE_EXCEEDED},
      {IR_SELFTEST_THROW_STD, 0, IR_ERROR_INTERNAL},
      {IR_SELFTEST_THROW_BAD_ALLOC, 0, IR_ERROR_RESOURCE_EXHAUSTED},
      {IR_SELFTEST_THROW_OTHER, 0, IR_ERROR_INTERNAL},
      {99, 0, IR_ERROR_INVALID_ARGUMENT},
  };
  for (const Case& c : cases) {
    ir_error* err = ir_selftest_fail(c.mode, c.code, "boom");
    CHECK(err != nullptr);
    if (err != nullptr) {
      CHECK(ir_error_code(err) == c.expected);
      ir_error_free(err);
    }
  }
}

}  // namespace

int main() {
  CHECK((ir_abi_version() >> 16) == IR_ABI_VERSION_MAJOR);
  error_objects();
  exceptions_stay_inside();
  if (ir_test::failures() == 0) std::puts("test_abi_native: ok");
  return ir_test::failures();
}
