// The rules engine (csrc/rules) and the rules backend (csrc/backends/rules.cpp) driven
// directly: DESIGN §10's semantics as golden cases (joins, negation, retraction, salience,
// refraction, the order inside one change, max_iterations, guards that error), many rows on
// one session, and the backend through a fake host. Run under ASan/UBSan/LSan by
// tests/sanitizers/run.sh and by tests/test_rules_native.py.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../../csrc/backends/rules.hpp"
#include "../../csrc/common/json.hpp"
#include "../../csrc/rules/ruleset.hpp"
#include "../../csrc/rules/session.hpp"
#include "check.hpp"

using ir::rules::RuleSet;
using ir::rules::Session;
using ir::rules::Val;

namespace {

// Compiles `rules_json` (the "ruleset" object); failures are reported and yield false.
bool compile(const std::string& rules_json, RuleSet* rs, std::string* error = nullptr) {
  ir::json::Value v;
  ir::Status st = ir::json::parse(rules_json, &v);
  if (!st.ok()) {
    std::fprintf(stderr, "bad test JSON: %s\n", st.message().c_str());
    ++ir_test::failures();
    return false;
  }
  st = RuleSet::compile(v, {}, rs);
  if (error != nullptr) *error = st.message();
  return st.ok();
}

// A fact written as JSON ["pred", args...] asserted into the session.
void assert_json(Session* s, const std::string& fact) {
  ir::json::Value v;
  CHECK(ir::json::parse(fact, &v).ok());
  std::vector<Val> args;
  for (size_t i = 1; i < v.items().size(); ++i) {
    const auto& a = v.items()[i];
    args.push_back(a.is_number() ? Val::number(a.as_number()) : Val::symbol(s->intern(a.as_string())));
  }
  const int64_t pred = s->symbols().find(v.items()[0].as_string());
  CHECK(pred >= 0);
  if (pred >= 0) s->assert_fact(static_cast<uint32_t>(pred), args.data(), static_cast<uint32_t>(args.size()));
}

std::string fired(const Session& s, const RuleSet& rs) {
  std::string out;
  for (uint32_t r : s.fired()) out += (out.empty() ? "" : ",") + rs.rules[r].name;
  return out;
}

std::string facts(const Session& s) {
  std::string out = "[";
  for (uint32_t f = 0; f < s.fact_count(); ++f) {
    if (!s.alive(f)) continue;
    out += out.size() > 1 ? ",[" : "[";
    ir::json::dump_string(s.symbols().text(s.pred(f)), &out);
    for (uint32_t a = 0; a < s.arity(f); ++a) {
      out += ',';
      const Val& v = s.args(f)[a];
      if (v.kind == ir::rules::Kind::kStr) {
        ir::json::dump_string(s.symbols().text(v.id), &out);
      } else {
        ir::json::dump_number(v.num, &out);
      }
    }
    out += ']';
  }
  return out + "]";
}

// One row: the rule set's facts, then `row_facts`, then run.
struct Row {
  std::string fired, facts, error;
};
Row run_row(RuleSet& rs, Session* s, const std::vector<std::string>& row_facts, uint64_t max_iterations = 1000) {
  s->begin_row();
  for (const auto& f : row_facts) assert_json(s, f);
  ir::Status st = s->run(max_iterations);
  return Row{fired(*s, rs), facts(*s), st.ok() ? "" : st.message()};
}

Row run_once(const std::string& rules_json, const std::vector<std::string>& row_facts, uint64_t max_iterations = 1000) {
  RuleSet rs;
  std::string error;
  if (!compile(rules_json, &rs, &error)) {
    std::fprintf(stderr, "compile failed: %s\n  %s\n", error.c_str(), rules_json.c_str());
    ++ir_test::failures();
    return {};
  }
  Session s(&rs);
  return run_row(rs, &s, row_facts, max_iterations);
}

#define CHECK_EQ_STR(a, b)                                                                         \
  do {                                                                                             \
    const std::string a_ = (a), b_ = (b);                                                          \
    if (a_ != b_) {                                                                                \
      std::fprintf(stderr, "%s:%d: %s\n   got: %s\n  want: %s\n", __FILE__, __LINE__, #a, a_.c_str(), b_.c_str()); \
      ++ir_test::failures();                                                                       \
    }                                                                                              \
  } while (false)

// A rule `name` with conditions `when` (JSON array text) that asserts ["log", name, vars...].
std::string logger(const std::string& name, const std::string& when, const std::string& vars = "", int salience = 0) {
  return "{\"name\":\"" + name + "\",\"salience\":" + std::to_string(salience) + ",\"when\":" + when +
         ",\"then\":[{\"assert\":[\"log\",\"" + name + "\"" + (vars.empty() ? "" : "," + vars) + "]}]}";
}
std::string ruleset(const std::vector<std::string>& rules, const std::string& facts_json = "[]") {
  std::string out = "{\"facts\":" + facts_json + ",\"rules\":[";
  for (size_t i = 0; i < rules.size(); ++i) out += (i ? "," : "") + rules[i];
  return out + "]}";
}

void design_example() {
  const std::string rs = R"({"facts": [["risk_country","NG"],["risk_country","RU"]], "rules": [
    {"name":"block-very-high","salience":10,"when":[{"pattern":["score","?legit","?fraud"],"bind":null},{"test":"?fraud > 0.9"}],
     "then":[{"assert":["decision","block"]}]},
    {"name":"review-risky-country","when":[["country","?c"],["risk_country","?c"],{"not":["decision","?_"]}],
     "then":[{"assert":["decision","review"]},{"assert":["reason","?c"]}]},
    {"name":"drop-stale","when":[{"bind":"?f","pattern":["flag","stale"]}],"then":[{"retract":"?f"}]}]})";
  Row r = run_once(rs, {R"(["score",0.05,0.95])", R"(["country","NG"])"});
  CHECK_EQ_STR(r.fired, "block-very-high");  // salience 10 first; its decision blocks the review
  CHECK_EQ_STR(r.facts, R"([["risk_country","NG"],["risk_country","RU"],["score",0.05,0.95],["country","NG"],["decision","block"]])");
  r = run_once(rs, {R"(["score",0.5,0.5])", R"(["country","RU"])", R"(["flag","stale"])"});
  CHECK_EQ_STR(r.fired, "drop-stale,review-risky-country");  // the newest change first
  CHECK_EQ_STR(r.facts, R"([["risk_country","NG"],["risk_country","RU"],["score",0.5,0.5],["country","RU"],["decision","review"],["reason","RU"]])");
  r = run_once(rs, {R"(["score",0.5,0.5])", R"(["country","FR"])"});
  CHECK_EQ_STR(r.fired, "");
}

