// Guards ({ test = "?fraud > 0.9" }): compiled once at load to a small stack bytecode.
// Grammar (lowest precedence first): or, and, not, one comparison (< <= > >= == !=; chains are
// refused), + -, * /, unary -, then numbers, "strings", ?variables, true, false, ( ).
// Evaluation errors (arithmetic or ordering on a non-number, division by zero, and/or/not on a
// non-boolean) make the guard false, as does any result other than true. == and != compare any
// two values: different kinds are unequal, numbers by value, strings by symbol.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "../engine/status.hpp"
#include "value.hpp"

namespace ir::rules {

class Guard {
 public:
  // `slot_of` maps a variable name ("?x") to its binding slot: -1 when not bound yet, -2
  // when bound to a fact (not a value). Errors name the column (1-based) of the problem.
  static Status compile(std::string_view text, const std::function<int(std::string_view)>& slot_of,
                        SymbolTable* symbols, Guard* out);

  // True only when the expression evaluates, without error, to true.
  bool eval(const Val* bindings) const;

  size_t stack_depth() const { return max_depth_; }

 private:
  enum class Op : uint8_t { kConst, kVar, kAdd, kSub, kMul, kDiv, kNeg, kLt, kLe, kGt, kGe, kEq, kNe, kNot, kAndJump, kOrJump };
  struct Insn {
    Op op;
    uint32_t arg;  // constant index, slot, or jump target
  };
  friend class GuardParser;
  std::vector<Insn> code_;
  std::vector<Val> consts_;
  size_t max_depth_ = 0;
};

}  // namespace ir::rules
