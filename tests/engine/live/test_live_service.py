"""The live service in-process against a real Kafka broker: levels, dead letters, partitions."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import TickColumns
from engine.live.codec import DecodedFetch, Record, TickDecoder
from engine.live.kafka.output_process import OutputProcessError, ProcessOutput
from engine.live.kafka.output_switch import AdaptiveOutput
from engine.live.kafka.topics import ensure_topics
from engine.live.metrics import REASON_LABELS
from engine.live.service import IndexService
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.universe import Universe
from engine.wire import Tick, TickBatch, WireCodec, WireFormat
from tests.support.live import (
    InProcessService,
    LiveTopics,
    TopicReader,
    assert_same_keys,
    assert_same_levels,
    by_index,
    dead_letters_by_source,
    engine_levels,
    final_state,
    partitions_of,
    read_levels,
    replay_levels,
    send_raw,
    simulate,
    tick_publisher,
    wait_until,
)
from tests.support.seed import SEED

pytestmark = pytest.mark.kafka


class RecordingDecoder(TickDecoder):
    """The service's decoder, keeping every decoded fetch: the engine batches, in order."""

    def __init__(self, universe: Universe, codec: WireCodec) -> None:
        super().__init__(universe, codec)
        self.batches: list[TickColumns] = []

    def decode(self, records: Sequence[Record]) -> DecodedFetch:
        fetch = super().decode(records)
        self.batches.append(fetch.ticks)
        return fetch


