"""Setting analytics up behind a pipeline, for the commands that compute them.

``attach_analytics`` is the wiring ``tickindex replay --analytics`` does too: an
``AnalyticsEngine`` on the pipeline's calculator and the driver's calendar, and an
``AnalyticsDriver`` in front of ``SessionDriver.process`` (records to a sink), started from
a restored state when given one; with day files (``SessionDriver.eod_dir``) each roll also
writes the analytics state after the day's close into the next day's folder.
``desk_config`` is what the embedded ``tickindex run`` computes without ``--analytics-config``:
the default pairs the universe has, each with a sleeve to hedge, returns sampled often enough that
volatility and beta show within a minute, and a few signal rules on those pairs (sentences short
enough for the board's panel; ``RS`` is relative strength).
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from engine.analytics.config import AnalyticsConfig, load_analytics_config
from engine.analytics.daily_state import write_analytics_state
from engine.analytics.engine import AnalyticsEngine
from engine.analytics.pairs import HSTECH_VS_HSI, SMALLCAP_VS_HSI
from engine.analytics.signal_rules import rules_from
from engine.analytics.state import AnalyticsState
from engine.pipeline.analytics_driver import AnalyticsDriver, AnalyticsSink
from engine.pipeline.trading_day import SessionDriver
from engine.refdata.universe import Universe

DESK_SAMPLE_MS = 5_000
"""Return grid of the embedded run: 12 returns a minute (serve and replay: 60 s)."""
DESK_SLEEVE_NOTIONAL = 50_000_000.0
"""HK$ long each pair's first index in the embedded run's hedge lines."""
DESK_TREND_INTERVALS = 3

_DESK_RULES = {
    SMALLCAP_VS_HSI.name: [
        {
            "name": "smallcap-sleeve-confirmed",
            "kind": "confirmation",
            "sentence": f"SmallCap up, RS vs HSI rose {DESK_TREND_INTERVALS} intervals: "
            "sleeve confirmed",
            "when": {
                "type": "all",
                "of": [
                    {"type": "threshold", "series": "HSCI_SC.change", "op": ">", "value": 0.0},
                    {
                        "type": "rising",
                        "series": f"{SMALLCAP_VS_HSI.name}.rs",
                        "intervals": DESK_TREND_INTERVALS,
                    },
                ],
            },
        },
        {
            "name": "smallcap-sleeve-weakening",
            "kind": "invalidation",
            "sentence": f"SmallCap down, RS vs HSI fell {DESK_TREND_INTERVALS} intervals: "
            "sleeve at risk",
            "when": {
                "type": "all",
                "of": [
                    {"type": "threshold", "series": "HSCI_SC.change", "op": "<", "value": 0.0},
                    {
                        "type": "falling",
                        "series": f"{SMALLCAP_VS_HSI.name}.rs",
                        "intervals": DESK_TREND_INTERVALS,
                    },
                ],
            },
        },
    ],
    HSTECH_VS_HSI.name: [
        {
            "name": "hstech-high-beta",
            "kind": "info",
            "sentence": "HS TECH beta on HSI above 1.5: hedge needs more HSI futures",
            "when": {"type": "threshold", "series": f"{HSTECH_VS_HSI.name}.beta", "op": ">",
                     "value": 1.5},
        }
    ],
}  # fmt: skip


def desk_config(universe: Universe) -> AnalyticsConfig:
    """The embedded run's analytics: every index each second, returns every 5 s, the default
    pairs the universe has with a HK$50m sleeve each, and the rules on those pairs."""
    pairs = tuple(
        msgspec.structs.replace(pair, sleeve_notional=DESK_SLEEVE_NOTIONAL)
        for pair in AnalyticsConfig().pairs_in(universe.index_codes)
    )
    rules = [rule for pair in pairs for rule in _DESK_RULES.get(pair.name, [])]
    return AnalyticsConfig(
        sample_ms=DESK_SAMPLE_MS,
        pairs=pairs,
        rules=rules_from({"rules": rules}, "tickindex run").rules,
    )


def analytics_config(path: str | None, default: AnalyticsConfig) -> AnalyticsConfig:
    """The settings of ``--analytics-config`` (TOML or JSON), or ``default`` without one.

    Raises
    ------
    AnalyticsConfigError
        When the file cannot be read or a setting is invalid.
    """
    return load_analytics_config(path) if path else default


def attach_analytics(
    driver: SessionDriver,
    config: AnalyticsConfig,
    sink: AnalyticsSink,
    *,
    state: AnalyticsState | None = None,
) -> AnalyticsDriver:
    """Analytics of ``driver``'s pipeline: feed ticks to the returned driver's ``process``.

    With ``state`` (``AnalyticsEngine.capture``, e.g. of the daily files) the analytics resume
    from it; with ``driver.eod_dir`` every roll writes the state after the finished day's
    close next to the next day's files (a stream that ends before the close passes it first).

    Raises
    ------
    AnalyticsConfigError
        When ``config`` names an index, pair or security the universe does not have.
    AnalyticsStateError
        When ``state`` does not fit the configuration.
    """
    pipeline = driver.pipeline
    engine = AnalyticsEngine(pipeline.calculator, driver.calendar, config)
    if state is not None:
        engine.restore(state)
    analytics = AnalyticsDriver(driver.process, pipeline, engine, sink)
    if driver.eod_dir is not None:

        def write_state(day: int, folder: Path) -> None:
            closing = engine.closing_state
            if closing is None or closing[0] != day:
                analytics.advance_to(driver.calendar.closing_auction_end(day))
                closing = engine.closing_state
            if closing is not None and closing[0] == day:
                write_analytics_state(folder, pipeline.calculator.universe, day, closing[1])

        driver.roll_observers.append(write_state)
    return analytics
