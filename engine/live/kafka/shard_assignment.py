"""The shard-assignment topic and its consumer group: Kafka decides which instance runs a shard.

The topic has one partition per shard and carries no messages: the group ``<group_id>-shards``
balances its partitions over the running instances, partition ``k`` standing for shard ``k``.
An instance that stops leaves the group at once; one that dies stops heartbeating and loses its
partitions after ``shard_session_timeout_ms``; either way a rebalance hands them to survivors.
"""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import NewTopic

from engine.live.config import ConfigError, ServiceConfig
from engine.live.kafka.security import kafka_security_options
from engine.live.kafka.topics import create_missing_topics, topic_partitions

log = logging.getLogger(__name__)

REBALANCE_TIMEOUT_MS = 60_000
"""How long the group waits for members to rejoin: long enough to stop their shards first."""


def shard_group_id(config: ServiceConfig) -> str:
    """The consumer group balancing the shard-assignment topic."""
    return f"{config.group_id}-shards"


async def ensure_shard_topic(config: ServiceConfig) -> None:
    """Create the assignment topic with ``config.shards`` partitions unless it exists.

    Raises
    ------
    ConfigError
        When it exists with another number of partitions (another shard count is running).
    BrokerError
        When Kafka cannot be reached.
    """
    await create_missing_topics(config, [NewTopic(config.shard_topic, config.shards, 1)])
    partitions = await topic_partitions(config.bootstrap, [config.shard_topic], security=config)
    found = len(partitions[config.shard_topic])
    if found != config.shards:
        raise ConfigError(
            f"shard topic {config.shard_topic} has {found} partitions, not shards={config.shards}:"
            " every instance of a group must run the same number of shards"
        )


def assignment_consumer(
    config: ServiceConfig, listener: ConsumerRebalanceListener
) -> AIOKafkaConsumer:
    """A consumer of the assignment topic in the shard group, subscribed, not started yet."""
    session = config.shard_session_timeout_ms
    consumer = AIOKafkaConsumer(
        bootstrap_servers=config.bootstrap,
        group_id=shard_group_id(config),
        enable_auto_commit=False,
        auto_offset_reset="latest",
        session_timeout_ms=session,
        heartbeat_interval_ms=max(100, session // 5),
        rebalance_timeout_ms=max(REBALANCE_TIMEOUT_MS, session),
        **kafka_security_options(config),
    )
    consumer.subscribe([config.shard_topic], listener=listener)
    return consumer
