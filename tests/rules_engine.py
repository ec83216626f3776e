"""Runs a rule set on the C++ rules engine through ``SyncRuntime`` (a spec with one
``backend = "rules"`` model), for the agreement tests and the benchmark.

:func:`unavailable` says why the engine cannot run here (the tests then fail with that
reason). The row trace (``_facts``: the final working memory per row) comes from
``trace = true`` in the model's ``rules`` table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import tomli_w

from infer_runtime.rules.ruleset import RuleSet


@dataclass(slots=True)
class EngineRow:
    """One row as the engine answered it."""

    outputs: dict[str, Any]
    fired: list[str]
    facts: list[list[Any]] | None  # None without trace


def _spec(rules_file: Path, bindings: Mapping[str, str], outputs: Mapping[str, str], defaults: Mapping[str, Any],
          max_iterations: int, trace: bool, batch: int) -> dict[str, Any]:
    options: dict[str, Any] = {"max_iterations": max_iterations, "bindings": dict(bindings), "outputs": dict(outputs),
                               "defaults": dict(defaults), "explain": True}
    if trace:
        options["trace"] = True
    model: dict[str, Any] = {"backend": "rules", "path": rules_file.name, "warmup": False, "rules": options}
    if batch > 1:
        model["batching"] = {"max_batch_size": batch, "max_queue_delay_us": 0}
    return {"version": 1, "server": {"exit_on_error": True}, "models": {"policy": model}}


class EngineModel:
    """A started runtime serving one rule set as model ``policy``."""

    def __init__(self, directory: Path, ruleset: RuleSet, *, bindings: Mapping[str, str], outputs: Mapping[str, str],
                 defaults: Mapping[str, Any] | None = None, max_iterations: int = 1000, batch: int = 1) -> None:
        from infer_runtime import SyncRuntime
        from infer_runtime.errors import SpecError

        directory.mkdir(parents=True, exist_ok=True)
        rules_file = directory / "policy.rules.toml"
        rules_file.write_text(tomli_w.dumps(ruleset.to_data()), encoding="utf-8")
        spec_file = directory / "spec.toml"
        self.traced = True
        spec_file.write_text(tomli_w.dumps(_spec(rules_file, bindings, outputs, defaults or {}, max_iterations, True, batch)), encoding="utf-8")
        try:
            self.runtime = SyncRuntime.from_spec(spec_file, environ={})
        except SpecError as exc:
            if "trace" not in str(exc):
                raise
            self.traced = False  # no trace hook yet: compare outputs and _fired only
            spec_file.write_text(tomli_w.dumps(_spec(rules_file, bindings, outputs, defaults or {}, max_iterations, False, batch)), encoding="utf-8")
            self.runtime = SyncRuntime.from_spec(spec_file, environ={})
        self.runtime.start()
        failed = self.runtime.failed_models
        if failed:
            self.runtime.stop(0)
            raise RuntimeError(f"rules model failed to load: {failed}")
        self.outputs = list(outputs)

    def infer(self, inputs: Mapping[str, Any]) -> list[EngineRow]:
        """One request of N rows → N rows (raises what the runtime raises for a failed row)."""
        result = self.runtime.infer("policy", inputs)
        rows = len(result["_fired"])
        out = []
        for r in range(rows):
            fired_text = _text(result["_fired"][r])
            facts = json.loads(_text(result["_facts"][r])) if "_facts" in result else None
            out.append(EngineRow({name: _scalar(result[name][r]) for name in self.outputs}, fired_text.split(",") if fired_text else [], facts))
        return out

    def close(self) -> None:
        self.runtime.stop(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _scalar(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value.item() if hasattr(value, "item") else value


_REASON: list[str | None] = []


def unavailable(directory: Path) -> str | None:
    """Why the C++ rules engine cannot run here (None when it can). Cached per process."""
    if _REASON:
        return _REASON[0]
    from infer_runtime.rules import rules_from_data

    probe = rules_from_data({"kind": "rules", "version": 1, "rules": [{"name": "r", "when": [["a", "?x"]], "then": [{"assert": ["out", "?x"]}]}]})
    reason: str | None = None
    try:
        import numpy as np

        with EngineModel(directory, probe, bindings={"a": "a"}, outputs={"out": "out"}, defaults={"out": -1.0}) as model:
            rows = model.infer({"a": np.array([2.0], np.float64)})
            if rows[0].outputs["out"] != 2.0:
                reason = f"the rules backend answered {rows[0]} to a probe"
    except Exception as exc:  # noqa: BLE001  (any failure means: not merged or not built here)
        reason = f"backend = \"rules\" does not run here yet ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    _REASON.append(reason)
    return reason
