"""The analytics records published on the analytics topic (wire format v1, msgspec Structs).

Three kinds, tagged by ``type`` like the level messages so one decoder reads the whole topic:

- ``index_analytics``: the figures of one index at one boundary (``ts_event``), or at the
  session close (``final``); Kafka key: the index code;
- ``pair_analytics``: relative strength, rolling beta and correlation of one configured pair,
  with its hedge line; Kafka key: the pair name;
- ``signal_event``: a rule that changed state; Kafka key: the signal name.

Every float is finite: a figure that cannot be computed (volatility with fewer than two returns,
% up of an index without constituents, ...) is an optional field left out (``None``), never NaN
or infinity. ``finite_or_none`` turns a computed number into such a field; ``validate_record``
refuses a record whose required figure is not finite (``InvalidRecordError``), and the codec
calls it before encoding, so nothing non-finite is ever published. Decoding applies the same
bounds (``msgspec.ValidationError`` naming the field). Fields are only ever added with defaults;
unknown fields are ignored, so an older reader keeps reading a newer topic.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import msgspec

from engine.core.bounds import MAX_CODE_LENGTH, MAX_ID_LENGTH
from engine.core.errors import TickIndexError

MAX_FIGURE = 1e300
"""Largest magnitude of a published figure: finite with room to spare, so 1e308 or an
overflowed sum is refused rather than carried to a reader that would choke on it."""
MAX_MOVERS = 1_000
MAX_SIGNAL_VALUES = 256
MAX_SENTENCE_LENGTH = 4_096
INT64_MAX = 2**63 - 1

Figure = Annotated[float, msgspec.Meta(ge=-MAX_FIGURE, le=MAX_FIGURE)]
"""A finite number (NaN fails the bounds too)."""
Count = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
Contracts = Annotated[int, msgspec.Meta(ge=-INT64_MAX, le=INT64_MAX)]
EventTime = Annotated[int, msgspec.Meta(gt=0, le=INT64_MAX)]
"""Event time, ns since the epoch."""
Code = Annotated[str, msgspec.Meta(max_length=MAX_CODE_LENGTH)]
"""An index or security code."""
Name = Annotated[str, msgspec.Meta(max_length=MAX_ID_LENGTH)]
"""A pair, signal or value name."""
SignalKind = Literal["confirmation", "invalidation", "info"]


class Mover(msgspec.Struct, frozen=True):
    """One constituent among an index's top or bottom movers.

    ``contribution`` is in index points (its price change times its weight factor over the
    divisor); ``change_pct`` is its price change since the previous close, in percent.
    """

    security: Code
    contribution: Figure
    price: Figure
    change_pct: Figure


class IndexAnalytics(
    msgspec.Struct, tag="index_analytics", frozen=True, omit_defaults=True, kw_only=True
):
    """The analytics of one index at one boundary.

    ``ts_event`` is the boundary: the figures describe the index after every tick before it;
    ``final`` marks the session close record. Percentages are in percent; volatilities are
    annualised fractions; drawdowns are ``level / high - 1`` (<= 0). Optional figures are left
    out when they cannot be computed (no tick yet today, fewer than two returns, no reference
    high configured, no volume on the ticks).
    """

    index: Code
    ts_event: EventTime
    final: bool = False
    level: Figure
    prev_close: Figure
    change: Figure
    change_pct: Figure
    open: Figure | None = None
    high: Figure | None = None
    low: Figure | None = None
    vol_session: Figure | None = None
    vol_rolling: Figure | None = None
    returns_in_window: Count = 0
    drawdown_day: Figure | None = None
    drawdown_ref: Figure | None = None
    ref_high: Figure | None = None
    up: Count = 0
    down: Count = 0
    unchanged: Count = 0
    pct_up: Figure | None = None
    adjusted_prev_close: Figure
    top: Annotated[list[Mover], msgspec.Meta(max_length=MAX_MOVERS)] = []
    bottom: Annotated[list[Mover], msgspec.Meta(max_length=MAX_MOVERS)] = []
    turnover: Figure | None = None


class HedgeLine(msgspec.Struct, frozen=True):
    """Futures that neutralise the beta of a sleeve held in a pair's first index.

    ``futures`` and ``minis`` are contracts of the hedge index's future and mini future
    (negative: sold); ``residual_notional`` is the beta-weighted notional they leave unhedged.
    """

    hedge_index: Code
    sleeve_notional: Figure
    hedge_notional: Figure
    futures: Contracts
    minis: Contracts
    residual_notional: Figure


class PairAnalytics(msgspec.Struct, tag="pair_analytics", frozen=True, omit_defaults=True):
    """Relative value of index ``a`` against index ``b`` at one boundary.

    ``rs`` is a / b rebased to 100; ``beta`` and ``corr`` are of a's sampled returns on b's over
    the rolling window of ``returns_in_window`` returns; absent when not computable.
    """

    pair: Name
    a: Code
    b: Code
    ts_event: EventTime
    rs: Figure | None = None
    rs_change: Figure | None = None
    rs_change_day: Figure | None = None
    beta: Figure | None = None
    corr: Figure | None = None
    returns_in_window: Count = 0
    hedge: HedgeLine | None = None


class SignalEvent(msgspec.Struct, tag="signal_event", frozen=True, omit_defaults=True):
    """A signal rule that changed state at ``ts_event``: now ``active`` or no longer.

    ``sentence`` is the rule's human sentence; ``values`` the series it read, by name.
    """

    name: Name
    kind: SignalKind
    active: bool
    ts_event: EventTime
    sentence: Annotated[str, msgspec.Meta(max_length=MAX_SENTENCE_LENGTH)]
    values: Annotated[dict[Name, Figure], msgspec.Meta(max_length=MAX_SIGNAL_VALUES)] = {}


AnalyticsRecord = IndexAnalytics | PairAnalytics | SignalEvent


class InvalidRecordError(TickIndexError, ValueError):
    """An analytics record that must not be published (a required figure not finite, a count
    out of range); the record is a bug of its producer, so retrying cannot help."""


def finite_or_none(value: float) -> float | None:
    """``value`` as a plain float when it can be published, else None (NaN, infinite, or beyond
    ``MAX_FIGURE``): how an optional figure goes from numpy columns to a record."""
    number = float(value)
    return number if math.isfinite(number) and abs(number) <= MAX_FIGURE else None


def kafka_key(record: AnalyticsRecord) -> bytes:
    """The record's Kafka key: its index code, pair name or signal name (UTF-8)."""
    if isinstance(record, IndexAnalytics):
        return record.index.encode()
    if isinstance(record, PairAnalytics):
        return record.pair.encode()
    return record.name.encode()


