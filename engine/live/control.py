"""The control topic: maintenance events in, divisor audit records out."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from engine.events import IndexEvent, securities_named
from engine.live.codec import OutgoingMessage, Record
from engine.live.dead_letters import dead_letter
from engine.maintenance import DivisorChange
from engine.ohlc import OhlcBars
from engine.pipeline import IndexPipeline
from engine.screening import RejectReason
from engine.wire import WireFormat


class DivisorAudit(msgspec.Struct, frozen=True):
    """One divisor change as published on the audit topic (keyed by index code)."""

    index: str
    ts: int
    old_divisor: float
    new_divisor: float
    level: float
    cause: str


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
                encoder.encode(
                    DivisorAudit(
                        change.index,
                        change.ts,
                        change.old_divisor,
                        change.new_divisor,
                        change.level,
                        change.cause,
                    )
                ),
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


class ControlChannel:
    """Decodes control messages and schedules their events on the pipeline.

    Parameters
    ----------
    pipeline : IndexPipeline
        Where events are scheduled (applied at their effective time).
    wire_format : {"json", "msgpack"}
        Encoding of control messages.
    """

    def __init__(self, pipeline: IndexPipeline, wire_format: WireFormat) -> None:
        self.pipeline = pipeline
        self._decoder: msgspec.json.Decoder[IndexEvent] | msgspec.msgpack.Decoder[IndexEvent] = (
            msgspec.json.Decoder(IndexEvent)
            if wire_format == "json"
            else msgspec.msgpack.Decoder(IndexEvent)
        )

    def receive(self, records: Sequence[Record], dead_letter_topic: str) -> list[OutgoingMessage]:
        """Schedule every valid event; returns dead letters for the invalid ones."""
        letters = []
        for record in records:
            try:
                event = self._decoder.decode(record.value or b"")
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                letters.append(
                    dead_letter(record, dead_letter_topic, RejectReason.INVALID_EVENT, str(exc))
                )
                continue
            self.pipeline.register_securities(securities_named(event))
            self.pipeline.schedule([event])
        return letters
