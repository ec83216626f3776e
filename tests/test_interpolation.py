"""${VAR} interpolation inside spec strings."""

from __future__ import annotations

import pytest

from infer_runtime.spec import check_spec
from infer_runtime.spec.interpolate import InterpolationError, interpolate_string


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("pre-${A}-post", {"A": "x"}, "pre-x-post"),
        ("${A:-dflt}", {}, "dflt"),
        ("${A:-dflt}", {"A": ""}, "dflt"),
        ("${A:-dflt}", {"A": "set"}, "set"),
        ("${A}", {"A": ""}, ""),
        ("$$", {}, "$"),
        ("$${A}", {"A": "x"}, "${A}"),
        ("cost $5", {}, "cost $5"),
        ("${A:?needed}", {"A": "ok"}, "ok"),
        ("${A}${B}", {"A": "1", "B": "2"}, "12"),
    ],
)
def test_interpolate_string(text: str, env: dict[str, str], expected: str) -> None:
    assert interpolate_string(text, env) == expected


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("${A}", {}, "environment variable A is not set"),
        ("${A:?tell me A}", {}, "${A}: tell me A"),
        ("${A:?tell me A}", {"A": ""}, "${A}: tell me A"),
        ("${1A}", {}, "malformed '${'"),
        ("${A", {}, "malformed '${'"),
    ],
)
def test_interpolation_errors(text: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(InterpolationError, match=message.replace("$", r"\$").replace("{", r"\{")):
        interpolate_string(text, env)


def test_interpolated_values_take_the_schema_type(write_spec) -> None:  # type: ignore[no-untyped-def]
    path = write_spec('[server]\nhttp_port = "${PORT:-8000}"\nexit_on_error = "${STRICT:-true}"\n[models.a]\nbackend = "identity"\n')
    result = check_spec(path, environ={"PORT": "9001"})
    assert result.ok
    assert result.effective["server"]["http_port"] == 9001  # type: ignore[index]
    assert result.effective["server"]["exit_on_error"] is True  # type: ignore[index]


def test_keys_are_never_interpolated(write_spec) -> None:  # type: ignore[no-untyped-def]
    path = write_spec('[models.a]\nbackend = "python"\npython = { entrypoint = "m:C", config = { "${X}" = "${Y:-y}" } }\n')
    result = check_spec(path, environ={"X": "nope"})
    assert result.ok
    assert result.effective["models"]["a"]["python"]["config"] == {"${X}": "y"}  # type: ignore[index]


def test_all_interpolation_errors_are_collected(write_spec) -> None:  # type: ignore[no-untyped-def]
    path = write_spec('[runtime]\nname = "${A}"\n[registry]\npath = "${B}"\n[models.a]\nbackend = "identity"\n')
    result = check_spec(path, environ={})
    assert [(i.line, i.message) for i in result.issues] == [
        (2, "environment variable A is not set"),
        (4, "environment variable B is not set"),
    ]
