"""infer-runtime: an embedded model-serving runtime with a C++ core.

The spec layer (:mod:`infer_runtime.spec`) is pure Python; the engine is imported lazily
so that ``infer-runtime validate`` stays fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

from infer_runtime import errors as errors

__all__ = ["__version__", "errors"]
