"""TOML and YAML are one language: equivalent files give equal specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infer_runtime.spec import check_spec, load_spec

ROOT = Path(__file__).resolve().parent.parent

names = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,12}", fullmatch=True)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20).filter(lambda s: "$" not in s)
dtypes = st.sampled_from(["bool", "uint8", "int32", "int64", "float16", "float32", "float64", "bytes"])
finite = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def tensors(draw: st.DrawFn, batched: bool) -> list[dict[str, Any]]:
    tensor_names = draw(st.lists(texts, min_size=1, max_size=3, unique=True))
    out = []
    for name in tensor_names:
        dims = draw(st.lists(st.integers(-1, 512), max_size=3))
        out.append({"name": name, "dtype": draw(dtypes), "shape": ([-1] + dims) if batched else dims})
    return out


@st.composite
def models(draw: st.DrawFn, with_registry: bool) -> dict[str, Any]:
    backend = draw(st.sampled_from(["onnxruntime", "tensorrt", "rules", "python", "identity"]))
    model: dict[str, Any] = {"backend": backend}
    if backend in ("onnxruntime", "tensorrt", "rules"):
        if with_registry and draw(st.booleans()):
            model["registry"] = draw(names) + draw(st.sampled_from(["", "@production", "@1.2.0"]))
        else:
            model["path"] = draw(texts)
    if backend == "python":
        model["python"] = {"entrypoint": "pkg.mod:Cls", "config": draw(st.dictionaries(names, st.one_of(st.integers(-5, 5), texts, st.booleans()), max_size=3))}
    if backend == "onnxruntime" and draw(st.booleans()):
        model["onnxruntime"] = {"providers": draw(st.lists(texts, min_size=1, max_size=2)), "graph_optimization_level": draw(st.sampled_from(["disable", "basic", "extended", "all"]))}
    model["instances"] = draw(st.integers(1, 8))
    batched = draw(st.booleans())
    if batched:
        limit = draw(st.integers(1, 256))
        model["batching"] = {
            "max_batch_size": limit,
            "max_queue_delay_us": draw(st.integers(0, 10_000)),
            "preferred_batch_sizes": sorted(draw(st.sets(st.integers(1, limit), max_size=3))),
            "priority_levels": draw(st.integers(1, 4)),
        }
    if draw(st.booleans()):
        model["inputs"] = draw(tensors(batched))
    return model


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    with_registry = draw(st.booleans())
    spec: dict[str, Any] = {"version": 1, "models": draw(st.dictionaries(names, models(with_registry), min_size=1, max_size=3))}
    if with_registry:
        spec["registry"] = {"path": draw(texts), "environment": draw(texts), "poll_interval_s": draw(finite)}
    if draw(st.booleans()):
        spec["server"] = {"host": draw(texts), "http_port": draw(st.integers(0, 65535)), "exit_on_error": draw(st.booleans()), "shutdown_timeout_s": draw(finite)}
    if draw(st.booleans()):
        spec["monitoring"] = {"log_level": draw(st.sampled_from(["debug", "info", "warning", "error"])), "log_format": draw(st.sampled_from(["json", "console"]))}
    if draw(st.booleans()):
        spec["runtime"] = {"name": draw(texts), "worker_threads": draw(st.integers(1, 64))}
    return spec


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=specs())
def test_toml_and_yaml_twins_load_equal(tmp_path: Path, spec: dict[str, Any]) -> None:
    toml_file = tmp_path / "spec.toml"
    yaml_file = tmp_path / "spec.yaml"
    toml_file.write_text(tomli_w.dumps(spec), encoding="utf-8")
    yaml_file.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    from_toml = check_spec(toml_file, environ={})
    from_yaml = check_spec(yaml_file, environ={})
    assert [i.format() for i in from_toml.issues] == []
    assert [i.format() for i in from_yaml.issues] == []
    assert from_toml.effective == from_yaml.effective
    typed_toml = load_spec(toml_file, environ={}, check_files=False).spec
    typed_yaml = load_spec(yaml_file, environ={}, check_files=False).spec
    assert typed_toml == typed_yaml


def test_shipped_prod_twins_are_equal() -> None:
    toml_spec = load_spec(ROOT / "specs" / "prod.toml", environ={}, check_files=False).spec
    yaml_spec = load_spec(ROOT / "specs" / "prod.yaml", environ={}, check_files=False).spec
    assert toml_spec == yaml_spec


def test_shipped_specs_carry_the_editor_schema_directive() -> None:
    for path in (ROOT / "specs").iterdir():
        first = path.read_text(encoding="utf-8").splitlines()[0]
        if path.suffix == ".toml":
            assert first == "#:schema ../schemas/infer-runtime.schema.json", path
        else:
            assert first == "# yaml-language-server: $schema=../schemas/infer-runtime.schema.json", path


def test_load_spec_returns_typed_frozen_spec() -> None:
    loaded = load_spec(ROOT / "specs" / "prod.toml", environ={}, check_files=False)
    spec = loaded.spec
    assert spec.models["scorer"].batching is not None
    assert spec.models["scorer"].batching.preferred_batch_sizes == [16, 32, 64]
    assert spec.server.shutdown_timeout_s == 30
    assert loaded.resolve_path("x.onnx") == (ROOT / "specs" / "x.onnx").resolve()
    import pydantic

    try:
        spec.server.http_port = 1  # type: ignore[misc]
    except pydantic.ValidationError:
        pass
    else:
        raise AssertionError("Spec must be frozen")


def test_yaml_hazards_documented_behaviour(write_spec) -> None:  # type: ignore[no-untyped-def]
    # on/off/yes/no are booleans (YAML 1.1): fine where a boolean belongs...
    path = write_spec("models: {a: {backend: identity, warmup: off}}\n", "a.yaml")
    result = check_spec(path, environ={})
    assert result.ok and result.effective["models"]["a"]["warmup"] is False  # type: ignore[index]
    # ...and quoted, they are strings.
    path = write_spec('runtime: {name: "off"}\nmodels: {a: {backend: identity}}\n', "b.yaml")
    assert check_spec(path, environ={}).effective["runtime"]["name"] == "off"  # type: ignore[index]


def test_empty_yaml_file_reports_missing_models(write_spec) -> None:  # type: ignore[no-untyped-def]
    result = check_spec(write_spec("", "empty.yaml"), environ={})
    assert [i.message for i in result.issues] == ["missing required key 'models'"]


def test_yaml_top_level_must_be_a_mapping(write_spec) -> None:  # type: ignore[no-untyped-def]
    result = check_spec(write_spec("- a\n- b\n", "list.yaml"), environ={})
    assert result.issues[0].message == "the top level must be a mapping (got list)"


def test_unknown_extension(write_spec) -> None:  # type: ignore[no-untyped-def]
    result = check_spec(write_spec("{}", "spec.json"), environ={})
    assert "unknown spec file type '.json'" in result.issues[0].message


def test_missing_file(tmp_path: Path) -> None:
    result = check_spec(tmp_path / "nope.toml", environ={})
    assert result.issues[0].format() == f"{tmp_path / 'nope.toml'}: error: file not found"


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_arbitrary_text_never_crashes_the_loader(tmp_path_factory, text: str) -> None:  # type: ignore[no-untyped-def]
    directory = tmp_path_factory.mktemp("fuzz")
    for name in ("f.toml", "f.yaml"):
        result = check_spec(directory / name, environ={}, text=text)
        assert all(issue.format() for issue in result.issues)


# -- issue 13 item 11: hostile documents get clean, located errors in bounded time -------------


def _messages(path: Path) -> list[str]:
    return [issue.format() for issue in check_spec(path).issues]


def test_documents_nested_5000_deep_are_a_clean_error(tmp_path: Path) -> None:
    cases = {
        "arrays.toml": "a = " + "[" * 5000 + "]" * 5000 + "\n",
        "tables.toml": "a = " + "{b = " * 5000 + "1" + "}" * 5000 + "\n",
        "flow.yaml": "a: " + "[" * 5000 + "]" * 5000 + "\n",
        "mappings.yaml": "a: " + "{b: " * 5000 + "1" + "}" * 5000 + "\n",
        "block.yaml": "".join(" " * i + f"k{i}:\n" for i in range(1000)) + " " * 1000 + "v: 1\n",  # 5000 would exceed the size cap
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        messages = _messages(tmp_path / name)  # a RecursionError would escape here
        assert len(messages) == 1 and "nested more than 64 levels deep" in messages[0], (name, messages)


def test_a_huge_yaml_is_capped_while_composing(tmp_path: Path) -> None:
    import resource
    import time

    # 1 MB of small nodes (just under the file-size cap): stopped at the node cap, located.
    many = tmp_path / "many.yaml"
    many.write_text("models:\n  m:\n    backend: identity\nx:\n" + "".join(f"  - [{i}, {i}, {i}]\n" for i in range(40_000))[: 1_000_000])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    messages = _messages(many)
    elapsed = time.perf_counter() - started
    assert len(messages) == 1 and "more than 10000 nodes" in messages[0] and ":2502:" in messages[0], messages
    assert elapsed < 6, elapsed  # ~1 s here; composing the whole file first took several times longer
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # KiB: < 100 MiB more
    # 9 MB: refused by size before parsing.
    huge = tmp_path / "huge.yaml"
    huge.write_text("models:\n  m:\n    backend: identity\nx:\n" + "  - 1\n" * 1_500_000)
    started = time.perf_counter()
    messages = _messages(huge)
    assert time.perf_counter() - started < 2
    assert len(messages) == 1 and "too large for a spec" in messages[0], messages


def test_yaml_merge_keys_let_the_override_win(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text(
        "models:\n"
        "  a: &base\n"
        "    backend: identity\n"
        "    instances: 1\n"
        "    warmup: false\n"
        "  b:\n"
        "    <<: *base\n"
        "    instances: 3\n"
        "  c:\n"
        "    instances: 2\n"
        "    <<: [*base]\n"
    )
    spec = load_spec(path, environ={}).spec
    assert (spec.models["a"].instances, spec.models["b"].instances, spec.models["c"].instances) == (1, 3, 2)
    assert spec.models["b"].backend == "identity" and spec.models["b"].warmup is False
    dup = tmp_path / "dup.yaml"
    dup.write_text("models:\n  a:\n    backend: identity\n    backend: python\n")
    assert any("duplicate key 'backend'" in m for m in _messages(dup))  # written twice is still an error
