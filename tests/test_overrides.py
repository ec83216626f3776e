"""Per-deployment overrides: environment, --set, the API dict; precedence and strictness."""

from __future__ import annotations

from pathlib import Path

import pytest

from infer_runtime.errors import SpecError
from infer_runtime.spec import check_spec, load_spec
from infer_runtime.spec.overrides import OverrideError, coerce, normalise, parse_key_path
from infer_runtime.spec.schema import packaged_schema, schema_at

BASE = """
version = 1
[server]
http_port = 8000
[models.resnet-50]
backend = "identity"
inputs = [{ name = "pixels", dtype = "float32", shape = [-1, 3] }]
[models.resnet-50.batching]
max_batch_size = 64
preferred_batch_sizes = [16, 32]
[models.echo]
backend = "identity"
inputs = [{ name = "x", dtype = "float32", shape = [-1] }]
[pipelines.p]
steps = [{ model = "echo", inputs = { x = "request.x" } }]
outputs = { y = "echo.x" }
"""


@pytest.fixture
def spec_file(write_spec) -> Path:  # type: ignore[no-untyped-def]
    return write_spec(BASE)  # type: ignore[no-any-return]


def effective(path: Path, **kwargs):  # type: ignore[no-untyped-def]
    result = check_spec(path, **kwargs)
    assert [i.format() for i in result.issues] == []
    return result.effective


def test_env_overrides_one_leaf_with_normalised_names(spec_file: Path) -> None:
    env = {"INFER_RUNTIME_MODELS__RESNET_50__BATCHING__MAX_BATCH_SIZE": "128"}
    data = effective(spec_file, environ=env)
    assert data["models"]["resnet-50"]["batching"]["max_batch_size"] == 128
    assert data["models"]["resnet-50"]["batching"]["preferred_batch_sizes"] == [16, 32]  # deep merge


def test_env_matching_is_case_insensitive(spec_file: Path) -> None:
    data = effective(spec_file, environ={"infer_runtime_server__http_port": "9000"})
    assert data["server"]["http_port"] == 9000


def test_env_list_replaces_whole_list_json_or_toml(spec_file: Path) -> None:
    for text in ("[8, 64]", "[ 8, 64 ]"):
        data = effective(spec_file, environ={"INFER_RUNTIME_MODELS__RESNET_50__BATCHING__PREFERRED_BATCH_SIZES": text})
        assert data["models"]["resnet-50"]["batching"]["preferred_batch_sizes"] == [8, 64]


def test_env_addresses_list_items_by_index_and_by_name(spec_file: Path) -> None:
    by_index = effective(spec_file, environ={"INFER_RUNTIME_MODELS__RESNET_50__INPUTS__0__DTYPE": "float16"})
    by_name = effective(spec_file, environ={"INFER_RUNTIME_MODELS__RESNET_50__INPUTS__PIXELS__DTYPE": "float16"})
    assert by_index == by_name
    assert by_name["models"]["resnet-50"]["inputs"][0]["dtype"] == "float16"


def test_env_index_past_the_end_is_an_error(spec_file: Path) -> None:
    result = check_spec(spec_file, environ={"INFER_RUNTIME_MODELS__RESNET_50__INPUTS__3__DTYPE": "float16"})
    assert [i.message for i in result.issues] == ["the list has 1 item(s); index 3 does not exist"]


def test_env_may_fill_a_schema_field_of_an_absent_section(spec_file: Path) -> None:
    data = effective(spec_file, environ={"INFER_RUNTIME_MODELS__ECHO__BATCHING__MAX_BATCH_SIZE": "8"})
    assert data["models"]["echo"]["batching"]["max_batch_size"] == 8
    assert data["models"]["echo"]["batching"]["max_queue_delay_us"] == 500  # schema default


def test_env_never_invents_a_model(spec_file: Path) -> None:
    result = check_spec(spec_file, environ={"INFER_RUNTIME_MODELS__NEW__BACKEND": "identity"})
    assert len(result.issues) == 1
    assert result.issues[0].origin == "env INFER_RUNTIME_MODELS__NEW__BACKEND"
    assert "no model named like 'new'" in result.issues[0].message


def test_unknown_env_variable_is_an_error_with_did_you_mean(spec_file: Path) -> None:
    result = check_spec(spec_file, environ={"INFER_RUNTIME_SERVER__HTTP_PROT": "1"})
    (issue,) = result.issues
    assert issue.format() == "env INFER_RUNTIME_SERVER__HTTP_PROT: error: server: no field 'http_prot' (did you mean 'INFER_RUNTIME_SERVER__HTTP_PORT'?)"


def test_reserved_env_names_are_ignored(spec_file: Path) -> None:
    assert check_spec(spec_file, environ={"INFER_RUNTIME_SPEC": "specs/prod.toml"}).ok


def test_env_can_be_switched_off(spec_file: Path) -> None:
    data = effective(spec_file, environ={"INFER_RUNTIME_SERVER__HTTP_PORT": "1"}, use_env=False)
    assert data["server"]["http_port"] == 8000


