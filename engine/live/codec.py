"""Kafka records <-> engine columns: decoding fetched ticks, encoding levels and dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import msgspec
import numpy as np
from numpy.typing import NDArray

from engine.columns import LevelColumns, TickColumns
from engine.screening import RejectReason
from engine.sequencing import NO_SEQ
from engine.universe import Universe
from engine.wire import IndexLevel, IndexLevels, Tick, WireCodec

MAX_LEVELS_PER_MESSAGE = 8192
"""Largest ``index_levels`` message: about 360 KB of JSON."""


class Record(Protocol):
    """The parts of an aiokafka ``ConsumerRecord`` the codec uses."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to produce."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class DecodedFetch:
    """Ticks of one fetch plus the messages that could not be decoded.

    ``ticks.origin`` is each tick's row in the fetch; ``message[row]`` is the position of its
    record in ``records`` and ``position_in_message[row]`` its place inside a ``tick_batch``
    message (-1 for a single ``tick`` message).
    """

    records: Sequence[Record]
    ticks: TickColumns
    message: NDArray[np.int64]
    position_in_message: NDArray[np.int64]
    undecodable: list[tuple[int, str]]


class RejectBuffer:
    """A ``RejectSink`` keeping the ticks the pipeline rejected in one batch, with reasons."""

    def __init__(self) -> None:
        self.ticks: list[TickColumns] = []
        self.reasons: list[NDArray[np.uint8]] = []

    def reject(self, ticks: TickColumns, reasons: NDArray[np.uint8]) -> None:
        """Keep rejected ticks and their ``RejectReason`` codes."""
        self.ticks.append(ticks)
        self.reasons.append(reasons)

    def take(self) -> tuple[TickColumns, NDArray[np.uint8]]:
        """Everything kept since the last call (ticks, reason codes), then forget it."""
        ticks = TickColumns.concat(self.ticks)
        reasons = np.concatenate(self.reasons) if self.reasons else np.empty(0, dtype=np.uint8)
        self.ticks.clear()
        self.reasons.clear()
        return ticks, reasons


def source_of(record: Record) -> str:
    """``topic[partition]@offset``, how logs and dead letters name a message."""
    return f"{record.topic}[{record.partition}]@{record.offset}"


class TickDecoder:
    """Turns fetched tick messages into ``TickColumns`` (one decoder, built once).

    Parameters
    ----------
    universe : Universe
        Resolves security codes.
    codec : WireCodec
        The wire format of the tick topic.
    """

    def __init__(self, universe: Universe, codec: WireCodec) -> None:
        self.universe = universe
        self.codec = codec

    def decode(self, records: Sequence[Record]) -> DecodedFetch:
        """Decode every record; a bad one is listed in ``undecodable`` and the rest go on."""
        codes: list[str] = []
        prices: list[float] = []
        stamps: list[int] = []
        seqs: list[int] = []
        messages: list[int] = []
        positions: list[int] = []
        undecodable: list[tuple[int, str]] = []
        decode = self.codec.decode_tick
        for position, record in enumerate(records):
            try:
                message = decode(record.value or b"")
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                undecodable.append((position, str(exc)))
                continue
            if isinstance(message, Tick):
                codes.append(message.security)
                prices.append(message.price)
                stamps.append(message.ts_event)
                seqs.append(NO_SEQ if message.seq is None else message.seq)
                messages.append(position)
                positions.append(-1)
                continue
            size = len(message.security)
            if (
                len(message.price) != size
                or len(message.ts_event) != size
                or (message.seq is not None and len(message.seq) != size)
            ):
                undecodable.append((position, "tick_batch columns differ in length"))
                continue
            codes.extend(message.security)
            prices.extend(message.price)
            stamps.extend(message.ts_event)
            seqs.extend([NO_SEQ] * size if message.seq is None else message.seq)
            messages.extend([position] * size)
            positions.extend(range(size))
        ticks = TickColumns(
            ts_event=np.array(stamps, dtype=np.int64),
            security=self.universe.security_ids(codes),
            price=np.array(prices, dtype=np.float64),
            seq=np.array(seqs, dtype=np.int64),
            origin=np.arange(len(codes), dtype=np.int64),
        )
        return DecodedFetch(
            records=records,
            ticks=ticks,
            message=np.array(messages, dtype=np.int64),
            position_in_message=np.array(positions, dtype=np.int64),
            undecodable=undecodable,
        )


