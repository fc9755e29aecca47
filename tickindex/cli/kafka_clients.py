"""The Kafka clients of the commands: a producer, a tick publisher and a level subscriber."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from consumers.level_batch import LevelBatch
from consumers.level_client import LevelSubscriber, StartFrom
from engine.kernel.columns import TickColumns
from engine.live.kafka.metadata_backoff import backoff_metadata_updates
from engine.live.kafka.security import KafkaSecurity, connection_error, kafka_security_options
from engine.live.log_limits import limit_kafka_client_logs
from engine.refdata.universe import Universe
from engine.wire import WireCodec
from producers.kafka_publisher import TickPublisher
from producers.pacing import StopControl
from tickindex.cli.kafka_security import security_from_args

POLL_S = 0.2


@contextlib.asynccontextmanager
async def kafka_producer(
    bootstrap: str, security: KafkaSecurity | None = None
) -> AsyncIterator[AIOKafkaProducer]:
    """A started idempotent producer (acks=all), stopped on exit.

    ``security`` (from ``security_from_args``) says how to connect; None: plaintext.

    Raises
    ------
    BrokerError
        When the broker cannot be reached or refuses the credentials.
    ConfigError
        When the security settings are inconsistent or name an unreadable file.
    """
    limit_kafka_client_logs()  # a broker outage would log a reconnect line every few ms
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=512 << 10,
        **kafka_security_options(security or KafkaSecurity()),
    )
    backoff_metadata_updates(producer)
    try:
        await producer.start()
    except KafkaError as exc:
        await producer.stop()
        raise connection_error(exc, bootstrap, security) from exc
    try:
        yield producer
    finally:
        await producer.stop()


def tick_publisher(
    producer: AIOKafkaProducer, args: argparse.Namespace, universe: Universe
) -> TickPublisher:
    """The publisher of ``--topic``, ``--wire-format`` and ``--batch-ticks``."""
    return TickPublisher(
        producer,
        args.topic,
        universe,
        WireCodec(args.wire_format),
        batch_ticks=args.batch_ticks,
    )


async def send_ticks(publisher: TickPublisher, ticks: TickColumns) -> None:
    """Publish ``ticks`` (if any) and flush, so they are out before the next pause."""
    if len(ticks):
        await publisher.publish(ticks)
        await publisher.flush()


def level_subscriber(
    args: argparse.Namespace,
    *,
    start: StartFrom,
    from_time_ns: int | None = None,
    group_id: str | None = None,
) -> LevelSubscriber:
    """The subscriber of ``--topic`` on ``--bootstrap`` in ``--wire-format``, with the security
    flags; ``start``, ``from_time_ns`` and ``group_id`` as in ``LevelSubscriber``."""
    return LevelSubscriber(
        args.bootstrap,
        args.topic,
        wire_format=args.wire_format,
        from_time_ns=from_time_ns,
        group_id=group_id,
        start=start,
        security=security_from_args(args),
    )


async def next_levels(subscriber: LevelSubscriber, stop: StopControl) -> LevelBatch:
    """The next levels, after waiting at most ``POLL_S`` or what is left of the stop's budget."""
    left = stop.remaining()
    timeout_s = POLL_S if left is None else min(POLL_S, left)
    return await subscriber.poll(max(1, round(timeout_s * 1000)))
