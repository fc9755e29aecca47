"""At-least-once output under refusals on a real broker: a dead letter Kafka refuses is retried,
counted and dropped while the service goes on; a refused level blocks every later checkpoint."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from aiokafka.errors import KafkaError

from engine.core.errors import DeliveryError
from engine.kernel.columns import LevelColumns
from engine.live.codec import OutgoingMessage
from engine.live.kafka.output import KafkaOutput
from engine.live.kafka.topics import ensure_topics
from engine.live.level_encoding import LevelEncoder
from engine.refdata.builtin import load_builtin_universe
from engine.wire import WireCodec
from tests.support.live import (
    InProcessService,
    LiveTopics,
    TopicReader,
    assert_same_levels,
    delete_topics,
    read_levels,
    replay_levels,
    send_raw,
    simulate,
    wait_until,
)
from tests.support.poison import singles
from tests.support.seed import SEED
from tests.support.topic_limits import create_limited_topic

pytestmark = pytest.mark.kafka

LIMIT = 2_000
POISON = b"\xc1" + b"p" * 6_000  # undecodable; its dead letter is over the limit
SMALL_BAD = b"\xc1 not a tick"


@pytest.fixture
async def topics(kafka_bootstrap: str, request: pytest.FixtureRequest) -> AsyncIterator[LiveTopics]:
    names = LiveTopics.unique(request.node.name)
    await create_limited_topic(kafka_bootstrap, names.dead_letter, LIMIT)
    yield names
    await delete_topics(kafka_bootstrap, names.names)


@pytest.mark.parametrize("output_process", [False, True], ids=["in-process", "output-process"])
async def test_a_refused_dead_letter_is_counted_and_the_service_goes_on(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path, *, output_process: bool
) -> None:
    universe = load_builtin_universe()
    ticks = simulate(universe, 900, SEED + 41)
    expected = replay_levels(universe, ticks, tmp_path)
    good = singles(universe, ticks, WireCodec("json"))
    stream = [*good[:300], (None, POISON), *good[300:600], (None, SMALL_BAD), *good[600:]]
    config = topics.config(kafka_bootstrap, max_batch_ticks=100, output_process=output_process)
    await ensure_topics(config)
    await send_raw(kafka_bootstrap, topics.tick, stream)
    live = InProcessService(config, universe)

    async def dropped() -> bool:
        return live.sample("tickindex_dead_letter_write_failures_total") >= 1

    async with live.running():
        await live.wait_consumed(len(stream))
        await wait_until(dropped, "the refused dead letter counted", 20)
    got = await read_levels(kafka_bootstrap, topics.level)
    async with TopicReader(kafka_bootstrap, topics.dead_letter) as reader:
        letters = await reader.read()

    assert live.sample("tickindex_dead_letter_write_failures_total") == 1
    assert live.sample("tickindex_dead_letters_total", reason="undecodable") == 2
    # The refused one did not block the dead-letter partition: the next one is there.
    assert [letter.value for letter in letters] == [SMALL_BAD]
    assert_same_levels(got, expected, "levels around a refused dead letter vs replay")


async def test_a_refused_level_fails_the_batch_and_every_later_checkpoint(
    kafka_bootstrap: str,
) -> None:
    tag = uuid.uuid4().hex[:12]
    level_topic, state_topic = f"lv-{tag}", f"st-{tag}"
    await create_limited_topic(kafka_bootstrap, level_topic, 200)
    await create_limited_topic(kafka_bootstrap, state_topic, 1 << 20)
    universe = load_builtin_universe()
    encoder = LevelEncoder.for_universe(universe, WireCodec("json"), level_topic, batched=True)
    output = KafkaOutput.from_config(LiveTopics.unique(tag).config(kafka_bootstrap), encoder)
    n = 400  # one batched message, far over the level topic's 200 bytes
    levels = LevelColumns(
        np.arange(n, dtype=np.int64),
        np.zeros(n, dtype=np.int32),
        np.full(n, 25_000.0),
        np.arange(1, n + 1, dtype=np.int64),
        np.zeros(n, dtype=np.int64),
    )
    await output.start()
    try:
        refused = await output.submit(levels, [])
        await output.submit(LevelColumns.empty(), [])  # before the refusal is known
        with pytest.raises(DeliveryError, match=r"levels not delivered.*MessageSizeTooLarge"):
            await output.checkpoint(OutgoingMessage(state_topic, b"0", b"state"))
        assert refused.done() and isinstance(refused.exception(), DeliveryError)
        with pytest.raises(DeliveryError):
            await output.submit(LevelColumns.empty(), [])
    finally:
        await output.close()
    try:
        async with TopicReader(kafka_bootstrap, state_topic) as reader:
            assert await reader.read() == [], "a checkpoint followed a lost level"
    finally:
        await delete_topics(kafka_bootstrap, [level_topic, state_topic])


async def test_a_failed_offset_commit_does_not_stop_the_service(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path
) -> None:
    universe = load_builtin_universe()
    ticks = simulate(universe, 400, SEED + 42)
    config = topics.config(kafka_bootstrap, checkpoint_interval_ms=50, output_process=False)
    await ensure_topics(config)
    live = InProcessService(config, universe)
    commits: list[object] = []

    async def refused_commit(offsets: object) -> None:
        commits.append(offsets)
        raise KafkaError("the group coordinator is gone")

    async with live.running() as service:
        assert service._consumer is not None
        service._consumer.commit = refused_commit
        await send_raw(kafka_bootstrap, topics.tick, singles(universe, ticks, WireCodec("json")))
        await live.wait_consumed(len(ticks))

        async def checkpointed_after_refusals() -> bool:
            return len(commits) >= 2

        await wait_until(checkpointed_after_refusals, "checkpoints despite refused commits", 20)
    got = await read_levels(kafka_bootstrap, topics.level)
    assert_same_levels(got, replay_levels(universe, ticks, tmp_path), "levels vs replay")
    assert live.sample("tickindex_last_checkpoint_timestamp_seconds") > 0
