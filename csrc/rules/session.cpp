#include "session.hpp"

#include <algorithm>
#include <cstring>

namespace ir::rules {

namespace {
constexpr uint32_t kTomb = 0xFFFFFFFEu;

// std heaps keep the greatest on top: here the highest salience, then the highest number.
struct HeapLess {
  template <typename A>
  bool operator()(const A& a, const A& b) const {
    return a.salience != b.salience ? a.salience < b.salience : a.number < b.number;
  }
};
}  // namespace

Session::Session(const RuleSet* rules) : rs_(rules), symbols_(rules->symbols) {
  for (const Rule& r : rs_->rules) {
    mem_base_.push_back(static_cast<uint32_t>(mems_.size()));
    mems_.resize(mems_.size() + r.nodes.size() + 1);
  }
  mem_dead_.assign(mems_.size(), 0);
  alpha_mem_.resize(rs_->alphas.size());
  alpha_hit_.assign(rs_->alphas.size(), 0);
  set_.assign(64, kNone);
  size_t slots = 0;
  for (const Rule& r : rs_->rules) slots = std::max<size_t>(slots, r.n_slots);
  rhs_.resize(slots);
  scratch_.resize(slots);
}

// ---- the fact set -------------------------------------------------------------------------

uint64_t Session::hash_fact(uint32_t pred, const Val* args, uint32_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(pred) << 32) ^ n;
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t x;
    if (args[i].kind == Kind::kNum) {
      const double d = args[i].num == 0.0 ? 0.0 : args[i].num;  // 0.0 == -0.0
      std::memcpy(&x, &d, sizeof x);
    } else {
      x = (static_cast<uint64_t>(args[i].kind) << 40) ^ args[i].id;
    }
    h ^= x + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

uint32_t Session::find_fact(uint32_t pred, const Val* args, uint32_t n, uint64_t h) const {
  const size_t mask = set_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const uint32_t id = set_[i];
    if (id == kNone) return kNone;
    if (id == kTomb) continue;
    const Fact& f = facts_[id];
    if (f.hash != h || f.pred != pred || f.arity != n) continue;
    const Val* a = fact_args_.data() + f.arg_off;
    bool eq = true;
    for (uint32_t k = 0; k < n && eq; ++k) eq = same(a[k], args[k]);
    if (eq) return id;
  }
}

void Session::set_rehash(size_t slots) {
  set_.assign(slots, kNone);
  set_used_ = 0;
  for (uint32_t id = 0; id < facts_.size(); ++id) {
    if (facts_[id].alive) set_insert(id);
  }
}

void Session::set_insert(uint32_t id) {
  if ((set_used_ + 1) * 2 > set_.size()) {
    set_rehash(set_.size() * 2);
    if (facts_[id].alive && find_fact(facts_[id].pred, args(id), facts_[id].arity, facts_[id].hash) == id) return;
  }
  const size_t mask = set_.size() - 1;
  size_t i = facts_[id].hash & mask;
  while (set_[i] != kNone) i = (i + 1) & mask;  // tombstones are not reused: rehash clears them
  set_[i] = id;
  ++set_used_;
}

void Session::set_erase(uint32_t id) {
  const size_t mask = set_.size() - 1;
  for (size_t i = facts_[id].hash & mask; set_[i] != kNone; i = (i + 1) & mask) {
    if (set_[i] == id) {
      set_[i] = kTomb;
      return;
    }
  }
}

// ---- matching -----------------------------------------------------------------------------

bool Session::alpha_ok(const AlphaTest& t, const Fact& f) const {
  if (f.pred != t.pred || f.arity != t.arity) return false;
  const Val* a = fact_args_.data() + f.arg_off;
  for (const auto& [i, v] : t.constants) {
    if (!same(a[i], v)) return false;
  }
  for (const auto& [i, j] : t.equal_args) {
    if (!same(a[i], a[j])) return false;
  }
  return true;
}

bool Session::join_ok(const Node& node, uint32_t token, uint32_t fact) const {
  const Val* a = fact_args_.data() + facts_[fact].arg_off;
  const Val* b = binds_.data() + tokens_[token].bind_off;
  for (const auto& [arg, slot] : node.joins) {
    if (!same(a[arg], b[slot])) return false;
  }
  return true;
}

