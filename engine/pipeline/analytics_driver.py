"""Running a pipeline with analytics: tick batches cut at analytics boundaries.

``AnalyticsDriver`` sits in front of whatever feeds the pipeline (``IndexPipeline.process``,
or ``SessionDriver.process`` with trading sessions): each batch is cut where the analytics
schedule says a boundary passes, the ticks before the cut go through, then the boundary's
records are taken and go to the analytics sink. A boundary therefore sees exactly the ticks
before it, however the stream is batched, as a maintenance event does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from engine.analytics.engine import AnalyticsEngine
from engine.analytics.records import AnalyticsRecord
from engine.analytics.schedule import Cut
from engine.kernel.columns import TickColumns
from engine.pipeline.chain import IndexPipeline


class AnalyticsSink(Protocol):
    """Receives analytics records, in boundary order."""

    def write_analytics(self, records: Sequence[AnalyticsRecord]) -> None:
        """Take the records of one cut."""


class AnalyticsDriver:
    """Feeds ``step`` tick batches cut at analytics boundaries; records go to ``sink``.

    Parameters
    ----------
    step : callable
        Processes one tick batch (``IndexPipeline.process`` or ``SessionDriver.process``).
    pipeline : IndexPipeline
        The pipeline behind ``step``: the analytics observe its levels, ticks and events.
    analytics : AnalyticsEngine
        The analytics of the pipeline's calculator.
    sink : AnalyticsSink
        Where the records go.
    """

    def __init__(
        self,
        step: Callable[[TickColumns], None],
        pipeline: IndexPipeline,
        analytics: AnalyticsEngine,
        sink: AnalyticsSink,
    ) -> None:
        self.step = step
        self.analytics = analytics
        self.sink = sink
        self.records_out = 0
        pipeline.observers.append(analytics.observe_levels)
        pipeline.tick_observers.append(analytics.observe_ticks)
        pipeline.event_observers.append(analytics.observe_event)

    def process(self, ticks: TickColumns) -> None:
        """Process one batch, taking the analytics at every boundary it crosses."""
        start = 0
        for cut in self.analytics.cuts(ticks.ts_event):
            if cut.position > start:
                self.step(ticks.slice(start, cut.position))
            start = cut.position
            self._take(cut)
        if start < len(ticks) or len(ticks) == 0:
            self.step(ticks if start == 0 else ticks.slice(start, len(ticks)))

    def advance_to(self, ts: int) -> None:
        """Boundaries up to ``ts`` pass without a tick (end of stream, a quiet feed)."""
        cut = self.analytics.advance_to(ts)
        if cut is not None:
            self._take(cut)

    def _take(self, cut: Cut) -> None:
        records = self.analytics.take(cut)
        if records:
            self.records_out += len(records)
            self.sink.write_analytics(records)
