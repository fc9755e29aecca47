"""Wire formats (msgspec), version 1. JSON by default so any Kafka client can read and write them.

Every message carries a ``type`` tag so one decoder handles every kind on a topic:

- ``tick``: one trade, ``{"type":"tick","security":"0700","price":401.2,"ts_event":...}``
  with optional ``seq`` (per-security sequence number) and ``volume``;
- ``tick_batch``: many ticks in one message, as columns (high-rate feeds and replay);
- ``index_level``: one published level of one index;
- ``index_levels``: the levels one index took over one engine batch, as columns (the service's
  default output: one message per index per batch, keyed by index code);
- ``fx_tick``: one FX rate, ``{"type":"fx_tick","pair":"HKDUSD","rate":0.1285,"ts_event":...}``
  (units of the quote currency per unit of the base currency; the FX topic of currency variants);
- ``fx_tick_batch``: many FX ticks in one message, as columns;
- ``index_analytics``, ``pair_analytics``, ``signal_event``: the analytics topic
  (``engine.analytics.records``), encoded by ``encode_analytics`` (which refuses a record with a
  non-finite figure) and read by ``decode_analytics``.

Timestamps are integer nanoseconds since the Unix epoch. Fields are only ever added with
defaults; ``tests/data/wire_v1`` holds saved payloads that must keep decoding.

Decoding a ``tick`` checks what the columns the engine builds from ticks can hold: ``ts_event``
in 1..2**63-1, ``seq`` in 0..2**63-1 and a code of at most ``MAX_CODE_LENGTH`` characters; a
message breaking one of these is a ``msgspec.ValidationError`` naming the field (``$.ts_event``,
...). A ``tick_batch`` is decoded with unconstrained columns so one bad tick does not lose the
others: ``engine.live.codec`` screens those ranges per tick. Prices and rates are checked by the
engine's screening.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from engine.analytics.records import AnalyticsRecord, InvalidRecordError, validate_record
from engine.core.bounds import MAX_CODE_LENGTH

WireFormat = Literal["json", "msgpack"]

INT64_MAX = 2**63 - 1

Timestamp = Annotated[int, msgspec.Meta(gt=0, le=INT64_MAX)]
"""Event time, ns since the epoch: positive and within int64."""
SequenceNumber = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
"""Per-security sequence number of a tick: non-negative and within int64."""
Code = Annotated[str, msgspec.Meta(max_length=MAX_CODE_LENGTH)]
"""A security code or FX pair name."""


class Tick(msgspec.Struct, tag="tick", frozen=True, omit_defaults=True, gc=False):
    """One trade of one security.

    Untracked by the garbage collector (``gc=False``: its fields cannot form a cycle), so
    decoding a fetch of single ticks does not set off collections.
    """

    security: Code
    price: float
    ts_event: Timestamp
    seq: SequenceNumber | None = None
    volume: float | None = None


class TickBatch(msgspec.Struct, tag="tick_batch", frozen=True, omit_defaults=True):
    """Many ticks in event order, as parallel columns of equal length.

    The columns are not range-checked when decoding (see the module docstring): a consumer
    screens each tick against the ranges of ``Tick``. ``volume`` may hold ``null`` for a tick
    without volume among ticks with one.
    """

    security: list[str]
    price: list[float]
    ts_event: list[int]
    seq: list[int] | None = None
    volume: list[float | None] | None = None


class IndexLevel(msgspec.Struct, tag="index_level", frozen=True, omit_defaults=True):
    """One level of one index.

    ``change`` is level minus the previous close; ``seq`` is the index's sequence number (1, 2,
    ... without gaps unless conflated), so a subscriber drops duplicates by ``(index, seq)``;
    ``count`` is how many levels of the index it stands for (conflated: it and those before it
    since the last one published; left out when 1).
    """

    index: str
    level: float
    change: float
    ts_event: int
    ts_published: int
    seq: int
    count: int = 1


class IndexLevels(msgspec.Struct, tag="index_levels", frozen=True, omit_defaults=True):
    """Consecutive levels of one index from one engine batch, as columns.

    Row i is the level after the tick at ``ts_event[i]``, with sequence number ``seq[i]``
    (consecutive unless conflated); ``change`` is against ``prev_close``. ``count[i]`` is how
    many levels row i stands for (conflated); None (left out) when every row stands for one.
    """

    index: str
    prev_close: float
    level: list[float]
    ts_event: list[int]
    seq: list[int]
    ts_published: int
    count: list[int] | None = None


class FxTick(msgspec.Struct, tag="fx_tick", frozen=True):
    """One FX rate of one currency pair.

    ``pair`` names the pair as ``HKDUSD`` (``HKD/USD`` and lower case are accepted too);
    ``rate`` is units of the second currency per unit of the first.
    """

    pair: Code
    rate: float
    ts_event: int


class FxTickBatch(msgspec.Struct, tag="fx_tick_batch", frozen=True):
    """Many FX ticks in event order, as parallel columns of equal length."""

    pair: list[Code]
    rate: list[float]
    ts_event: list[int]


TickMessage = Tick | TickBatch
LevelMessage = IndexLevel | IndexLevels
FxMessage = FxTick | FxTickBatch


class WireCodec:
    """Encoders and decoders built once and reused, for one wire format.

    Parameters
    ----------
    wire_format : {"json", "msgpack"}
        The encoding of message values.
    """

    def __init__(self, wire_format: WireFormat = "json") -> None:
        self.wire_format = wire_format
        if wire_format == "json":
            self._encoder: msgspec.json.Encoder | msgspec.msgpack.Encoder = msgspec.json.Encoder()
            self.ticks: msgspec.json.Decoder[TickMessage] | msgspec.msgpack.Decoder[TickMessage] = (
                msgspec.json.Decoder(TickMessage)
            )
            self.levels: (
                msgspec.json.Decoder[LevelMessage] | msgspec.msgpack.Decoder[LevelMessage]
            ) = msgspec.json.Decoder(LevelMessage)
            self.fx: msgspec.json.Decoder[FxMessage] | msgspec.msgpack.Decoder[FxMessage] = (
                msgspec.json.Decoder(FxMessage)
            )
            self.analytics: (
                msgspec.json.Decoder[AnalyticsRecord] | msgspec.msgpack.Decoder[AnalyticsRecord]
            ) = msgspec.json.Decoder(AnalyticsRecord)
        elif wire_format == "msgpack":
            self._encoder = msgspec.msgpack.Encoder()
            self.ticks = msgspec.msgpack.Decoder(TickMessage)
            self.levels = msgspec.msgpack.Decoder(LevelMessage)
            self.fx = msgspec.msgpack.Decoder(FxMessage)
            self.analytics = msgspec.msgpack.Decoder(AnalyticsRecord)
        else:
            raise ValueError(f"unknown wire format {wire_format!r}, expected json or msgpack")

    def encode(self, message: msgspec.Struct) -> bytes:
        """Bytes of one message."""
        return self._encoder.encode(message)

    def decode_tick(self, payload: bytes) -> TickMessage:
        """One tick message; raises ``msgspec.DecodeError`` (or ValidationError) when malformed."""
        return self.ticks.decode(payload)

    def decode_tick_lines(self, payload: bytes) -> list[TickMessage]:
        """Newline-delimited JSON tick messages (JSON only); raises like ``decode_tick``."""
        if not isinstance(self.ticks, msgspec.json.Decoder):
            raise ValueError("decode_tick_lines needs the json wire format")
        return self.ticks.decode_lines(payload)

    def decode_level(self, payload: bytes) -> LevelMessage:
        """One level message; raises ``msgspec.DecodeError`` when malformed."""
        return self.levels.decode(payload)

    def decode_fx(self, payload: bytes) -> FxMessage:
        """One FX message; raises ``msgspec.DecodeError`` (or ValidationError) when malformed."""
        return self.fx.decode(payload)

    def encode_analytics(self, record: AnalyticsRecord) -> bytes:
        """Bytes of one analytics record; raises ``InvalidRecordError`` (and encodes nothing)
        when a required figure is not finite or a field is out of its bounds.

        The check is one encode and one decode in C: a record that decodes back as it is
        passes (what ``validate_record`` checks field by field in Python, at about ten times
        the cost); any other goes to ``validate_record``, which names the figure.
        """
        try:
            value = self._encoder.encode(record)
            if self.analytics.decode(value) == record:
                return value
        except (TypeError, msgspec.DecodeError):  # TypeError: a field numpy cannot encode
            pass
        validate_record(record)
        message = f"analytics record does not decode back as it is: {record!r:.200}"
        raise InvalidRecordError(message)

    def decode_analytics(self, payload: bytes) -> AnalyticsRecord:
        """One analytics record; raises ``msgspec.DecodeError`` (or ValidationError) when
        malformed, out of bounds or nested too deep, whatever the bytes."""
        try:
            return self.analytics.decode(payload)
        except RecursionError:
            raise msgspec.DecodeError("analytics record nested too deep") from None