// RULES_SEMANTICS.md §2's table, with DESIGN §10's file order across rules.
void order_within_one_change() {
  CHECK_EQ_STR(run_once(ruleset({logger("r1", R"([["a","?x"]])"), logger("r2", R"([["a","?x"]])"), logger("r3", R"([["a","?x"]])")}),
                        {R"(["a",1])"}).fired, "r1,r2,r3");
  // CLIPS shares [a 1.0]'s path and fires r1 r3 r2; DESIGN §10 says file order.
  CHECK_EQ_STR(run_once(ruleset({logger("r1", R"([["a","?x"]])"), logger("r2", R"([["a",1.0]])"), logger("r3", R"([["a","?y"]])")}),
                        {R"(["a",1.0])"}).fired, "r1,r2,r3");
  CHECK_EQ_STR(run_once(ruleset({logger("r1", R"([["a","?x"],["b","?x"]])"), logger("r2", R"([["b","?x"]])"),
                                 logger("r3", R"([["c","?z"],["b","?x"]])"), logger("r4", R"([["b","?x"],["a","?x"]])")}),
                        {R"(["a",1])", R"(["c",1])", R"(["b",1])"}).fired, "r1,r2,r3,r4");
  // One rule: partners after the new fact's pattern fire newest first...
  CHECK_EQ_STR(run_once(ruleset({logger("r", R"([["a","?x"],["b","?y"]])", R"("?y")")}),
                        {R"(["b",1])", R"(["b",2])", R"(["b",3])", R"(["a",0])"}).facts,
               R"([["b",1],["b",2],["b",3],["a",0],["log","r",3],["log","r",2],["log","r",1]])");
  // ...partial matches before it, oldest first by creation.
  CHECK_EQ_STR(run_once(ruleset({logger("r", R"([["b","?y"],["a","?x"]])", R"("?y")")}),
                        {R"(["b",1])", R"(["b",2])", R"(["b",3])", R"(["a",0])"}).facts,
               R"([["b",1],["b",2],["b",3],["a",0],["log","r",1],["log","r",2],["log","r",3]])");
  CHECK_EQ_STR(run_once(ruleset({logger("r", R"([["b","?b"],["c","?c"],["a","?a"]])", R"("?b","?c")")}),
                        {R"(["b",1])", R"(["b",2])", R"(["c",1])", R"(["c",2])", R"(["a",0])"}).facts,
               R"([["b",1],["b",2],["c",1],["c",2],["a",0],["log","r",2,1],["log","r",1,1],["log","r",2,2],["log","r",1,2]])");
  // A fact filling two patterns: where it fills the earlier one first.
  CHECK_EQ_STR(run_once(ruleset({logger("r", R"([["a","?x"],["a","?y"]])", R"("?x","?y")")}), {R"(["a",1])"}).facts,
               R"([["a",1],["log","r",1,1]])");
  {
    RuleSet rs;
    CHECK(compile(ruleset({logger("r", R"([["a","?x"],["a","?y"]])", R"("?x","?y")")}), &rs));
    Session s(&rs);
    s.begin_row();
    assert_json(&s, R"(["a",1])");
    CHECK(s.run(10).ok());
    assert_json(&s, R"(["a",2])");
    CHECK(s.run(10).ok());
    CHECK_EQ_STR(facts(s), R"([["a",1],["log","r",1,1],["a",2],["log","r",2,2],["log","r",2,1],["log","r",1,2]])");
  }
}

void rules_without_positive_patterns() {
  // Activated at the row's start, before any fact: they fire after everything else of equal
  // salience, in file order (CLIPS ranks only-not rules above no-pattern rules).
  const std::string rs = ruleset({logger("e1", "[]"), logger("n1", R"([{"not":["d"]}])"), logger("e2", "[]"),
                                  logger("n2", R"([{"not":["d"]}])"), logger("a", R"([["a","?x"]])")});
  CHECK_EQ_STR(run_once(rs, {R"(["a",1])"}).fired, "a,e1,n1,e2,n2");
  CHECK_EQ_STR(run_once(rs, {R"(["d"])"}).fired, "e1,e2");  // d blocks n1, n2 before they fire
  // A guard before any pattern sees constants only.
  CHECK_EQ_STR(run_once(ruleset({logger("t", R"([{"test":"1 < 2"}])"), logger("f", R"([{"test":"2 < 1"}])")}), {}).fired, "t");
}