// A token at `level` of `rule` extending `parent` (kNone: the root) with `fact` (kNone for
// roots and `not` nodes), if the guards there hold; else kNone.
uint32_t Session::make_token(uint32_t parent, uint32_t fact, uint32_t rule, uint32_t level) {
  const Rule& r = rs_->rules[rule];
  // Bindings are built in scratch and copied to the arena only when the guards hold: most
  // candidate tokens of threshold rules die at their guard.
  Val* b = scratch_.data();
  if (parent != kNone) {
    std::copy_n(binds_.data() + tokens_[parent].bind_off, r.n_slots, b);
  } else {
    std::fill_n(b, r.n_slots, Val{});
  }
  const std::vector<uint32_t>* guards = &r.root_guards;
  if (level > 0) {
    const Node& node = r.nodes[level - 1];
    guards = &node.guards;
    if (fact != kNone) {
      const Val* a = fact_args_.data() + facts_[fact].arg_off;
      for (const auto& [arg, slot] : node.binds) b[slot] = a[arg];
      if (node.fact_slot != kNone) b[node.fact_slot] = Val::fact(fact);
    }
  }
  for (uint32_t g : *guards) {
    if (!rs_->guards[g].eval(b)) return kNone;
  }
  const auto off = static_cast<uint32_t>(binds_.size());
  binds_.insert(binds_.end(), b, b + r.n_slots);
  const auto id = static_cast<uint32_t>(tokens_.size());
  Token t{};
  t.parent = parent;
  t.fact = fact;
  t.bind_off = off;
  t.mem = mem_base_[rule] + level;
  t.rule = rule;
  t.level = level;
  t.first_child = kNone;
  t.prev_sibling = kNone;
  t.next_sibling = kNone;
  t.next_same_fact = kNone;
  t.alive = true;
  if (parent != kNone) {
    t.next_sibling = tokens_[parent].first_child;
    if (t.next_sibling != kNone) tokens_[t.next_sibling].prev_sibling = id;
    tokens_[parent].first_child = id;
  }
  if (fact != kNone) {
    t.next_same_fact = facts_[fact].first_token;
    facts_[fact].first_token = id;
  }
  tokens_.push_back(t);
  mems_[t.mem].push_back(id);
  return id;
}

// `token` (at level k) enters node k of `rule`; everything it completes is activated.
void Session::left(uint32_t rule, uint32_t k, uint32_t token) {
  const Rule& r = rs_->rules[rule];
  if (k == r.nodes.size()) {
    activate(token);
    return;
  }
  const Node& node = r.nodes[k];
  const std::vector<uint32_t>& am = alpha_mem_[node.alpha];
  if (!node.negative) {
    for (size_t i = 0; i < am.size(); ++i) {  // oldest first: newest partners fire first
      if (!join_ok(node, token, am[i])) continue;
      const uint32_t child = make_token(token, am[i], rule, k + 1);
      if (child != kNone) left(rule, k + 1, child);
    }
    return;
  }
  uint32_t count = 0;
  for (uint32_t f : am) count += join_ok(node, token, f) ? 1 : 0;
  tokens_[token].block = count;
  if (count == 0) {
    const uint32_t child = make_token(token, kNone, rule, k + 1);
    if (child != kNone) left(rule, k + 1, child);
  }
}

void Session::activate(uint32_t token) {
  agenda_.push_back(Activation{rs_->rules[tokens_[token].rule].salience, ++counter_, token});
  std::push_heap(agenda_.begin(), agenda_.end(), HeapLess{});
}

