#include "guard.hpp"

#include <charconv>
#include <cmath>

namespace ir::rules {

class GuardParser {
 public:
  GuardParser(std::string_view text, const std::function<int(std::string_view)>& slot_of, SymbolTable* symbols, Guard* g)
      : s_(text), slot_of_(slot_of), symbols_(symbols), g_(g) {}

  Status run() {
    IR_RETURN_IF_ERROR(parse_or());
    skip_ws();
    if (pos_ != s_.size()) return error("unexpected '" + std::string(1, s_[pos_]) + "'");
    if (g_->code_.empty()) return error("empty guard");
    return Status::Ok();
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
  const std::function<int(std::string_view)>& slot_of_;
  SymbolTable* symbols_;
  Guard* g_;
  size_t depth_ = 0;
  int nesting_ = 0;

  Status error(const std::string& what) const { return error_at(pos_, what); }
  Status error_at(size_t at, const std::string& what) const {
    return Status(IR_ERROR_INVALID_ARGUMENT, "column " + std::to_string(at + 1) + ": " + what);
  }

  void emit(Guard::Op op, uint32_t arg, int stack_effect) {
    g_->code_.push_back({op, arg});
    depth_ = static_cast<size_t>(static_cast<long>(depth_) + stack_effect);
    if (depth_ > g_->max_depth_) g_->max_depth_ = depth_;
  }

  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  static bool ident_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  }
  // Consumes keyword `word` when it stands alone.
  bool keyword(std::string_view word) {
    skip_ws();
    if (s_.substr(pos_, word.size()) != word) return false;
    const size_t end = pos_ + word.size();
    if (end < s_.size() && ident_char(s_[end])) return false;
    pos_ = end;
    return true;
  }
  bool punct(std::string_view p) {
    skip_ws();
    if (s_.substr(pos_, p.size()) != p) return false;
    pos_ += p.size();
    return true;
  }

  Status parse_or() {
    IR_RETURN_IF_ERROR(parse_and());
    std::vector<size_t> jumps;
    while (keyword("or")) {
      jumps.push_back(g_->code_.size());
      emit(Guard::Op::kOrJump, 0, -1);  // pops when it falls through
      IR_RETURN_IF_ERROR(parse_and());
    }
    for (size_t j : jumps) g_->code_[j].arg = static_cast<uint32_t>(g_->code_.size());
    return Status::Ok();
  }

  Status parse_and() {
    IR_RETURN_IF_ERROR(parse_not());
    std::vector<size_t> jumps;
    while (keyword("and")) {
      jumps.push_back(g_->code_.size());
      emit(Guard::Op::kAndJump, 0, -1);
      IR_RETURN_IF_ERROR(parse_not());
    }
    for (size_t j : jumps) g_->code_[j].arg = static_cast<uint32_t>(g_->code_.size());
    return Status::Ok();
  }

  Status parse_not() {
    if (keyword("not")) {
      IR_RETURN_IF_ERROR(parse_not());
      emit(Guard::Op::kNot, 0, 0);
      return Status::Ok();
    }
    return parse_cmp();
  }

  bool cmp_op(Guard::Op* op) {
    skip_ws();
    static const struct {
      const char* text;
      Guard::Op op;
    } kOps[] = {{"<=", Guard::Op::kLe}, {">=", Guard::Op::kGe}, {"==", Guard::Op::kEq}, {"!=", Guard::Op::kNe},
                {"<", Guard::Op::kLt},  {">", Guard::Op::kGt}};
    for (const auto& o : kOps) {
      if (punct(o.text)) {
        *op = o.op;
        return true;
      }
    }
    return false;
  }

  Status parse_cmp() {
    IR_RETURN_IF_ERROR(parse_sum());
    Guard::Op op{};
    if (cmp_op(&op)) {
      IR_RETURN_IF_ERROR(parse_sum());
      emit(op, 0, -1);
      const size_t at = pos_;
      Guard::Op again{};
      if (cmp_op(&again)) return error_at(at, "chained comparison: use 'and'");
    }
    return Status::Ok();
  }

