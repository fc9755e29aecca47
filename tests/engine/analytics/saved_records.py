"""The analytics records saved in ``tests/data/wire_v1`` (one of each kind), as values."""

from __future__ import annotations

from engine.analytics.records import (
    AnalyticsRecord,
    HedgeLine,
    IndexAnalytics,
    Mover,
    PairAnalytics,
    SignalEvent,
)

BOUNDARY = 1_795_138_201_000_000_000

INDEX_ANALYTICS = IndexAnalytics(
    index="HSI",
    ts_event=BOUNDARY,
    level=25812.345678901234,
    prev_close=25800.0,
    change=12.345678901234,
    change_pct=0.04785146857842688,
    open=25790.5,
    high=25830.25,
    low=25760.0,
    vol_session=0.1834,
    vol_rolling=0.2012,
    returns_in_window=240,
    drawdown_day=-0.0006837,
    drawdown_ref=-0.1184,
    ref_high=29280.0,
    up=48,
    down=30,
    unchanged=4,
    pct_up=58.536585365853654,
    adjusted_prev_close=25800.0,
    top=[
        Mover("0700", 6.25, 402.4, 0.35),
        Mover("0005", 3.5, 61.5, 0.24),
    ],
    bottom=[Mover("1299", -2.75, 77.1, -0.45)],
    turnover=1.25e9,
)

INDEX_ANALYTICS_CLOSE = IndexAnalytics(
    index="HSSCI",
    ts_event=BOUNDARY,
    final=True,
    level=4120.5,
    prev_close=4100.0,
    change=20.5,
    change_pct=0.5,
    adjusted_prev_close=4100.0,
)

PAIR_ANALYTICS = PairAnalytics(
    pair="SmallCap/HSI",
    a="HSSCI",
    b="HSI",
    ts_event=BOUNDARY,
    rs=101.25,
    rs_change=0.75,
    rs_change_day=0.5,
    beta=1.12,
    corr=0.83,
    returns_in_window=240,
    hedge=HedgeLine("HSI", 10_000_000.0, -11_200_000.0, -8, -3, -94_123.5),
)

SIGNAL_EVENT = SignalEvent(
    name="smallcap_invalidation",
    kind="invalidation",
    active=True,
    ts_event=BOUNDARY,
    sentence="HSI closes below 25000 while SmallCap relative strength falls",
    values={"HSI.level": 24980.5, "rs_change": -1.25},
)

SAVED: dict[str, AnalyticsRecord] = {
    "index_analytics": INDEX_ANALYTICS,
    "index_analytics_close": INDEX_ANALYTICS_CLOSE,
    "pair_analytics": PAIR_ANALYTICS,
    "signal_event": SIGNAL_EVENT,
}
