"""The ``python`` backend: ``entrypoint = "package.module:Class"``; each instance is
``Class(config)``, called with a dict of batched numpy arrays and returning one."""

from __future__ import annotations

import importlib
from typing import Any

from infer_runtime.engine import ModelSignature
from infer_runtime.errors import ModelLoadError

from .base import Arrays, BackendInstance, LoadedBackend


class _Callable:
    def __init__(self, obj: Any) -> None:
        self._obj = obj

    def run(self, inputs: Arrays) -> Arrays:
        return self._obj(inputs)  # type: ignore[no-any-return]

    def close(self) -> None:
        close = getattr(self._obj, "close", None)
        if callable(close):
            close()


def resolve_entrypoint(model: str, entrypoint: str) -> Any:
    """Imports ``package.module:Attr`` (``Attr`` may be dotted)."""
    module_name, _, attr = entrypoint.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except BaseException as exc:
        raise ModelLoadError(f"model '{model}': cannot import {module_name!r} for entrypoint {entrypoint!r}: {type(exc).__name__}: {exc}") from exc
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ModelLoadError(f"model '{model}': {module_name!r} has no attribute {attr!r}") from None
    return target


def load(model: str, options: Any, declared: ModelSignature, instances: int) -> LoadedBackend:
    """Constructs ``instances`` objects from the entrypoint with the model's config."""
    cls = resolve_entrypoint(model, options.entrypoint)
    objects: list[BackendInstance] = []
    for _ in range(instances):
        try:
            obj = cls(dict(options.config))
        except BaseException as exc:
            raise ModelLoadError(f"model '{model}': {options.entrypoint}({options.config!r}) failed: {type(exc).__name__}: {exc}") from exc
        if not callable(obj):
            raise ModelLoadError(f"model '{model}': {options.entrypoint} instances are not callable")
        objects.append(_Callable(obj))
    return LoadedBackend(signature=declared, details={"entrypoint": options.entrypoint}, instances=objects)
