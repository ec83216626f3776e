"""What a Python-hosted backend is: one object per instance, called with a batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from infer_runtime.engine import ModelSignature, NativeBackend, TensorSignature
from infer_runtime.errors import ModelLoadError

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


def check_declared(model: str, kind: str, found: tuple[TensorSignature, ...], declared: tuple[TensorSignature, ...] | None, source: str = "the backend") -> tuple[TensorSignature, ...]:
    """The spec's declared tensors must match the backend's; the backend's -1 may be narrowed.
    Returns the served tensors, in the backend's order."""
    if declared is None:
        return found
    by_name = {t.name: t for t in found}
    if {t.name for t in declared} != set(by_name):
        raise ModelLoadError(f"model '{model}': declared {kind} {sorted(t.name for t in declared)} but {source} has {sorted(by_name)}")
    out = []
    for want in declared:
        got = by_name[want.name]
        if want.dtype != got.dtype:
            raise ModelLoadError(f"model '{model}': {kind[:-1]} '{want.name}' is declared {want.dtype.name} but {source} says {got.dtype.name}")
        if len(want.shape) != len(got.shape) or any(g != -1 and w != g for w, g in zip(want.shape, got.shape)):
            raise ModelLoadError(f"model '{model}': {kind[:-1]} '{want.name}' is declared {list(want.shape)} but {source} says {list(got.shape)}")
        out.append(want)
    order = [t.name for t in found]
    return tuple(sorted(out, key=lambda t: order.index(t.name)))


def served_signature(model: str, declared: ModelSignature, found_in: tuple[TensorSignature, ...] | None, found_out: tuple[TensorSignature, ...] | None,
                     source: str = "the backend") -> ModelSignature:
    """The served signature: the backend's (None: it takes anything), narrowed by what the
    spec declares; with batching every input needs a variable leading dimension."""
    inputs = declared.inputs if found_in is None else check_declared(model, "inputs", found_in, declared.inputs, source)
    outputs = declared.outputs if found_out is None else check_declared(model, "outputs", found_out, declared.outputs, source)
    if declared.batching:
        for t in inputs or ():
            if not t.shape or t.shape[0] != -1:
                raise ModelLoadError(f"model '{model}': batching needs a variable leading dimension, but input '{t.name}' is {list(t.shape)}")
    return ModelSignature(inputs, outputs, declared.max_batch_size)
