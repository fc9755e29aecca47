"""The synchronous processing chain shared by replay, the embedded run and the live service.

screen -> calculator -> (conflate) -> sink. Rejected ticks go to a reject sink with their
reason; nothing is dropped silently and a bad tick never stops the chain.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import LevelColumns, TickColumns
from engine.kernel.conflation import Conflator
from engine.kernel.screening import RejectReason, count_reasons, screen_ticks
from engine.kernel.sequencing import SequenceGuard
from engine.maintenance.adjustments import DivisorChange, EventError, apply_event
from engine.maintenance.event_queue import EventQueue, FailedEvent, PendingEvent
from engine.maintenance.events import IndexEvent


class LevelSink(Protocol):
    """Receives published levels, batch by batch, in tick order."""

    def write(self, levels: LevelColumns) -> None:
        """Take one batch of levels."""


class RejectSink(Protocol):
    """Receives rejected ticks with a ``RejectReason`` code per tick."""

    def reject(self, ticks: TickColumns, reasons: NDArray[np.uint8]) -> None:
        """Take one batch of rejected ticks."""


class AuditSink(Protocol):
    """Receives every divisor change caused by a maintenance event."""

    def record(self, changes: Sequence[DivisorChange]) -> None:
        """Take the changes of one event."""


@dataclass
class PipelineStats:
    """Running totals of one pipeline."""

    ticks_in: int = 0
    ticks_applied: int = 0
    levels_out: int = 0
    batches: int = 0
    rejected: Counter[RejectReason] = field(default_factory=Counter)
    events_applied: int = 0
    events_failed: list[FailedEvent] = field(default_factory=list)

    @property
    def ticks_rejected(self) -> int:
        """All rejected ticks, whatever the reason."""
        return sum(self.rejected.values())


class IndexPipeline:
    """Screens, applies and publishes batches of ticks.

    Parameters
    ----------
    calculator : IndexCalculator
        The engine state; the pipeline is its only writer.
    sink : LevelSink
        Where levels go.
    rejects : RejectSink, optional
        Where rejected ticks go; they are always counted in ``stats``.
    conflate_ns : int, optional
        When given, at most one level per index per this many nanoseconds of event time.
        ``observers`` (callables) see every level before conflation (OHLC bars need them),
        ``tick_observers`` every batch of accepted ticks before it is applied (turnover),
        ``event_observers`` the prices just before each maintenance event applied.
    audit : AuditSink, optional
        Where divisor changes of maintenance events go.
    """

    def __init__(
        self,
        calculator: IndexCalculator,
        sink: LevelSink,
        *,
        rejects: RejectSink | None = None,
        conflate_ns: int | None = None,
        audit: AuditSink | None = None,
    ) -> None:
        self.calculator = calculator
        self.sink = sink
        self.rejects = rejects
        self.conflator = Conflator(conflate_ns) if conflate_ns is not None else None
        self.audit = audit
        self.stats = PipelineStats()
        self.sequence_guard = SequenceGuard(calculator.universe.n_securities)
        self.observers: list[Callable[[LevelColumns], None]] = []
        self.tick_observers: list[Callable[[TickColumns], None]] = []
        self.event_observers: list[Callable[[NDArray[np.float64]], None]] = []
        self.events = EventQueue()
        self.clock_ns: int | None = None  # event time of the last tick applied

    @property
    def pending_events(self) -> tuple[IndexEvent, ...]:
        """Scheduled events not applied yet, in effective-time order."""
        return tuple(pending.event for pending in self.events)

    @property
    def pending(self) -> tuple[PendingEvent, ...]:
        """Scheduled events not applied yet with their origins, in effective-time order."""
        return tuple(self.events)

    def register_securities(self, codes: Iterable[str]) -> None:
        """Give ids to securities that events will add, before their ticks arrive.

        Amortised O(k) for k new codes, whatever the size of the universe (known codes are
        skipped); running levels are kept bitwise (new securities belong to no index).
        """
        added = self.calculator.add_securities(codes)
        if added:
            self.sequence_guard.extend(added)

    def schedule(self, events: Iterable[IndexEvent | PendingEvent]) -> None:
        """Queue maintenance events; each is applied before the first tick at or after its time.

        Give ``PendingEvent``s to keep where each came from (reported when one fails).
        """
        for event in events:
            self.events.push(event if isinstance(event, PendingEvent) else PendingEvent(event))

    def apply_due_events(self, now_ns: int) -> None:
        """Apply every scheduled event effective at or before ``now_ns`` (e.g. at the open)."""
        while (first := self.events.first_effective()) is not None and first <= now_ns:
            self._apply_event(self.events.pop())

    def process(self, ticks: TickColumns) -> None:
        """Apply one batch; its levels (after conflation) go to the sink.

        Scheduled events falling inside the batch split it: ticks before an event's effective
        time are applied, then the event, then the rest.
        """
        start = 0
        while (first := self.events.first_effective()) is not None and start < len(ticks):
            later = np.flatnonzero(ticks.ts_event[start:] >= first)
            if later.size == 0:
                break
            cut = start + int(later[0])
            if cut > start:
                self._process_ticks(ticks.slice(start, cut))
            self._apply_event(self.events.pop())
            start = cut
        self._process_ticks(ticks if start == 0 else ticks.slice(start, len(ticks)))

    def _apply_event(self, pending: PendingEvent) -> None:
        prices_before = self.calculator.prices.copy() if self.event_observers else None
        try:
            changes = apply_event(self.calculator, pending.event)
        except EventError as exc:
            self.stats.events_failed.append(FailedEvent(pending.event, pending.origin, str(exc)))
            return
        if prices_before is not None:
            for observe_event in self.event_observers:
                observe_event(prices_before)
        self.stats.events_applied += 1
        grown = self.calculator.universe.n_securities - self.sequence_guard.last_seq.size
        if grown:
            self.sequence_guard.extend(grown)
        if self.audit is not None:
            self.audit.record(changes)

    def _process_ticks(self, ticks: TickColumns) -> None:
        self.stats.ticks_in += len(ticks)
        self.stats.batches += 1
        reasons = screen_ticks(self.calculator.universe.n_securities, ticks.security, ticks.price)
        if ticks.seq is not None:
            valid = np.flatnonzero(reasons == RejectReason.ACCEPTED)
            reasons[valid] = self.sequence_guard.screen(ticks.security[valid], ticks.seq[valid])
        accepted = reasons == RejectReason.ACCEPTED
        if not accepted.all():
            rejected = ~accepted
            self.reject(ticks.take(rejected), reasons[rejected])
            ticks = ticks.take(accepted)
        self.stats.ticks_applied += len(ticks)
        if len(ticks):
            self.clock_ns = int(ticks.ts_event[-1])
            for observe_ticks in self.tick_observers:
                observe_ticks(ticks)
        updates = self.calculator.apply(ticks.security, ticks.price, ticks.ts_event)
        levels = LevelColumns(
            ts_event=ticks.ts_event[updates.tick],
            index=updates.index,
            level=updates.level,
            seq=updates.seq,
            security=ticks.security[updates.tick],
        )
        for observe in self.observers:
            observe(levels)
        if self.conflator is not None:
            levels = self.conflator.push(levels)
        self._publish(levels)

    def reject(self, ticks: TickColumns, reasons: NDArray[np.uint8]) -> None:
        """Count ticks rejected (here or by a stage in front) and pass them to the reject sink."""
        self.stats.rejected.update(count_reasons(reasons))
        if self.rejects is not None and len(ticks):
            self.rejects.reject(ticks, reasons)

    def close(self) -> None:
        """End of stream: release levels still held by conflation to the sink."""
        if self.conflator is not None:
            self._publish(self.conflator.flush())

    def run(self, batches: Iterable[TickColumns]) -> PipelineStats:
        """Process every batch, then close; returns the totals."""
        for batch in batches:
            self.process(batch)
        self.close()
        return self.stats

    def _publish(self, levels: LevelColumns) -> None:
        if len(levels):
            self.stats.levels_out += len(levels)
            self.sink.write(levels)