void negation() {
  // A not stopping to hold drops the activation.
  const std::string rs = ruleset({logger("quiet", R"([["a","?x"],{"not":["stop"]}])", R"("?x")"),
                                  R"({"name":"stopper","salience":10,"when":[["a","?x"]],"then":[{"assert":["stop"]}]})"});
  CHECK_EQ_STR(run_once(rs, {R"(["a",1])"}).fired, "stopper");
  // A not sees only earlier bindings: ?x inside the not is its own.
  const std::string local = ruleset({logger("r", R"([{"not":["d","?x"]},["a","?x"]])", R"("?x")")});
  CHECK_EQ_STR(run_once(local, {R"(["a",1])", R"(["d",2])"}).fired, "");
  CHECK_EQ_STR(run_once(local, {R"(["a",1])"}).fired, "r");
  // With a binding from before, the not joins on it.
  const std::string joined = ruleset({logger("r", R"([["a","?x"],{"not":["d","?x"]}])", R"("?x")")});
  CHECK_EQ_STR(run_once(joined, {R"(["a",1])", R"(["a",2])", R"(["d",2])"}).facts, R"([["a",1],["a",2],["d",2],["log","r",1]])");
  // Repeated variables inside a not must agree within the fact.
  const std::string same = ruleset({logger("r", R"([{"not":["p","?y","?y"]}])")});
  CHECK_EQ_STR(run_once(same, {R"(["p",1,2])"}).fired, "r");
  CHECK_EQ_STR(run_once(same, {R"(["p",3,3])"}).fired, "");

  // Retraction ties: the not turning true numbers its new activations like one change (file
  // order across rules; CLIPS follows blocking history, r4 r2 r1 r3).
  RuleSet set;
  CHECK(compile(ruleset({logger("r1", R"([["a"],{"not":["d"]}])"), logger("r2", R"([["b"],{"not":["d"]}])"),
                         logger("r3", R"([["a"],{"not":["d"]}])"), logger("r4", R"([{"not":["d"]}])")}),
                &set));
  Session s(&set);
  s.begin_row();
  assert_json(&s, R"(["a"])");
  assert_json(&s, R"(["b"])");
  assert_json(&s, R"(["d"])");
  CHECK(s.agenda_size() == 0);
  s.retract_fact(2);  // d
  CHECK(s.agenda_size() == 4);
  CHECK(s.run(100).ok());
  CHECK_EQ_STR(fired(s, set), "r1,r2,r3,r4");
  // Blocked again then unblocked: new activations, so the rules fire again on the same facts.
  assert_json(&s, R"(["d"])");
  s.retract_fact(s.fact_count() - 1);
  CHECK(s.run(100).ok());
  CHECK_EQ_STR(fired(s, set), "r1,r2,r3,r4,r1,r2,r3,r4");
}

void retraction_and_refraction() {
  // Retracting a fact drops the pending activations that used it.
  const std::string rs = ruleset({R"({"name":"drop","salience":5,"when":[{"pattern":["flag","stale"],"bind":"?f"}],"then":[{"retract":"?f"}]})",
                                  logger("seen", R"([["flag","?s"]])", R"("?s")")});
  CHECK_EQ_STR(run_once(rs, {R"(["flag","stale"])", R"(["flag","fresh"])"}).fired, "drop,seen");
  // Each activation fires once; re-asserting an existing fact is no change.
  const std::string once = ruleset({R"({"name":"again","when":[["a","?x"]],"then":[{"assert":["a","?x"]},{"assert":["b","?x"]}]})"});
  Row r = run_once(once, {R"(["a",1])", R"(["a",1.0])"});
  CHECK_EQ_STR(r.fired, "again");
  CHECK_EQ_STR(r.facts, R"([["a",1],["b",1]])");
  // Retract then re-assert an equal fact: a new fact, a new activation. A toggle never ends:
  // max_iterations fails the row, naming the limit.
  const std::string toggle = ruleset({
      R"({"name":"off","when":[{"pattern":["on"],"bind":"?f"}],"then":[{"retract":"?f"},{"assert":["off"]}]})",
      R"({"name":"on","when":[{"pattern":["off"],"bind":"?f"}],"then":[{"retract":"?f"},{"assert":["on"]}]})"});
  r = run_once(toggle, {R"(["on"])"}, 7);
  CHECK(r.error.find("max_iterations (7)") != std::string::npos);
  CHECK_EQ_STR(r.fired, "off,on,off,on,off,on,off");
  // Exactly max_iterations firings with nothing left is fine.
  const std::string chain = ruleset({logger("a", R"([["a"]])"), logger("b", R"([["b"]])"), logger("c", R"([["c"]])")});
  CHECK_EQ_STR(run_once(chain, {R"(["a"])", R"(["b"])", R"(["c"])"}, 3).error, "");
  CHECK(!run_once(chain, {R"(["a"])", R"(["b"])", R"(["c"])"}, 2).error.empty());
  // Two actions of one right-hand side are two changes: the later one's activations first.
  const std::string rhs = ruleset({R"({"name":"go","when":[["start"]],"then":[{"assert":["p"]},{"assert":["q"]}]})", logger("rp", R"([["p"]])"),
                                   logger("rq", R"([["q"]])")});
  CHECK_EQ_STR(run_once(rhs, {R"(["start"])"}).fired, "go,rq,rp");
}

