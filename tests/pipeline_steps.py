"""Python step models for the pipeline tests (entrypoints like ``pipeline_steps:Affine``).

Each class is deterministic, so a pipeline's answer can be compared bit for bit with the
same models called one by one. Gates let a test hold a step mid-batch (to fill its queue,
expire deadlines behind it and order priorities); a gate is keyed by the model's
``config.name`` so tests running one after another never share one.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

GATES: dict[str, threading.Event] = {}
ENTERED: dict[str, threading.Event] = {}
SEEN: dict[str, list[float]] = {}  # gate name → first value of every row a Gated step ran, in order
_LOCK = threading.Lock()


def gate(name: str) -> threading.Event:
    """The event a Gated step named ``name`` waits on (set = open)."""
    with _LOCK:
        return GATES.setdefault(name, threading.Event())


def entered(name: str) -> threading.Event:
    """Set when a Gated step named ``name`` has started a batch."""
    with _LOCK:
        return ENTERED.setdefault(name, threading.Event())


def reset(name: str) -> None:
    """Forgets the gate, entry flag and record of ``name`` (a fresh, closed gate)."""
    with _LOCK:
        GATES.pop(name, None)
        ENTERED.pop(name, None)
        SEEN.pop(name, None)


def open_all() -> None:
    """Opens every gate (a test ending early must not leave a step waiting out its timeout)."""
    with _LOCK:
        for event in GATES.values():
            event.set()


def affine(inputs: list[np.ndarray], scale: float, shift: float) -> np.ndarray:
    """The reference of :class:`Affine`: ``scale * inputs[0] + inputs[1] + ... + shift``."""
    out = inputs[0] * np.float32(scale)
    for extra in inputs[1:]:
        out = out + extra
    return (out + np.float32(shift)).astype(np.float32)


class Affine:
    """``output = scale * in0 + in1 + ... + shift`` over float32 tensors of one shape.

    Config: ``inputs`` (names, in order), ``output`` (name), ``scale``, ``shift``."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.inputs: list[str] = list(config["inputs"])
        self.output: str = config["output"]
        self.scale = float(config.get("scale", 1.0))
        self.shift = float(config.get("shift", 0.0))

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {self.output: affine([inputs[n] for n in self.inputs], self.scale, self.shift)}


class Picky:
    """Identity ``x → y`` that raises for a batch holding a row whose first value is the
    marker (config ``marker``, default -999): the whole batch fails, as a real model would."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.marker = float(config.get("marker", -999.0))

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["x"]
        if (x.reshape(x.shape[0], -1)[:, 0] == self.marker).any():
            raise ValueError(f"marked input {self.marker:g} refused")
        return {"y": x.copy()}


class Gated:
    """Identity ``x → y`` that waits for its gate (config ``name``) before returning, and
    records the first value of each row it ran (``SEEN[name]``), in order. An open gate
    costs nothing, so a test opens it to let everything through."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.name: str = config["name"]
        self.timeout_s = float(config.get("timeout_s", 30.0))

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        entered(self.name).set()
        gate(self.name).wait(self.timeout_s)
        x = inputs["x"]
        with _LOCK:
            SEEN.setdefault(self.name, []).extend(float(v) for v in x.reshape(x.shape[0], -1)[:, 0])
        return {"y": x.copy()}


class Slow:
    """Identity ``x → y`` that takes ``seconds`` per batch (config), like a heavy model."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.seconds = float(config.get("seconds", 0.1))

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        time.sleep(self.seconds)
        return {"y": inputs["x"].copy()}


class Versioned:
    """``y = x + version``: a step that tells which version of it ran. The version is read
    when the instance is built, from config ``version_file`` (so reloading the model from
    the same spec picks up a new one) or config ``version``. With config ``gate``, waits
    for that gate first (to hold requests inside this step)."""

    def __init__(self, config: dict[str, Any]) -> None:
        if "version_file" in config:
            with open(config["version_file"], encoding="utf-8") as f:
                self.version = float(f.read().strip())
        else:
            self.version = float(config.get("version", 1.0))
        self.gate: str | None = config.get("gate")

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.gate is not None:
            entered(self.gate).set()
            gate(self.gate).wait(30)
        return {"y": (inputs["x"] + np.float32(self.version)).astype(np.float32)}