def validate_record(record: AnalyticsRecord) -> None:
    """Raise ``InvalidRecordError`` unless ``record`` decodes back as it is (every figure finite
    and within bounds, counts and times in range).

    A non-finite figure is named with its value (``level is nan``); any other bound broken is
    named as the decoder names it (``$.up``).
    """
    where = f"{record.__struct_config__.tag} {kafka_key(record).decode(errors='replace')}"
    bad = _first_bad_figure(record, "")
    if bad is not None:
        path, value = bad
        raise InvalidRecordError(f"{where}: {path} is {value!r}, not a finite figure")
    try:
        msgspec.convert(msgspec.to_builtins(record), AnalyticsRecord)
    except (msgspec.ValidationError, TypeError) as exc:  # TypeError: a numpy int, say
        raise InvalidRecordError(f"{where}: {exc}") from None


def _first_bad_figure(value: object, path: str) -> tuple[str, float] | None:
    """The path and value of the first float in ``value`` (a Struct, list or dict of them)
    that ``finite_or_none`` would refuse."""
    if isinstance(value, float):
        return None if finite_or_none(value) is not None else (path, value)
    if isinstance(value, msgspec.Struct):
        items: list[tuple[str, object]] = [
            (f"{path}.{name}" if path else name, getattr(value, name))
            for name in value.__struct_fields__
        ]
    elif isinstance(value, list):
        items = [(f"{path}[{i}]", item) for i, item in enumerate(value)]
    elif isinstance(value, dict):
        items = [(f"{path}[{key!r}]", item) for key, item in value.items()]
    else:
        return None
    for where, item in items:
        found = _first_bad_figure(item, where)
        if found is not None:
            return found
    return None
