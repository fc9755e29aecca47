"""``LevelBook`` (snapshot, history, replay or gap) and ``ClientQueue`` (bounded, conflating)."""

from __future__ import annotations

import json

import numpy as np

from consumers.gateway.book import Gap, Level, LevelBook
from consumers.gateway.client_queue import (
    ClientQueue,
    Item,
    Outgoing,
    Taken,
    encode_event,
    latest_per_index,
)
from consumers.level_batch import LevelBatch
from tests.support.seed import SEED


def batch(codes: tuple[str, ...], index: list[int], seq: list[int]) -> LevelBatch:
    seqs = np.array(seq, dtype=np.int64)
    return LevelBatch(
        codes,
        np.array(index, dtype=np.int32),
        seqs + np.float64(1000.0),
        seqs.astype(np.float64),
        seqs,
        100 + seqs,
        200 + seqs,
    )


def test_book_keeps_latest_and_a_bounded_ring() -> None:
    book = LevelBook(history_levels=3)
    got = book.apply(batch(("HSI", "HSCEI"), [0, 1, 0, 0, 0], [1, 1, 2, 3, 4]))
    assert [(lv.index, lv.seq) for lv in got] == [
        ("HSI", 1), ("HSCEI", 1), ("HSI", 2), ("HSI", 3), ("HSI", 4)
    ]  # fmt: skip
    assert list(book.latest()) == [Level("HSCEI", 1001.0, 1, 101), Level("HSI", 1004.0, 4, 104)]
    assert [lv.seq for lv in book.history("HSI", None, None)] == [2, 3, 4]
    assert [lv.seq for lv in book.history("HSI", 103, 103)] == [3]
    assert book.history("HSTECH", None, None) == []


def test_since_replays_from_the_ring_or_reports_a_gap() -> None:
    book = LevelBook(history_levels=3)
    book.apply(batch(("HSI",), [0] * 5, [1, 2, 3, 4, 5]))  # ring: 3, 4, 5
    assert [lv.seq for lv in book.since("HSI", 3)] == [4, 5]  # type: ignore[union-attr]
    assert [lv.seq for lv in book.since("HSI", 2)] == [3, 4, 5]  # type: ignore[union-attr]
    assert book.since("HSI", 1) == Gap("HSI", 1)
    assert book.since("HSI", 5) == []
    assert book.since("HSCEI", 0) == []
    assert Gap("HSI", 1).message() == {
        "type": "gap", "index": "HSI", "after_seq": 1, "resync": "snapshot"
    }  # fmt: skip


def level_list(code: str, seqs: range) -> list[Level]:
    return [Level(code, 1000.0 + s, s, s) for s in seqs]


def levels(code: str, seqs: range) -> Outgoing:
    return Outgoing.encode(level_list(code, seqs))


def index_seq(taken: Taken) -> list[tuple[str, int]]:
    """The (index, seq) of the taken levels, after checking each one's JSON is still its own."""
    assert taken.wire == [encode_event(item) for item in taken.items]
    return [(lv.index, lv.seq) for lv in taken.items if isinstance(lv, Level)]


def test_latest_per_index_keeps_the_order_of_the_last_levels() -> None:
    mixed = [*level_list("A", range(1, 3)), *level_list("B", range(1, 2))]
    mixed.append(Level("A", 1003.0, 3, 3))
    assert latest_per_index(mixed) == [2, 3]


def test_a_frame_is_the_json_array_of_the_events_in_order() -> None:
    events = Outgoing.encode([*level_list("A", range(1, 3)), Gap("B", 4)])
    assert json.loads(events.frame()) == [
        {"type": "level", "index": "A", "level": 1001.0, "seq": 1, "ts_event": 1},
        {"type": "level", "index": "A", "level": 1002.0, "seq": 2, "ts_event": 2},
        {"type": "gap", "index": "B", "after_seq": 4, "resync": "snapshot"},
    ]


async def test_a_full_queue_conflates_and_marks_the_client_behind_until_written() -> None:
    now = [0.0]
    queue = ClientQueue("sse", frozenset({"A", "B"}), capacity=4, clock=lambda: now[0])
    queue.put(levels("A", range(1, 4)))
    queue.put(levels("C", range(1, 9)))  # not subscribed
    assert len(queue) == 3 and queue.behind_since is None
    queue.put(Outgoing.encode([*level_list("B", range(1, 3)), *level_list("A", range(4, 5))]))
    assert index_seq(await queue.take()) == [("B", 2), ("A", 4)]
    assert queue.drops.queue_full == 4
    now[0] = 2.5
    assert queue.behind_for() == 2.5
    queue.put(levels("A", range(5, 6)))
    queue.sent()  # something still queued: still behind
    assert queue.behind_for() == 2.5
    await queue.take()
    queue.sent()
    assert queue.behind_for() == 0.0


