// The engine's JSON reader: strict RFC 8259 into an immutable tree, and a canonical writer.
// Native backends read their config with it; ir_selftest_json exposes it for tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../engine/status.hpp"

namespace ir::json {

// One JSON value. Object members keep document order; a duplicate key keeps only its last
// value (as Python's json does), at the position of its first occurrence.
class Value {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Value() = default;
  static Value make_bool(bool b);
  static Value make_number(double d);
  static Value make_int_token(double d, int64_t exact);
  static Value make_string(std::string s);
  static Value make_array(std::vector<Value> items);
  static Value make_object(std::vector<std::pair<std::string, Value>> members);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  bool as_bool() const { return bool_; }        // precondition: is_bool()
  double as_number() const { return number_; }  // precondition: is_number()
  bool is_integer() const;                      // a whole number within int64 range
  int64_t as_int() const { return static_cast<int64_t>(number_); }  // precondition: is_integer()
  // Whether the parsed text was an integer literal (no fraction, no exponent) within int64,
  // as Python's json reads an int rather than a float; int_token() is then its exact value.
  bool is_int_token() const { return int_token_; }
  int64_t int_token() const { return int_; }
  const std::string& as_string() const { return string_; }
  const std::vector<Value>& items() const { return items_; }
  const std::vector<std::pair<std::string, Value>>& members() const { return members_; }
  // nullptr when absent or when this is not an object.
  const Value* find(std::string_view key) const;

 private:
  Type type_ = Type::kNull;
  bool bool_ = false;
  double number_ = 0.0;
  bool int_token_ = false;
  int64_t int_ = 0;
  std::string string_;
  std::vector<Value> items_;
  std::vector<std::pair<std::string, Value>> members_;
};

// Parses exactly one JSON text (surrounding whitespace allowed). Errors are
// IR_ERROR_INVALID_ARGUMENT "line L, column C: what" (1-based; columns count bytes).
Status parse(std::string_view text, Value* out);

// Canonical compact form: members in order, shortest round-tripping numbers (-0.0 as "-0.0",
// which Python reads back as a float), only the
// escapes JSON requires (", \, control characters); other UTF-8 passes through.
std::string dump(const Value& v);
// Appends the canonical form of `v` to `out`.
void dump_to(const Value& v, std::string* out);
// Appends a number / a string in canonical form (used by writers that do not build a Value).
void dump_number(double d, std::string* out);
void dump_string(std::string_view s, std::string* out);

}  // namespace ir::json
