// The rules engine as a filter, for differential tests against the Python reference
// (tests/test_rules_native.py). Each stdin line: {"ruleset": {...}, "rows": [[fact, ...], ...],
// "max_iterations": n}; each stdout line: [{"fired": [names], "facts": [final facts, creation
// order], "error": null | message}, ...] per row, or {"compile_error": message}.
#include <iostream>
#include <string>
#include <vector>

#include "../../csrc/common/json.hpp"
#include "../../csrc/rules/ruleset.hpp"
#include "../../csrc/rules/session.hpp"

namespace {

using ir::json::Value;
using ir::rules::Val;

void dump_facts(const ir::rules::Session& s, std::string* out) {
  out->push_back('[');
  bool first = true;
  for (uint32_t f = 0; f < s.fact_count(); ++f) {
    if (!s.alive(f)) continue;
    out->append(first ? "[" : ",[");
    first = false;
    ir::json::dump_string(s.symbols().text(s.pred(f)), out);
    for (uint32_t a = 0; a < s.arity(f); ++a) {
      out->push_back(',');
      const Val& v = s.args(f)[a];
      if (v.kind == ir::rules::Kind::kStr) {
        ir::json::dump_string(s.symbols().text(v.id), out);
      } else {
        ir::json::dump_number(v.num, out);
      }
    }
    out->push_back(']');
  }
  out->push_back(']');
}

std::string run(const Value& doc) {
  const Value* ruleset = doc.find("ruleset");
  const Value* rows = doc.find("rows");
  const Value* max_it = doc.find("max_iterations");
  if (ruleset == nullptr || rows == nullptr || !rows->is_array() || max_it == nullptr || !max_it->is_integer()) {
    return R"({"compile_error":"need ruleset, rows and max_iterations"})";
  }
  std::vector<std::string> preds;
  for (const Value& row : rows->items()) {
    for (const Value& f : row.items()) preds.push_back(f.items()[0].as_string());
  }
  ir::rules::RuleSet rs;
  ir::Status st = ir::rules::RuleSet::compile(*ruleset, preds, &rs);
  std::string out;
  if (!st.ok()) {
    out = "{\"compile_error\":";
    ir::json::dump_string(st.message(), &out);
    return out + "}";
  }
  ir::rules::Session s(&rs);  // one session for every row: rows must not see each other
  out = "[";
  std::vector<Val> args;
  for (const Value& row : rows->items()) {
    s.begin_row();
    for (const Value& f : row.items()) {
      args.clear();
      for (size_t i = 1; i < f.items().size(); ++i) {
        const Value& a = f.items()[i];
        args.push_back(a.is_number() ? Val::number(a.as_number()) : Val::symbol(s.intern(a.as_string())));
      }
      s.assert_fact(static_cast<uint32_t>(s.symbols().find(f.items()[0].as_string())), args.data(), static_cast<uint32_t>(args.size()));
    }
    const ir::Status r = s.run(static_cast<uint64_t>(max_it->as_int()));
    out.append(out.size() > 1 ? ",{\"fired\":[" : "{\"fired\":[");
    for (size_t i = 0; i < s.fired().size(); ++i) {
      if (i != 0) out.push_back(',');
      ir::json::dump_string(rs.rules[s.fired()[i]].name, &out);
    }
    out.append("],\"facts\":");
    dump_facts(s, &out);
    out.append(",\"error\":");
    if (r.ok()) {
      out.append("null");
    } else {
      ir::json::dump_string(r.message(), &out);
    }
    out.push_back('}');
  }
  return out + "]";
}

}  // namespace

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    Value doc;
    const ir::Status st = ir::json::parse(line, &doc);
    if (!st.ok()) {
      std::string out = "{\"compile_error\":";
      ir::json::dump_string(st.message(), &out);
      std::cout << out << "}" << std::endl;
      continue;
    }
    std::cout << run(doc) << std::endl;
  }
  return 0;
}
