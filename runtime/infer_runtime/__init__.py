"""infer-runtime: an embedded model-serving runtime with a C++ core.

The spec layer (:mod:`infer_runtime.spec`) is pure Python; ``Runtime`` and
``SyncRuntime`` (which load the engine and numpy) are imported on first use, so that
``infer-runtime validate`` stays fast.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from infer_runtime import errors as errors

if TYPE_CHECKING:
    from infer_runtime.runtime import Runtime, SyncRuntime

__all__ = ["Runtime", "SyncRuntime", "__version__", "errors", "get_include"]


def get_include() -> str:
    """The folder holding ``infer_runtime_backend.h``, the plugin contract header, in this
    installation: put it on a plugin's include path (``-I$(python -c 'import infer_runtime;
    print(infer_runtime.get_include())')``), as ``numpy.get_include()`` is used."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "include")


def __getattr__(name: str) -> Any:
    if name in ("Runtime", "SyncRuntime"):
        from infer_runtime import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'infer_runtime' has no attribute {name!r}")
