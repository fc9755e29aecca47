"""The control topic: maintenance events in, divisor audit records out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import msgspec

from engine.calendar.ohlc import OhlcBars
from engine.kernel.screening import RejectReason
from engine.live.codec import OutgoingMessage, Record, source_of
from engine.live.config import ServiceConfig
from engine.live.dead_letters import DEAD_LETTER_MAX_BYTES, dead_letter
from engine.live.kafka.fetch import FetchedRecord
from engine.maintenance.adjustments import DivisorChange
from engine.maintenance.event_queue import (
    NS_PER_DAY,
    EventLimits,
    EventOrigin,
    PendingEvent,
    admission_error,
)
from engine.maintenance.events import IndexEvent, securities_named
from engine.pipeline.chain import IndexPipeline
from engine.wire import WireFormat

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 1000  # msgspec errors may quote the input


class AuditBuffer:
    """An ``AuditSink`` holding the divisor changes of one batch until they are published."""

    def __init__(self) -> None:
        self.changes: list[DivisorChange] = []

    def record(self, changes: Sequence[DivisorChange]) -> None:
        """Keep the changes of one event."""
        self.changes.extend(changes)

    def messages(self, topic: str) -> list[OutgoingMessage]:
        """Audit messages for everything kept, then forget it."""
        encoder = msgspec.json.Encoder()
        out = [
            OutgoingMessage(
                topic,
                change.index.encode(),
                encoder.encode(change),
            )
            for change in self.changes
        ]
        self.changes.clear()
        return out


class DailyBar(msgspec.Struct, frozen=True):
    """One index's bar of one trading day, as published on the OHLC topic."""

    date: str
    index: str
    open: float
    high: float
    low: float
    close: float
    count: int


class BarsBuffer:
    """A ``BarsSink`` holding finished days' bars until they are published."""

    def __init__(self, index_codes: tuple[str, ...]) -> None:
        self.index_codes = index_codes
        self.pending: list[DailyBar] = []

    def write_bars(self, bars: OhlcBars) -> None:
        """Keep one day's bars."""
        self.pending.extend(DailyBar(**record) for record in bars.records(self.index_codes))

    def messages(self, topic: str) -> list[OutgoingMessage]:
        """Bar messages keyed by index code, then forget them."""
        encoder = msgspec.json.Encoder()
        out = [
            OutgoingMessage(topic, bar.index.encode(), encoder.encode(bar)) for bar in self.pending
        ]
        self.pending.clear()
        return out


class EventScope(Protocol):
    """Which events an instance applies and dead-letters (``engine.live.shards``: one shard)."""

    def restrict(self, event: IndexEvent) -> IndexEvent | None:
        """The part of ``event`` to apply here, None to ignore it."""
        ...

    def letters_for(self, event: IndexEvent | None) -> bool:
        """Whether a refusal or failure of ``event`` (None: undecodable) is dead-lettered here."""
        ...


def event_limits(config: ServiceConfig) -> EventLimits:
    """The admission bounds of ``config``."""
    return EventLimits(
        max_pending=config.max_pending_events,
        max_pending_bytes=config.max_pending_event_bytes,
        late_tolerance_ns=config.event_late_tolerance_ms * 10**6,
        horizon_ns=config.event_horizon_days * NS_PER_DAY,
    )


