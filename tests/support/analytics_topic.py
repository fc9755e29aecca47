"""Analytics records made by hand and put on a real analytics topic, for subscriber tests."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from aiokafka import AIOKafkaProducer

from engine.analytics.records import (
    AnalyticsRecord,
    HedgeLine,
    IndexAnalytics,
    Mover,
    PairAnalytics,
    SignalEvent,
    kafka_key,
)
from engine.wire import WireCodec


def index_record(index: str, ts: int, level: float, *, final: bool = False) -> IndexAnalytics:
    """The figures of ``index`` at ``ts``, previous close 1000 (a few optional ones set)."""
    return IndexAnalytics(
        index=index,
        ts_event=ts,
        final=final,
        level=level,
        prev_close=1000.0,
        change=level - 1000.0,
        change_pct=(level - 1000.0) / 10.0,
        high=max(level, 1000.0),
        up=3,
        down=1,
        pct_up=75.0,
        adjusted_prev_close=1000.0,
        top=[Mover("0700", 1.5, 402.4, 0.35)],
    )


def pair_record(ts: int, beta: float) -> PairAnalytics:
    """The SmallCap/HSI pair at ``ts`` with a hedge line."""
    hedge = HedgeLine("HSI", 10_000_000.0, -beta * 1e7, -8, -3, -94_123.5)
    return PairAnalytics("SmallCap/HSI", "HSSCI", "HSI", ts, rs=101.25, beta=beta, hedge=hedge)


def signal_record(ts: int, active: bool) -> SignalEvent:
    """The small-cap invalidation rule turning on or off at ``ts``."""
    return SignalEvent(
        "smallcap_invalidation", "invalidation", active, ts, "HSI below 25000", {"rs": 99.5}
    )


Message = AnalyticsRecord | bytes


async def produce_analytics(
    bootstrap: str, topic: str, messages: Sequence[Message], *, wire_format: str = "json"
) -> None:
    """Each record encoded with ``WireCodec.encode_analytics`` and keyed by ``kafka_key``, as
    the service publishes it; raw bytes as they are, without a key."""
    codec = WireCodec("json" if wire_format == "json" else "msgpack")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for message in messages:
            if isinstance(message, bytes):
                await producer.send_and_wait(topic, message)
            else:
                value = codec.encode_analytics(message)
                await producer.send_and_wait(topic, value, key=kafka_key(message))
    finally:
        await producer.stop()


def json_line(record: AnalyticsRecord) -> bytes:
    """The record's line in a JSON Lines file: its JSON wire form."""
    return WireCodec("json").encode_analytics(record) + b"\n"


def decoded_lines(payload: bytes) -> list[AnalyticsRecord]:
    """The records of a JSON Lines file."""
    return msgspec.json.Decoder(AnalyticsRecord).decode_lines(payload)
