// The rules backend (DESIGN §10): a forward-chaining rule set over one working memory per
// batch row, behind the backend contract (infer_runtime_backend.h).
#pragma once

#include "infer_runtime_backend.h"

namespace ir {

// The static table of the built-in rules backend.
//
// Config (irb_create_args.config_json):
//   {"ruleset": {"facts": [[pred, args...]...], "rules": [{name, salience, when, then}...]},
//    "bindings": {input: pred}, "outputs": {output: pred}, "defaults": {output: value},
//    "explain": bool, "max_iterations": int, "trace": bool}
// Inputs: a bound input of shape [N] or [N, k] (any numeric dtype, read as float64; BYTES as
// strings) makes row r the fact pred(v0..vk-1); N is the batch's rows whether or not the model
// batches (one request of N rows to an unbatched model is N working memories). Signature: the declared inputs when the spec declares any (a binding
// must name one), else "whatever is given" (-1), checked at execute.
// Outputs, shape [N]: the first argument of the newest fact of the output's predicate, else
// its default. Dtype: as declared, else BYTES for a string or absent default and FLOAT64 for a
// number. A row with no fact and no default gets "" (BYTES) or fails (numeric). `explain`
// adds BYTES `_fired` (rule names, comma-separated), `trace` BYTES `_facts` (final working
// memory as JSON). A row that fails (max_iterations, a value of the wrong kind) fails its
// request through host->request_fail with IRB_ERROR_BACKEND (the whole batch on a host
// without request_fail); its output rows hold defaults (or zero / ""). Config errors are
// INVALID_ARGUMENT naming the rule and condition (or key); a batch missing a bound input or
// with a shape other than [N] / [N, k] fails whole with INVALID_ARGUMENT.
const irb_backend* builtin_rules_backend();

}  // namespace ir
