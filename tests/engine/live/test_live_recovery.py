"""``tickindex serve`` as a subprocess: graceful shutdown, and kill -9 in the middle of a stream.

The reference is always ``tickindex replay`` on the same ticks (the uninterrupted run).
"""

from __future__ import annotations

import asyncio
import signal
from itertools import pairwise
from pathlib import Path

import pytest

from engine.live.kafka.checkpoints import CheckpointStore
from engine.live.kafka.topics import ensure_topics
from engine.refdata.builtin import load_builtin_universe
from engine.wire import WireCodec
from tests.support.live import (
    LevelRow,
    LiveTopics,
    TopicReader,
    assert_same_keys,
    assert_same_levels,
    by_index,
    committed_offsets,
    expand_levels,
    final_state,
    last_seq,
    publish_ticks,
    read_levels,
    replay_levels,
    simulate,
    tick_publisher,
    wait_until,
)
from tests.support.seed import SEED
from tests.support.serve_process import ServeProcess

pytestmark = pytest.mark.kafka
JSON = WireCodec("json")


async def _wait_for_levels(bootstrap: str, topic: str, count: int) -> None:
    """Until the level topic (read_committed) holds at least ``count`` levels."""
    async with TopicReader(bootstrap, topic) as reader:

        async def enough() -> bool:
            return len(expand_levels(await reader.read(), JSON)) >= count

        await wait_until(enough, f"{count} levels on {topic}")


async def _wait_for_last_seq(bootstrap: str, topic: str, wanted: dict[str, int]) -> None:
    """Until every index reached its last sequence number on the level topic."""
    async with TopicReader(bootstrap, topic) as reader:

        async def done() -> bool:
            return last_seq(expand_levels(await reader.read(), JSON)) == wanted

        await wait_until(done, f"last seq {wanted}")


async def test_sigterm_drains_commits_checkpoints_and_restart_reprocesses_nothing(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path
) -> None:
    universe = load_builtin_universe()
    ticks = simulate(universe, 3001, SEED + 4)
    main, sentinel = ticks.slice(0, 3000), ticks.slice(3000, 3001)
    expected = replay_levels(universe, main, tmp_path)
    settings = {"checkpoint_interval_ms": 600_000}  # only the shutdown checkpoints
    config = topics.config(kafka_bootstrap, **settings)
    argv = topics.serve_argv(kafka_bootstrap, **settings)
    await ensure_topics(config)

    with ServeProcess(argv, tmp_path / "serve-1.log") as first:
        await first.wait_serving()
        await publish_ticks(kafka_bootstrap, topics.tick, universe, main)
        await _wait_for_levels(kafka_bootstrap, topics.level, len(expected))
        assert await committed_offsets(kafka_bootstrap, topics.group, topics.tick) == {}
        code = await first.stop(signal.SIGTERM, timeout=10)
        assert code == 0, first.output()
        assert "stopped cleanly" in first.output()

    async with TopicReader(kafka_bootstrap, topics.tick) as ticks_topic:
        end = await ticks_topic.end_offsets()
    assert end == {0: len(main)}
    assert await committed_offsets(kafka_bootstrap, topics.group, topics.tick) == end
    state = await CheckpointStore(config).load({0})
    assert state is not None, "no checkpoint on the state topic"
    tick_offsets = {k: v for k, v in state.offsets.items() if k.startswith(f"{topics.tick}:")}
    assert tick_offsets == {f"{topics.tick}:0": len(main)}
    prices, tick_seqs = final_state(universe, main)
    assert state.prices == prices
    assert state.last_tick_seq == tick_seqs
    last = last_seq(expected)
    assert state.index_seq == [last.get(code, 0) for code in universe.index_codes]
    before = await read_levels(kafka_bootstrap, topics.level)
    assert_same_keys(before, expected, "levels before the restart")

    # Restarted, the service resumes at the checkpoint: nothing is published until the sentinel
    # tick, whose levels are the only new ones (any reprocessing would come before them).
    with ServeProcess(argv, tmp_path / "serve-2.log") as second:
        await second.wait_serving()
        assert len(await read_levels(kafka_bootstrap, topics.level)) == len(before)
        await publish_ticks(kafka_bootstrap, topics.tick, universe, sentinel)
        security = int(sentinel.security[0])
        members = universe.membership.index[universe.membership.security == security].tolist()
        await _wait_for_levels(kafka_bootstrap, topics.level, len(before) + len(members))
        assert await second.stop(signal.SIGTERM, timeout=10) == 0, second.output()
    after = await read_levels(kafka_bootstrap, topics.level)
    assert after[: len(before)] == before
    ts = int(sentinel.ts_event[0])
    codes = [universe.index_codes[i] for i in members]
    assert sorted(r[:3] for r in after[len(before) :]) == sorted(
        (code, last.get(code, 0) + 1, ts) for code in codes
    )