async def test_a_conflation_interval_keeps_the_latest_per_index() -> None:
    queue = ClientQueue("websocket", None, capacity=100, conflate_s=0.5)
    queue.put(Outgoing.encode([*level_list("A", range(1, 6)), *level_list("B", range(1, 3))]))
    assert index_seq(await queue.take()) == [("A", 5), ("B", 2)]
    assert queue.drops.conflate_interval == 5
    assert queue.drops.queue_full == 0


async def test_disconnect_wakes_the_sender_and_stops_queueing() -> None:
    queue = ClientQueue("websocket", None, capacity=10)
    queue.disconnect("slow")
    queue.disconnect("other")
    assert await queue.take() == Outgoing([], [])
    await queue.disconnected()
    queue.put(levels("A", range(1, 3)))
    assert len(queue) == 0
    assert queue.disconnect_reason == "slow"


async def test_conflating_chunk_by_chunk_equals_conflating_the_whole_queue() -> None:
    rng = np.random.default_rng(SEED)
    print(f"seed {SEED}")
    chunks = [
        Outgoing.encode(
            [Level(str(code), float(i), i, i) for i, code in enumerate(rng.integers(0, 6, size))]
        )
        for size in rng.integers(1, 40, 30)
    ]
    first = ClientQueue("websocket", None, capacity=50)
    second = ClientQueue("websocket", None, capacity=50)
    expected: list[Item] = []  # the whole queue conflated at each overflow, level by level
    for chunk in chunks:
        first.put(chunk)
        second.put(chunk)
        expected.extend(chunk.items)
        if len(expected) > 50:
            expected = [expected[i] for i in latest_per_index(expected)]
    taken = await first.take()
    assert taken.items == expected
    assert taken.wire == [encode_event(item) for item in expected]
    again = await second.take()
    assert (again.items, again.frame()) == (taken.items, taken.frame())
    assert json.loads(taken.frame()) == [json.loads(wire) for wire in taken.wire]
    assert first.drops.queue_full == sum(map(len, chunks)) - len(expected) > 0
    assert chunks[0].latest() is chunks[0].latest()  # built once, shared by both clients


HKT_DAY_START = 1_795_104_000_000_000_000  # 2026-11-20T00:00:00+08:00
NS_PER_DAY = 86_400_000_000_000


def leveled(codes: tuple[str, ...], index: list[int], level: list[float], ts: int) -> LevelBatch:
    n = len(index)
    seqs = np.arange(1, n + 1, dtype=np.int64)
    return LevelBatch(
        codes,
        np.array(index, dtype=np.int32),
        np.array(level),
        np.zeros(n),
        seqs,
        np.full(n, ts, dtype=np.int64),
        np.full(n, ts, dtype=np.int64),
    )


def test_day_high_and_low_per_code_over_the_hkt_day() -> None:
    book = LevelBook(history_levels=3)
    assert book.day_range.of("HSI") is None
    book.apply(leveled(("HSI", "HSCEI"), [0, 0, 1, 0], [10.0, 12.0, 5.0, 11.0], HKT_DAY_START))
    book.apply(leveled(("HSI",), [0, 0], [9.0, 10.5], HKT_DAY_START + 1))
    assert book.day_range.of("HSI") == (12.0, 9.0)
    assert book.day_range.of("HSCEI") == (5.0, 5.0)
    book.apply(leveled(("HSI",), [0], [1.0], HKT_DAY_START - 1))  # the day before: not counted
    assert book.day_range.of("HSI") == (12.0, 9.0)
    book.apply(leveled(("HSCEI",), [0], [6.0], HKT_DAY_START + NS_PER_DAY))  # a new day
    assert book.day_range.of("HSI") is None
    assert book.day_range.of("HSCEI") == (6.0, 6.0)


async def test_a_client_behind_by_several_hand_outs_gets_them_in_one_message() -> None:
    queue = ClientQueue("websocket", None, capacity=100)
    first, second = levels("A", range(1, 3)), levels("B", range(1, 4))
    queue.put(first)
    assert await queue.take() is first  # one hand-out: its message, built once for all clients
    queue.put(first)
    queue.put(second)
    taken = await queue.take()
    assert len(taken) == 5
    assert json.loads(taken.frame()) == json.loads(first.frame()) + json.loads(second.frame())