class RecordingService(InProcessService):
    """The shared harness with a decoder that keeps every fetch it decoded."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.decoder = RecordingDecoder(self.universe, self.codec)
        self.service.work.decoder = self.decoder


@pytest.mark.parametrize(
    ("level_messages", "output_process"),
    [("batch", True), ("single", True), ("batch", False)],
    ids=["batch", "single", "batch-in-process"],
)
@pytest.mark.parametrize("tick_batch", [0, 40], ids=["tick", "tick_batch"])
async def test_service_levels_equal_replay_bitwise(
    kafka_bootstrap: str,
    topics: LiveTopics,
    tmp_path: Path,
    *,
    tick_batch: int,
    level_messages: str,
    output_process: bool,
) -> None:
    universe = load_builtin_universe()
    ticks = simulate(universe, 4000, SEED + 1)
    expected = replay_levels(universe, ticks, tmp_path)
    # Engine batches of at most 400 ticks (getmany's max_records counts messages).
    config = topics.config(
        kafka_bootstrap,
        level_messages=level_messages,
        max_batch_ticks=400 // max(tick_batch, 1),
        output_process=output_process,
    )
    await ensure_topics(config)
    async with tick_publisher(
        kafka_bootstrap, topics.tick, universe, batch_ticks=tick_batch
    ) as publisher:
        await publisher.publish(ticks)
        await publisher.flush()
    live = RecordingService(config, universe)
    async with live.running():
        await live.wait_consumed(len(ticks))
    got = await read_levels(kafka_bootstrap, topics.level)

    assert live.sample("tickindex_ticks_applied_total") == len(ticks)
    assert len(live.decoder.batches) > 1, "the service should have used several engine batches"
    # Transport and encoding are exact: the topic holds what the engine computed on the batches
    # the service consumed (same per-index order, bitwise levels).
    assert_same_levels(got, engine_levels(universe, live.decoder.batches), "engine on its batches")
    # ... and those are replay's levels, whatever the batch boundaries.
    assert_same_levels(got, expected, "service vs tickindex replay")


def _bad_messages(
    universe: Universe, codec: WireCodec, before: TickColumns, after: TickColumns
) -> list[tuple[bytes | None, bytes, str, int | None]]:
    """(key, value, expected reason, batch position) of every bad message of the stream."""
    assert before.seq is not None and after.seq is not None
    counts = np.bincount(before.security, minlength=len(universe.securities))
    security = int(np.argmax(counts))
    assert counts[security] >= 3
    code, key = universe.securities[security], universe.securities[security].encode()
    last = int(np.flatnonzero(before.security == security)[-1])
    price, ts, seq = float(before.price[last]), int(before.ts_event[-1]), int(before.seq[last])
    tick = codec.encode
    bad: list[tuple[bytes | None, bytes, str, int | None]] = [
        (None, b"\xc1 not a tick {", "undecodable", None),
        (b"ZZZZ", tick(Tick("ZZZZ", 10.0, ts)), "unknown_security", None),
        (key, tick(Tick(code, 0.0, ts)), "non_positive_price", None),
        (key, tick(Tick(code, -price, ts)), "non_positive_price", None),
        (None, tick(TickBatch([code, code], [price], [ts, ts])), "undecodable", None),
        (key, tick(Tick(code, price, ts, seq=seq)), "duplicate_seq", None),
        (key, tick(Tick(code, price, ts, seq=seq - 2)), "out_of_order_seq", None),
    ]
    if codec.wire_format == "msgpack":
        bad += [
            (key, tick(Tick(code, p, ts)), "non_finite_price", None)
            for p in (math.nan, math.inf, -math.inf)
        ]
    else:
        nan = f'{{"type":"tick","security":"{code}","price":NaN,"ts_event":{ts}}}'.encode()
        bad.append((key, nan, "undecodable", None))
    # A tick_batch whose middle tick is unknown: the first two ticks of ``after`` still apply.
    codes = [universe.securities[s] for s in after.security[:2].tolist()]
    mixed = TickBatch(
        security=[codes[0], "ZZZZ", codes[1]],
        price=[float(after.price[0]), 1.0, float(after.price[1])],
        ts_event=[int(after.ts_event[0]), int(after.ts_event[1]), int(after.ts_event[1])],
        seq=[int(after.seq[0]), 1, int(after.seq[1])],
    )
    bad.append((None, tick(mixed), "unknown_security", 1))
    return bad


@pytest.mark.parametrize("wire_format", ["json", "msgpack"])
async def test_bad_ticks_are_dead_lettered_and_the_rest_goes_on(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path, wire_format: WireFormat
) -> None:
    universe = load_builtin_universe()
    codec = WireCodec(wire_format)
    ticks = simulate(universe, 600, SEED + 2)
    before, after = ticks.slice(0, 300), ticks.slice(300, 600)
    bad = _bad_messages(universe, codec, before, after)

    def singles(part: TickColumns) -> list[tuple[bytes | None, bytes]]:
        assert part.seq is not None
        return [
            (universe.securities[s].encode(), codec.encode(Tick(universe.securities[s], p, t, q)))
            for s, p, t, q in zip(
                part.security.tolist(), part.price.tolist(), part.ts_event.tolist(),
                part.seq.tolist(), strict=True,
            )
        ]  # fmt: skip

    stream = singles(before) + [(k, v) for k, v, _, _ in bad] + singles(after.slice(2, 300))
    config = topics.config(kafka_bootstrap, wire_format=wire_format, max_batch_ticks=50)
    await ensure_topics(config)
    offsets = await send_raw(kafka_bootstrap, topics.tick, stream)
    live = RecordingService(config, universe)
    bad_offsets = offsets[len(before) : len(before) + len(bad)]
    consumed = len(ticks) + len(bad)  # the mixed tick_batch: two good ticks, one bad
    async with live.running():
        await live.wait_consumed(consumed)
    async with TopicReader(kafka_bootstrap, topics.dead_letter) as reader:
        letters = await reader.read()
    got = await read_levels(kafka_bootstrap, topics.level, codec)

    expected_letters = {
        f"{topics.tick}[0]@{offset}": (reason, key, value, position)
        for offset, (key, value, reason, position) in zip(bad_offsets, bad, strict=True)
    }
    got_letters = dead_letters_by_source(letters)
    assert len(letters) == len(bad)
    assert got_letters == expected_letters

    for label in REASON_LABELS:
        count = sum(1 for _, _, reason, _ in bad if reason == label)
        assert live.sample("tickindex_ticks_rejected_total", reason=label) == count, label
        assert live.sample("tickindex_dead_letters_total", reason=label) == count, label
    assert live.sample("tickindex_ticks_applied_total") == len(ticks)
    # The service went on: the good ticks, those after the bad ones included, gave their levels.
    reference = replay_levels(universe, ticks, tmp_path)
    assert_same_keys(got, reference, "good ticks vs replay")
    assert_same_levels(got, engine_levels(universe, live.decoder.batches), "engine on batches")


async def test_three_partitions_keep_per_security_order_and_every_seq(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path
) -> None:
    universe = load_builtin_universe()
    ticks = simulate(universe, 6000, SEED + 3)
    config = topics.config(kafka_bootstrap, tick_partitions=3, max_batch_ticks=500)
    await ensure_topics(config)
    assert await partitions_of(kafka_bootstrap, topics.tick) == [0, 1, 2]
    live = RecordingService(config, universe)
    async with live.running():
        async with tick_publisher(kafka_bootstrap, topics.tick, universe) as publisher:
            for start in range(0, len(ticks), 500):
                await publisher.publish(ticks.slice(start, start + 500))
                await publisher.flush()
        await live.wait_consumed(len(ticks))
    got = await read_levels(kafka_bootstrap, topics.level)
    consumed = TickColumns.concat(live.decoder.batches)

    # Every tick consumed once, each security's ticks in their published order.
    def per_security(t: TickColumns) -> dict[int, list[tuple[int, float, int]]]:
        assert t.seq is not None
        out: dict[int, list[tuple[int, float, int]]] = {}
        for s, ts, p, q in zip(
            t.security.tolist(), t.ts_event.tolist(), t.price.tolist(), t.seq.tolist(), strict=True
        ):
            out.setdefault(s, []).append((ts, p, q))
        return out

    assert per_security(consumed) == per_security(ticks)
    assert live.sample("tickindex_ticks_applied_total") == len(ticks)
    async with TopicReader(kafka_bootstrap, topics.dead_letter) as reader:
        assert await reader.read() == []

    # Per index: seq 1..N without gap or duplicate, N as in a replay in publication order, and
    # the same ticks moved it (ts_event multiset).
    reference = by_index(replay_levels(universe, ticks, tmp_path))
    levels = by_index(got)
    assert levels.keys() == reference.keys()
    for code, rows in levels.items():
        assert [r.seq for r in rows] == list(range(1, len(reference[code]) + 1)), code
        assert sorted(r.ts_event for r in rows) == sorted(r.ts_event for r in reference[code])

    # In consumption order they are a replay's, and exactly the engine's on the same batches ...
    assert_same_keys(got, replay_levels(universe, consumed, tmp_path / "consumed"), "replay")
    assert_same_levels(got, engine_levels(universe, live.decoder.batches), "engine on batches")
    # ... and the last level of each index is the full recompute at the last prices.
    prices, _ = final_state(universe, ticks)
    calculator = IndexCalculator(universe)
    calculator.restore(np.array(prices), calculator.divisors.copy(), calculator.seq.copy())
    for code, rows in levels.items():
        want = float(calculator.levels[universe.index_id(code)])
        assert abs(rows[-1].level - want) <= 1e-12 * want, (code, rows[-1].level, want)


async def test_a_dead_output_process_stops_the_service_with_a_clear_error(
    kafka_bootstrap: str, topics: LiveTopics
) -> None:
    universe = load_builtin_universe()
    config = topics.config(kafka_bootstrap)
    await ensure_topics(config)
    live = RecordingService(config, universe)
    task = asyncio.create_task(live.service.run())
    try:
        await wait_until(lambda: _ready(live.service, task), "the service to start", 20)
        output = live.service._output
        if isinstance(output, AdaptiveOutput):
            output = output.child
        assert isinstance(output, ProcessOutput) and output._process is not None
        output._process.kill()
        async with tick_publisher(kafka_bootstrap, topics.tick, universe) as publisher:
            await publisher.publish(simulate(universe, 200, SEED + 5))
            await publisher.flush()
        with pytest.raises(OutputProcessError, match="output process exited"):
            await asyncio.wait_for(task, timeout=20)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _ready(service: IndexService, task: asyncio.Task[None]) -> bool:
    if task.done():
        task.result()
    return service.ready.is_set()
