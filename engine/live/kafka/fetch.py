"""A consumed Kafka message as a lean struct: the fields of a ``ConsumerRecord`` the service uses.

The service builds these itself where it needs a record that Kafka did not hand out (the dead
letter of a maintenance event that failed when applied); consumed messages stay aiokafka
``ConsumerRecord``s. Both satisfy ``engine.live.codec.Record``.
"""

from __future__ import annotations

import msgspec


class FetchedRecord(msgspec.Struct, frozen=True, gc=False):
    """One consumed message: where it was read from, its key and its value.

    The fields of a ``ConsumerRecord`` that the service uses (``engine.live.codec.Record``).
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
