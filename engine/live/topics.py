"""Creating the service's topics (idempotent); the state topic is compacted."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from engine.live.config import ServiceConfig

log = logging.getLogger(__name__)


async def ensure_topics(config: ServiceConfig) -> None:
    """Create the service's topics unless they exist (the FX topic only with ``variants``)."""
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
                "max.message.bytes": str(16 << 20),
            },
        ),
    ]
    if config.variants is not None:
        wanted.append(NewTopic(config.fx_topic, 1, 1))
    admin = AIOKafkaAdminClient(bootstrap_servers=config.bootstrap)
    await admin.start()
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
