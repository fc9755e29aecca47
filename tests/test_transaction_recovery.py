"""Exactly-once service on a real broker: an aborted transaction is retried in process from the
last commit (nothing twice, nothing skipped), and a record Kafka always refuses stops it clearly.

The refusal is real: the dead-letter topic is created with a small ``max.message.bytes`` and one
large undecodable tick is dead-lettered with its original bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from engine.builtin import load_builtin_universe
from engine.columns import TickColumns
from engine.errors import DeliveryError
from engine.live import service as service_module
from engine.live.output_process import ProcessOutput
from engine.live.recovery import AbortPolicy
from engine.live.topics import ensure_topics
from engine.universe import Universe
from engine.wire import Tick, WireCodec
from tests.conftest import SEED
from tests.live_support import (
    InProcessService,
    LiveTopics,
    TopicReader,
    assert_same_levels,
    by_index,
    delete_topics,
    read_levels,
    replay_levels,
    send_raw,
    simulate,
    wait_until,
)

pytestmark = pytest.mark.kafka

DEAD_LETTER_LIMIT = 2_000
POISON = b"\xc1" + b"p" * 6_000  # undecodable; its dead letter is over the limit


@pytest.fixture
async def topics(kafka_bootstrap: str, request: pytest.FixtureRequest) -> AsyncIterator[LiveTopics]:
    names = LiveTopics.unique(request.node.name)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        limit = {"max.message.bytes": str(DEAD_LETTER_LIMIT)}
        await admin.create_topics([NewTopic(names.dead_letter, 1, 1, topic_configs=limit)])
    finally:
        await admin.close()
    yield names
    await delete_topics(kafka_bootstrap, names.names)


async def _set_dead_letter_limit(bootstrap: str, topic: str, limit: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resource = ConfigResource(
            ConfigResourceType.TOPIC, topic, {"max.message.bytes": str(limit)}
        )
        await admin.alter_configs([resource])
    finally:
        await admin.close()


def _messages(universe: Universe, ticks: TickColumns) -> list[tuple[bytes | None, bytes]]:
    codec, codes = WireCodec("json"), universe.securities
    assert ticks.seq is not None
    return [
        (codes[s].encode(), codec.encode(Tick(codes[s], p, t, q)))
        for s, p, t, q in zip(
            ticks.security.tolist(), ticks.price.tolist(), ticks.ts_event.tolist(),
            ticks.seq.tolist(), strict=True,
        )
    ]  # fmt: skip


def _stream(
    universe: Universe, ticks: TickColumns, poison_at: int
) -> list[tuple[bytes | None, bytes]]:
    good = _messages(universe, ticks)
    return [*good[:poison_at], (None, POISON), *good[poison_at:]]


@pytest.mark.parametrize("output_process", [False, True], ids=["in-process", "output-process"])
async def test_an_aborted_transaction_is_retried_from_the_last_commit(
    kafka_bootstrap: str,
    topics: LiveTopics,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    output_process: bool,
) -> None:
    # Enough attempts that the test surely widens the limit before the service gives up.
    monkeypatch.setattr(service_module, "AbortPolicy", partial(AbortPolicy, attempts=20))
    universe = load_builtin_universe()
    ticks = simulate(universe, 1200, SEED + 31)
    expected = replay_levels(universe, ticks, tmp_path)
    config = topics.config(
        kafka_bootstrap,
        delivery="exactly-once",
        max_batch_ticks=100,
        output_process=output_process,
    )
    await ensure_topics(config)
    await send_raw(kafka_bootstrap, topics.tick, _stream(universe, ticks, 500))
    live = InProcessService(config, universe)

    async def aborted() -> bool:
        return live.sample("tickindex_transactions_aborted_total") >= 1

    async def all_levels() -> bool:
        return len(await read_levels(kafka_bootstrap, topics.level)) >= len(expected)

    async with live.running():
        await wait_until(aborted, "a transaction refused by the broker", 30)
        await _set_dead_letter_limit(kafka_bootstrap, topics.dead_letter, 1 << 20)
        await wait_until(all_levels, "every level committed", 60)
    got = await read_levels(kafka_bootstrap, topics.level)
    async with TopicReader(kafka_bootstrap, topics.dead_letter) as reader:
        letters = await reader.read()

    assert_same_levels(got, expected, "exactly-once levels after the abort vs replay")
    assert [letter.value for letter in letters] == [POISON], "the dead letter, exactly once"
    assert live.sample("tickindex_transactions_aborted_total") >= 1


async def test_a_record_kafka_always_refuses_stops_the_service_clearly(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        service_module, "AbortPolicy", partial(AbortPolicy, attempts=3, first_delay_s=0.05)
    )
    universe = load_builtin_universe()
    ticks = simulate(universe, 600, SEED + 32)
    config = topics.config(
        kafka_bootstrap, delivery="exactly-once", max_batch_ticks=100, output_process=False
    )
    await ensure_topics(config)
    await send_raw(kafka_bootstrap, topics.tick, _stream(universe, ticks, 300))
    live = InProcessService(config, universe)

    with pytest.raises(DeliveryError, match=f"{topics.dead_letter}.*MessageSizeTooLarge") as info:
        await asyncio.wait_for(live.service.run(), timeout=60)
    assert "3 transactions in a row" in str(info.value)
    assert not info.value.retriable
    assert live.sample("tickindex_transactions_aborted_total") == 3

    # Per index, what was committed is a gap-free start of the levels of the ticks before the
    # refused record (bitwise): nothing of the refused batch, nothing after it.
    got = await read_levels(kafka_bootstrap, topics.level)
    before = by_index(replay_levels(universe, ticks.slice(0, 300), tmp_path))
    assert got, "the batches before the refused record were committed"
    for code, rows in by_index(got).items():
        assert rows == before[code][: len(rows)], code
    async with TopicReader(kafka_bootstrap, topics.dead_letter) as reader:
        assert await reader.read() == []


async def test_a_dead_output_process_is_replaced_in_exactly_once_mode(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path
) -> None:
    universe = load_builtin_universe()
    ticks = simulate(universe, 800, SEED + 33)
    first, second = ticks.slice(0, 400), ticks.slice(400, 800)
    expected = replay_levels(universe, ticks, tmp_path)
    config = topics.config(kafka_bootstrap, delivery="exactly-once", max_batch_ticks=100)
    await ensure_topics(config)
    live = InProcessService(config, universe)

    async def levels(count: int) -> bool:
        return len(await read_levels(kafka_bootstrap, topics.level)) >= count

    async with live.running() as service:
        await send_raw(kafka_bootstrap, topics.tick, _messages(universe, first))
        await wait_until(lambda: levels(1), "levels before the kill", 30)
        output = service._output
        assert isinstance(output, ProcessOutput) and output._process is not None
        output._process.kill()
        await send_raw(kafka_bootstrap, topics.tick, _messages(universe, second))
        await wait_until(lambda: levels(len(expected)), "every level after the kill", 60)
        assert service._output is not output, "a new output process took over"
    got = await read_levels(kafka_bootstrap, topics.level)
    assert_same_levels(got, expected, "exactly-once levels across a dead output process")
    assert live.sample("tickindex_transactions_aborted_total") >= 1
