"""Exactly-once output on a real broker: a record the broker rejects never commits silently."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import TopicPartition

from engine.kernel.columns import LevelColumns
from engine.live.codec import OutgoingMessage
from engine.live.config import ServiceConfig
from engine.live.kafka.output import KafkaOutput, OutputStage, make_producers
from engine.live.kafka.output_process import ProcessOutput
from engine.live.level_encoding import LevelEncoder
from engine.refdata.builtin import load_builtin_universe
from engine.wire import WireCodec
from tests.support.live import TopicReader, delete_topics
from tests.support.topic_limits import create_limited_topic

pytestmark = pytest.mark.kafka

SMALL_LIMIT = 10_000


@pytest.fixture
async def small_topic(kafka_bootstrap: str) -> AsyncIterator[str]:
    """A topic whose ``max.message.bytes`` is 10 KB."""
    name = f"small-records-{uuid.uuid4().hex[:12]}"
    await create_limited_topic(kafka_bootstrap, name, SMALL_LIMIT)
    yield name
    await delete_topics(kafka_bootstrap, [name])


def _output(config: ServiceConfig, in_process: bool) -> OutputStage:
    encoder = LevelEncoder.for_universe(
        load_builtin_universe(), WireCodec("json"), f"levels-{uuid.uuid4().hex[:8]}", batched=True
    )
    if in_process:
        return KafkaOutput(make_producers(config), encoder)
    return ProcessOutput(config, encoder)


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "output-process"])
async def test_a_rejected_record_aborts_the_whole_transaction(
    kafka_bootstrap: str, small_topic: str, *, in_process: bool
) -> None:
    config = ServiceConfig(
        bootstrap=kafka_bootstrap,
        delivery="exactly-once",
        shard=f"reject-{uuid.uuid4().hex[:8]}",
        metrics_port=-1,
    )
    output = _output(config, in_process)
    messages = [
        OutgoingMessage(small_topic, b"first", b"x" * 100),
        OutgoingMessage(small_topic, b"too-large", b"y" * (4 * SMALL_LIMIT)),
        OutgoingMessage(small_topic, b"third", b"z" * 100),
    ]
    offsets = {TopicPartition(small_topic, 0): 0}
    await output.start()
    try:
        with pytest.raises(Exception, match="MessageSizeTooLarge"):
            await output.transaction(LevelColumns.empty(), messages, offsets, f"g-{small_topic}")
    finally:
        try:
            await output.close()
        except Exception as exc:  # the output process re-raises its failure on close
            print(f"close: {exc!r}")
    async with TopicReader(kafka_bootstrap, small_topic) as reader:
        committed = await reader.read()
    assert [record.key for record in committed] == [], "a read_committed consumer saw records"
