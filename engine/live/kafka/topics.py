"""Creating the service's topics (idempotent); the state topic is compacted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from engine.core.errors import BrokerError
from engine.live.config import ServiceConfig
from engine.live.kafka.output import MAX_MESSAGE_BYTES
from engine.live.kafka.security import (
    KafkaSecurity,
    connection_error,
    kafka_security_options,
)

_METADATA_ATTEMPTS = 50

log = logging.getLogger(__name__)


async def ensure_topics(config: ServiceConfig) -> None:
    """Create the service's topics unless they exist (the FX topic only with ``variants``, the
    analytics topic only with ``analytics``)."""
    wanted = [
        NewTopic(config.tick_topic, config.tick_partitions, 1),
        NewTopic(config.level_topic, 1, 1),
        NewTopic(config.dead_letter_topic, 1, 1),
        NewTopic(config.control_topic, 1, 1),
        NewTopic(config.audit_topic, 1, 1),
        NewTopic(config.ohlc_topic, 1, 1),
        NewTopic(
            config.state_topic,
            1,
            1,
            topic_configs={
                "cleanup.policy": "compact",
                "min.compaction.lag.ms": "60000",
                "max.message.bytes": str(MAX_MESSAGE_BYTES),
            },
        ),
    ]
    if config.variants is not None:
        wanted.append(NewTopic(config.fx_topic, 1, 1))
    if config.analytics:
        wanted.append(NewTopic(config.analytics_topic, 1, 1))
    if config.complete_level_topic is not None:
        wanted.append(NewTopic(config.complete_level_topic, 1, 1))
    await create_missing_topics(config, wanted)


async def create_missing_topics(security: ServiceConfig, wanted: Sequence[NewTopic]) -> None:
    """Create those of ``wanted`` that do not exist (another instance may create them too)."""
    admin = await _started_admin(security.bootstrap, security)
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in wanted if topic.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                log.debug("topics created concurrently")
            log.info("created topics %s", ", ".join(t.name for t in missing))
    finally:
        await admin.close()


async def _started_admin(bootstrap: str, security: KafkaSecurity) -> AIOKafkaAdminClient:
    """A connected admin client; ``BrokerError`` (saying if the login failed) when it cannot."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_security_options(security))
    try:
        await admin.start()
    except KafkaError as exc:
        await admin.close()
        raise connection_error(exc, bootstrap, security) from exc
    return admin


async def topic_partitions(
    bootstrap: str, topics: Sequence[str], *, security: KafkaSecurity | None = None
) -> dict[str, set[int]]:
    """Partition numbers of each of ``topics``; waits a few seconds for new topics to settle.

    ``security`` (a ``ServiceConfig`` or ``KafkaSecurity``) says how to connect; None: plaintext.

    Raises
    ------
    BrokerError
        When a topic does not exist (or has no leaders) after about five seconds.
    """
    admin = await _started_admin(bootstrap, security or KafkaSecurity())
    try:
        for _ in range(_METADATA_ATTEMPTS):
            described = await admin.describe_topics(list(topics))
            found = {
                t["topic"]: {p["partition"] for p in t["partitions"]}
                for t in described
                if t["error_code"] == 0 and t["partitions"]
            }
            missing = [topic for topic in topics if topic not in found]
            if not missing:
                return found
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    raise BrokerError(f"topics {', '.join(missing)} not available on {bootstrap}")
