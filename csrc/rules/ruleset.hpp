// A rule set compiled once at load into a matching network (see session.hpp for how rows run).
//
// Each rule becomes one unshared chain of nodes, one per pattern: a positive node joins the
// tokens (partial matches) that reached it with the facts of its alpha memory; a negative node
// (`not`) lets a token through while no fact of its alpha memory agrees with it. Guards are
// attached to the node after which all their variables are bound. Alpha memories are shared
// by patterns with the same predicate, arity, constants and in-fact equalities, and indexed by
// predicate, so a new fact is tested only against the alpha memories of its own predicate.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../common/json.hpp"
#include "../engine/status.hpp"
#include "guard.hpp"
#include "value.hpp"

namespace ir::rules {

constexpr uint32_t kNone = 0xFFFFFFFFu;

// What a fact must look like to enter an alpha memory.
struct AlphaTest {
  uint32_t pred = 0;
  uint32_t arity = 0;
  std::vector<std::pair<uint32_t, Val>> constants;          // argument index, value
  std::vector<std::pair<uint32_t, uint32_t>> equal_args;    // argument i == argument j
};

struct Node {
  bool negative = false;
  uint32_t alpha = 0;
  std::vector<std::pair<uint32_t, uint32_t>> joins;  // fact argument index == token slot
  std::vector<std::pair<uint32_t, uint32_t>> binds;  // fact argument index -> new slot
  uint32_t fact_slot = kNone;                         // `bind = "?f"`: slot holding the fact
  std::vector<uint32_t> guards;                       // guard ids checked on the node's output
};

struct ActionArg {
  bool from_slot = false;
  uint32_t slot = 0;
  Val value{};
};

struct Action {
  bool retract = false;
  uint32_t pred = 0;              // assert
  std::vector<ActionArg> args;    // assert
  uint32_t slot = 0;              // retract: slot holding the fact
};

struct Rule {
  std::string name;
  int32_t salience = 0;
  uint32_t n_slots = 0;
  std::vector<uint32_t> root_guards;  // guards before any pattern (constants only)
  std::vector<Node> nodes;
  std::vector<Action> actions;
};

// Where a fact of some predicate enters the network: one (rule, node) pair, visited in the
// order that gives the documented firing order (see session.hpp).
struct Entry {
  uint32_t rule;
  uint32_t node;
  uint32_t alpha;
};

class RuleSet {
 public:
  // `ruleset` is {"facts": [[pred, args...], ...], "rules": [...]} as the backend's config
  // carries it; `extra_predicates` (those of bindings and outputs) get symbols too.
  // Errors: INVALID_ARGUMENT naming the rule and condition.
  static Status compile(const json::Value& ruleset, const std::vector<std::string>& extra_predicates, RuleSet* out);

  SymbolTable symbols;
  std::vector<Rule> rules;
  std::vector<Guard> guards;
  std::vector<AlphaTest> alphas;
  std::vector<std::vector<uint32_t>> alphas_by_pred;   // predicate symbol -> alpha ids
  std::vector<std::vector<Entry>> entries_by_pred;     // predicate symbol -> entries, visiting order
  struct InitialFact {
    uint32_t pred;
    std::vector<Val> args;
  };
  std::vector<InitialFact> facts;

 private:
  Status compile_rule(const json::Value& rule, size_t index);
  uint32_t alpha_for(AlphaTest test);
  void index_entries();
};

}  // namespace ir::rules
