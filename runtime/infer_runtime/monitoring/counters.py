"""Model counters as users should see them: the engine's, minus what warmup did.

The engine counts every request, warmup included (``Runtime.start`` sends one per model
that asks for warmup). Until ``Runtime.stats`` excludes warmup itself, a :class:`StatsView`
takes a baseline once the runtime has started and subtracts it from every counter and
histogram bucket (gauges such as queue depth are passed through). When ``Runtime.stats``
already excludes warmup, the baseline is all zeros and the subtraction changes nothing.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from infer_runtime.engine import ModelStats
from infer_runtime.errors import InferRuntimeError

if TYPE_CHECKING:
    from infer_runtime.runtime import Runtime

_GAUGES = frozenset({"queue_depth", "in_flight"})
_FIELDS = [f.name for f in dataclasses.fields(ModelStats)]


def subtract(now: ModelStats, base: ModelStats) -> ModelStats:
    """``now`` minus ``base`` for counters and histogram buckets; gauges from ``now``."""
    values: dict[str, Any] = {}
    for name in _FIELDS:
        a, b = getattr(now, name), getattr(base, name)
        if name in _GAUGES:
            values[name] = a
        elif isinstance(a, tuple):
            values[name] = tuple(max(0, x - y) for x, y in zip(a, b))
        else:
            values[name] = max(0, a - b)
    return ModelStats(**values)


class StatsView:
    """Per-model statistics of a runtime, warmup excluded (see the module docstring)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._base: dict[str, tuple[str, ModelStats]] = {}  # model → (version, its warmup counts)

    def rebase(self) -> None:
        """Takes the baseline: call once the runtime has started (warmup done), before
        serving traffic."""
        self._base = {}
        for model in self.runtime.model_names:
            try:
                self._base[model] = (self.runtime.version(model), self.runtime.stats(model))
            except InferRuntimeError:  # stopped meanwhile: nothing to subtract from
                return

    def stats(self, model: str) -> ModelStats:
        """The counters of a serving model since the baseline.

        Raises:
            ModelNotFoundError, UnavailableError: as ``Runtime.stats``.
        """
        now = self.runtime.stats(model)
        base = self._base.get(model)
        if base is None or base[0] != self.runtime.version(model):  # a swapped-in version counts from zero
            return now
        return subtract(now, base[1])

    def all(self) -> dict[str, ModelStats]:
        """Counters of every serving model (empty when the runtime is not running)."""
        out = {}
        for model in self.runtime.model_names:
            try:
                out[model] = self.stats(model)
            except InferRuntimeError:  # the engine went away between listing and reading
                return {}
        return out