void salience_and_depth() {
  const std::string rs = ruleset({logger("low", R"([["a","?x"]])", "", -5), logger("high", R"([["b","?x"]])", "", 20),
                                  logger("mid", R"([["a","?x"]])", "", 0), logger("mid2", R"([["b","?x"]])", "", 0)});
  CHECK_EQ_STR(run_once(rs, {R"(["a",1])", R"(["b",1])"}).fired, "high,mid2,mid,low");
  // Depth: the newest activation of equal salience fires first.
  CHECK_EQ_STR(run_once(ruleset({logger("ra", R"([["a"]])"), logger("rb", R"([["b"]])")}), {R"(["a"])", R"(["b"])"}).fired, "rb,ra");
}

void guards() {
  const auto fires = [](const std::string& test, const std::vector<std::string>& row) {
    return run_once(ruleset({logger("g", "[[\"v\",\"?x\",\"?s\"],{\"test\":\"" + test + "\"}]")}), row).fired == "g";
  };
  const std::vector<std::string> row = {R"(["v",3,"NG"])"};
  CHECK(fires("?x > 2", row));
  CHECK(!fires("?x > 3", row));
  CHECK(fires("?x >= 3 and ?x <= 3 and ?x == 3.0 and ?x != 4", row));
  CHECK(fires("(?x + 1) * 2 / 4 - 2 == 0", row));
  CHECK(fires("-?x < 0 and not (?x < 0)", row));
  CHECK(fires("?s == 'NG' and ?s != \\\"RU\\\"", row));
  CHECK(!fires("?s == 3", row));         // a string is never == a number
  CHECK(fires("?s != 3", row));
  CHECK(!fires("?s > 1", row));          // ordering a string is an error: false
  CHECK(!fires("not (?s > 1)", row));    // even under not
  CHECK(!fires("?x / 0 > 1", row));      // division by zero is an error
  CHECK(!fires("not (?x / 0 > 1)", row));
  CHECK(fires("?s == 'NG' or ?s > 1", row));   // or short-circuits left to right
  CHECK(!fires("?s > 1 or ?s == 'NG'", row));
  CHECK(!fires("?x < 0 and ?s > 1", row));     // false either way
  CHECK(!fires("?x + ?s > 0", row));
  CHECK(!fires("?x", row));                    // not a boolean
  CHECK(fires("true", row));
  // Compile errors name the rule and condition and column.
  RuleSet rs;
  std::string error;
  CHECK(!compile(ruleset({logger("bad", R"([["v","?x"],{"test":"?x > ?y"}])")}), &rs, &error));
  CHECK(error.find("rule 'bad', condition 2") != std::string::npos && error.find("?y") != std::string::npos && error.find("column 6") != std::string::npos);
  CHECK(!compile(ruleset({logger("bad", R"([["v","?x"],{"test":"?x >"}])")}), &rs, &error));
  CHECK(!compile(ruleset({logger("bad", R"([["v","?x"],{"test":"1 < 2 < 3"}])")}), &rs, &error));
  CHECK(error.find("chained") != std::string::npos);
  CHECK(!compile(ruleset({logger("bad", R"([{"not":["v","?x"]},{"test":"?x > 1"}])")}), &rs, &error));  // not binds nothing
  CHECK(!compile(ruleset({logger("bad", R"([{"pattern":["v","?x"],"bind":"?f"},{"test":"?f > 1"}])")}), &rs, &error));
}

void config_errors() {
  RuleSet rs;
  std::string error;
  CHECK(!compile(R"({"rules":[{"name":"x","when":[["v","?x"]],"then":[{"assert":["out","?y"]}]}]})", &rs, &error));
  CHECK(error.find("rule 'x', action 1") != std::string::npos && error.find("?y") != std::string::npos);
  CHECK(!compile(R"({"rules":[{"name":"x","when":[["v","?x"]],"then":[{"retract":"?x"}]}]})", &rs, &error));
  CHECK(!compile(R"({"rules":[{"name":"x","when":[["?p","?x"]]}]})", &rs, &error));
  CHECK(error.find("condition 1") != std::string::npos);
  CHECK(!compile(R"({"rules":[{"name":"x"},{"name":"x"}]})", &rs, &error));
  CHECK(error.find("duplicate") != std::string::npos);
  CHECK(!compile(R"({"rules":[{"name":"x","salience":1.5}]})", &rs, &error));
  CHECK(!compile(R"({"rules":[{"name":"x","when":[["v",true]]}]})", &rs, &error));
  CHECK(!compile(R"({"rules":[{"name":"x","when":[{"not":["v"],"bind":"?f"}]}]})", &rs, &error));
  CHECK(!compile(R"({"rules":[{"when":[]}]})", &rs, &error));
  CHECK(!compile(R"({"facts":[["a","?x",[1]]]})", &rs, &error));
}