void Session::kill(uint32_t token) {
  Token& t = tokens_[token];
  if (!t.alive) return;
  // Unlink the subtree's root from its parent, which lives on.
  if (t.prev_sibling != kNone) {
    tokens_[t.prev_sibling].next_sibling = t.next_sibling;
  } else if (t.parent != kNone) {
    tokens_[t.parent].first_child = t.next_sibling;
  }
  if (t.next_sibling != kNone) tokens_[t.next_sibling].prev_sibling = t.prev_sibling;
  kill_stack_.clear();
  kill_stack_.push_back(token);
  while (!kill_stack_.empty()) {
    const uint32_t id = kill_stack_.back();
    kill_stack_.pop_back();
    Token& d = tokens_[id];
    if (!d.alive) continue;
    d.alive = false;  // its activation, if any, is skipped when it reaches the top
    if (mem_dead_[d.mem]++ == 0) dirty_mems_.push_back(d.mem);
    for (uint32_t c = d.first_child; c != kNone; c = tokens_[c].next_sibling) kill_stack_.push_back(c);
  }
}

void Session::kill_children(uint32_t token) {
  while (tokens_[token].first_child != kNone) kill(tokens_[token].first_child);
}

void Session::compact_memories() {
  for (uint32_t m : dirty_mems_) {
    std::vector<uint32_t>& mem = mems_[m];
    if (mem_dead_[m] * 2 >= mem.size()) {
      mem.erase(std::remove_if(mem.begin(), mem.end(), [this](uint32_t t) { return !tokens_[t].alive; }), mem.end());
      mem_dead_[m] = 0;
    }
  }
  dirty_mems_.erase(std::remove_if(dirty_mems_.begin(), dirty_mems_.end(), [this](uint32_t m) { return mem_dead_[m] == 0; }),
                    dirty_mems_.end());
}

// ---- changes ------------------------------------------------------------------------------

void Session::assert_fact(uint32_t pred, const Val* args, uint32_t n) {
  const uint64_t h = hash_fact(pred, args, n);
  if (find_fact(pred, args, n, h) != kNone) return;  // working memory is a set
  const auto id = static_cast<uint32_t>(facts_.size());
  facts_.push_back(Fact{pred, n, static_cast<uint32_t>(fact_args_.size()), kNone, h, true});
  fact_args_.insert(fact_args_.end(), args, args + n);
  for (uint32_t i = 0; i < n; ++i) fact_args_[facts_[id].arg_off + i].num += 0.0;  // -0.0 is stored as 0.0
  set_insert(id);
  if (pred >= rs_->entries_by_pred.size()) return;  // a predicate no pattern mentions
  for (uint32_t a : rs_->alphas_by_pred[pred]) {
    if (alpha_ok(rs_->alphas[a], facts_[id])) {
      alpha_mem_[a].push_back(id);
      alpha_hit_[a] = 1;
    }
  }
  for (const Entry& e : rs_->entries_by_pred[pred]) {
    if (!alpha_hit_[e.alpha]) continue;
    const Node& node = rs_->rules[e.rule].nodes[e.node];
    const std::vector<uint32_t>& mem = mems_[mem_base_[e.rule] + e.node];
    if (!node.negative) {
      for (size_t i = mem.size(); i-- > 0;) {  // newest first: oldest partial matches fire first
        const uint32_t t = mem[i];
        if (!tokens_[t].alive || !join_ok(node, t, id)) continue;
        const uint32_t child = make_token(t, id, e.rule, e.node + 1);
        if (child != kNone) left(e.rule, e.node + 1, child);
      }
    } else {
      for (size_t i = mem.size(); i-- > 0;) {
        const uint32_t t = mem[i];
        if (!tokens_[t].alive || !join_ok(node, t, id)) continue;
        if (tokens_[t].block++ == 0) kill_children(t);
      }
    }
  }
  for (uint32_t a : rs_->alphas_by_pred[pred]) alpha_hit_[a] = 0;
}

