"""Kafka records -> engine columns: decoding fetched ticks; the outgoing message type.

Levels are encoded by ``engine.live.level_encoding``, dead letters by ``engine.live.dead_letters``.

Decoding never raises whatever the bytes: a message that is not a valid tick (malformed, nested
too deep for the decoder, a time or ``seq`` outside int64, ...) is listed as ``Undecodable`` with
a ``RejectReason`` and the rest of the fetch goes on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import NamedTuple, Protocol, cast

import msgspec
import numpy as np
from numpy.typing import NDArray

from engine.core.bounds import MAX_CODE_LENGTH
from engine.kernel.columns import TickColumns
from engine.kernel.screening import RejectReason
from engine.kernel.sequencing import NO_SEQ
from engine.kernel.volume import volume_column
from engine.refdata.universe import Universe
from engine.wire import Tick, TickMessage, WireCodec


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


class Undecodable(NamedTuple):
    """A fetched message that is not a valid tick message, or one bad tick of a ``tick_batch``.

    Attributes
    ----------
    position : int
        Its record's position in the fetch.
    reason : RejectReason
        ``BAD_TIMESTAMP`` / ``BAD_SEQ`` / ``PRICE_OUT_OF_RANGE`` when a field is out of range,
        else ``UNDECODABLE``.
    detail : str
        The decoder's error.
    batch_position : int or None
        The bad tick's place inside a ``tick_batch`` message, when the error names one.
    """

    position: int
    reason: RejectReason
    detail: str
    batch_position: int | None = None


_FIELD_REASONS = {"ts_event": RejectReason.BAD_TIMESTAMP, "seq": RejectReason.BAD_SEQ}
_ERROR_PATH = re.compile(r"at `\$\.(\w+)(?:\[(\d+)\])?`$")


def classify_error(position: int, error: Exception) -> Undecodable:
    """Why decoding the record at ``position`` failed with ``error`` (any exception)."""
    if not isinstance(error, msgspec.MsgspecError):
        return Undecodable(position, RejectReason.UNDECODABLE, f"{type(error).__name__}: {error}")
    detail = str(error)
    path = _ERROR_PATH.search(detail) if isinstance(error, msgspec.ValidationError) else None
    if path is None:
        return Undecodable(position, RejectReason.UNDECODABLE, detail)
    name, item = path.groups()
    reason = _FIELD_REASONS.get(name, RejectReason.UNDECODABLE)
    if name == "price" and "out of range" in detail:
        reason = RejectReason.PRICE_OUT_OF_RANGE
    return Undecodable(position, reason, detail, None if item is None else int(item))


@dataclass
class DecodedFetch:
    """Ticks of one fetch plus the messages that could not be decoded.

    ``ticks.origin`` is each tick's row in the fetch; ``message[row]`` is the position of its
    record in ``records`` and ``position_in_message[row]`` its place inside a ``tick_batch``
    message (-1 for a single ``tick`` message). ``ticks.volume`` is None when no tick of the
    fetch had a volume; ``bad_volumes`` counts the volumes screened out (``screen_volume``: the
    tick stays, its volume becomes NaN).
    """

    records: Sequence[Record]
    ticks: TickColumns
    message: NDArray[np.int64]
    position_in_message: NDArray[np.int64]
    undecodable: list[Undecodable]
    bad_volumes: int = 0


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
        values = [record.value for record in records]
        messages = self._decode_at_once(values) if values else None
        if messages is not None and set(map(type, messages)) == {Tick}:
            return self._single_ticks(records, cast("list[Tick]", messages))
        return self._one_by_one(records, values, messages)

    def _decode_at_once(self, values: list[bytes | None]) -> list[TickMessage] | None:
        """All values in one decoder call, or None when that cannot map messages to records.

        JSON values joined by newlines decode as lines. That is exact only when no value is
        empty or holds a newline itself (then each line is one whole record); otherwise, and on
        any error, the caller decodes record by record to name the bad ones.
        """
        if self.codec.wire_format != "json" or not all(values):
            return None
        joined = b"\n".join(values)  # type: ignore[arg-type]  # all() excluded None
        if joined.count(b"\n") != len(values) - 1:
            return None
        try:
            messages = self.codec.decode_tick_lines(joined)
        except Exception:  # any bad value (RecursionError too): name it record by record
            return None
        return messages if len(messages) == len(values) else None

    def _single_ticks(self, records: Sequence[Record], ticks: list[Tick]) -> DecodedFetch:
        """Columns of a fetch made only of ``tick`` messages (the high-rate case)."""
        size = len(ticks)
        volume, bad_volumes = volume_column(list(map(_volume_of, ticks)))
        return DecodedFetch(
            records=records,
            ticks=TickColumns(
                ts_event=np.fromiter([t.ts_event for t in ticks], dtype=np.int64, count=size),
                security=self.universe.security_ids([t.security for t in ticks]),
                price=np.fromiter([t.price for t in ticks], dtype=np.float64, count=size),
                seq=np.fromiter(
                    [NO_SEQ if t.seq is None else t.seq for t in ticks], dtype=np.int64, count=size
                ),
                origin=np.arange(size, dtype=np.int64),
                volume=volume,
            ),
            message=np.arange(size, dtype=np.int64),
            position_in_message=np.full(size, -1, dtype=np.int64),
            undecodable=[],
            bad_volumes=bad_volumes,
        )

    def _one_by_one(
        self,
        records: Sequence[Record],
        values: list[bytes | None],
        decoded: list[TickMessage] | None,
    ) -> DecodedFetch:
        codes: list[str] = []
        prices: list[float] = []
        stamps: list[int] = []
        seqs: list[int] = []
        seq_given: list[bool] = []
        volumes: list[float | None] = []
        messages: list[int] = []
        positions: list[int] = []
        bad: list[Undecodable] = []
        decode = self.codec.decode_tick
        for position, value in enumerate(values):
            if decoded is not None:
                message = decoded[position]
            else:
                try:
                    message = decode(value or b"")
                except Exception as exc:  # whatever the bytes, never out of the service
                    bad.append(classify_error(position, exc))
                    continue
            if isinstance(message, Tick):
                codes.append(message.security)
                prices.append(message.price)
                stamps.append(message.ts_event)
                seqs.append(NO_SEQ if message.seq is None else message.seq)
                seq_given.append(False)  # checked by the decoder already
                volumes.append(message.volume)
                messages.append(position)
                positions.append(-1)
                continue
            size = len(message.security)
            if (
                len(message.price) != size
                or len(message.ts_event) != size
                or (message.seq is not None and len(message.seq) != size)
                or (message.volume is not None and len(message.volume) != size)
            ):
                detail = "tick_batch columns differ in length"
                bad.append(Undecodable(position, RejectReason.UNDECODABLE, detail))
                continue
            codes.extend(message.security)
            prices.extend(message.price)
            stamps.extend(message.ts_event)
            seqs.extend([NO_SEQ] * size if message.seq is None else message.seq)
            seq_given.extend([message.seq is not None] * size)
            volumes.extend([None] * size if message.volume is None else message.volume)
            messages.extend([position] * size)
            positions.extend(range(size))
        ts_event, ts_fits = int64_column(stamps)
        seq, seq_fits = int64_column(seqs)
        message_of = np.array(messages, dtype=np.int64)
        position_of = np.array(positions, dtype=np.int64)
        # Ranges of a tick_batch's ticks, screened per tick (a ``tick`` was checked whole).
        reasons = np.zeros(len(codes), dtype=np.uint8)
        reasons[np.array(seq_given, dtype=bool) & (~seq_fits | (seq < 0))] = RejectReason.BAD_SEQ
        reasons[~ts_fits | (ts_event <= 0)] = RejectReason.BAD_TIMESTAMP
        lengths = np.fromiter(map(len, codes), dtype=np.int64, count=len(codes))
        reasons[lengths > MAX_CODE_LENGTH] = RejectReason.UNDECODABLE
        keep = slice(None)
        if reasons.any():
            for row in np.flatnonzero(reasons).tolist():
                reason = RejectReason(int(reasons[row]))
                detail = _range_detail(reason, codes[row], stamps[row], seqs[row])
                bad.append(Undecodable(messages[row], reason, detail, positions[row]))
            bad.sort(
                key=lambda u: (u.position, -1 if u.batch_position is None else u.batch_position)
            )
            keep = reasons == 0
            if volumes.count(None) < len(volumes):  # a rejected tick's volume is not screened
                volumes = np.array(volumes, dtype=object)[keep].tolist()
        security = self.universe.security_ids(codes)[keep]
        volume, bad_volumes = volume_column(volumes)
        ticks = TickColumns(
            ts_event=ts_event[keep],
            security=security,
            price=np.array(prices, dtype=np.float64)[keep],
            seq=seq[keep],
            origin=np.arange(len(security), dtype=np.int64),
            volume=volume,
        )
        return DecodedFetch(
            records=records,
            ticks=ticks,
            message=message_of[keep],
            position_in_message=position_of[keep],
            undecodable=bad,
            bad_volumes=bad_volumes,
        )


_INT64 = np.iinfo(np.int64)
_volume_of = attrgetter("volume")


def int64_column(values: list[int]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """``values`` as int64 and which of them fit (those that do not are 0 in the column)."""
    try:
        return np.array(values, dtype=np.int64), np.ones(len(values), dtype=bool)
    except OverflowError:  # a value beyond int64: only poison takes this slower way
        fits = [_INT64.min <= v <= _INT64.max for v in values]
        column = np.array([v if ok else 0 for v, ok in zip(values, fits, strict=True)], np.int64)
        return column, np.array(fits, dtype=bool)


def _range_detail(reason: RejectReason, code: str, ts_event: int, seq: int) -> str:
    """Why one tick of a ``tick_batch`` is out of range, like the decoder says it of a tick."""
    if reason == RejectReason.UNDECODABLE:
        return f"security code of {len(code)} characters, more than {MAX_CODE_LENGTH}"
    if reason == RejectReason.BAD_TIMESTAMP:
        return f"bad_timestamp: ts_event {ts_event} outside 1..2**63-1"
    return f"bad_seq: seq {seq} outside 0..2**63-1"
