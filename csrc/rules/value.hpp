// Values of the rules engine: facts' arguments and guard operands, strings interned.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ir::rules {

enum class Kind : uint8_t { kNum, kStr, kFact, kBool };

// 16 bytes: strings are symbol ids, so comparing two values never compares text. Trivial
// (no member initializers), so scratch arrays cost nothing to declare; Val{} is zero.
struct Val {
  Kind kind;
  uint32_t id;  // symbol id (kStr), fact id (kFact), 0/1 (kBool)
  double num;

  static Val number(double d) { return Val{Kind::kNum, 0, d}; }
  static Val symbol(uint32_t s) { return Val{Kind::kStr, s, 0.0}; }
  static Val fact(uint32_t f) { return Val{Kind::kFact, f, 0.0}; }
  static Val boolean(bool b) { return Val{Kind::kBool, b ? 1u : 0u, 0.0}; }
};

// Equality of facts' arguments: numbers by value (so 1 == 1.0 and 0.0 == -0.0; NaN equals
// nothing), strings by symbol.
inline bool same(const Val& a, const Val& b) {
  if (a.kind != b.kind) return false;
  return a.kind == Kind::kNum ? a.num == b.num : a.id == b.id;
}

// String interning. Symbols made at load (rule constants, predicates) are "static"; strings
// met while running rows (BYTES inputs) are added after them and dropped by reset_dynamic(),
// which keeps every allocation for the next batch.
class SymbolTable {
 public:
  SymbolTable();
  uint32_t intern(std::string_view text);
  // -1 when absent.
  int64_t find(std::string_view text) const;
  std::string_view text(uint32_t id) const {
    const Entry& e = entries_[id];
    return std::string_view(chars_.data() + e.offset, e.length);
  }
  uint32_t size() const { return static_cast<uint32_t>(entries_.size()); }
  // Everything interned so far becomes static.
  void freeze() { static_count_ = size(), static_chars_ = chars_.size(); }
  void reset_dynamic();

 private:
  struct Entry {
    uint32_t offset;
    uint32_t length;
    uint64_t hash;
    uint32_t slot;
  };
  static uint64_t hash_of(std::string_view text);
  int64_t probe(std::string_view text, uint64_t h, uint32_t* slot) const;
  void grow();

  std::vector<char> chars_;
  std::vector<Entry> entries_;
  std::vector<uint32_t> slots_;  // 0 empty, else id + 1; linear probing, power-of-two size
  uint32_t static_count_ = 0;
  size_t static_chars_ = 0;
};

}  // namespace ir::rules
