"""The ``enrich`` step of specs/prod.toml's ``decide`` pipeline, a ``python`` backend model.

Input ``raw``: BYTES [-1], one JSON transaction per row (:mod:`fraud_features.transaction`).
Outputs ``features``: float32 [-1, 64], the scorer's input (:mod:`fraud_features.features`),
and one tensor per name in ``forward``: raw fields handed on to later steps (the policy binds
``amount`` and ``country``).

Config (``[models.enrich.python] config = {...}`` in the spec)::

    window_s = 300                     velocity window, seconds (> 0)
    forward  = ["amount", "country"]   raw fields output as tensors of their own (see FORWARDABLE)

A row that is not a valid transaction fails the whole call with an InvalidInputError (a
ValueError) naming the row and the field; the batch it was in fails with it, so prod.toml gives
this step no [batching] (one request per call): a malformed request then fails alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from infer_runtime.errors import InvalidInputError

from .features import N_FEATURES, features
from .transaction import Transaction, TransactionError

FORWARDABLE: dict[str, str] = {
    "amount": "float64",        # as sent
    "country": "bytes",         # upper-cased ISO code
    "home_country": "bytes",    # absent = country
    "channel": "bytes",         # absent = "unknown"
    "mcc": "int32",             # absent = -1
}
"""Raw fields ``forward`` may name, with the dtype of the [-1] tensor each becomes."""

_CONFIG_KEYS = {"window_s", "forward"}


class Enricher:
    """Turns raw JSON transactions into scorer features; constructed with the spec's config."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        config = dict(config or {})
        unknown = set(config) - _CONFIG_KEYS
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(_CONFIG_KEYS)}")
        window_s = config.get("window_s", 300)
        if isinstance(window_s, bool) or not isinstance(window_s, (int, float)) or not window_s > 0:
            raise ValueError(f"window_s: expected a number of seconds > 0, got {window_s!r}")
        forward = config.get("forward", [])
        if not isinstance(forward, list) or not all(isinstance(f, str) for f in forward):
            raise ValueError(f"forward: expected a list of field names, got {forward!r}")
        bad = [f for f in forward if f not in FORWARDABLE]
        if bad:
            raise ValueError(f"forward: cannot forward {bad}; forwardable: {sorted(FORWARDABLE)}")
        if len(set(forward)) != len(forward):
            raise ValueError(f"forward: a field is listed twice in {forward!r}")
        self.window_s = float(window_s)
        self.forward: tuple[str, ...] = tuple(forward)

    @property
    def outputs(self) -> list[dict[str, Any]]:
        """The outputs this configuration produces, as a spec declares them."""
        out: list[dict[str, Any]] = [{"name": "features", "dtype": "float32", "shape": [-1, N_FEATURES]}]
        return out + [{"name": f, "dtype": FORWARDABLE[f], "shape": [-1]} for f in self.forward]

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One batch: ``{"raw": BYTES [n]}`` → ``{"features": float32 [n, 64], <forwarded>...}``."""
        raw = inputs.get("raw")
        if raw is None:
            raise InvalidInputError(f"expected an input named 'raw', got {sorted(inputs)}")
        if raw.ndim != 1:
            raise InvalidInputError(f"raw: expected shape [n] (one JSON transaction per row), got {list(raw.shape)}")
        transactions = []
        for i, row in enumerate(raw):
            if not isinstance(row, (bytes, str)):
                raise InvalidInputError(f"raw row {i}: expected BYTES, got {type(row).__name__}")
            try:
                transactions.append(Transaction.from_json(row))
            except TransactionError as exc:
                raise InvalidInputError(f"raw row {i}: {exc}") from None
        out = {"features": self.transform(transactions)}
        out.update({name: _forwarded(name, transactions) for name in self.forward})
        return out

    def transform(self, transactions: Iterable[Transaction]) -> np.ndarray:
        """The features of parsed transactions, float32 [n, 64] (also what training uses)."""
        rows = [features(tx, self.window_s) for tx in transactions]
        return np.array(rows, dtype=np.float32).reshape(len(rows), N_FEATURES)


def _forwarded(name: str, transactions: list[Transaction]) -> np.ndarray:
    if name == "amount":
        return np.array([t.amount for t in transactions], dtype=np.float64)
    if name == "mcc":
        return np.array([-1 if t.mcc is None else t.mcc for t in transactions], dtype=np.int32)
    if name == "country":
        values = [t.country for t in transactions]
    elif name == "home_country":
        values = [t.home_country or t.country for t in transactions]
    else:
        values = [t.channel or "unknown" for t in transactions]
    return np.array([v.encode() for v in values], dtype=object)
