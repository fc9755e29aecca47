"""Level messages made by hand and put on a real level topic, for subscriber tests."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from engine.core.timestamps import parse_timestamp
from engine.wire import IndexLevel, IndexLevels, WireCodec


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def hk(stamp: str) -> int:
    """Nanoseconds of a Hong Kong wall-clock time, ``YYYY-MM-DD HH:MM``."""
    return parse_timestamp(stamp.replace(" ", "T") + "+08:00")


def levels(index: str, seqs: Sequence[int], *, base: float = 1000.0, ts: int = 0) -> IndexLevels:
    """An ``index_levels`` message; level = base + seq, ts_event = ts + seq."""
    return IndexLevels(
        index=index,
        prev_close=base,
        level=[base + s for s in seqs],
        ts_event=[ts + s for s in seqs],
        seq=list(seqs),
        ts_published=ts + 10_000,
    )


Message = IndexLevels | IndexLevel | bytes


async def produce(
    bootstrap: str,
    topic: str,
    messages: Sequence[Message],
    *,
    timestamp_ms: int | None = None,
    wire_format: str = "json",
) -> None:
    codec = WireCodec("json" if wire_format == "json" else "msgpack")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for message in messages:
            value = message if isinstance(message, bytes) else codec.encode(message)
            key = None if isinstance(message, bytes) else message.index.encode()
            await producer.send_and_wait(topic, value, key=key, timestamp_ms=timestamp_ms)
    finally:
        await producer.stop()
