"""The currency step hands the FX ticks it rejects to its reject sink, origins kept."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from engine.currency.fx_ticks import MAX_RATE, MIN_RATE
from engine.currency.translator import FxColumns, FxRejectReason
from tests.support.currency import base_levels, fx_ticks, translator


class Collected:
    """An ``FxRejectSink`` keeping what it is given, call by call."""

    def __init__(self) -> None:
        self.calls: list[tuple[FxColumns, list[int]]] = []

    def reject(self, fx: FxColumns, reasons: NDArray[np.uint8]) -> None:
        self.calls.append((fx, reasons.tolist()))


def with_origin(fx: FxColumns, origin: list[int]) -> FxColumns:
    return FxColumns(fx.ts_event, fx.pair, fx.rate, np.array(origin, dtype=np.int64))


def test_rejected_fx_ticks_reach_the_sink_with_their_origin_and_reason() -> None:
    t = translator()
    t.rejects = sink = Collected()
    rates = [0.128, MAX_RATE * 2, 0.92, MIN_RATE / 2, np.nan, -1.0, 0.118]
    fx = with_origin(
        fx_ticks([1, 2, 3, 4, 5, 6, 7], [0, 0, 1, 1, 2, 7, 2], rates), [10, 11, 12, 13, 15, 16, 17]
    )
    t.translate(base_levels([3], [0], [1001.0]), fx)
    assert len(sink.calls) == 1
    rejected, reasons = sink.calls[0]
    assert rejected.origin is not None and rejected.origin.tolist() == [11, 13, 15, 16]
    assert rejected.ts_event.tolist() == [2, 4, 5, 6]
    assert rejected.rate.tolist()[:2] == [MAX_RATE * 2, MIN_RATE / 2]
    assert [FxRejectReason(r) for r in reasons] == [
        FxRejectReason.RATE_OUT_OF_RANGE,
        FxRejectReason.RATE_OUT_OF_RANGE,
        FxRejectReason.NON_FINITE_RATE,
        FxRejectReason.UNKNOWN_PAIR,
    ]
    assert t.stats.fx_applied == 3 and sum(t.stats.fx_rejected.values()) == 4


def test_the_sink_is_not_called_when_every_fx_tick_is_accepted() -> None:
    t = translator()
    t.rejects = sink = Collected()
    fx = with_origin(fx_ticks([1, 2], [0, 1], [0.128, 0.92]), [2, 3])
    out = t.translate(base_levels([3], [0], [1001.0]), fx)
    assert sink.calls == []
    assert len(out) > 0 and t.stats.fx_applied == 2


def test_a_sink_changes_no_level() -> None:
    fx = fx_ticks([1, 2, 3, 4], [0, 0, 2, 1], [0.128, 5e9, 0.12, 1e-12])
    base = base_levels([2, 3, 5], [0, 1, 2], [1001.0, 2499.0, 401.0])
    plain, sunk = translator(), translator()
    sunk.rejects = Collected()
    a, b = plain.translate(base, fx), sunk.translate(base, with_origin(fx, [2, 3, 4, 5]))
    for name in ("ts_event", "index", "level", "seq", "security"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert len(a) > 0 and sum(sunk.stats.fx_rejected.values()) == 2