void values() {
  // 1 and 1.0 are one number; the string "1" is not a number; -0.0 equals 0.0 (and is stored
  // as 0.0, as the reference and the CLIPS translation normalise it).
  const std::string rs = ruleset({logger("one", R"([["v",1]])"), logger("str", R"([["v","1"]])")});
  CHECK_EQ_STR(run_once(rs, {R"(["v",1.0])"}).fired, "one");
  CHECK_EQ_STR(run_once(rs, {R"(["v","1"])"}).fired, "str");
  CHECK_EQ_STR(run_once(ruleset({logger("z", R"([["z",0]])")}), {R"(["z",-0.0])", R"(["z",0.0])"}).facts, R"([["z",0],["log","z"]])");
  // Arity is part of a pattern.
  CHECK_EQ_STR(run_once(ruleset({logger("two", R"([["v","?a","?b"]])")}), {R"(["v",1])", R"(["v",1,2,3])"}).fired, "");
  // An assert argument that is exactly a bound variable takes its value.
  CHECK_EQ_STR(run_once(ruleset({R"({"name":"c","when":[["v","?a"]],"then":[{"assert":["w","?a","x","?a"]}]})"}), {R"(["v","s"])"}).facts,
               R"([["v","s"],["w","s","x","s"]])");
}

// Many rows through one session agree with a direct computation, and later rows see nothing of
// earlier ones.
void many_rows() {
  RuleSet rs;
  CHECK(compile(R"({"facts":[["limit",50]],"rules":[
      {"name":"big","when":[["n","?x"],["limit","?l"],{"test":"?x > ?l"}],"then":[{"assert":["size","big"]}]},
      {"name":"small","when":[["n","?x"],{"not":["size","?_"]}],"then":[{"assert":["size","small"]}]},
      {"name":"even","when":[["n","?x"],["half","?h"],{"test":"?h * 2 == ?x"}],"then":[{"assert":["parity","even"]}]}]})",
                &rs));
  Session s(&rs);
  for (int i = 0; i < 2000; ++i) {
    const int x = (i * 37) % 101;
    std::vector<std::string> row = {"[\"n\"," + std::to_string(x) + "]", "[\"half\"," + std::to_string(x / 2) + "]"};
    Row r = run_row(rs, &s, row);
    const std::string size = x > 50 ? "big" : "small";
    std::string want = "[[\"limit\",50]," + row[0] + "," + row[1];
    std::string want_fired;
    if (x % 2 == 0) {
      want += ",[\"parity\",\"even\"]";
      want_fired = "even,";
    }
    want += ",[\"size\",\"" + size + "\"]]";
    want_fired += size;
    if (x % 2 == 0 && x <= 50) want_fired = "even,small";
    // even's activation is the newest (half asserted last), so it fires first.
    CHECK_EQ_STR(r.facts, want);
    CHECK_EQ_STR(r.fired, want_fired);
  }
}

// ---- the backend through a fake host --------------------------------------------------------

struct FakeError {
  int32_t code;
  std::string message;
};
struct FakeSink {
  struct Out {
    std::string name;
    int32_t dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;
  };
  std::vector<Out> outputs;
  std::vector<std::pair<int32_t, std::string>> failed;
  std::vector<int32_t> failed_codes;
};
// The host's irb_error and irb_sink stay opaque here (the engine defines them when this
// driver is linked with it): the fakes are our own types behind those pointers.
struct ErrBox {
  FakeError e;
};
struct SinkBox {
  FakeSink s;
};
ErrBox* E(irb_error* e) { return reinterpret_cast<ErrBox*>(e); }
irb_sink* S(SinkBox* s) { return reinterpret_cast<irb_sink*>(s); }

irb_error* fake_error_new(int32_t code, const char* message) {
  return reinterpret_cast<irb_error*>(new ErrBox{{code, message ? message : ""}});
}
void fake_log(int32_t, const char*, const char*) {}
irb_error* fake_alloc(irb_sink* sink_ptr, const char* name, int32_t dtype, int32_t ndim, const int64_t* shape, uint64_t size, void** data) {
  SinkBox* sink = reinterpret_cast<SinkBox*>(sink_ptr);
  sink->s.outputs.push_back({name, dtype, std::vector<int64_t>(shape, shape + ndim), std::vector<uint8_t>(size + 1)});
  *data = sink->s.outputs.back().data.data();
  sink->s.outputs.back().data.resize(size);
  return nullptr;
}
void fake_fail(irb_sink* sink, int32_t request, irb_error* error) {
  reinterpret_cast<SinkBox*>(sink)->s.failed.emplace_back(request, E(error)->e.message);
  reinterpret_cast<SinkBox*>(sink)->s.failed_codes.push_back(E(error)->e.code);
  delete E(error);
}
const irb_host kHost = {sizeof(irb_host), IRB_ABI_VERSION, fake_error_new, fake_log, fake_alloc, nullptr, nullptr, fake_fail};

