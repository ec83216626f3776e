"""Python backends used by the tests (entrypoints like "ir_test_backends:Affine").

Gates let a test hold a backend mid-batch to fill queues, expire deadlines and observe
priorities deterministically.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

GATES: dict[str, threading.Event] = {}
ENTERED: dict[str, threading.Event] = {}
CALLS: dict[str, list[Any]] = {}


def gate(name: str) -> threading.Event:
    """The event a Gated backend named ``name`` waits on (set = open)."""
    return GATES.setdefault(name, threading.Event())


def entered(name: str) -> threading.Event:
    """Set when a Gated backend named ``name`` has started a batch."""
    return ENTERED.setdefault(name, threading.Event())


class Affine:
    """y = x * scale + shift, elementwise; records batch sizes."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.scale = config.get("scale", 2.0)
        self.shift = config.get("shift", 1.0)
        self.name = config.get("name", "affine")
        CALLS.setdefault(self.name, [])

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["x"]
        CALLS[self.name].append(x.shape[0] if x.ndim else 1)
        return {"y": (x * self.scale + self.shift).astype(x.dtype)}


class SlowFirstBatch:
    """Identity whose first batch takes ``first_ms`` (a backend's slow first run at a new
    shape); records each batch's rows."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.name = config["name"]
        self.first_s = config["first_ms"] / 1000
        CALLS[self.name] = []

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["x"]
        if not CALLS[self.name]:
            time.sleep(self.first_s)
        CALLS[self.name].append(x.shape[0])
        return {"x": x.copy()}


class Gated:
    """Identity that waits for its gate before returning; records the first value of each
    request row it saw, in order."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.name = config["name"]
        CALLS.setdefault(self.name, [])

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        entered(self.name).set()
        gate(self.name).wait(30)
        x = inputs["x"]
        CALLS[self.name].extend(float(v) for v in x.reshape(x.shape[0], -1)[:, 0])
        return {"x": x.copy()}


class Failing:
    """Raises for rows whose first value is negative."""

    def __init__(self, config: dict[str, Any]) -> None:
        pass

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["x"]
        if (x.reshape(x.shape[0], -1)[:, 0] < 0).any():
            raise ValueError("negative input is not allowed")
        return {"x": x.copy()}


class BadOutput:
    """Returns something that is not a dict of arrays, or arrays of the wrong row count."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.mode = config.get("mode", "list")

    def __call__(self, inputs: dict[str, np.ndarray]) -> Any:
        if self.mode == "list":
            return [inputs["x"]]
        return {"x": np.zeros((inputs["x"].shape[0] + 1, 1), np.float32)}


class BrokenInit:
    def __init__(self, config: dict[str, Any]) -> None:
        raise RuntimeError("cannot initialise")


class FileGated:
    """Identity that, like Gated, holds each batch until its gate opens, but the gate is a
    file (config ``gate``): usable from a test driving a separate server process. Touches
    ``<gate>.entered`` when a batch starts."""

    def __init__(self, config: dict[str, Any]) -> None:
        from pathlib import Path

        self.gate = Path(config["gate"])

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import time

        self.gate.with_suffix(".entered").touch()
        deadline = time.monotonic() + 60
        while not self.gate.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return {"x": inputs["x"].copy()}


class Upper:
    """BYTES in, BYTES out: upper-cases each element; also returns its length as INT32."""

    def __init__(self, config: dict[str, Any]) -> None:
        pass

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        s = inputs["s"]
        upper = np.vectorize(lambda v: v.upper(), otypes=[object])(s) if s.size else s.copy()
        lengths = np.vectorize(len, otypes=[np.int32])(s) if s.size else np.zeros(s.shape, np.int32)
        return {"upper": upper, "length": lengths}


class Versioned:
    """y = the version it was loaded as, one row per input row: reads the version from the
    file named in its config when constructed, so a reload picks up a new one."""

    def __init__(self, config: dict[str, Any]) -> None:
        with open(config["version_file"], encoding="utf-8") as fh:
            self.version = float(fh.read())

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["x"]
        return {"y": np.full((x.shape[0], 2), self.version, np.float32)}


class Exits:
    """Raises SystemExit (a BaseException) for rows whose first value is negative, or in its
    constructor when config ``at_init`` is true."""

    def __init__(self, config: dict[str, Any]) -> None:
        if config.get("at_init"):
            raise SystemExit(3)

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["x"]
        if (x.reshape(x.shape[0], -1)[:, 0] < 0).any():
            raise SystemExit(4)
        return {"x": x.copy()}


class Returns:
    """Returns a fixed wrong answer chosen by config ``mode``: a float64 output, a renamed or an
    extra output, no outputs, or a wrong per-row shape."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.mode = config["mode"]

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["x"]
        n = x.shape[0]
        return {
            "float64": {"y": np.zeros((n, 2), np.float64)},
            "renamed": {"z": np.zeros((n, 2), np.float32)},
            "extra": {"y": np.zeros((n, 2), np.float32), "w": np.zeros((n, 2), np.float32)},
            "empty": {},
            "shape": {"y": np.zeros((n, 3), np.float32)},
            "good": {"y": np.zeros((n, 2), np.float32)},
        }[self.mode]


class SlowInit:
    """A constructor that does not return until its gate opens (config ``name``), or for
    ``seconds`` when no test holds the gate (a separate server process)."""

    def __init__(self, config: dict[str, Any]) -> None:
        gate(config["name"]).wait(config.get("seconds", 30))

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in inputs.items()}


class ToText:
    """Float rows in, BYTES out: each row's first value as text, then a byte that is not
    UTF-8 when the value is negative (the JSON answer must repair it as Python does)."""

    def __init__(self, config: dict[str, Any]) -> None:
        pass

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["x"]
        out = np.empty((x.shape[0], 1), dtype=object)
        for i, v in enumerate(x.reshape(x.shape[0], -1)[:, 0]):
            out[i, 0] = f"{v:g}".encode() + (b"\xff\xe2\x82" if v < 0 else "é".encode())
        return {"text": out}