async def _crash_mid_stream(
    bootstrap: str, topics: LiveTopics, tmp_path: Path, delivery: str, seed: int
) -> tuple[list[LevelRow], list[LevelRow]]:
    """Serve, kill -9 while ticks arrive, restart, publish the rest; (levels, reference)."""
    universe = load_builtin_universe()
    ticks = simulate(universe, 6000, seed)
    expected = replay_levels(universe, ticks, tmp_path)
    settings = {"delivery": delivery, "checkpoint_interval_ms": 250, "max_batch_ticks": 250}
    await ensure_topics(topics.config(bootstrap, **settings))
    argv = topics.serve_argv(bootstrap, **settings)
    chunks = [ticks.slice(start, start + 250) for start in range(0, len(ticks), 250)]
    sent = 0
    async with (
        tick_publisher(bootstrap, topics.tick, universe) as publisher,
        TopicReader(bootstrap, topics.level, committed=False) as levels,
        TopicReader(bootstrap, topics.state, committed=False) as states,
    ):
        with ServeProcess(argv, tmp_path / "serve-1.log") as first:
            await first.wait_serving()

            # Publish a chunk every 0.1 s; once a checkpoint is out, three more, then kill -9
            # the service while it works on the last one: up to a checkpoint interval of
            # levels is on the level topic but not covered by the checkpoint.
            async def checkpointed() -> bool:
                return (await states.end_offsets())[0] > 0

            for _ in range(3):
                await publisher.publish(chunks[sent])
                await publisher.flush()
                sent += 1
                await asyncio.sleep(0.1)
            await wait_until(checkpointed, "a first checkpoint")
            for _ in range(3):
                await asyncio.sleep(0.1)
                await publisher.publish(chunks[sent])
                await publisher.flush()
                sent += 1
            assert first.proc.poll() is None, first.output()
            assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
            written = (await levels.end_offsets())[0]
            print(f"killed after {sent} of {len(chunks)} chunks, {written} level messages out")
        with ServeProcess(argv, tmp_path / "serve-2.log") as second:
            await second.wait_serving()
            for chunk in chunks[sent:]:
                await publisher.publish(chunk)
            await publisher.flush()
            await _wait_for_last_seq(bootstrap, topics.level, last_seq(expected))
            assert await second.stop(signal.SIGTERM) == 0, second.output()
    assert await committed_offsets(bootstrap, topics.group, topics.tick) == {0: len(ticks)}
    return await read_levels(bootstrap, topics.level), expected