std::vector<std::string> bytes_elements(const std::vector<uint8_t>& blob) {
  std::vector<std::string> out;
  size_t off = 0;
  while (off + 4 <= blob.size()) {
    uint32_t n = blob[off] | (blob[off + 1] << 8) | (blob[off + 2] << 16) | (static_cast<uint32_t>(blob[off + 3]) << 24);
    out.emplace_back(reinterpret_cast<const char*>(blob.data() + off + 4), n);
    off += 4 + n;
  }
  return out;
}
std::vector<uint8_t> bytes_blob(const std::vector<std::string>& items) {
  std::vector<uint8_t> out;
  for (const auto& s : items) {
    const auto n = static_cast<uint32_t>(s.size());
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(n >> (8 * i)));
    out.insert(out.end(), s.begin(), s.end());
  }
  return out;
}
const FakeSink::Out* find_out(const FakeSink& s, const std::string& name) {
  for (const auto& o : s.outputs) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

const char* kPolicy = R"({"ruleset": {"facts": [["risk_country","NG"],["risk_country","RU"]],
   "rules": [{"name": "block-very-high", "salience": 10,
              "when": [{"pattern": ["score","?legit","?fraud"], "bind": null}, {"test": "?fraud > 0.9"}, {"not": ["decision","?_"]}],
              "then": [{"assert": ["decision","block"]}, {"assert": ["risk", "?fraud"]}]},
             {"name": "review-risky-country", "when": [["country","?c"],["risk_country","?c"],{"not":["decision","?_"]}],
              "then": [{"assert": ["decision","review"]}, {"assert": ["reason","?c"]}]},
             {"name": "loop", "when": [["country","LOOP"], {"pattern": ["tick"], "bind": "?t"}], "then": [{"retract": "?t"}, {"assert": ["tock"]}]},
             {"name": "loop2", "when": [["country","LOOP"], {"pattern": ["tock"], "bind": "?t"}], "then": [{"retract": "?t"}, {"assert": ["tick"]}]},
             {"name": "start", "when": [["country","LOOP"]], "then": [{"assert": ["tick"]}]},
             {"name": "numeric-decision", "when": [["country","NUM"]], "then": [{"assert": ["decision", 7]}]}]},
 "bindings": {"score": "score", "country": "country"}, "outputs": {"decision": "decision", "risk": "risk"},
 "defaults": {"decision": "allow", "risk": 0.0}, "explain": true, "max_iterations": 50, "trace": true})";

