"""The spec language: loading, interpolation, overrides, validation (pure Python).

Importing this package is cheap (no pydantic); :func:`load_spec` imports the typed models
when it needs them.
"""

from __future__ import annotations

from .issues import SpecIssue as SpecIssue
from .issues import format_path as format_path
from .loader import CheckResult as CheckResult
from .loader import LoadedSpec as LoadedSpec
from .loader import check_spec as check_spec
from .loader import load_spec as load_spec

__all__ = ["CheckResult", "LoadedSpec", "SpecIssue", "check_spec", "format_path", "load_spec"]