async def test_kill_9_at_least_once_duplicates_but_no_gaps(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path
) -> None:
    got, expected = await _crash_mid_stream(
        kafka_bootstrap, topics, tmp_path, "at-least-once", SEED + 5
    )
    last = last_seq(expected)
    copies: dict[tuple[str, int], set[tuple[int, float]]] = {}
    for code, rows in by_index(got).items():
        assert {r.seq for r in rows} == set(range(1, last[code] + 1)), f"{code}: gap"
        # Never a jump forward; at most one step back (where the restart resumed).
        assert all(b.seq <= a.seq + 1 for a, b in pairwise(rows)), code
        assert sum(1 for a, b in pairwise(rows) if b.seq <= a.seq) <= 1, code
        for r in rows:
            copies.setdefault((code, r.seq), set()).add((r.ts_event, r.level))
    print(f"{len(got) - len(expected)} duplicate levels")
    assert len(copies) == len(expected)
    reference = {(r.code, r.seq): (r.ts_event, r.level) for r in expected}
    assert {key: {ts for ts, _ in v} for key, v in copies.items()} == {
        key: {ts} for key, (ts, _) in reference.items()
    }
    differing = [key for key, v in copies.items() if len(v) > 1]
    assert not differing, f"{len(differing)} duplicated levels differ, e.g. {differing[0]}"
    # The one level of each (index, seq) is the uninterrupted run's, bitwise.
    unique = sorted(LevelRow(code, seq, *v.pop()) for (code, seq), v in copies.items())
    assert_same_levels(unique, sorted(expected), "deduplicated levels vs replay")


async def test_kill_9_exactly_once_equals_the_uninterrupted_run(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path
) -> None:
    got, expected = await _crash_mid_stream(
        kafka_bootstrap, topics, tmp_path, "exactly-once", SEED + 6
    )
    for code, rows in by_index(got).items():
        assert [r.seq for r in rows] == list(range(1, len(rows) + 1)), f"{code}: dup or gap"
    assert_same_levels(got, expected, "read_committed levels vs replay")


async def test_kill_9_with_start_from_latest_reprocesses_what_the_checkpoint_missed(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path
) -> None:
    """A checkpoint taken before the first tick must still pin the input position."""
    universe = load_builtin_universe()
    ticks = simulate(universe, 1000, SEED + 7)
    early, late = ticks.slice(0, 500), ticks.slice(500, 1000)
    expected = replay_levels(universe, ticks, tmp_path)
    settings = {"start_from": "latest", "checkpoint_interval_ms": 3000}
    argv = topics.serve_argv(kafka_bootstrap, **settings)
    await ensure_topics(topics.config(kafka_bootstrap, **settings))
    async with TopicReader(kafka_bootstrap, topics.state, committed=False) as states:

        async def checkpointed() -> bool:
            return (await states.end_offsets())[0] > 0

        with ServeProcess(argv, tmp_path / "serve-1.log") as first:
            await first.wait_serving()
            await wait_until(checkpointed, "the first checkpoint (taken while idle)")
            await publish_ticks(kafka_bootstrap, topics.tick, universe, early)
            early_levels = len(replay_levels(universe, early, tmp_path / "early"))
            await _wait_for_levels(kafka_bootstrap, topics.level, early_levels)
            assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
    last_ts = int(late.ts_event[-1])
    with ServeProcess(argv, tmp_path / "serve-2.log") as second:
        await second.wait_serving()
        await publish_ticks(kafka_bootstrap, topics.tick, universe, late)

        async def last_tick_out() -> bool:
            rows = await read_levels(kafka_bootstrap, topics.level)
            return any(r.ts_event == last_ts for r in rows)

        await wait_until(last_tick_out, "the levels of the last tick")
        assert await second.stop(signal.SIGTERM) == 0, second.output()
    got = await read_levels(kafka_bootstrap, topics.level)
    moved_by: dict[tuple[str, int], set[int]] = {}
    for r in got:
        moved_by.setdefault((r.code, r.seq), set()).add(r.ts_event)
    reused = {key: ts for key, ts in moved_by.items() if len(ts) > 1}
    assert not reused, f"{len(reused)} (index, seq) published for different ticks, e.g. " + str(
        next(iter(reused.items()))
    )
    last = last_seq(expected)
    for code, rows in by_index(got).items():
        assert {r.seq for r in rows} == set(range(1, last[code] + 1)), code
