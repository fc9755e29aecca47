"""Topics with a small ``max.message.bytes``, to make the broker refuse a record on purpose."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType


async def create_limited_topic(bootstrap: str, topic: str, max_message_bytes: int) -> None:
    """Create ``topic`` (one partition) refusing records over ``max_message_bytes``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        limit = {"max.message.bytes": str(max_message_bytes)}
        await admin.create_topics([NewTopic(topic, 1, 1, topic_configs=limit)])
    finally:
        await admin.close()


async def set_topic_limit(bootstrap: str, topic: str, max_message_bytes: int) -> None:
    """Change an existing topic's ``max.message.bytes``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        limit = {"max.message.bytes": str(max_message_bytes)}
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, limit)])
    finally:
        await admin.close()
