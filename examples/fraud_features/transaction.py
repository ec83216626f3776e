"""The raw transaction the ``enrich`` step reads: one JSON object per row of a BYTES tensor.

Fields (anything else in the object is ignored, so clients may send more)::

    amount            number ≥ 0, required   in the card's currency
    timestamp         number, required       Unix seconds, UTC
    country           string, required       ISO 3166-1 alpha-2 of the merchant ("FR")
    home_country      string                 the card's country; absent = same as country
    mcc               integer 0..9999        merchant category code (ISO 18245); absent = unknown
    channel           string                 "pos", "ecom", "atm" or "contactless"; absent = unknown
    account_age_days  number ≥ 0             age of the card's account; absent = unknown
    history           [[timestamp, amount], ...]   the card's earlier transactions, any order
                                             (entries after ``timestamp`` are ignored)

``history`` is what a feature store would hold for the card; the caller looks it up and sends
it with the transaction, so the step stays stateless and its answer depends on the row alone.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CHANNELS = ("pos", "ecom", "atm", "contactless")


class TransactionError(ValueError):
    """A raw row that is not a valid transaction; the message names the field."""


@dataclass(frozen=True, eq=False)  # eq=False: an array field has no single truth value
class Transaction:
    """One parsed, validated raw transaction (see the module docstring for the fields)."""

    amount: float
    timestamp: float
    country: str
    home_country: str | None = None
    mcc: int | None = None
    channel: str | None = None
    account_age_days: float | None = None
    history: np.ndarray = field(default_factory=lambda: np.empty((0, 2)))  # rows of (timestamp, amount)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Transaction:
        """Parses one row; raises TransactionError naming what is wrong."""
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise TransactionError(f"not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise TransactionError(f"expected a JSON object, got {type(obj).__name__}")
        return cls.from_dict(obj)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Transaction:
        """Validates a decoded JSON object."""
        amount = _number(obj, "amount", required=True, minimum=0.0)
        timestamp = _number(obj, "timestamp", required=True)
        assert amount is not None and timestamp is not None
        mcc = obj.get("mcc")
        if mcc is not None and (isinstance(mcc, bool) or not isinstance(mcc, int) or not 0 <= mcc <= 9999):
            raise TransactionError(f"mcc: expected an integer 0..9999, got {mcc!r}")
        channel = obj.get("channel")
        if channel is not None and channel not in CHANNELS:
            raise TransactionError(f"channel: expected one of {', '.join(CHANNELS)}, got {channel!r}")
        return cls(
            amount=amount,
            timestamp=timestamp,
            country=_country(obj, "country", required=True) or "",
            home_country=_country(obj, "home_country", required=False),
            mcc=mcc,
            channel=channel,
            account_age_days=_number(obj, "account_age_days", required=False, minimum=0.0),
            history=_history(obj.get("history")),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object this transaction parses from (absent fields left out)."""
        out: dict[str, Any] = {"amount": self.amount, "timestamp": self.timestamp, "country": self.country}
        optional = {"home_country": self.home_country, "mcc": self.mcc, "channel": self.channel, "account_age_days": self.account_age_days}
        out.update({k: v for k, v in optional.items() if v is not None})
        if len(self.history):
            out["history"] = self.history.tolist()
        return out

    def to_json(self) -> bytes:
        """One row of the ``raw`` tensor."""
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()


def _number(obj: dict[str, Any], key: str, *, required: bool, minimum: float | None = None) -> float | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise TransactionError(f"{key}: required")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TransactionError(f"{key}: expected a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise TransactionError(f"{key}: must be ≥ {minimum:g}, got {value!r}")
    return float(value)


def _country(obj: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise TransactionError(f"{key}: required")
        return None
    if not isinstance(value, str) or len(value) != 2 or not value.isascii() or not value.isalpha():
        raise TransactionError(f"{key}: expected an ISO 3166-1 alpha-2 code such as 'FR', got {value!r}")
    return value.upper()


def _history(value: Any) -> np.ndarray:
    if value is None:
        return np.empty((0, 2))
    if not isinstance(value, list):
        raise TransactionError(f"history: expected a list of [timestamp, amount] pairs, got {type(value).__name__}")
    for i, item in enumerate(value):
        if (not isinstance(item, list) or len(item) != 2
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in item)):
            raise TransactionError(f"history[{i}]: expected [timestamp, amount] (two finite numbers), got {item!r}")
        if item[1] < 0:
            raise TransactionError(f"history[{i}]: amount must be ≥ 0, got {item[1]!r}")
    return np.array(value, dtype=np.float64).reshape(-1, 2)
