"""The rules language: schema (generated, committed, drift-tested), the valid/invalid
corpus (tests/specs/rules), the guard grammar, check_rules/load_rules, engine_config, and
`infer-runtime validate` on rules files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_cli
from infer_runtime.errors import SpecError
from infer_runtime.rules import RulesError, check_rules, load_rules, rules_from_data
from infer_runtime.rules.guard import (
    Binary,
    GuardSyntaxError,
    Node,
    Num,
    Str,
    Unary,
    Var,
    parse_guard,
    unparse,
)
from infer_runtime.rules.loader import _validator
from infer_runtime.rules.schema import PACKAGED_RULES_SCHEMA, generate_rules_schema
from infer_runtime.spec.schema import render_schema, resolve
from infer_runtime.spec.sources import ParseError, read_document

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COMMITTED = ROOT / "schemas" / "infer-runtime-rules.schema.json"
CORPUS = HERE / "specs" / "rules"
INVALID = sorted((CORPUS / "invalid").iterdir())
VALID = sorted((CORPUS / "valid").iterdir()) + sorted((ROOT / "examples" / "rules").glob("*.toml"))


# -- schema ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return generate_rules_schema()


def test_committed_schema_is_current(schema: dict[str, Any]) -> None:
    fix = "python -c 'from infer_runtime.rules.schema import *; from infer_runtime.spec.schema import render_schema; print(render_schema(generate_rules_schema()), end=\"\")' > FILE"
    assert COMMITTED.read_text(encoding="utf-8") == render_schema(schema), fix
    assert PACKAGED_RULES_SCHEMA.read_text(encoding="utf-8") == render_schema(schema), fix


def test_schema_objects_closed_and_described(schema: dict[str, Any]) -> None:
    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object":
                assert node.get("additionalProperties") is False, path
                required = set(node.get("required", ()))
                for name, prop in node.get("properties", {}).items():
                    assert prop.get("description") or resolve(schema, prop).get("description"), f"{path}.{name}"
                    assert name in required or "default" in prop, f"{path}.{name} is optional without a default"
            for key, value in node.items():
                if key not in ("default", "examples", "enum", "const"):
                    walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{path}/{index}")

    walk(schema, "#")
    assert schema["$id"].endswith("/v1/infer-runtime-rules.schema.json")


# -- corpus ---------------------------------------------------------------------------------


def test_corpus_is_large_enough() -> None:
    assert len(INVALID) >= 20 and len(VALID) >= 3


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_rules_get_exactly_their_messages(path: Path) -> None:
    expect = [line[len("# expect: "):] for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("# expect: ")]
    assert expect
    got = [issue.format()[len(str(path)) + 1:] for issue in check_rules(path).issues]
    assert got == expect


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_rules_load(path: Path) -> None:
    assert [i.format() for i in check_rules(path).issues] == []
    ruleset = load_rules(path)
    assert ruleset.rules and ruleset.file == str(path)


def test_check_jsonschema_and_pydantic_agree_with_structural_verdicts() -> None:
    from pydantic import ValidationError

    from infer_runtime.rules.models import RulesFile

    cases = []
    for path in INVALID + VALID:
        try:
            cases.append((path, read_document(path).data))
        except ParseError:
            continue  # parse errors are ours alone
    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--schemafile", str(COMMITTED), "-o", "json", *(str(p) for p, _ in cases)],
                          capture_output=True, text=True, timeout=120, check=False)
    failing = {Path(e["filename"]).resolve() for e in json.loads(proc.stdout)["errors"]}
    verdicts = []
    for path, data in cases:
        ours = not _validator().problems(data)
        try:
            RulesFile.model_validate(data)
            typed = True
        except ValidationError:
            typed = False
        assert ours == (path.resolve() not in failing) == typed, path.name
        verdicts.append(ours)
    assert any(verdicts) and not all(verdicts)


def test_toml_and_yaml_give_the_same_rule_set(tmp_path: Path) -> None:
    toml = load_rules(CORPUS / "valid" / "design_example.toml")
    import yaml

    (tmp_path / "same.yaml").write_text(yaml.safe_dump(toml.to_data()), encoding="utf-8")
    again = load_rules(tmp_path / "same.yaml")
    assert again.rules == toml.rules and again.facts == toml.facts


# -- guards ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "tree"), [
    ("?a > 1 or ?b < 2 and not ?c == 'x'", "((?a > 1.0) or ((?b < 2.0) and (not (?c == 'x'))))"),
    ("?a + ?b * 2 - -1 >= 3 / ?c", "(((?a + (?b * 2.0)) - -1.0) >= (3.0 / ?c))"),
    ("(?a + ?b) * 2 == 1e3", "(((?a + ?b) * 2.0) == 1000.0)"),
    ("not not (?a != \"NG\")", "(not (not (?a != 'NG')))"),
    ("-?a < .5", "((- ?a) < 0.5)"),
    (r"""?a == 'it\'s' or ?a != "x\\y" """, "((?a == \"it's\") or (?a != 'x\\\\y'))"),
])
def test_guard_precedence(text: str, tree: str) -> None:
    assert unparse(parse_guard(text)) == tree


@pytest.mark.parametrize(("text", "column", "fragment"), [
    ("?a > ", 6, "found the end of the guard"),
    ("?a >> 1", 5, "expected a number"),
    ("?a > 1 ?b > 2", 8, "unexpected '?b'"),
    ("(?a > 1", 8, "expected ')'"),
    ("?a && ?b", 4, "unexpected '&&'"),
    ("?a > 1 AND ?b > 2", 8, "unknown word 'AND'"),
    ("?a < ?b < ?c", 9, "comparisons do not chain"),
    ("'x' + 1 > 2", 1, "needs numbers, not a string"),
    ("?a > 1 and 2", 12, "'and' needs comparisons"),
    ("?_ > 1", 1, "wildcard"),
    ("?a == 'open", 7, "unterminated string"),
    ("", 1, "empty guard"),
    ("?a > 1x", 7, "after a number"),
    ("?a ! = 1", 4, "unexpected '!'"),
])
def test_guard_errors_have_columns(text: str, column: int, fragment: str) -> None:
    with pytest.raises(GuardSyntaxError) as info:
        parse_guard(text)
    assert info.value.column == column and fragment in info.value.message


# -- check_rules with the model's options, load_rules, engine_config -------------------------------


def test_outputs_must_name_producible_predicates() -> None:
    path = CORPUS / "valid" / "design_example.toml"
    assert check_rules(path, outputs={"decision": "decision"}, bindings={"score": "score"}).ok
    assert check_rules(path, outputs={"score": "score"}, bindings={"score": "score"}).ok  # a binding produces it
    bad = check_rules(path, outputs={"decision": "decison", "why": "why"}, bindings={"score": "score"})
    assert [i.format() for i in bad.issues] == [
        f"{path}: error: outputs.decision: output 'decision' reads predicate 'decison', which no fact, binding or rule produces (did you mean 'decision'?)",
        (f"{path}: error: outputs.why: output 'why' reads predicate 'why', which no fact, binding or rule produces "
         "(produced: decision, reason, risk_country, score)"),
    ]


def test_load_rules_raises_every_problem_located(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('kind = "rules"\nversion = 1\n[[rules]]\nname = "r"\nwhen = [["a", "?x"], { test = "?y > 1" }]\nthen = [{ retract = "?x" }]\n')
    with pytest.raises(RulesError) as info:
        load_rules(path)
    assert isinstance(info.value, SpecError)
    assert [i.format() for i in info.value.issues] == [
        f"{path}:5:32: error: rules[0].when[1].test: guard: ?y is not bound by an earlier pattern (column 1 of the guard) (bound so far: ?x)",
        f'{path}:6:11: error: rules[0].then[0].retract: ?x is bound to a value, not a fact (name the fact: {{ bind = "?x_fact", pattern = [...] }}, then retract that)',
    ]
    assert str(info.value).startswith(f"2 problems in rules file {path}:\n")
    with pytest.raises(RulesError, match="file not found"):
        load_rules(tmp_path / "missing.toml")


def test_engine_config_is_exactly_the_engine_form() -> None:
    ruleset = load_rules(CORPUS / "valid" / "design_example.toml")
    config = ruleset.engine_config(bindings={"score": "score"}, outputs={"decision": "decision"}, defaults={"decision": "allow"}, explain=True)
    assert config == {
        "ruleset": {
            "facts": [["risk_country", "NG"], ["risk_country", "RU"]],
            "rules": [
                {"name": "block-very-high", "salience": 10,
                 "when": [{"pattern": ["score", "?legit", "?fraud"], "bind": None}, {"test": "?fraud > 0.9"}],
                 "then": [{"assert": ["decision", "block"]}]},
                {"name": "review-risky-country", "salience": 0,
                 "when": [{"pattern": ["country", "?c"], "bind": None}, {"pattern": ["risk_country", "?c"], "bind": None}, {"not": ["decision", "?_"]}],
                 "then": [{"assert": ["decision", "review"]}, {"assert": ["reason", "?c"]}]},
                {"name": "drop-stale", "salience": 0,
                 "when": [{"pattern": ["flag", "stale"], "bind": "?f"}],
                 "then": [{"retract": "?f"}]},
            ],
        },
        "bindings": {"score": "score"}, "outputs": {"decision": "decision"}, "defaults": {"decision": "allow"},
        "explain": True, "max_iterations": 1000, "trace": False,
    }
    assert json.loads(json.dumps(config)) == config


def test_engine_config_numbers_become_floats_and_options_are_checked() -> None:
    ruleset = rules_from_data({"kind": "rules", "version": 1, "facts": [["limit", 3]],
                               "rules": [{"name": "r", "when": [["a", 1, "?x"]], "then": [{"assert": ["out", "?x", -0.0]}]}]})
    config = ruleset.engine_config(outputs={"out": "out"}, defaults={"out": 2}, max_iterations=5, trace=True)
    assert config["ruleset"]["facts"] == [["limit", 3.0]] and isinstance(config["ruleset"]["facts"][0][1], float)
    assert config["ruleset"]["rules"][0]["when"][0]["pattern"] == ["a", 1.0, "?x"]
    assert config["ruleset"]["rules"][0]["then"][0]["assert"] == ["out", "?x", 0.0]
    assert config["defaults"] == {"out": 2.0} and config["trace"] is True and config["max_iterations"] == 5
    with pytest.raises(RulesError) as info:
        ruleset.engine_config(outputs={"out": "missing"}, defaults={"nope": 1, "out": True})
    messages = [i.message for i in info.value.issues]
    assert any("'missing'" in m for m in messages) and any("not an output" in m for m in messages) and any("number or a string" in m for m in messages)


# -- the CLI --------------------------------------------------------------------------------


def test_validate_text_on_rules_files() -> None:
    bad = CORPUS / "invalid" / "03_guard_syntax_column.toml"
    good = CORPUS / "valid" / "design_example.toml"
    proc = run_cli("validate", str(good), str(bad), str(ROOT / "specs" / "demo.toml"))
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [f"{bad}:6:35: error: rules[0].when[1].test: guard: unexpected '=' (column 4 of the guard) (use '==')"]
    assert "1 of 3" in proc.stderr
    assert run_cli("validate", str(good), str(CORPUS / "valid" / "every_construct.yaml")).returncode == 0


def test_validate_json_on_rules_files() -> None:
    bad = CORPUS / "invalid" / "06_retract_unbound.toml"
    proc = run_cli("validate", "--format", "json", str(bad))
    assert proc.returncode == 1
    payload = json.loads(proc.stdout)
    assert payload["valid"] is False
    (issue,) = payload["files"][0]["issues"]
    assert (issue["line"], issue["column"], issue["path"]) == (7, 11, "rules[0].then[0].retract")


def test_validate_of_rules_stays_import_light() -> None:
    code = ("import sys; from infer_runtime.cli import main; rc = main(['validate', sys.argv[1]]); "
            "heavy = [m for m in ('numpy', 'pydantic', 'infer_runtime._native', 'infer_runtime.rules.models') if m in sys.modules]; "
            "print(rc, heavy)")
    proc = subprocess.run([sys.executable, "-c", code, str(CORPUS / "valid" / "design_example.toml")], capture_output=True, text=True, timeout=60, check=False)
    assert proc.stdout.strip() == "0 []", proc.stderr


def test_a_spec_mentioning_kind_rules_elsewhere_is_still_a_spec(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('version = 1\n[models.a]\nbackend = "identity"\n[models.a.batching]\n# kind = "rules"\nmax_batch_size = 0\n')
    proc = run_cli("validate", str(spec))
    assert proc.returncode == 1 and "models.a.batching.max_batch_size" in proc.stdout


# -- the guard grammar under hypothesis: precedence and parentheses ---------------------------

_PREC = {"or": 1, "and": 2, "not": 3, "<": 4, "<=": 4, ">": 4, ">=": 4, "==": 4, "!=": 4, "+": 5, "-": 5, "*": 6, "/": 6}


def _values(depth: int) -> st.SearchStrategy[Node]:
    leaf = st.one_of(st.builds(Num, st.sampled_from([0.0, 1.0, 2.5, 1000.0]), st.just(0)), st.builds(Var, st.sampled_from(["?a", "?b"]), st.just(0)))
    if depth == 0:
        return leaf
    sub = _values(depth - 1)
    return st.one_of(leaf, st.builds(Binary, st.sampled_from(["+", "-", "*", "/"]), sub, sub, st.just(0)),
                     st.builds(Unary, st.just("-"), sub.filter(lambda n: not isinstance(n, Num)), st.just(0)))


def _truths(depth: int) -> st.SearchStrategy[Node]:
    cmp = st.builds(Binary, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), _values(2), _values(2), st.just(0))
    if depth == 0:
        return cmp
    sub = _truths(depth - 1)
    return st.one_of(cmp, st.builds(Binary, st.sampled_from(["and", "or"]), sub, sub, st.just(0)), st.builds(Unary, st.just("not"), sub, st.just(0)))


def _prec(node: Node) -> int:
    if isinstance(node, Binary):
        return _PREC[node.op]
    if isinstance(node, Unary):
        return 3 if node.op == "not" else 7
    return 8


def _render(node: Node) -> str:
    """With as few parentheses as the grammar allows."""
    if isinstance(node, Num):
        return repr(node.value)
    if isinstance(node, Var):
        return node.name
    if isinstance(node, Str):
        return repr(node.value)
    if isinstance(node, Unary):
        need = 3 if node.op == "not" else 7
        inner = _render(node.operand)
        inner = inner if _prec(node.operand) >= need else f"({inner})"
        return f"not {inner}" if node.op == "not" else f"-{inner}"
    p = _PREC[node.op]
    left, right = _render(node.left), _render(node.right)
    left = left if _prec(node.left) >= p + (1 if p == 4 else 0) else f"({left})"
    right = right if _prec(node.right) > p else f"({right})"
    return f"{left} {node.op} {right}"


@settings(max_examples=300, deadline=None)
@given(tree=_truths(3))
def test_guard_grammar_round_trips(tree: Node) -> None:
    text = _render(tree)
    assert unparse(parse_guard(text)) == unparse(tree), text
    assert unparse(parse_guard(unparse(tree))) == unparse(tree)  # fully parenthesised too


def test_check_rules_for_model_locates_option_problems_in_the_spec(tmp_path: Path) -> None:
    from infer_runtime.rules import check_rules_for_model

    spec = tmp_path / "spec.toml"
    spec.write_text('version = 1\n[models.policy]\nbackend = "rules"\npath = "policy.toml"\n[models.policy.rules]\n'
                    'bindings = { score = "score" }\noutputs = { decision = "decison" }\ndefaults = { verdict = "allow" }\n')
    rules_file = tmp_path / "policy.toml"
    rules_file.write_text((CORPUS / "valid" / "design_example.toml").read_text().replace('"?fraud > 0.9"', '"?fraud > "'))
    doc = read_document(spec)
    options = doc.data["models"]["policy"]["rules"]
    issues = check_rules_for_model(rules_file, options, spec_file=str(spec), options_path=("models", "policy", "rules"), locate=doc.locate)
    assert [i.format() for i in issues] == [
        f"{spec}:7:13: error: models.policy.rules.outputs.decision: output 'decision' reads predicate 'decison', which no fact, binding or rule produces (did you mean 'decision'?)",
        f"{rules_file}:12:22: error: rules[0].when[1].test: guard: expected a number, a string, a variable or '(' but found the end of the guard (column 10 of the guard)",
        f"{spec}:8:14: error: models.policy.rules.defaults.verdict: default for 'verdict', which is not an output (outputs: decision)",
    ]