void backend() {
  const irb_backend* b = ir::builtin_rules_backend();
  CHECK(b->abi_version == IRB_ABI_VERSION && std::strcmp(b->name, "rules") == 0);
  irb_create_args args{};
  args.struct_size = sizeof(args);
  args.model_name = "policy";
  args.config_json = kPolicy;
  args.n_inputs = -1;
  args.n_outputs = -1;
  args.instances = 1;
  args.max_batch_rows = 64;
  void* state = nullptr;
  irb_error* err = b->create(&kHost, &args, &state);
  CHECK(err == nullptr);
  if (err != nullptr) {
    std::fprintf(stderr, "create: %s\n", E(err)->e.message.c_str());
    delete E(err);
    return;
  }
  CHECK(b->signature(state, 0, nullptr, 0) == -1);  // no declared inputs: any
  irb_tensor sig[8];
  CHECK(b->signature(state, 1, sig, 8) == 4);
  CHECK(std::strcmp(sig[0].name, "decision") == 0 && sig[0].dtype == IRB_DTYPE_BYTES);
  CHECK(std::strcmp(sig[1].name, "risk") == 0 && sig[1].dtype == IRB_DTYPE_FLOAT64);
  CHECK(std::strcmp(sig[2].name, "_fired") == 0 && std::strcmp(sig[3].name, "_facts") == 0);

  // 5 rows in 3 requests: [2, 2, 1]; row 3 loops (max_iterations), row 4 yields a number for
  // the BYTES output: both fail their requests, the others answer.
  const float scores[5][2] = {{0.05f, 0.95f}, {0.5f, 0.5f}, {0.9f, 0.1f}, {0.5f, 0.5f}, {0.5f, 0.5f}};
  const std::vector<uint8_t> countries = bytes_blob({"FR", "NG", "FR", "LOOP", "NUM"});
  const int64_t score_shape[2] = {5, 2}, country_shape[1] = {5};
  irb_tensor inputs[2] = {{"score", IRB_DTYPE_FLOAT32, 2, score_shape, scores, sizeof scores},
                          {"country", IRB_DTYPE_BYTES, 1, country_shape, countries.data(), countries.size()}};
  const int64_t request_rows[3] = {2, 2, 1};
  SinkBox sink;
  irb_batch batch{sizeof(irb_batch), 2, inputs, 5, 3, request_rows, S(&sink)};
  err = b->execute(state, &batch);
  CHECK(err == nullptr);
  delete E(err);
  const FakeSink::Out* decision = find_out(sink.s, "decision");
  const FakeSink::Out* risk = find_out(sink.s, "risk");
  const FakeSink::Out* fired_out = find_out(sink.s, "_fired");
  const FakeSink::Out* facts_out = find_out(sink.s, "_facts");
  CHECK(decision && risk && fired_out && facts_out);
  if (decision && risk && fired_out && facts_out) {
    CHECK(decision->shape == std::vector<int64_t>{5});
    const auto d = bytes_elements(decision->data);
    CHECK(d == (std::vector<std::string>{"block", "review", "allow", "allow", "allow"}));
    double r[5];
    std::memcpy(r, risk->data.data(), sizeof r);
    CHECK(r[0] == static_cast<double>(0.95f) && r[1] == 0.0 && r[2] == 0.0);
    const auto f = bytes_elements(fired_out->data);
    CHECK(f.size() == 5 && f[0] == "block-very-high" && f[1] == "review-risky-country" && f[2].empty());
    const auto t = bytes_elements(facts_out->data);
    CHECK(t.size() == 5);
    if (t.size() == 5) {
      CHECK_EQ_STR(t[1], R"([["risk_country","NG"],["risk_country","RU"],["score",0.5,0.5],["country","NG"],["decision","review"],["reason","NG"]])");
      ir::json::Value parsed;
      CHECK(ir::json::parse(t[0], &parsed).ok());
      CHECK(parsed.items().size() == 6 && parsed.items()[2].items()[2].as_number() == static_cast<double>(0.95f));
    }
  }
  CHECK(sink.s.failed.size() == 2);
  if (sink.s.failed.size() == 2) {
    CHECK(sink.s.failed[0].first == 1 && sink.s.failed[0].second.find("max_iterations (50)") != std::string::npos);
    CHECK(sink.s.failed[1].first == 2 && sink.s.failed[1].second.find("decision") != std::string::npos);
  }

  // Failed rows reach the host as request failures with the BACKEND code.
  CHECK(sink.s.failed_codes == (std::vector<int32_t>{IRB_ERROR_BACKEND, IRB_ERROR_BACKEND}));

  // A host without request_fail (an older, shorter table): the failed row fails the batch.
  {
    irb_host old_host = kHost;
    old_host.struct_size = static_cast<uint32_t>(offsetof(irb_host, request_fail));
    void* old_state = nullptr;
    err = b->create(&old_host, &args, &old_state);
    CHECK(err == nullptr);
    delete E(err);
    SinkBox sink3;
    irb_batch whole{sizeof(irb_batch), 2, inputs, 5, 3, request_rows, S(&sink3)};
    err = b->execute(old_state, &whole);
    CHECK(err != nullptr && E(err)->e.message.find("max_iterations (50)") != std::string::npos && sink3.s.failed.empty());
    delete E(err);
    b->destroy(old_state);
  }

  // A missing input fails the batch; the instance keeps serving.
  SinkBox sink2;
  irb_batch bad{sizeof(irb_batch), 1, inputs, 5, 1, request_rows, S(&sink2)};
  err = b->execute(state, &bad);
  CHECK(err != nullptr && E(err)->e.message.find("country") != std::string::npos);
  delete E(err);
  b->destroy(state);

  // Declared signature: dtypes from the declaration, bindings must name declared inputs.
  const int64_t in_shape[2] = {-1, 2}, c_shape[1] = {-1}, out_shape[1] = {-1};
  irb_tensor declared_in[2] = {{"score", IRB_DTYPE_FLOAT32, 2, in_shape, nullptr, 0}, {"country", IRB_DTYPE_BYTES, 1, c_shape, nullptr, 0}};
  irb_tensor declared_out[4] = {{"decision", IRB_DTYPE_BYTES, 1, out_shape, nullptr, 0}, {"risk", IRB_DTYPE_FLOAT32, 1, out_shape, nullptr, 0},
                                {"_fired", IRB_DTYPE_BYTES, 1, out_shape, nullptr, 0}, {"_facts", IRB_DTYPE_BYTES, 1, out_shape, nullptr, 0}};
  args.inputs = declared_in;
  args.n_inputs = 2;
  args.outputs = declared_out;
  args.n_outputs = 4;
  err = b->create(&kHost, &args, &state);
  CHECK(err == nullptr);
  delete E(err);
  if (err == nullptr) {
    CHECK(b->signature(state, 0, sig, 8) == 2 && sig[0].dtype == IRB_DTYPE_FLOAT32 && sig[0].ndim == 2 && sig[1].dtype == IRB_DTYPE_BYTES);
    CHECK(b->signature(state, 1, sig, 8) == 4 && sig[1].dtype == IRB_DTYPE_FLOAT32);
    CHECK(b->describe(state) != nullptr);
    b->destroy(state);
  }
  declared_out[0].dtype = IRB_DTYPE_INT32;  // a string default cannot fill INT32
  err = b->create(&kHost, &args, &state);
  CHECK(err != nullptr && E(err)->e.code == IRB_ERROR_INVALID_ARGUMENT && E(err)->e.message.find("decision") != std::string::npos);
  delete E(err);

  // Config errors name what is wrong.
  const char* bad_configs[] = {
      "{}", "[1]", "{\"ruleset\": {}, \"max_iterations\": 0}", "{\"ruleset\": {}, \"defaults\": {\"x\": 1}}",
      "{\"ruleset\": {\"rules\": [{\"name\": \"r\", \"when\": [{\"test\": \"?x >\"}]}]}}", "{\"ruleset\": {}, \"bindings\": {\"a\": 3}}"};
  args.n_inputs = -1;
  args.n_outputs = -1;
  for (const char* cfg : bad_configs) {
    args.config_json = cfg;
    err = b->create(&kHost, &args, &state);
    CHECK(err != nullptr && E(err)->e.code == IRB_ERROR_INVALID_ARGUMENT);
    delete E(err);
  }
}

