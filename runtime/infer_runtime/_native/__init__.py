"""The only module that touches the cffi extension (``ffi``/``lib``).

It checks the engine's ABI version at import and turns ``ir_error*`` results into
exceptions from :mod:`infer_runtime.errors`.
"""

from __future__ import annotations

from typing import Any

from infer_runtime.errors import BY_CODE, InferRuntimeError

try:
    from infer_runtime._native._ir import ffi, lib
except ImportError as exc:  # pragma: no cover - exercised only on broken installs
    raise ImportError(
        "the infer-runtime engine is not built: run `pip install .` or `python build.py` "
        f"in the source tree ({exc})"
    ) from exc

ABI_MAJOR = 0
"""The ABI major version this Python package was written for."""
ABI_MINOR = 12
"""The ABI minor version this Python package needs (exactly, while the major is 0)."""


def abi_version() -> tuple[int, int]:
    """The (major, minor) ABI version of the loaded engine."""
    packed = int(lib.ir_abi_version())
    return packed >> 16, packed & 0xFFFF


def _check_abi() -> None:
    major, minor = abi_version()
    if major != ABI_MAJOR or minor < ABI_MINOR or (major == 0 and minor != ABI_MINOR):
        raise ImportError(
            f"infer-runtime engine ABI {major}.{minor} does not match the Python package "
            f"(needs {ABI_MAJOR}.{ABI_MINOR}); rebuild with `python build.py`"
        )


_check_abi()

_CODE_NAMES: dict[int, str] = {}


def code_name(code: int) -> str:
    """The stable name of an engine error code ("INVALID_ARGUMENT", ...)."""
    name = _CODE_NAMES.get(code)
    if name is None:
        name = _CODE_NAMES[code] = ffi.string(lib.ir_code_name(code)).decode()
    return name


def take_error(err: Any) -> InferRuntimeError | None:
    """Converts and frees an ``ir_error*``; returns None for NULL (success)."""
    if err == ffi.NULL:
        return None
    try:
        name = code_name(lib.ir_error_code(err))
        message = ffi.string(lib.ir_error_message(err)).decode("utf-8", "replace")
    finally:
        lib.ir_error_free(err)
    exc = BY_CODE.get(name, BY_CODE["UNKNOWN"])(message)
    exc.code = name
    return exc


def check(err: Any) -> None:
    """Raises the mapped exception for a non-NULL ``ir_error*`` (freeing it)."""
    exc = take_error(err)
    if exc is not None:
        raise exc


__all__ = ["ABI_MAJOR", "ABI_MINOR", "abi_version", "check", "code_name", "ffi", "lib", "take_error"]
