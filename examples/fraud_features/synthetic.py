"""Labelled synthetic card transactions to train and try the fraud scorer on.

Each transaction is legitimate or fraudulent (``fraud_rate``). Every trait of a fraudulent one
(amount, hour, country, channel, merchant, account age, a burst of recent transactions) is
drawn from the fraud pattern with probability ``tell``, else from the legitimate one; legitimate
transactions show each fraud trait with probability ``noise``. So the classes overlap, no
single trait separates them, and a scorer trained on the features has a realistic, imperfect
ROC AUC. Deterministic for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from .transaction import Transaction

T = TypeVar("T")

START = 1767225600.0  # 2026-01-01T00:00:00Z
_DAY = 86400.0

_HOMES = ("US", "GB", "FR", "DE", "ES", "IT", "NL", "CA", "AU", "BR", "MX", "IN", "JP", "SE", "CH", "PL")
_HOME_WEIGHTS = (0.30, 0.12, 0.10, 0.10, 0.05, 0.05, 0.03, 0.05, 0.03, 0.04, 0.03, 0.04, 0.02, 0.02, 0.01, 0.01)
_TRAVEL = ("US", "GB", "FR", "DE", "ES", "IT", "NL", "BE", "CA", "AU", "MX", "JP", "SG", "AE", "PT", "GR")
_RISKY = ("NG", "RU", "VE", "PK", "UA", "RO", "ID")
_LEGIT_MCC = (5411, 5411, 5812, 5814, 5541, 5311, 5651, 5912, 4111, 4511, 7011, 5942, 5999, 7299, 8011)
_FRAUD_MCC = (5732, 5944, 5816, 5818, 6051, 4829, 7995, 5045)
_LEGIT_CHANNELS = (("pos", "contactless", "ecom", "atm"), np.cumsum([0.45, 0.25, 0.25, 0.05]))
_FRAUD_CHANNELS = (("ecom", "atm", "pos", "contactless"), np.cumsum([0.70, 0.10, 0.10, 0.10]))
_HOME_CUMULATIVE = np.cumsum(_HOME_WEIGHTS) / sum(_HOME_WEIGHTS)


@dataclass(frozen=True)
class Dataset:
    """Transactions and their labels (1 = fraud)."""

    transactions: list[Transaction]
    labels: np.ndarray


def generate(n: int, seed: int = 0, fraud_rate: float = 0.05, tell: float = 0.55, noise: float = 0.04, missing: float = 0.05) -> Dataset:
    """``n`` labelled transactions (see the module docstring for the parameters)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < fraud_rate).astype(np.int64)
    transactions = [_one(rng, bool(fraud), tell if fraud else noise, missing) for fraud in labels]
    return Dataset(transactions, labels)


def _pick(rng: np.random.Generator, items: tuple[T, ...]) -> T:
    return items[int(rng.integers(len(items)))]


def _weighted(rng: np.random.Generator, items: tuple[T, ...], cumulative: np.ndarray) -> T:
    return items[min(int(np.searchsorted(cumulative, rng.random(), side="right")), len(items) - 1)]


def _one(rng: np.random.Generator, fraud: bool, p: float, missing: float) -> Transaction:
    def trait() -> bool:
        return bool(rng.random() < p)

    home = _weighted(rng, _HOMES, _HOME_CUMULATIVE)
    if trait():
        country = _pick(rng, _RISKY)
    elif rng.random() < 0.08:
        country = _pick(rng, _TRAVEL)
    else:
        country = home
    typical = float(rng.lognormal(3.3, 0.8))  # this card's usual spend
    if trait():
        amount = float(rng.uniform(0.5, 4.99)) if rng.random() < 0.25 else float(rng.lognormal(6.0, 1.0))
    else:
        amount = typical * float(rng.lognormal(0.0, 0.5))
    amount = round(amount if rng.random() > 0.1 else float(np.ceil(amount)), 2)
    hour = float(rng.uniform(0, 6)) if trait() else float(np.clip(rng.normal(14, 4), 0, 23.99))
    timestamp = round(START + float(rng.integers(0, 60)) * _DAY + hour * 3600, 3)
    channel = _weighted(rng, *(_FRAUD_CHANNELS if trait() else _LEGIT_CHANNELS))
    mcc = _pick(rng, _FRAUD_MCC if trait() else _LEGIT_MCC)
    age = float(rng.exponential(15)) if trait() else float(rng.exponential(1200))

    earlier = int(rng.poisson(8))
    times = timestamp - rng.uniform(600, 30 * _DAY, earlier)
    amounts = typical * rng.lognormal(0.0, 0.5, earlier)
    if trait():  # a burst: the card used several times in the last few minutes
        burst = int(rng.integers(2, 7))
        times = np.concatenate([times, timestamp - rng.uniform(5, 240, burst)])
        amounts = np.concatenate([amounts, rng.lognormal(4.0, 1.0, burst)])
    history = np.round(np.stack([times, amounts], axis=1), 2)

    def maybe(value: object) -> bool:
        return bool(rng.random() >= missing)

    return Transaction(
        amount=amount,
        timestamp=timestamp,
        country=country,
        home_country=home if maybe(home) else None,
        mcc=mcc if maybe(mcc) else None,
        channel=channel if maybe(channel) else None,
        account_age_days=round(age, 1) if maybe(age) else None,
        history=history if maybe(history) else np.empty((0, 2)),
    )
