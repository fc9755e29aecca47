"""``FxLineRejects``: FX ticks the currency step rejects reported as FILE:LINE: reason: detail."""

from __future__ import annotations

import io

import numpy as np

from engine.currency.fx_ticks import FxRejectReason
from engine.currency.translator import FxColumns
from producers.reject_log import FxLineRejects, RejectLog

NINE_THIRTY = 1_767_576_600_000_000_000  # 2026-01-05 09:30 HKT


def test_each_rejected_fx_tick_is_a_line_with_pair_time_and_rate() -> None:
    sink = io.StringIO()
    log = RejectLog("fx.csv", sink=sink)
    fx = FxColumns(
        np.array([NINE_THIRTY, NINE_THIRTY + 1_500_000_000], dtype=np.int64),
        np.array([1, 9], dtype=np.int64),
        np.array([2e9, 0.5]),
        origin=np.array([7, 12], dtype=np.int64),
    )
    reasons = np.array([FxRejectReason.RATE_OUT_OF_RANGE, FxRejectReason.UNKNOWN_PAIR], np.uint8)
    FxLineRejects(log, ["HKDUSD", "HKDCNY"]).reject(fx, reasons)
    assert sink.getvalue().splitlines() == [
        "fx.csv:7: rate_out_of_range: 'HKDCNY' at 2026-01-05T09:30:00+08:00, rate 2000000000.0",
        "fx.csv:12: unknown_pair: '?' at 2026-01-05T09:30:01.500000000+08:00, rate 0.5",
    ]


def test_fx_ticks_without_origin_are_not_reported() -> None:
    log = RejectLog("fx.csv")
    fx = FxColumns(np.array([1], np.int64), np.array([0], np.int64), np.array([2e9]))
    FxLineRejects(log, ["HKDUSD"]).reject(fx, np.array([6], np.uint8))
    assert log.summary() == []