  Status parse_sum() {
    IR_RETURN_IF_ERROR(parse_prod());
    for (;;) {
      skip_ws();
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) {
        const Guard::Op op = s_[pos_] == '+' ? Guard::Op::kAdd : Guard::Op::kSub;
        ++pos_;
        IR_RETURN_IF_ERROR(parse_prod());
        emit(op, 0, -1);
      } else {
        return Status::Ok();
      }
    }
  }

  Status parse_prod() {
    IR_RETURN_IF_ERROR(parse_unary());
    for (;;) {
      skip_ws();
      if (pos_ < s_.size() && (s_[pos_] == '*' || s_[pos_] == '/')) {
        const Guard::Op op = s_[pos_] == '*' ? Guard::Op::kMul : Guard::Op::kDiv;
        ++pos_;
        IR_RETURN_IF_ERROR(parse_unary());
        emit(op, 0, -1);
      } else {
        return Status::Ok();
      }
    }
  }

  Status parse_unary() {
    if (punct("-")) {
      IR_RETURN_IF_ERROR(parse_unary());
      emit(Guard::Op::kNeg, 0, 0);
      return Status::Ok();
    }
    if (punct("+")) {  // +x is x, but still must be a number
      IR_RETURN_IF_ERROR(parse_unary());
      emit(Guard::Op::kNeg, 0, 0);
      emit(Guard::Op::kNeg, 0, 0);
      return Status::Ok();
    }
    return parse_atom();
  }

  void push_const(Val v) {
    g_->consts_.push_back(v);
    emit(Guard::Op::kConst, static_cast<uint32_t>(g_->consts_.size() - 1), +1);
  }

  Status parse_atom() {
    skip_ws();
    if (pos_ >= s_.size()) return error("unexpected end of guard, expected a value");
    const size_t start = pos_;
    const char c = s_[pos_];
    if (c == '(') {
      if (++nesting_ > 64) return error("parentheses nested too deep");
      ++pos_;
      IR_RETURN_IF_ERROR(parse_or());
      if (!punct(")")) return error("expected ')'");
      --nesting_;
      return Status::Ok();
    }
    if ((c >= '0' && c <= '9') || c == '.') {
      size_t end = pos_;
      while (end < s_.size() && ((s_[end] >= '0' && s_[end] <= '9') || s_[end] == '.')) ++end;
      if (end < s_.size() && (s_[end] == 'e' || s_[end] == 'E')) {
        size_t e = end + 1;
        if (e < s_.size() && (s_[e] == '+' || s_[e] == '-')) ++e;
        if (e < s_.size() && s_[e] >= '0' && s_[e] <= '9') {
          end = e;
          while (end < s_.size() && s_[end] >= '0' && s_[end] <= '9') ++end;
        }
      }
      double d = 0.0;
      auto res = std::from_chars(s_.data() + pos_, s_.data() + end, d);
      if (res.ec != std::errc() || res.ptr != s_.data() + end || !std::isfinite(d)) return error("invalid number");
      if (end < s_.size() && ident_char(s_[end])) return error_at(end, "invalid number");
      pos_ = end;
      push_const(Val::number(d));
      return Status::Ok();
    }
    if (c == '"' || c == '\'') {
      std::string text;
      ++pos_;
      for (;;) {
        if (pos_ >= s_.size()) return error_at(start, "unterminated string");
        char ch = s_[pos_++];
        if (ch == c) break;
        if (ch == '\\') {
          if (pos_ >= s_.size()) return error_at(start, "unterminated string");
          ch = s_[pos_++];
        }
        text.push_back(ch);
      }
      push_const(Val::symbol(symbols_->intern(text)));
      return Status::Ok();
    }
    if (c == '?') {
      size_t end = pos_ + 1;
      while (end < s_.size() && ident_char(s_[end])) ++end;
      const std::string_view name = s_.substr(pos_, end - pos_);
      if (name.size() == 1) return error("expected a variable name after '?'");
      if (name == "?_") return error("?_ matches anything and has no value in a guard");
      const int slot = slot_of_(name);
      if (slot == -1) return error("variable " + std::string(name) + " is not bound by an earlier pattern");
      if (slot < 0) return error("variable " + std::string(name) + " is bound to a fact, not a value");
      pos_ = end;
      emit(Guard::Op::kVar, static_cast<uint32_t>(slot), +1);
      return Status::Ok();
    }
    if (keyword("true")) {
      push_const(Val::boolean(true));
      return Status::Ok();
    }
    if (keyword("false")) {
      push_const(Val::boolean(false));
      return Status::Ok();
    }
    return error("expected a number, a string, a ?variable or '('");
  }
};