void Session::retract_fact(uint32_t id) {
  if (id >= facts_.size() || !facts_[id].alive) return;
  facts_[id].alive = false;
  set_erase(id);
  for (uint32_t t = facts_[id].first_token; t != kNone; t = tokens_[t].next_same_fact) kill(t);
  const uint32_t pred = facts_[id].pred;
  if (pred >= rs_->entries_by_pred.size()) return;
  for (uint32_t a : rs_->alphas_by_pred[pred]) {
    std::vector<uint32_t>& am = alpha_mem_[a];
    auto it = std::find(am.begin(), am.end(), id);
    if (it != am.end()) {
      am.erase(it);
      alpha_hit_[a] = 1;
    }
  }
  for (const Entry& e : rs_->entries_by_pred[pred]) {
    const Node& node = rs_->rules[e.rule].nodes[e.node];
    if (!alpha_hit_[e.alpha] || !node.negative) continue;
    const std::vector<uint32_t>& mem = mems_[mem_base_[e.rule] + e.node];
    for (size_t i = mem.size(); i-- > 0;) {  // newest first: the oldest unblocked fires first
      const uint32_t t = mem[i];
      if (!tokens_[t].alive || !join_ok(node, t, id)) continue;
      if (--tokens_[t].block == 0) {
        const uint32_t child = make_token(t, kNone, e.rule, e.node + 1);
        if (child != kNone) left(e.rule, e.node + 1, child);
      }
    }
  }
  for (uint32_t a : rs_->alphas_by_pred[pred]) alpha_hit_[a] = 0;
}

// ---- rows ---------------------------------------------------------------------------------

void Session::begin_row() {
  facts_.clear();
  fact_args_.clear();
  if (set_.size() > 1024) set_.assign(64, kNone);  // one huge row does not slow the others
  std::fill(set_.begin(), set_.end(), kNone);
  set_used_ = 0;
  for (auto& am : alpha_mem_) am.clear();
  tokens_.clear();
  binds_.clear();
  for (auto& m : mems_) m.clear();
  std::fill(mem_dead_.begin(), mem_dead_.end(), 0);
  dirty_mems_.clear();
  agenda_.clear();
  counter_ = 0;
  fired_.clear();
  // The start of the row is one change: every rule's empty token enters its first node.
  for (size_t r = rs_->rules.size(); r-- > 0;) {
    const uint32_t root = make_token(kNone, kNone, static_cast<uint32_t>(r), 0);
    if (root != kNone) left(static_cast<uint32_t>(r), 0, root);
  }
  for (const auto& f : rs_->facts) assert_fact(f.pred, f.args.data(), static_cast<uint32_t>(f.args.size()));
}

bool Session::pop_live(Activation* out) {
  while (!agenda_.empty()) {
    std::pop_heap(agenda_.begin(), agenda_.end(), HeapLess{});
    const Activation a = agenda_.back();
    agenda_.pop_back();
    if (tokens_[a.token].alive) {
      *out = a;
      return true;
    }
  }
  return false;
}

size_t Session::agenda_size() const {
  size_t n = 0;
  for (const Activation& a : agenda_) n += tokens_[a.token].alive ? 1 : 0;
  return n;
}

Status Session::run(uint64_t max_iterations) {
  uint64_t fired = 0;
  Activation a{};
  while (pop_live(&a)) {
    if (fired == max_iterations) {
      agenda_.push_back(a);  // left to fire: keeps agenda_size() honest
      std::push_heap(agenda_.begin(), agenda_.end(), HeapLess{});
      return Status(IR_ERROR_BACKEND,
                    "max_iterations (" + std::to_string(max_iterations) + ") reached with rules left to fire");
    }
    ++fired;
    const Token& t = tokens_[a.token];
    const Rule& r = rs_->rules[t.rule];
    fired_.push_back(t.rule);
    // The actions may grow binds_; they read the activation's values from a copy.
    std::copy_n(binds_.begin() + t.bind_off, r.n_slots, rhs_.begin());
    for (const Action& act : r.actions) {
      compact_memories();
      if (act.retract) {
        retract_fact(rhs_[act.slot].id);
        continue;
      }
      args_scratch_.clear();
      for (const ActionArg& arg : act.args) args_scratch_.push_back(arg.from_slot ? rhs_[arg.slot] : arg.value);
      assert_fact(act.pred, args_scratch_.data(), static_cast<uint32_t>(args_scratch_.size()));
    }
  }
  return Status::Ok();
}

uint32_t Session::newest(uint32_t pred) const {
  for (size_t id = facts_.size(); id-- > 0;) {
    if (facts_[id].alive && facts_[id].pred == pred) return static_cast<uint32_t>(id);
  }
  return kNone;
}

}  // namespace ir::rules
