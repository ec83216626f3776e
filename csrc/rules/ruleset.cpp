#include "ruleset.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

namespace ir::rules {

namespace {

Status bad(const std::string& what) { return Status(IR_ERROR_INVALID_ARGUMENT, what); }

bool is_variable(const json::Value& v) {
  return v.is_string() && !v.as_string().empty() && v.as_string()[0] == '?';
}

bool same_test(const AlphaTest& a, const AlphaTest& b) {
  if (a.pred != b.pred || a.arity != b.arity || a.constants.size() != b.constants.size() ||
      a.equal_args != b.equal_args) {
    return false;
  }
  for (size_t i = 0; i < a.constants.size(); ++i) {
    if (a.constants[i].first != b.constants[i].first) return false;
    const Val& x = a.constants[i].second;
    const Val& y = b.constants[i].second;
    // Identical constants only (by bits for numbers): 0.0 and -0.0 match the same facts anyway.
    if (x.kind != y.kind || x.id != y.id || !(x.num == y.num)) return false;
  }
  return true;
}

// A constant from JSON: a finite number or a string.
Status constant(const json::Value& v, SymbolTable* symbols, Val* out) {
  if (v.is_number()) {
    *out = Val::number(v.as_number());
    return Status::Ok();
  }
  if (v.is_string()) {
    *out = Val::symbol(symbols->intern(v.as_string()));
    return Status::Ok();
  }
  return bad("arguments must be numbers or strings");
}

}  // namespace

uint32_t RuleSet::alpha_for(AlphaTest test) {
  if (test.pred >= alphas_by_pred.size()) alphas_by_pred.resize(test.pred + 1);
  for (uint32_t id : alphas_by_pred[test.pred]) {
    if (same_test(alphas[id], test)) return id;
  }
  alphas.push_back(std::move(test));
  const auto id = static_cast<uint32_t>(alphas.size() - 1);
  alphas_by_pred[alphas.back().pred].push_back(id);
  return id;
}

Status RuleSet::compile_rule(const json::Value& rule, size_t index) {
  std::string where = "rule " + std::to_string(index + 1);
  if (!rule.is_object()) return bad(where + ": must be an object");
  const json::Value* name = rule.find("name");
  if (name == nullptr || !name->is_string() || name->as_string().empty()) return bad(where + ": needs a non-empty string 'name'");
  Rule r;
  r.name = name->as_string();
  where = "rule '" + r.name + "'";
  if (const json::Value* sal = rule.find("salience"); sal != nullptr && !sal->is_null()) {
    if (!sal->is_integer() || sal->as_int() < -10000 || sal->as_int() > 10000) {
      return bad(where + ": salience must be an integer from -10000 to 10000");
    }
    r.salience = static_cast<int32_t>(sal->as_int());
  }

  // Variable name -> slot; fact variables (bind) are slots too, holding a kFact value.
  std::unordered_map<std::string, uint32_t> slots;
  std::unordered_set<std::string> fact_vars;
  auto slot_of = [&](std::string_view var) -> int {
    auto it = slots.find(std::string(var));
    if (it == slots.end()) return -1;
    return fact_vars.count(std::string(var)) != 0 ? -2 : static_cast<int>(it->second);
  };

  static const json::Value kEmpty = json::Value::make_array({});
  const json::Value* when = rule.find("when");
  if (when == nullptr || when->is_null()) when = &kEmpty;
  if (!when->is_array()) return bad(where + ": 'when' must be an array of conditions");
  for (size_t ci = 0; ci < when->items().size(); ++ci) {
    const json::Value& cond = when->items()[ci];
    const std::string at = where + ", condition " + std::to_string(ci + 1);
    const json::Value* pattern = nullptr;
    const json::Value* bind = nullptr;
    bool negative = false;
    if (cond.is_array()) {
      pattern = &cond;
    } else if (cond.is_object()) {
      if (const json::Value* test = cond.find("test"); test != nullptr) {
        if (!test->is_string()) return bad(at + ": 'test' must be a string");
        Guard g;
        Status st = Guard::compile(test->as_string(), slot_of, &symbols, &g);
        if (!st.ok()) return bad(at + " (test \"" + test->as_string() + "\"): " + st.message());
        guards.push_back(std::move(g));
        const auto gid = static_cast<uint32_t>(guards.size() - 1);
        (r.nodes.empty() ? r.root_guards : r.nodes.back().guards).push_back(gid);
        continue;
      }
      if ((pattern = cond.find("not")) != nullptr) {
        negative = true;
      } else {
        pattern = cond.find("pattern");
        bind = cond.find("bind");
        if (bind != nullptr && bind->is_null()) bind = nullptr;
      }
      if (pattern == nullptr) return bad(at + ": expected a pattern, {\"pattern\": ...}, {\"not\": ...} or {\"test\": ...}");
    } else {
      return bad(at + ": expected a pattern, {\"pattern\": ...}, {\"not\": ...} or {\"test\": ...}");
    }
    if (!pattern->is_array() || pattern->items().empty()) return bad(at + ": a pattern is a non-empty array [predicate, args...]");
    const json::Value& pred = pattern->items()[0];
    if (!pred.is_string() || pred.as_string().empty() || is_variable(pred)) {
      return bad(at + ": the predicate (first element) must be a non-empty string, not a variable");
    }
    Node node;
    node.negative = negative;
    AlphaTest test;
    test.pred = symbols.intern(pred.as_string());
    test.arity = static_cast<uint32_t>(pattern->items().size() - 1);
    std::unordered_map<std::string, uint32_t> local;  // variables first met in this pattern -> arg
    std::vector<std::pair<uint32_t, std::string>> new_vars;
    for (uint32_t ai = 0; ai < test.arity; ++ai) {
      const json::Value& arg = pattern->items()[ai + 1];
      if (is_variable(arg)) {
        const std::string& var = arg.as_string();
        if (var == "?_") continue;
        if (var.size() == 1) return bad(at + ": '?' is not a variable name");
        if (auto it = slots.find(var); it != slots.end()) {
          if (fact_vars.count(var) != 0) return bad(at + ": " + var + " is bound to a fact and cannot be matched");
          node.joins.emplace_back(ai, it->second);
        } else if (auto lt = local.find(var); lt != local.end()) {
          test.equal_args.emplace_back(lt->second, ai);
        } else {
          local.emplace(var, ai);
          new_vars.emplace_back(ai, var);
        }
        continue;
      }
      Val v{};
      Status st = constant(arg, &symbols, &v);
      if (!st.ok()) return bad(at + ", argument " + std::to_string(ai + 1) + ": " + st.message());
      test.constants.emplace_back(ai, v);
    }
    // A `not`'s own variables stay local to it: they bind nothing for later conditions.
    if (!negative) {
      for (const auto& [ai, var] : new_vars) {
        const auto slot = r.n_slots++;
        slots.emplace(var, slot);
        node.binds.emplace_back(ai, slot);
      }
      if (bind != nullptr) {
        if (!is_variable(*bind) || bind->as_string() == "?_" || bind->as_string().size() == 1) {
          return bad(at + ": 'bind' must be a variable name such as \"?f\"");
        }
        if (slots.count(bind->as_string()) != 0) return bad(at + ": " + bind->as_string() + " is already bound");
        node.fact_slot = r.n_slots++;
        slots.emplace(bind->as_string(), node.fact_slot);
        fact_vars.insert(bind->as_string());
      }
    } else if (cond.is_object() && cond.find("bind") != nullptr && !cond.find("bind")->is_null()) {
      return bad(at + ": a 'not' cannot bind a fact");
    }
    node.alpha = alpha_for(std::move(test));
    r.nodes.push_back(std::move(node));
  }

  static const json::Value kNoActions = json::Value::make_array({});
  const json::Value* then = rule.find("then");
  if (then == nullptr || then->is_null()) then = &kNoActions;
  if (!then->is_array()) return bad(where + ": 'then' must be an array of actions");
  for (size_t ai = 0; ai < then->items().size(); ++ai) {
    const json::Value& act = then->items()[ai];
    const std::string at = where + ", action " + std::to_string(ai + 1);
    Action a;
    if (!act.is_object()) return bad(at + ": expected {\"assert\": [...]} or {\"retract\": \"?f\"}");
    if (const json::Value* as = act.find("assert"); as != nullptr) {
      if (!as->is_array() || as->items().empty()) return bad(at + ": 'assert' is a non-empty array [predicate, args...]");
      const json::Value& pred = as->items()[0];
      if (!pred.is_string() || pred.as_string().empty() || is_variable(pred)) {
        return bad(at + ": the predicate (first element) must be a non-empty string, not a variable");
      }
      a.pred = symbols.intern(pred.as_string());
      for (size_t k = 1; k < as->items().size(); ++k) {
        const json::Value& arg = as->items()[k];
        ActionArg out;
        if (is_variable(arg)) {
          const int slot = slot_of(arg.as_string());
          if (arg.as_string() == "?_") return bad(at + ": ?_ has no value to assert");
          if (slot == -1) return bad(at + ": variable " + arg.as_string() + " is not bound by any condition");
          if (slot == -2) return bad(at + ": " + arg.as_string() + " is bound to a fact, not a value");
          out.from_slot = true;
          out.slot = static_cast<uint32_t>(slot);
        } else {
          Status st = constant(arg, &symbols, &out.value);
          if (!st.ok()) return bad(at + ", argument " + std::to_string(k) + ": " + st.message());
        }
        a.args.push_back(out);
      }
    } else if (const json::Value* re = act.find("retract"); re != nullptr) {
      if (!is_variable(*re)) return bad(at + ": 'retract' takes a fact variable such as \"?f\"");
      if (slot_of(re->as_string()) != -2) {
        return bad(at + ": " + re->as_string() + " is not bound to a fact (use bind = \"" + re->as_string() + "\" on a pattern)");
      }
      a.retract = true;
      a.slot = slots.at(re->as_string());
    } else {
      return bad(at + ": expected {\"assert\": [...]} or {\"retract\": \"?f\"}");
    }
    r.actions.push_back(std::move(a));
  }
  rules.push_back(std::move(r));
  return Status::Ok();
}

void RuleSet::index_entries() {
  // Visiting order for a new fact: rules from last to first, and in each rule its nodes from
  // last to first. Activation numbers grow along the visit and the highest fires first, so
  // the first rule in the file fires first; see session.hpp for the order inside one rule.
  entries_by_pred.assign(symbols.size(), {});
  alphas_by_pred.resize(symbols.size());
  for (size_t r = rules.size(); r-- > 0;) {
    const Rule& rule = rules[r];
    for (size_t k = rule.nodes.size(); k-- > 0;) {
      const uint32_t alpha = rule.nodes[k].alpha;
      entries_by_pred[alphas[alpha].pred].push_back(Entry{static_cast<uint32_t>(r), static_cast<uint32_t>(k), alpha});
    }
  }
}

Status RuleSet::compile(const json::Value& ruleset, const std::vector<std::string>& extra_predicates, RuleSet* out) {
  RuleSet rs;
  if (!ruleset.is_object()) return bad("ruleset: must be an object with 'facts' and 'rules'");
  if (const json::Value* rules = ruleset.find("rules"); rules != nullptr && !rules->is_null()) {
    if (!rules->is_array()) return bad("ruleset: 'rules' must be an array");
    std::unordered_set<std::string> names;
    for (size_t i = 0; i < rules->items().size(); ++i) {
      IR_RETURN_IF_ERROR(rs.compile_rule(rules->items()[i], i));
      if (!names.insert(rs.rules.back().name).second) return bad("rule '" + rs.rules.back().name + "': duplicate rule name");
    }
  }
  if (const json::Value* facts = ruleset.find("facts"); facts != nullptr && !facts->is_null()) {
    if (!facts->is_array()) return bad("ruleset: 'facts' must be an array of facts");
    for (size_t i = 0; i < facts->items().size(); ++i) {
      const json::Value& f = facts->items()[i];
      const std::string at = "fact " + std::to_string(i + 1);
      if (!f.is_array() || f.items().empty() || !f.items()[0].is_string() || f.items()[0].as_string().empty()) {
        return bad(at + ": a fact is a non-empty array [predicate, args...] with a string predicate");
      }
      InitialFact fact;
      fact.pred = rs.symbols.intern(f.items()[0].as_string());
      for (size_t k = 1; k < f.items().size(); ++k) {
        Val v{};
        Status st = constant(f.items()[k], &rs.symbols, &v);
        if (!st.ok()) return bad(at + ", argument " + std::to_string(k) + ": " + st.message());
        fact.args.push_back(v);
      }
      rs.facts.push_back(std::move(fact));
    }
  }
  for (const std::string& p : extra_predicates) rs.symbols.intern(p);
  rs.symbols.freeze();
  rs.index_entries();
  *out = std::move(rs);
  return Status::Ok();
}

}  // namespace ir::rules
