"""Exactly-once service on a real broker: an aborted transaction is retried in process from the
last commit (nothing twice, nothing skipped), a dead letter Kafka refuses is dropped and counted,
and a level Kafka always refuses stops the service clearly.

The refusals are real: topics are created with a small ``max.message.bytes``.
"""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

import pytest

from engine.core.errors import DeliveryError
from engine.live import service as service_module
from engine.live.kafka.output_process import ProcessOutput
from engine.live.kafka.recovery import AbortPolicy
from engine.live.kafka.topics import ensure_topics
from engine.refdata.builtin import load_builtin_universe
from engine.wire import WireCodec
from tests.support.live import (
    InProcessService,
    LiveTopics,
    TopicReader,
    assert_same_levels,
    read_levels,
    replay_levels,
    send_raw,
    simulate,
    wait_until,
)
from tests.support.poison import singles
from tests.support.seed import SEED
from tests.support.topic_limits import create_limited_topic, set_topic_limit

pytestmark = pytest.mark.kafka

LEVEL_LIMIT = 200  # every level message of a batch is larger
DEAD_LETTER_LIMIT = 2_000
POISON = b"\xc1" + b"p" * 6_000  # undecodable; its dead letter is over the limit
SMALL_BAD = b"\xc1 not a tick"


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
        kafka_bootstrap, delivery="exactly-once", max_batch_ticks=100, output_process=output_process
    )
    await create_limited_topic(kafka_bootstrap, topics.level, LEVEL_LIMIT)
    await ensure_topics(config)
    await send_raw(kafka_bootstrap, topics.tick, singles(universe, ticks, WireCodec("json")))
    live = InProcessService(config, universe)

    async def aborted() -> bool:
        return live.sample("tickindex_transactions_aborted_total") >= 1

    async def all_levels() -> bool:
        return len(await read_levels(kafka_bootstrap, topics.level)) >= len(expected)

    async with live.running():
        await wait_until(aborted, "a transaction refused by the broker", 30)
        await set_topic_limit(kafka_bootstrap, topics.level, 1 << 20)
        await wait_until(all_levels, "every level committed", 60)
    got = await read_levels(kafka_bootstrap, topics.level)

    assert_same_levels(got, expected, "exactly-once levels after the aborts vs replay")
    assert live.sample("tickindex_transactions_aborted_total") >= 1


@pytest.mark.parametrize("output_process", [False, True], ids=["in-process", "output-process"])
async def test_a_refused_dead_letter_is_dropped_and_counted_not_fatal(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path, *, output_process: bool
) -> None:
    universe = load_builtin_universe()
    ticks = simulate(universe, 900, SEED + 34)
    expected = replay_levels(universe, ticks, tmp_path)
    good = singles(universe, ticks, WireCodec("json"))
    # Side by side: both dead letters share a record batch, and only the poison is too large.
    stream = [*good[:400], (None, POISON), (None, SMALL_BAD), *good[400:]]
    config = topics.config(
        kafka_bootstrap, delivery="exactly-once", max_batch_ticks=100, output_process=output_process
    )
    await create_limited_topic(kafka_bootstrap, topics.dead_letter, DEAD_LETTER_LIMIT)
    await ensure_topics(config)
    await send_raw(kafka_bootstrap, topics.tick, stream)
    live = InProcessService(config, universe)

    async def all_levels() -> bool:
        return len(await read_levels(kafka_bootstrap, topics.level)) >= len(expected)

    async with live.running():
        await wait_until(all_levels, "every level committed", 60)
    got = await read_levels(kafka_bootstrap, topics.level)
    async with TopicReader(kafka_bootstrap, topics.dead_letter) as reader:
        letters = await reader.read()

    assert_same_levels(got, expected, "exactly-once levels around a refused dead letter")
    assert [letter.value for letter in letters] == [SMALL_BAD], "only the refused one is lost"
    assert live.sample("tickindex_dead_letter_write_failures_total") == 1
    assert live.sample("tickindex_transactions_aborted_total") >= 1


@pytest.mark.parametrize("output_process", [False, True], ids=["in-process", "output-process"])
async def test_a_level_kafka_always_refuses_stops_the_service_clearly(
    kafka_bootstrap: str,
    topics: LiveTopics,
    monkeypatch: pytest.MonkeyPatch,
    output_process: bool,
) -> None:
    """The DeliveryError says why; a failed output process must not replace it on close."""
    monkeypatch.setattr(
        service_module, "AbortPolicy", partial(AbortPolicy, attempts=3, first_delay_s=0.05)
    )
    universe = load_builtin_universe()
    ticks = simulate(universe, 300, SEED + 32)
    config = topics.config(
        kafka_bootstrap,
        delivery="exactly-once",
        max_batch_ticks=100,
        output_process=output_process,
    )
    await create_limited_topic(kafka_bootstrap, topics.level, LEVEL_LIMIT)
    await ensure_topics(config)
    await send_raw(kafka_bootstrap, topics.tick, singles(universe, ticks, WireCodec("json")))
    live = InProcessService(config, universe)

    with pytest.raises(DeliveryError, match=f"{topics.level}.*MessageSizeTooLarge") as info:
        await asyncio.wait_for(live.service.run(), timeout=60)
    assert "3 transactions in a row" in str(info.value)
    assert not info.value.retriable
    assert live.sample("tickindex_transactions_aborted_total") == 3
    assert await read_levels(kafka_bootstrap, topics.level) == []
    async with TopicReader(kafka_bootstrap, topics.state) as reader:
        assert await reader.read() == [], "no checkpoint committed"


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
        await send_raw(kafka_bootstrap, topics.tick, singles(universe, first, WireCodec("json")))
        await wait_until(lambda: levels(1), "levels before the kill", 30)
        output = service._output
        assert isinstance(output, ProcessOutput) and output._process is not None
        output._process.kill()
        await send_raw(kafka_bootstrap, topics.tick, singles(universe, second, WireCodec("json")))
        await wait_until(lambda: levels(len(expected)), "every level after the kill", 60)
        assert service._output is not output, "a new output process took over"
    got = await read_levels(kafka_bootstrap, topics.level)
    assert_same_levels(got, expected, "exactly-once levels across a dead output process")
    assert live.sample("tickindex_transactions_aborted_total") >= 1
