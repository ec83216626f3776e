// Session: one working memory at a time (one batch row), run incrementally over a RuleSet's
// network. All storage is reused from row to row, so a steady state allocates nothing.
//
// Matching (RETE-like): every fact of an alpha memory stays there until retracted; every
// token (partial match) stays in its beta memory until a fact it used is retracted or a `not`
// it passed is blocked. A change (one assertion or retraction) only visits the entries of its
// predicate and the tokens those reach.
//
// Order (DESIGN §10): activations are numbered when created; the agenda fires the highest
// salience, then the highest number. One change numbers its new activations as it visits the
// network: rules from last to first (so the first rule in the file gets the highest numbers
// and fires first) and, inside a rule, as CLIPS does for one rule:
//   - nodes from last to first (a fact filling two patterns fires first where it fills the
//     earlier one);
//   - at the node the fact enters, tokens newest first (so they fire oldest first);
//   - at later nodes, alpha memory facts oldest first (so partners fire newest first);
//   - when a retraction unblocks a `not`, its waiting tokens newest first (oldest fire first).
// The row's start is one change too: each rule's empty token enters its first node, so rules
// with no positive pattern are activated before any fact, in file order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../engine/status.hpp"
#include "ruleset.hpp"
#include "value.hpp"

namespace ir::rules {

class Session {
 public:
  explicit Session(const RuleSet* rules);

  // Drops the strings interned for the previous batch (call between batches).
  void begin_batch() { symbols_.reset_dynamic(); }
  uint32_t intern(std::string_view text) { return symbols_.intern(text); }
  const SymbolTable& symbols() const { return symbols_; }

  // Empties working memory and agenda, activates the rules with no positive pattern, then
  // asserts the rule set's facts in order.
  void begin_row();
  // One change: asserts pred(args[0..n)) unless an equal fact exists.
  void assert_fact(uint32_t pred, const Val* args, uint32_t n);
  // Retracts fact `id` (a no-op when it is no longer there).
  void retract_fact(uint32_t id);
  // Fires activations until none is left. Error (BACKEND) when activations remain
  // after `max_iterations` firings.
  Status run(uint64_t max_iterations);

  // The row's results.
  const std::vector<uint32_t>& fired() const { return fired_; }  // rule indices, in order
  uint32_t fact_count() const { return static_cast<uint32_t>(facts_.size()); }  // ids, in creation order
  bool alive(uint32_t id) const { return facts_[id].alive; }
  uint32_t pred(uint32_t id) const { return facts_[id].pred; }
  uint32_t arity(uint32_t id) const { return facts_[id].arity; }
  const Val* args(uint32_t id) const { return fact_args_.data() + facts_[id].arg_off; }
  // The newest live fact of `pred`, or kNone.
  uint32_t newest(uint32_t pred) const;
  // Activations waiting (live ones only; for tests).
  size_t agenda_size() const;

 private:
  struct Fact {
    uint32_t pred;
    uint32_t arity;
    uint32_t arg_off;
    uint32_t first_token;  // tokens that matched this fact (linked through next_same_fact)
    uint64_t hash;
    bool alive;
  };
  struct Token {
    uint32_t parent;
    uint32_t fact;  // the fact its node matched; kNone for root tokens and `not` nodes
    uint32_t bind_off;
    uint32_t mem;
    uint32_t rule;
    uint32_t level;  // 0: root; k + 1: output of node k
    uint32_t block;  // how many facts block the `not` node this token enters next
    uint32_t first_child, next_sibling, prev_sibling;
    uint32_t next_same_fact;
    bool alive;
  };
  struct Activation {
    int32_t salience;
    uint32_t number;
    uint32_t token;
  };

  static uint64_t hash_fact(uint32_t pred, const Val* args, uint32_t n);
  uint32_t find_fact(uint32_t pred, const Val* args, uint32_t n, uint64_t h) const;
  void set_insert(uint32_t id);
  void set_erase(uint32_t id);
  void set_rehash(size_t slots);

  bool alpha_ok(const AlphaTest& t, const Fact& f) const;
  bool join_ok(const Node& node, uint32_t token, uint32_t fact) const;
  uint32_t make_token(uint32_t parent, uint32_t fact, uint32_t rule, uint32_t level);
  void left(uint32_t rule, uint32_t k, uint32_t token);
  void activate(uint32_t token);
  void kill(uint32_t token);
  void kill_children(uint32_t token);
  void compact_memories();
  bool pop_live(Activation* out);

  const RuleSet* rs_;
  SymbolTable symbols_;
  std::vector<uint32_t> mem_base_;  // rule -> index of its root memory in mems_

  std::vector<Fact> facts_;
  std::vector<Val> fact_args_;
  std::vector<uint32_t> set_;  // open addressing over live fact ids
  size_t set_used_ = 0;        // live + tombstones
  std::vector<std::vector<uint32_t>> alpha_mem_;
  std::vector<uint8_t> alpha_hit_;
  std::vector<Token> tokens_;
  std::vector<Val> binds_;
  std::vector<std::vector<uint32_t>> mems_;
  std::vector<uint32_t> mem_dead_;
  std::vector<uint32_t> dirty_mems_;
  std::vector<Activation> agenda_;  // binary heap
  uint32_t counter_ = 0;
  std::vector<uint32_t> fired_;
  std::vector<Val> rhs_, args_scratch_, scratch_;
  std::vector<uint32_t> kill_stack_;
};

}  // namespace ir::rules