// Numeric outputs in declared dtypes, numeric input dtypes, and a model that does not batch
// (its request's rows are still rows).
void backend_dtypes() {
  const irb_backend* b = ir::builtin_rules_backend();
  const char* config = R"({"ruleset": {"rules": [
      {"name": "copy", "when": [["n", "?x"]], "then": [{"assert": ["out", "?x"]}]},
      {"name": "flag", "when": [["f", "?b"], {"test": "?b == 1"}], "then": [{"assert": ["seen", "yes"]}]}]},
    "bindings": {"n": "n", "f": "f"}, "outputs": {"out": "out", "seen": "seen", "half": "out"}, "defaults": {"out": -1}})";
  const int64_t any[1] = {-1};
  irb_tensor declared_out[3] = {{"out", IRB_DTYPE_INT32, 1, any, nullptr, 0}, {"seen", IRB_DTYPE_BYTES, 1, any, nullptr, 0},
                                {"half", IRB_DTYPE_FLOAT16, 1, any, nullptr, 0}};
  irb_create_args args{};
  args.struct_size = sizeof(args);
  args.model_name = "dtypes";
  args.config_json = config;
  args.n_inputs = -1;
  args.outputs = declared_out;
  args.n_outputs = 3;
  args.instances = 1;
  args.max_batch_rows = 8;
  void* state = nullptr;
  irb_error* err = b->create(&kHost, &args, &state);
  CHECK(err == nullptr);
  if (err != nullptr) {
    std::fprintf(stderr, "create: %s\n", E(err)->e.message.c_str());
    delete E(err);
    return;
  }
  // Rows: 7 -> out 7; 2.5 -> not an INT32 (fails request 1); 65504 -> fits FP16 and INT32.
  const int64_t n[3] = {7, 0, 65504};
  const double n2[3] = {7.0, 2.5, 65504.0};
  const uint8_t flags[3] = {1, 0, 1};
  const int64_t shape[1] = {3};
  const int64_t request_rows[3] = {1, 1, 1};
  for (int variant = 0; variant < 2; ++variant) {
    irb_tensor inputs[2] = {{"n", variant == 0 ? IRB_DTYPE_INT64 : IRB_DTYPE_FLOAT64, 1, shape, variant == 0 ? static_cast<const void*>(n) : n2, 24},
                            {"f", IRB_DTYPE_BOOL, 1, shape, flags, 3}};
    SinkBox sink;
    irb_batch batch{sizeof(irb_batch), 2, inputs, 3, 3, request_rows, S(&sink)};
    err = b->execute(state, &batch);
    CHECK(err == nullptr);
    delete E(err);
    const FakeSink::Out* out = find_out(sink.s, "out");
    const FakeSink::Out* seen = find_out(sink.s, "seen");
    const FakeSink::Out* half = find_out(sink.s, "half");
    CHECK(out && seen && half);
    if (!(out && seen && half)) continue;
    int32_t o[3];
    std::memcpy(o, out->data.data(), sizeof o);
    uint16_t h[3];
    std::memcpy(h, half->data.data(), sizeof h);
    CHECK(out->dtype == IRB_DTYPE_INT32 && o[0] == 7 && o[2] == 65504);
    CHECK(h[0] == 0x4700 && h[2] == 0x7BFF);  // 7.0 and 65504 in binary16
    CHECK(bytes_elements(seen->data) == (std::vector<std::string>{"yes", "", "yes"}));  // no default: ""
    if (variant == 0) {
      CHECK(sink.s.failed.empty() && o[1] == 0);
    } else {
      CHECK(sink.s.failed.size() == 1 && sink.s.failed[0].first == 1 && sink.s.failed[0].second.find("INT32") != std::string::npos);
      CHECK(o[1] == -1);  // the failed row holds the default
    }
  }
  b->destroy(state);

  // A model that does not batch: a request of 2 rows is still 2 working memories.
  const char* one = R"({"ruleset": {"rules": [{"name": "sum", "when": [["v", "?a", "?b"], {"test": "?a + ?b > 2"}], "then": [{"assert": ["big", "yes"]}]}]},
                        "bindings": {"v": "v"}, "outputs": {"big": "big"}, "defaults": {"big": "no"}})";
  args.config_json = one;
  args.outputs = nullptr;
  args.n_outputs = -1;
  args.max_batch_rows = 0;
  err = b->create(&kHost, &args, &state);
  CHECK(err == nullptr);
  delete E(err);
  if (err == nullptr) {
    const float v[2][2] = {{1.5f, 1.0f}, {0.5f, 1.0f}};
    const int64_t vshape[2] = {2, 2};
    const int64_t rows[1] = {2};
    irb_tensor inputs[1] = {{"v", IRB_DTYPE_FLOAT32, 2, vshape, v, sizeof v}};
    SinkBox sink;
    irb_batch batch{sizeof(irb_batch), 1, inputs, 2, 1, rows, S(&sink)};
    err = b->execute(state, &batch);
    CHECK(err == nullptr);
    delete E(err);
    const FakeSink::Out* big = find_out(sink.s, "big");
    CHECK(big != nullptr && big->shape == std::vector<int64_t>{2} && bytes_elements(big->data) == (std::vector<std::string>{"yes", "no"}));
    b->destroy(state);
  }
}

}  // namespace

int main() {
  design_example();
  order_within_one_change();
  rules_without_positive_patterns();
  negation();
  retraction_and_refraction();
  salience_and_depth();
  guards();
  config_errors();
  values();
  many_rows();
  backend();
  backend_dtypes();
  if (ir_test::failures() == 0) std::puts("test_rules_native: ok");
  return ir_test::failures();
}