def test_precedence_defaults_file_env_set_dict(spec_file: Path) -> None:
    env = {"INFER_RUNTIME_SERVER__HTTP_PORT": "1001", "INFER_RUNTIME_SERVER__GRPC_PORT": "2001", "INFER_RUNTIME_SERVER__HOST": "0.0.0.0"}
    sets = ["server.grpc_port=2002", "server.shutdown_timeout_s=3"]
    result = check_spec(spec_file, environ=env, sets=sets, overrides={"server.shutdown_timeout_s": 4.5})
    server = result.effective["server"]  # type: ignore[index]
    assert server["http_port"] == 1001  # env beats file
    assert server["grpc_port"] == 2002  # --set beats env
    assert server["shutdown_timeout_s"] == 4.5  # API dict beats --set
    assert server["host"] == "0.0.0.0"
    assert server["max_request_bytes"] == 67108864  # default
    sources = result.sources()
    assert sources[("server", "http_port")] == "env INFER_RUNTIME_SERVER__HTTP_PORT"
    assert sources[("server", "grpc_port")] == "--set server.grpc_port"
    assert sources[("server", "shutdown_timeout_s")] == "overrides['server.shutdown_timeout_s']"
    assert sources[("server", "max_request_bytes")] == "default"
    assert sources[("models", "echo", "backend")] == f"{spec_file}:12"


def test_set_uses_exact_keys_with_brackets(spec_file: Path) -> None:
    data = effective(spec_file, sets=['models["resnet-50"].instances=3'], environ={})
    assert data["models"]["resnet-50"]["instances"] == 3


def test_set_errors_are_collected(spec_file: Path) -> None:
    result = check_spec(spec_file, environ={}, sets=["server.http_port", "server.nope=1", "models.ghost.instances=2"])
    assert [i.format() for i in result.issues] == [
        "--set server.http_port: error: --set needs path=value (got 'server.http_port') (for example --set models.scorer.instances=2)",
        "--set server.nope: error: server: no field 'nope'",
        "--set models.ghost.instances: error: models: no entry 'ghost' (overrides never add new entries; declare it in the spec file)",
    ]


def test_api_dict_overrides_and_errors(spec_file: Path) -> None:
    loaded = load_spec(spec_file, overrides={"models.echo.instances": 2, "server.http_port": "8081"}, environ={}, check_files=False)
    assert loaded.spec.models["echo"].instances == 2
    assert loaded.spec.server.http_port == 8081
    with pytest.raises(SpecError) as info:
        load_spec(spec_file, overrides={"models.echo.instances": 0}, environ={})
    assert info.value.issues[0].format() == "overrides['models.echo.instances']: error: models.echo.instances: must be ≥ 1 (got 0)"


def test_two_keys_normalising_alike_are_an_error(write_spec) -> None:  # type: ignore[no-untyped-def]
    path = write_spec('[models.a-b]\nbackend = "identity"\n[models.a_b]\nbackend = "identity"\n')
    result = check_spec(path, environ={"INFER_RUNTIME_MODELS__A_B__INSTANCES": "2"})
    assert "matches several keys: 'a-b', 'a_b'" in result.issues[0].message


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        (("server", "http_port"), "8080", 8080),
        (("server", "http_port"), "+8", 8),
        (("server", "shutdown_timeout_s"), "2.5", 2.5),
        (("server", "shutdown_timeout_s"), "3", 3),
        (("server", "exit_on_error"), "yes", True),
        (("server", "exit_on_error"), "OFF", False),
        (("server", "exit_on_error"), "1", True),
        (("server", "host"), "", ""),
        (("server", "host"), "8080", "8080"),
        (("registry",), '{"path": "x.db"}', {"path": "x.db"}),
        (("registry",), "null", None),
        (("registry",), '{ path = "x.db" }', {"path": "x.db"}),
    ],
)
def test_coercion_is_schema_driven(path: tuple[str, ...], text: str, expected: object) -> None:
    schema = packaged_schema()
    assert coerce(text, schema_at(schema, path), schema) == expected


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("server", "http_port"), "8080.0"),
        (("server", "http_port"), "1e3"),
        (("server", "http_port"), "0x10"),
        (("server", "http_port"), ""),
        (("server", "shutdown_timeout_s"), "inf"),
        (("server", "shutdown_timeout_s"), "nan"),
        (("server", "exit_on_error"), "maybe"),
        (("models",), "[1, 2]"),
        (("registry",), "not json"),
    ],
)
def test_coercion_rejects(path: tuple[str, ...], text: str) -> None:
    schema = packaged_schema()
    with pytest.raises(OverrideError):
        coerce(text, schema_at(schema, path), schema)


def test_normalise() -> None:
    assert normalise("resnet-50") == "RESNET_50"
    assert normalise("a..b") == "A_B"


def test_parse_key_path() -> None:
    assert parse_key_path('models["resnet-50"].inputs[0].shape') == ("models", "resnet-50", "inputs", 0, "shape")
    assert parse_key_path("models.a.batching.max_batch_size") == ("models", "a", "batching", "max_batch_size")
    with pytest.raises(OverrideError):
        parse_key_path("models..a")
