"""The fraud scorer's 64 input features, computed from one :class:`Transaction`.

The layout is a contract between this module and the trained scorer: :data:`FEATURE_NAMES`
lists it in order, and a change to it means retraining (``python examples/prod_setup.py``).
Everything is fixed arithmetic (no fitted statistics), so the same row always gives the same
vector, in training and in serving. Scales are chosen so that each feature is roughly in
[-1, 2]: logarithms of money are divided by 10, of durations by 15.
"""

from __future__ import annotations

import math

from .transaction import CHANNELS, Transaction

COUNTRIES = ("US", "GB", "FR", "DE", "ES", "IT", "NL", "BE", "CA", "AU", "BR", "MX", "IN", "CN", "JP", "SG", "AE",
             "NG", "RU", "VE", "PK")
"""Countries with a feature of their own; any other country sets ``country_other``."""

# Merchant category code groups (ISO 18245 ranges); the first group that holds the code wins.
MCC_GROUPS: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = (
    ("grocery", ((5411, 5411), (5422, 5499))),
    ("restaurant", ((5811, 5814),)),
    ("fuel", ((5541, 5542), (5983, 5983))),
    ("travel", ((3000, 3999), (4111, 4131), (4411, 4411), (4511, 4511), (4722, 4722), (7011, 7011), (7512, 7512))),
    ("retail", ((5300, 5399), (5600, 5699), (5200, 5299), (5900, 5943), (5945, 5999))),
    ("electronics", ((5045, 5045), (5722, 5734))),
    ("jewelry", ((5944, 5944),)),
    ("digital", ((5815, 5818),)),
    ("gambling", ((7800, 7802), (7995, 7995))),
    ("money_transfer", ((4829, 4829), (6010, 6012), (6050, 6051), (6538, 6540))),
)

_HOUR = 3600.0
_DAY = 86400.0
_NO_PREVIOUS_S = 30 * _DAY  # "since the previous transaction" for a card without history


def _names() -> tuple[str, ...]:
    names = [
        "log_amount", "amount_round_100", "amount_whole", "amount_under_5", "amount_ends_99",
        "hour_sin", "hour_cos", "weekday_sin", "weekday_cos", "night", "weekend",
        "log_account_age", "account_new", "account_age_unknown",
        "foreign", "home_country_unknown",
    ]
    names += [f"country_{c}" for c in COUNTRIES] + ["country_other"]
    names += [f"channel_{c}" for c in CHANNELS] + ["channel_unknown"]
    names += [f"mcc_{g}" for g, _ in MCC_GROUPS] + ["mcc_other", "mcc_unknown"]
    names += [
        "window_log_count", "window_log_sum", "window_burst", "log_since_previous", "history_none",
        "history_log_len", "amount_vs_history_mean", "amount_new_max", "amount_share_of_window",
    ]
    return tuple(names)


FEATURE_NAMES = _names()
N_FEATURES = len(FEATURE_NAMES)
assert N_FEATURES == 64, N_FEATURES  # the scorer's input width, declared in specs/prod.toml
_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}


def mcc_group(mcc: int | None) -> str:
    """The group of a merchant category code: one of :data:`MCC_GROUPS`, ``other`` or ``unknown``."""
    if mcc is None:
        return "unknown"
    for group, ranges in MCC_GROUPS:
        if any(low <= mcc <= high for low, high in ranges):
            return group
    return "other"


def features(tx: Transaction, window_s: float) -> list[float]:
    """The features of ``tx`` as a list of 64 floats (plain Python: one row is too small for
    numpy's per-call overhead to pay)."""
    out = [0.0] * N_FEATURES
    put = _INDEX.__getitem__
    amount = tx.amount
    out[put("log_amount")] = math.log1p(amount) / 10
    cents = round(amount * 100)
    out[put("amount_round_100")] = amount > 0 and cents % 10000 == 0
    out[put("amount_whole")] = cents % 100 == 0
    out[put("amount_under_5")] = amount < 5
    out[put("amount_ends_99")] = cents % 100 == 99

    seconds_of_day = tx.timestamp % _DAY
    hour_angle = 2 * math.pi * seconds_of_day / _DAY
    out[put("hour_sin")], out[put("hour_cos")] = math.sin(hour_angle), math.cos(hour_angle)
    weekday = (int(tx.timestamp // _DAY) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    day_angle = 2 * math.pi * weekday / 7
    out[put("weekday_sin")], out[put("weekday_cos")] = math.sin(day_angle), math.cos(day_angle)
    out[put("night")] = seconds_of_day < 6 * _HOUR
    out[put("weekend")] = weekday >= 5

    if tx.account_age_days is None:
        out[put("account_age_unknown")] = 1
    else:
        out[put("log_account_age")] = math.log1p(tx.account_age_days) / 10
        out[put("account_new")] = tx.account_age_days < 30

    if tx.home_country is None:
        out[put("home_country_unknown")] = 1
    else:
        out[put("foreign")] = tx.home_country != tx.country
    out[put(f"country_{tx.country}" if tx.country in COUNTRIES else "country_other")] = 1
    out[put(f"channel_{tx.channel or 'unknown'}")] = 1
    out[put(f"mcc_{mcc_group(tx.mcc)}")] = 1

    _velocity(tx, window_s, out)
    return out


def _velocity(tx: Transaction, window_s: float, out: list[float]) -> None:
    put = _INDEX.__getitem__
    earlier = [(t, a) for t, a in tx.history.tolist() if t <= tx.timestamp]
    if not earlier:
        out[put("history_none")] = 1
        out[put("log_since_previous")] = math.log1p(_NO_PREVIOUS_S) / 15
        out[put("amount_share_of_window")] = 1
        return
    start = tx.timestamp - window_s
    in_window = [a for t, a in earlier if t >= start]
    count, total = len(in_window), math.fsum(in_window)
    amounts = [a for _, a in earlier]
    out[put("window_log_count")] = math.log1p(count)
    out[put("window_log_sum")] = math.log1p(total) / 10
    out[put("window_burst")] = count >= 3
    out[put("log_since_previous")] = math.log1p(tx.timestamp - max(t for t, _ in earlier)) / 15
    out[put("history_log_len")] = math.log1p(len(earlier)) / 5
    out[put("amount_vs_history_mean")] = (math.log1p(tx.amount) - math.log1p(math.fsum(amounts) / len(amounts))) / 5
    out[put("amount_new_max")] = tx.amount > max(amounts)
    out[put("amount_share_of_window")] = tx.amount / (tx.amount + total) if tx.amount + total > 0 else 1