class ControlChannel:
    """Decodes control messages, admits their events and schedules them on the pipeline.

    Every message either becomes a pending event or a dead letter with reason
    ``invalid_event``: undecodable or out of range (``engine.maintenance.events``), refused by
    ``admission_error`` (unknown index or security, effective time beyond the tolerance in the
    past or the horizon in the future, duplicate or conflicting, queue full), or, later, failed
    when applied at its effective time (``failed_letters``, from the source record kept with the
    pending event).

    Parameters
    ----------
    pipeline : IndexPipeline
        Where events are scheduled (applied at their effective time).
    wire_format : {"json", "msgpack"}
        Encoding of control messages.
    limits : EventLimits, optional
        Admission bounds; the defaults of ``EventLimits`` when not given.
    wall_clock : callable, optional
        Wall-clock time in ns (for the horizon).
    dead_letter_max_bytes : int
        Bound of one dead letter (``engine.live.dead_letters.dead_letter``).

    Attributes
    ----------
    scope : EventScope or None
        Set on one shard of several (``engine.live.shards.ShardEventScope``): events for other
        shards' indices are ignored, their securities still registered (their ticks apply
        here too), and refusals are dead-lettered by one shard only. None: every event.
    """

    def __init__(
        self,
        pipeline: IndexPipeline,
        wire_format: WireFormat,
        limits: EventLimits | None = None,
        wall_clock: Callable[[], int] = time.time_ns,
        *,
        dead_letter_max_bytes: int = DEAD_LETTER_MAX_BYTES,
    ) -> None:
        self.pipeline = pipeline
        self.limits = limits or EventLimits()
        self._wall_clock = wall_clock
        self.max_bytes = dead_letter_max_bytes
        self.scope: EventScope | None = None
        self._decoder: msgspec.json.Decoder[IndexEvent] | msgspec.msgpack.Decoder[IndexEvent] = (
            msgspec.json.Decoder(IndexEvent)
            if wire_format == "json"
            else msgspec.msgpack.Decoder(IndexEvent)
        )

    def receive(self, records: Sequence[Record], dead_letter_topic: str) -> list[OutgoingMessage]:
        """Schedule every valid event; returns dead letters for the others (never raises)."""
        letters = []
        pipeline = self.pipeline
        universe = pipeline.calculator.universe
        introduced: dict[str, None] = {}
        wall_ns = self._wall_clock()

        def known(code: str) -> bool:
            return universe.security_id(code) >= 0 or code in introduced

        scope = self.scope

        def refuse(record: Record, event: IndexEvent | None, detail: str) -> None:
            if scope is None or scope.letters_for(event):
                letters.append(self._letter(record, dead_letter_topic, detail))

        for record in records:
            try:
                decoded = self._decoder.decode(record.value or b"")
            except msgspec.ValidationError as exc:
                refuse(record, None, f"invalid event: {exc}")
                continue
            except (msgspec.MsgspecError, RecursionError, ValueError, OverflowError) as exc:
                refuse(record, None, f"undecodable event: {exc}")
                continue
            event = decoded if scope is None else scope.restrict(decoded)
            if event is None:  # another shard's: its securities may still trade here
                introduced.update(dict.fromkeys(securities_named(decoded)))
                continue
            refused = admission_error(
                event,
                queue=pipeline.events,
                limits=self.limits,
                index_codes=universe.index_codes,
                is_known_security=known,
                clock_ns=pipeline.clock_ns,
                wall_ns=wall_ns,
            )
            if refused is not None:
                refuse(record, event, refused)
                continue
            introduced.update(dict.fromkeys(securities_named(event)))
            origin = EventOrigin(
                source_of(record),
                record.topic,
                record.partition,
                record.offset,
                record.key,
                record.value or b"",
            )
            pipeline.schedule([PendingEvent(event, origin)])
        if introduced:
            pipeline.register_securities(introduced)  # once per fetch, not per event
        if letters:
            log.warning("refused %d control events, first: %s", len(letters), _describe(letters[0]))
        return letters

    def failed_letters(self, since: int, dead_letter_topic: str) -> list[OutgoingMessage]:
        """Dead letters for the events that failed when applied (``events_failed[since:]``)."""
        letters = []
        failures = self.pipeline.stats.events_failed[since:]
        if failures:
            log.error("%d maintenance events not applied, first: %s", len(failures), failures[0])
        for failure in failures:
            if self.scope is not None and not self.scope.letters_for(failure.event):
                continue
            origin = failure.origin or EventOrigin("", value=msgspec.json.encode(failure.event))
            record = FetchedRecord(
                origin.topic, origin.partition, origin.offset, origin.key, origin.value
            )
            letters.append(self._letter(record, dead_letter_topic, str(failure)))
        return letters

    def _letter(self, record: Record, topic: str, detail: str) -> OutgoingMessage:
        reason, detail = RejectReason.INVALID_EVENT, detail[:MAX_ERROR_CHARS]
        return dead_letter(record, topic, reason, detail, max_bytes=self.max_bytes)


def _describe(letter: OutgoingMessage) -> str:
    """``source: error`` of a dead letter, for the log."""
    headers = dict(letter.headers)
    source = headers.get("tickindex.source", b"").decode(errors="replace")
    return f"{source}: {headers.get('tickindex.error', b'').decode(errors='replace')}"
