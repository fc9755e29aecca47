"""``serve --publication '*=100ms'`` with a complete level topic, on the real broker.

The level topic holds fewer levels, each the complete topic's level of that (index, seq), with
counts that add up to every level of the index; the complete topic holds replay's levels; and
once the feed is quiet the latest level of every index is on the level topic too.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from engine.live.kafka.topics import ensure_topics
from engine.refdata.builtin import load_builtin_universe
from engine.wire import IndexLevel, WireCodec
from tests.support.live import (
    InProcessService,
    LiveTopics,
    TopicReader,
    assert_same_levels,
    delete_topics,
    expand_levels,
    last_seq,
    publish_ticks,
    replay_levels,
    simulate,
    wait_until,
)
from tests.support.seed import SEED

pytestmark = pytest.mark.kafka


def _counted(records: list[object], codec: WireCodec) -> dict[tuple[str, int], tuple[float, int]]:
    """(index, seq) -> (level, count) of every level message."""
    out = {}
    for record in records:
        message = codec.decode_level(record.value)  # type: ignore[attr-defined]
        if isinstance(message, IndexLevel):
            out[message.index, message.seq] = (message.level, message.count)
            continue
        counts = message.count or [1] * len(message.seq)
        for seq, level, count in zip(message.seq, message.level, counts, strict=True):
            out[message.index, seq] = (level, count)
    return out


@pytest.mark.parametrize(
    ("level_messages", "delivery"),
    [("batch", "at-least-once"), ("single", "at-least-once"), ("batch", "exactly-once")],
)
async def test_conflated_level_topic_beside_a_complete_one(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path, level_messages: str, delivery: str
) -> None:
    universe = load_builtin_universe()
    ticks = simulate(universe, 3000, SEED + 13)
    expected = replay_levels(universe, ticks, tmp_path)
    complete_topic = f"complete-{topics.group}"
    config = topics.config(
        kafka_bootstrap,
        publication="*=100ms",
        complete_level_topic=complete_topic,
        level_messages=level_messages,
        delivery=delivery,
        max_batch_ticks=200,
    )
    await ensure_topics(config)
    codec = WireCodec(config.wire_format)
    try:
        await publish_ticks(kafka_bootstrap, topics.tick, universe, ticks)
        live = InProcessService(config, universe)
        async with (
            live.running(),
            TopicReader(kafka_bootstrap, topics.level) as level_reader,
            TopicReader(kafka_bootstrap, complete_topic) as complete_reader,
        ):
            await live.wait_consumed(len(ticks))
            final = last_seq(expected)

            async def latest_published() -> bool:
                got = last_seq(expand_levels(await level_reader.read(), codec))
                return got == final

            # The last 100 ms of every index is held until the feed has been quiet that long.
            await wait_until(latest_published, "the latest level of every index", 20)
            await wait_until(
                lambda: _has(complete_reader, len(expected)),
                "every level on the complete topic",
                20,
            )
            conflated_total = live.sample("tickindex_levels_conflated_total")
        complete = expand_levels(complete_reader.records, codec)
        published = _counted(level_reader.records, codec)
    finally:
        await delete_topics(kafka_bootstrap, [complete_topic])

    assert_same_levels(complete, expected, "complete topic vs tickindex replay")
    full = {(row.code, row.seq): row.level for row in complete}
    assert 0 < len(published) < len(full) // 10
    for key, (level, _) in published.items():
        assert full[key] == level, f"{key}: not the level of that seq"
    counted: dict[str, int] = defaultdict(int)
    for (code, _), (_, count) in published.items():
        counted[code] += count
    levels_per_index: dict[str, int] = defaultdict(int)
    for code, _ in full:
        levels_per_index[code] += 1
    assert counted == levels_per_index
    assert conflated_total == len(full) - len(published)


async def _has(reader: TopicReader, levels: int) -> bool:
    return len(expand_levels(await reader.read(), WireCodec("json"))) >= levels


async def test_levels_held_at_a_stop_are_published_after_the_restart(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path
) -> None:
    universe = load_builtin_universe()
    ticks = simulate(universe, 2000, SEED + 14)  # about 1 s of event time: one 5 s interval
    expected = replay_levels(universe, ticks, tmp_path)
    config = topics.config(kafka_bootstrap, publication="*=5000ms", max_batch_ticks=200)
    await ensure_topics(config)
    codec = WireCodec(config.wire_format)
    half = len(ticks) // 2
    await publish_ticks(kafka_bootstrap, topics.tick, universe, ticks.slice(0, half))
    first = InProcessService(config, universe)
    async with first.running():
        await first.wait_consumed(half)
    # Stopped within the interval: every level is still held, in the checkpoint.
    await publish_ticks(kafka_bootstrap, topics.tick, universe, ticks.slice(half, len(ticks)))
    second = InProcessService(config, universe)
    async with second.running(), TopicReader(kafka_bootstrap, topics.level) as reader:
        await second.wait_consumed(len(ticks) - half)

        async def every_index_out() -> bool:
            return last_seq(expand_levels(await reader.read(), codec)) == last_seq(expected)

        await wait_until(every_index_out, "the held levels after 5 s of quiet", 30)
    published = _counted(reader.records, codec)
    full = {(row.code, row.seq): row.level for row in expected}
    counted: dict[str, int] = defaultdict(int)
    for key, (level, count) in published.items():
        assert full[key] == level
        counted[key[0]] += count
    assert counted == last_seq(expected), "counts: every level (seq from 1), held ones too"
    assert len(published) <= 2 * len(last_seq(expected))