Status Guard::compile(std::string_view text, const std::function<int(std::string_view)>& slot_of, SymbolTable* symbols,
                      Guard* out) {
  Guard g;
  IR_RETURN_IF_ERROR(GuardParser(text, slot_of, symbols, &g).run());
  *out = std::move(g);
  return Status::Ok();
}

bool Guard::eval(const Val* bindings) const {
  // Guards are small (max_depth_ is known); a fixed array avoids any allocation per call.
  constexpr size_t kInline = 16;
  Val inline_stack[kInline];
  std::vector<Val> heap_stack;
  Val* st = inline_stack;
  if (max_depth_ > kInline) {
    heap_stack.resize(max_depth_);
    st = heap_stack.data();
  }
  size_t sp = 0;
  const size_t n = code_.size();
  for (size_t pc = 0; pc < n; ++pc) {
    const Insn in = code_[pc];
    switch (in.op) {
      case Op::kConst: st[sp++] = consts_[in.arg]; break;
      case Op::kVar: st[sp++] = bindings[in.arg]; break;
      case Op::kNeg:
        if (st[sp - 1].kind != Kind::kNum) return false;
        st[sp - 1].num = -st[sp - 1].num;
        break;
      case Op::kNot:
        if (st[sp - 1].kind != Kind::kBool) return false;
        st[sp - 1].id ^= 1u;
        break;
      case Op::kAndJump:
      case Op::kOrJump: {
        const Val& v = st[sp - 1];
        if (v.kind != Kind::kBool) return false;
        // and: false decides; or: true decides. Otherwise the right side replaces it.
        if ((v.id != 0) == (in.op == Op::kOrJump)) {
          pc = in.arg - 1;
        } else {
          --sp;
        }
        break;
      }
      case Op::kEq:
      case Op::kNe: {
        const Val& a = st[sp - 2];
        const Val& b = st[sp - 1];
        bool eq = a.kind == b.kind && (a.kind == Kind::kNum ? a.num == b.num : a.id == b.id);
        --sp;
        st[sp - 1] = Val::boolean(in.op == Op::kEq ? eq : !eq);
        break;
      }
      default: {
        const Val& a = st[sp - 2];
        const Val& b = st[sp - 1];
        if (a.kind != Kind::kNum || b.kind != Kind::kNum) return false;
        const double x = a.num, y = b.num;
        --sp;
        switch (in.op) {
          case Op::kAdd: st[sp - 1] = Val::number(x + y); break;
          case Op::kSub: st[sp - 1] = Val::number(x - y); break;
          case Op::kMul: st[sp - 1] = Val::number(x * y); break;
          case Op::kDiv:
            if (y == 0.0) return false;  // division by zero is an error, not inf
            st[sp - 1] = Val::number(x / y);
            break;
          case Op::kLt: st[sp - 1] = Val::boolean(x < y); break;
          case Op::kLe: st[sp - 1] = Val::boolean(x <= y); break;
          case Op::kGt: st[sp - 1] = Val::boolean(x > y); break;
          case Op::kGe: st[sp - 1] = Val::boolean(x >= y); break;
          default: return false;
        }
      }
    }
  }
  return sp == 1 && st[0].kind == Kind::kBool && st[0].id == 1;
}

}  // namespace ir::rules
