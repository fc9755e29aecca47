"""Currency variants in the live service while both input topics hold a backlog.

Every stock tick and every FX tick (interleaved in event time, some at the very times of stock
ticks) is on the broker before the service starts, so fetches cut the two streams anywhere: a
fetch may hold FX ticks later than the next fetch's stock ticks, or stock ticks later than FX
ticks still unread. The event-time watermarks (``engine.live.fx``) must make the level topic
equal ``tickindex replay --fx --variants`` bitwise anyway (base and variant levels, ``seq``
included), with large and small fetches, with the stream running ahead paused while too many
of its rows wait, and across a restart whose checkpoint holds waiting rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from engine.kernel.columns import LevelColumns
from engine.live.codec import Record
from engine.live.fx import MAX_PENDING, FxChannel, FxOutput
from engine.live.kafka.checkpoints import CheckpointStore
from engine.live.kafka.topics import ensure_topics
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.universe import Universe
from engine.wire import FxTick, FxTickBatch, WireCodec
from tests.support.live import (
    LevelRow,
    LiveTopics,
    TopicReader,
    assert_same_levels,
    expand_levels,
    partitions_of,
    publish_ticks,
    send_raw,
    simulate,
    wait_until,
)
from tests.support.live_currency import (
    FxRow,
    LiveRun,
    Timeline,
    assert_variants_complete,
    replay_with_variants,
    variant_config,
)
from tests.support.seed import SEED

N_TICKS = 2400
FX_BATCH = 4  # FX ticks per fx_tick_batch message at most


def backlog_timeline(universe: Universe, n_ticks: int, seed: int) -> Timeline:
    """Seeded stock ticks and half as many FX ticks over the same span (a quarter of them at a
    stock tick's time, some before the first and after the last), FX times non-decreasing."""
    ticks = simulate(universe, n_ticks, seed)
    rng = np.random.default_rng(seed)
    first, last = int(ticks.ts_event[0]), int(ticks.ts_event[-1])
    at_ticks = rng.choice(ticks.ts_event, n_ticks // 8)
    spread = rng.integers(first - 10**8, last + 10**8, n_ticks // 2 - at_ticks.size)
    rates = {"HKDUSD": 0.1285, "HKDCNH": 0.92}
    rows = []
    for ts in np.sort(np.concatenate([at_ticks, spread])).tolist():
        pair = "HKDUSD" if rng.random() < 0.6 else "HKDCNH"
        rates[pair] *= math.exp(rng.normal(0.0, 5e-4))
        spelled = "hkd/usd" if pair == "HKDUSD" and rng.random() < 0.1 else pair
        rows.append(FxRow(ts, spelled, rates[pair]))
    print(f"backlog: {n_ticks} stock ticks, {len(rows)} FX ticks, seed {seed}")
    return Timeline([ticks], [rows])


def fx_messages(
    rows: Sequence[FxRow], codec: WireCodec, rng: np.random.Generator
) -> list[tuple[bytes | None, bytes]]:
    """The FX ticks in order as single ``fx_tick`` messages and ``fx_tick_batch`` messages."""
    out: list[tuple[bytes | None, bytes]] = []
    at = 0
    while at < len(rows):
        part = rows[at : at + int(rng.integers(1, FX_BATCH + 1))]
        at += len(part)
        if len(part) == 1:
            r = part[0]
            out.append((r.pair.encode(), codec.encode(FxTick(r.pair, r.rate, r.ts))))
        else:
            batch = FxTickBatch(
                [r.pair for r in part], [r.rate for r in part], [r.ts for r in part]
            )
            out.append((None, codec.encode(batch)))
    return out


async def publish_backlog(live: LiveRun, timeline: Timeline, seed: int) -> int:
    """Everything onto the broker before the service runs; returns the FX message count."""
    config = live.config
    await ensure_topics(config)
    await publish_ticks(config.bootstrap, config.tick_topic, live.universe, timeline.ticks)
    messages = fx_messages(timeline.fx, live.codec, np.random.default_rng(seed))
    await send_raw(config.bootstrap, config.fx_topic, messages)
    return len(messages)


def channel_of(live: LiveRun) -> FxChannel:
    channel = live.service.fx
    assert channel is not None
    return channel


async def drained(runs: Sequence[LiveRun], n_ticks: int, n_fx: int) -> None:
    """Wait until the runs together consumed every tick and FX message, and nothing waits."""
    last = channel_of(runs[-1])

    async def done() -> bool:
        ticks = sum(run.sample("tickindex_ticks_consumed_total") for run in runs)
        fx = sum(channel_of(run).received for run in runs)
        return ticks >= n_ticks and fx >= n_fx and last.translator.pending == (0, 0)

    await wait_until(done, "the backlog consumed and every variant level released", 60)


async def assert_levels_equal_replay(
    bootstrap: str, topics: LiveTopics, timeline: Timeline, expected: list[LevelRow]
) -> None:
    async with TopicReader(bootstrap, topics.level) as reader:
        got = expand_levels(await reader.read(), WireCodec("json"))
    assert_same_levels(got, expected, "service on a backlog vs tickindex replay --fx --variants")
    assert_variants_complete(got, timeline)


CASES = [
    ("at-least-once", 400, MAX_PENDING),
    ("at-least-once", 50, MAX_PENDING),
    ("exactly-once", 50, MAX_PENDING),
    ("at-least-once", 50, 30),  # the stream running ahead gets paused again and again
]


@pytest.mark.kafka
@pytest.mark.parametrize("case", CASES, ids=["-".join(map(str, c)) for c in CASES])
async def test_backlog_of_both_topics_gives_replays_levels(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path, case: tuple[str, int, int]
) -> None:
    delivery, max_batch_ticks, max_pending = case
    universe = load_builtin_universe()
    seed = SEED + 41
    timeline = backlog_timeline(universe, N_TICKS, seed)
    settings = {"delivery": delivery, "max_batch_ticks": max_batch_ticks}
    config = variant_config(topics, kafka_bootstrap, tmp_path, **settings)
    expected = replay_with_variants(universe, timeline, tmp_path)
    live = LiveRun(config, universe)
    channel = channel_of(live)
    channel.max_pending = max_pending
    n_fx = await publish_backlog(live, timeline, seed)
    async with live.running():
        await drained([live], N_TICKS, n_fx)
    print(f"peak pending {channel.peak_pending}, paused {dict(channel.paused)}")

    await assert_levels_equal_replay(kafka_bootstrap, topics, timeline, expected)
    assert channel.translator.stats.fx_applied == len(timeline.fx)
    assert channel.peak_pending > 0, "no fetch ran ahead: the backlog case was not exercised"
    one_fetch = max_batch_ticks * max(2, FX_BATCH)  # base: HSI and HSCEI levels per tick
    assert channel.peak_pending <= max_pending + one_fetch
    if max_pending < MAX_PENDING:
        assert sum(channel.paused.values()) > 1, "the stream running ahead was never paused"


@pytest.mark.kafka
@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
async def test_restart_in_the_backlog_resumes_the_waiting_rows(
    kafka_bootstrap: str,
    topics: LiveTopics,
    tmp_path: Path,
    delivery: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    universe = load_builtin_universe()
    seed = SEED + 42
    timeline = backlog_timeline(universe, N_TICKS, seed)
    config = variant_config(
        topics, kafka_bootstrap, tmp_path, delivery=delivery, max_batch_ticks=40
    )
    expected = replay_with_variants(universe, timeline, tmp_path)
    first = LiveRun(config, universe)
    channel = channel_of(first)
    n_fx = await publish_backlog(first, timeline, seed)

    # Stop the first run right after a fetch that left rows waiting, some way into the backlog.
    process, fetches = channel.process, [0]

    def process_then_stop(records: Sequence[Record], levels: LevelColumns) -> FxOutput:
        out = process(records, levels)
        fetches[0] += 1
        if fetches[0] >= 12 and channel.translator.pending != (0, 0):
            first.service.request_stop()
        return out

    monkeypatch.setattr(channel, "process", process_then_stop)
    async with first.running():

        async def stopped() -> bool:
            return channel.translator.pending != (0, 0) and fetches[0] >= 12

        await wait_until(stopped, "the first run to stop inside the backlog")
    state = channel.translator.snapshot()
    assert state.pending_base is not None or state.pending_fx is not None
    print(f"stopped after {fetches[0]} fetches with {channel.translator.pending} rows waiting")

    partitions = set(await partitions_of(kafka_bootstrap, config.state_topic))
    checkpoint = await CheckpointStore(config).load(partitions)
    assert checkpoint is not None and checkpoint.currency == state, "waiting rows not stored"

    second = LiveRun(config, universe)
    async with second.running():
        await drained([first, second], N_TICKS, n_fx)
    await assert_levels_equal_replay(kafka_bootstrap, topics, timeline, expected)
