"""Conflated level topics for subscribers: ``count`` decoded, and gaps of a complete topic found."""

from __future__ import annotations

import numpy as np
import pytest

from consumers.level_batch import LevelBatch
from consumers.level_checks import level_message_problem
from consumers.level_client import LevelSubscriber
from consumers.seq_gaps import SeqGap, SeqGaps
from engine.wire import IndexLevel, IndexLevels, WireCodec
from tests.support.records import FakeRecord


def _batch(codes: tuple[str, ...], index: list[int], seq: list[int]) -> LevelBatch:
    n = len(seq)
    zeros, level = np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.float64)
    return LevelBatch(codes, np.array(index, np.int32), level, level, np.array(seq), zeros, zeros)


def test_gaps_are_found_within_and_across_batches_per_index() -> None:
    gaps = SeqGaps()
    gaps.observe(_batch(("A", "B"), [0, 1, 0, 0, 1], [5, 1, 6, 9, 2]))
    gaps.observe(_batch(("A", "B"), [1, 0], [3, 10]))  # no gap: B 2 -> 3, A 9 -> 10
    gaps.observe(_batch(("A", "B", "C"), [2, 1, 0], [7, 6, 11]))  # C's first: no gap
    gaps.observe(_batch(("A", "B", "C"), [], []))
    assert gaps.gaps == [SeqGap("A", 7, 8), SeqGap("B", 4, 5)]
    assert gaps.missing == 4
    assert gaps.last_seq == {"A": 11, "B": 6, "C": 7}


def test_subscriber_batches_carry_count_one_unless_conflated() -> None:
    codec = WireCodec("json")
    subscriber = LevelSubscriber("127.0.0.1:1", "levels")
    messages = [
        IndexLevels("HSI", 100.0, [101.0, 102.0], [1, 2], [1, 2], 5),
        IndexLevels("HSI", 100.0, [103.0], [3], [7], 5, count=[5]),
        IndexLevel("HSCEI", 9.0, 1.0, 4, 5, 3, count=3),
        IndexLevel("HSCEI", 9.5, 1.5, 5, 5, 4),
    ]
    records = [FakeRecord("levels", 0, n, None, codec.encode(m)) for n, m in enumerate(messages)]
    batch = subscriber._decode(records)
    assert batch.count is not None
    assert batch.seq.tolist() == [1, 2, 7, 3, 4]
    assert batch.count.tolist() == [1, 1, 5, 3, 1]


@pytest.mark.parametrize(
    "message",
    [
        IndexLevels("HSI", 100.0, [101.0, 102.0], [1, 2], [1, 2], 5, count=[1]),
        IndexLevels("HSI", 100.0, [101.0], [1], [1], 5, count=[0]),
        IndexLevel("HSI", 101.0, 1.0, 1, 5, 1, count=-2),
    ],
)
def test_a_count_that_does_not_fit_makes_the_message_unusable(
    message: IndexLevel | IndexLevels,
) -> None:
    assert level_message_problem(message) is not None
