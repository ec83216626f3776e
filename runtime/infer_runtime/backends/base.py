"""What a Python-hosted backend is: one object per instance, called with a batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from infer_runtime.engine import ModelSignature, NativeBackend

Arrays = dict[str, np.ndarray]


class BackendInstance(Protocol):
    """One instance of a Python-hosted backend. ``run`` is called from that instance's own
    thread with the batch's inputs, which are read-only views valid only during the call."""

    def run(self, inputs: Arrays) -> Arrays:
        """Runs one batch; returns outputs whose leading dimension is the batch's rows."""
        ...

    def close(self) -> None:
        """Releases what the instance holds."""
        ...


@dataclass
class LoadedBackend:
    """A backend loaded for one model: its signature, what to log about it, and either its
    Python-hosted instances or the native backend the engine's threads will run."""

    signature: ModelSignature
    details: dict[str, object] = field(default_factory=dict)  # logged at startup (providers chosen, ...)
    instances: list[BackendInstance] = field(default_factory=list)
    native: NativeBackend | None = None
