"""A pipeline with trading sessions and analytics on two simulated days (tests only).

The reference run of ``tests/engine/pipeline/test_analytics_driver.py`` and of the replay
command's analytics test: the built-in family with volumes, Friday and Monday of
``tests.support.analytics_stream``, records at every minute, two signal rules.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.analytics.config import AnalyticsConfig
from engine.analytics.engine import AnalyticsEngine
from engine.analytics.records import AnalyticsRecord
from engine.analytics.signal_rules import rules_from
from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import LevelColumns, TickColumns
from engine.pipeline.analytics_driver import AnalyticsDriver
from engine.pipeline.chain import IndexPipeline
from engine.pipeline.trading_day import SessionDriver
from engine.refdata.universe import Universe
from engine.testing import TestingSink
from tests.support.analytics_stream import CALENDAR, MONDAY, simulated_days
from tests.support.seed import SEED

MINUTE = 60_000_000_000
RULES = rules_from(
    {
        "rules": [
            {
                "name": "hsi-up",
                "kind": "info",
                "sentence": "HSI is above its previous close",
                "when": {"type": "threshold", "series": "HSI.change", "op": ">", "value": 0.0},
            },
            {
                "name": "smallcap-rising",
                "kind": "confirmation",
                "sentence": "SmallCap relative strength rose for 3 intervals",
                "when": {"type": "rising", "series": "SMALLCAP_VS_HSI.rs", "intervals": 3},
            },
        ]
    }
).rules
CONFIG = AnalyticsConfig(interval_ms=60_000, sample_ms=60_000, window=30, rules=RULES)


@dataclass
class Run:
    """A pipeline with sessions and analytics, recording levels and records."""

    universe: Universe
    config: AnalyticsConfig = CONFIG
    records: list[AnalyticsRecord] = field(default_factory=list)
    levels: list[LevelColumns] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pipeline = IndexPipeline(
            IndexCalculator(self.universe), TestingSink(self.universe.index_codes)
        )
        self.pipeline.observers.append(self.levels.append)
        self.session = SessionDriver(self.pipeline, CALENDAR)
        self.engine = AnalyticsEngine(self.pipeline.calculator, CALENDAR, self.config)
        self.driver = AnalyticsDriver(self.session.process, self.pipeline, self.engine, self)

    def write_analytics(self, records: Sequence[AnalyticsRecord]) -> None:
        self.records.extend(records)

    def feed(self, parts: Sequence[TickColumns]) -> None:
        for part in parts:
            self.driver.process(part)

    def finish(self) -> None:
        self.driver.advance_to(CALENDAR.closing_auction_end(MONDAY))


def stream() -> tuple[Universe, TickColumns]:
    universe, ticks = simulated_days(SEED)
    assert ticks.volume is not None and np.isfinite(ticks.volume).all()
    return universe, ticks


@functools.cache
def whole() -> Run:
    universe, ticks = stream()
    run = Run(universe)
    run.feed([ticks])
    run.finish()
    return run
