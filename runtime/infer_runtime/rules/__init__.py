"""The rules language (DESIGN §10): files, checks, and the typed rule set the engine runs.

Importing this package is cheap (no pydantic, no engine) so ``infer-runtime validate`` stays
fast; ``load_rules`` imports the typed models when it needs them. ``RuleSet.engine_config``
is what the ``rules`` backend passes to the C++ engine.
"""

from __future__ import annotations

from .errors import RulesError
from .loader import (
    RulesCheck,
    check_rules,
    check_rules_data,
    check_rules_for_model,
    is_rules_document,
    load_rules,
    looks_like_rules,
    rules_from_data,
)
from .ruleset import RuleSet

__all__ = ["RuleSet", "RulesCheck", "RulesError", "check_rules", "check_rules_data", "check_rules_for_model", "is_rules_document",
           "load_rules", "looks_like_rules", "rules_from_data"]