class LevelEncoder:
    """Turns a batch of levels into level-topic messages keyed by index code.

    Parameters
    ----------
    universe : Universe
        Index codes and previous closes.
    codec : WireCodec
        Wire format.
    topic : str
        The level topic.
    batched : bool
        True: one ``index_levels`` message per index per batch; False: one ``index_level``
        message per level.
    extra_indices : sequence of (str, float), optional
        Indices numbered after the universe's (currency variants: id ``len(universe.indices)
        + k``), as (code, previous close).
    """

    def __init__(
        self,
        universe: Universe,
        codec: WireCodec,
        topic: str,
        *,
        batched: bool,
        extra_indices: Sequence[tuple[str, float]] = (),
    ) -> None:
        self.codes = (*universe.index_codes, *(code for code, _ in extra_indices))
        self.keys = [code.encode() for code in self.codes]
        self.prev_close = np.array(
            [s.prev_close_level for s in universe.indices] + [close for _, close in extra_indices]
        )
        self.codec = codec
        self.topic = topic
        self.batched = batched

    def encode(self, levels: LevelColumns, ts_published: int) -> list[OutgoingMessage]:
        """Messages for ``levels`` (in tick order); per-index order is kept within each key."""
        if len(levels) == 0:
            return []
        if not self.batched:
            return self._singles(levels, ts_published)
        order = np.argsort(levels.index, kind="stable")
        grouped = levels.take(order)
        starts = np.flatnonzero(np.diff(grouped.index, prepend=-1))
        ends = np.append(starts[1:], len(grouped))
        out = []
        for first, last in zip(starts.tolist(), ends.tolist(), strict=True):
            index = int(grouped.index[first])
            # Chunks keep every message well under Kafka's 1 MiB default, whatever the batch size.
            for start in range(first, last, MAX_LEVELS_PER_MESSAGE):
                end = min(start + MAX_LEVELS_PER_MESSAGE, last)
                message = IndexLevels(
                    index=self.codes[index],
                    prev_close=float(self.prev_close[index]),
                    level=grouped.level[start:end].tolist(),
                    ts_event=grouped.ts_event[start:end].tolist(),
                    seq=grouped.seq[start:end].tolist(),
                    ts_published=ts_published,
                )
                encoded = self.codec.encode(message)
                out.append(OutgoingMessage(self.topic, self.keys[index], encoded))
        return out

    def _singles(self, levels: LevelColumns, ts_published: int) -> list[OutgoingMessage]:
        change = levels.level - self.prev_close[levels.index]
        encode = self.codec.encode
        return [
            OutgoingMessage(
                self.topic,
                self.keys[index],
                encode(IndexLevel(self.codes[index], level, delta, ts, ts_published, seq)),
            )
            for index, level, delta, ts, seq in zip(
                levels.index.tolist(),
                levels.level.tolist(),
                change.tolist(),
                levels.ts_event.tolist(),
                levels.seq.tolist(),
                strict=True,
            )
        ]


def dead_letters(
    fetch: DecodedFetch,
    rejected: TickColumns,
    reasons: NDArray[np.uint8],
    topic: str,
) -> list[OutgoingMessage]:
    """Dead-letter messages: the original bytes and key, with reason and source in headers.

    One message per undecodable record and per rejected tick (a ``tick_batch`` message with
    several bad ticks is written once per bad tick, with its position in the batch).
    """
    out = [
        dead_letter(fetch.records[position], topic, RejectReason.UNDECODABLE, detail, None)
        for position, detail in fetch.undecodable
    ]
    if len(rejected) == 0 or rejected.origin is None:
        return out
    rows = rejected.origin
    for record_at, within, reason, price in zip(
        fetch.message[rows].tolist(),
        fetch.position_in_message[rows].tolist(),
        reasons.tolist(),
        rejected.price.tolist(),
        strict=True,
    ):
        label = RejectReason(reason)
        detail = f"{label.label}: price {price!r}"
        position = None if within < 0 else within
        out.append(dead_letter(fetch.records[record_at], topic, label, detail, position))
    return out


def dead_letter(
    record: Record,
    topic: str,
    reason: RejectReason | str,
    detail: str,
    position: int | None = None,
) -> OutgoingMessage:
    """A dead letter for ``record``: its key and bytes, reason and source in headers.

    Parameters
    ----------
    record : Record
        The rejected message.
    topic : str
        The dead-letter topic.
    reason : RejectReason or str
        Why: a tick ``RejectReason`` (its ``label`` is used) or a label of its own (FX ticks
        use ``fx_<FxRejectReason.label>``).
    detail : str
        Human-readable error.
    position : int, optional
        Place of the bad item inside a batch message.

    Returns
    -------
    OutgoingMessage
    """
    label = reason if isinstance(reason, str) else reason.label
    headers = [
        ("tickindex.reason", label.encode()),
        ("tickindex.error", detail.encode()),
        ("tickindex.source", source_of(record).encode()),
        ("tickindex.source_topic", record.topic.encode()),
        ("tickindex.source_partition", str(record.partition).encode()),
        ("tickindex.source_offset", str(record.offset).encode()),
    ]
    if position is not None:
        headers.append(("tickindex.batch_position", str(position).encode()))
    return OutgoingMessage(topic, record.key, record.value or b"", headers)
