"""``TopicSubscriber(commit_each_fetch=False)``: a group's offsets move only on ``commit``."""

from __future__ import annotations

import pytest

from consumers.level_batch import LevelBatch
from consumers.level_client import LevelSubscriber
from tests.support.level_topic import levels, produce, unique


async def _seqs(subscriber: LevelSubscriber, count: int) -> list[int]:
    seen: list[int] = []
    while len(seen) < count:
        batch: LevelBatch = await subscriber.poll(5_000)
        assert len(batch), "no levels within 5 s"
        seen.extend(batch.seq.tolist())
    return seen


@pytest.mark.kafka
async def test_offsets_are_committed_only_when_told(kafka_bootstrap: str) -> None:
    topic, group = unique("commit-told"), unique("g")
    await produce(kafka_bootstrap, topic, [levels("HSI", [1, 2]), levels("HSI", [3])])

    def subscriber() -> LevelSubscriber:
        return LevelSubscriber(
            kafka_bootstrap, topic, group_id=group, start="earliest", commit_each_fetch=False
        )

    async with subscriber() as first:
        assert await _seqs(first, 3) == [1, 2, 3]
        assert len(await first.poll(300)) == 0  # a later fetch commits nothing either
    async with subscriber() as again:  # closed without commit: everything read again
        assert await _seqs(again, 3) == [1, 2, 3]
        await again.commit()
        await produce(kafka_bootstrap, topic, [levels("HSI", [4])])
        assert await _seqs(again, 1) == [4]  # handed out, not committed
    async with subscriber() as resumed:
        assert await _seqs(resumed, 1) == [4]
