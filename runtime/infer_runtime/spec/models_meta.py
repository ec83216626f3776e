"""Facts about the spec language needed without importing pydantic (the fast path)."""

from __future__ import annotations

ARTIFACT_BACKENDS: frozenset[str] = frozenset({"onnxruntime", "tensorrt", "rules"})
"""Backends that load one artifact, named by exactly one of ``path`` or ``registry``."""

OPTION_TABLES: tuple[str, ...] = ("onnxruntime", "tensorrt", "rules", "python", "plugin")
"""Per-backend option tables of a model; each is allowed only for its own backend."""
