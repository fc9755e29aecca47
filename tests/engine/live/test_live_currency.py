"""Currency variants in the live service: FX decoding, level encoding and checkpoints without a
broker, then the service on a real broker (FX ticks on their own topic).

The reference of the broker tests is ``tickindex replay --fx --variants`` on the same ticks and
FX ticks. These tests publish in phases that alternate the streams in event time (FX cluster,
stock segment, FX cluster, ...) and wait until the service has consumed each phase (the steady
state; ``test_live_currency_backlog`` publishes everything before the service starts): whatever
the fetch boundaries, the level topic must hold replay's levels bitwise, variant ``seq``
included.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from engine.currency.translator import CurrencyState, FxColumns
from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import LevelColumns
from engine.live.config import ServiceConfig
from engine.live.fx import FxChannel
from engine.live.kafka.output import KafkaOutput
from engine.live.kafka.topics import ensure_topics
from engine.live.level_encoding import LevelEncoder
from engine.live.metrics import ServiceMetrics
from engine.live.service import IndexService
from engine.pipeline.chain import IndexPipeline
from engine.pipeline.state import EngineState, StateMismatchError, capture_state, restore_currency
from engine.refdata.builtin import load_builtin_universe
from engine.wire import FxTick, FxTickBatch, IndexLevel, IndexLevels, WireCodec, WireFormat
from tests.support.live import (
    LiveTopics,
    TopicReader,
    assert_same_levels,
    dead_letters_by_source,
    expand_levels,
)
from tests.support.live_currency import (
    VARIANTS_CSV,
    BadFx,
    LiveRun,
    assert_variants_complete,
    bad_fx,
    cluster_messages,
    make_timeline,
    replay_with_variants,
    translator,
    variant_config,
)
from tests.support.records import FakeRecord
from tests.support.seed import SEED

# -- without a broker: FX decoding, level encoding, checkpoints ---------------------------------


def test_fx_records_are_sorted_by_event_time_and_bad_ones_dead_lettered(tmp_path: Path) -> None:
    universe = load_builtin_universe()
    codec = WireCodec("msgpack")
    channel = FxChannel(translator(universe, VARIANTS_CSV, tmp_path), codec, "dlq")
    values = [
        codec.encode(
            FxTickBatch(["HKDUSD", "hkd/cnh", "JPYUSD"], [0.1286, 0.921, 0.0067], [30, 10, 5])
        ),
        codec.encode(FxTick("HKDCNH", math.nan, 15)),
        b"\x00",
        codec.encode(FxTick("HKD/USD", 0.1287, 10)),
        codec.encode(FxTick("HKDUSD", -1.0, 1)),
        codec.encode(FxTick("HKDUSD", 0.1288, 2**64 - 1)),  # msgpack uint64: no int64 time
    ]
    records = [FakeRecord("fx", 0, 100 + i, None, v) for i, v in enumerate(values)]
    fx, letters, rejected = channel.decode(records)

    # Stable by ts_event: the batch's HKDCNH tick (row 1) stays before the later message's.
    assert fx.ts_event.tolist() == [10, 10, 30]
    assert fx.pair.tolist() == [1, 0, 0] and fx.rate.tolist() == [0.921, 0.1287, 0.1286]
    assert fx.origin is not None and fx.origin.tolist() == [1, 4, 0]
    assert rejected == {
        "fx_unknown_pair": 1,
        "fx_non_finite_rate": 1,
        "fx_undecodable": 1,
        "fx_non_positive_rate": 1,
        "fx_bad_timestamp": 1,
    }
    headers = [dict(letter.headers) for letter in letters]
    assert [(h["tickindex.reason"], h["tickindex.source"]) for h in headers] == [
        (b"fx_undecodable", b"fx[0]@102"),
        (b"fx_unknown_pair", b"fx[0]@100"),
        (b"fx_non_finite_rate", b"fx[0]@101"),
        (b"fx_non_positive_rate", b"fx[0]@104"),
        (b"fx_bad_timestamp", b"fx[0]@105"),
    ]
    assert headers[1]["tickindex.batch_position"] == b"2"
    assert [letter.value for letter in letters] == [values[i] for i in (2, 0, 1, 4, 5)]
    assert all(letter.topic == "dlq" for letter in letters)
    assert channel.received == len(records)


def test_level_encoder_knows_the_variants(tmp_path: Path) -> None:
    universe = load_builtin_universe()
    channel = FxChannel(translator(universe, VARIANTS_CSV, tmp_path), WireCodec(), "dlq")
    levels = channel.translator.translate(
        LevelColumns.empty(), FxColumns(np.array([7]), np.array([0]), np.array([0.1286]))
    )
    assert levels.index.tolist() == [13, 14]  # HSI_USD, HSCEI_USD: after the 13 indices
    codec = WireCodec()
    single = LevelEncoder.for_universe(
        universe, codec, "levels", batched=False, extra_indices=channel.extra_indices
    )
    messages = single.encode(levels, 99)
    decoded = [codec.decode_level(m.value) for m in messages]
    assert [m.key for m in messages] == [b"HSI_USD", b"HSCEI_USD"]
    first = decoded[0]
    assert isinstance(first, IndexLevel) and first.seq == 1
    assert first.change == pytest.approx(3315.3 * (0.1286 / 0.1285 - 1), rel=1e-9)


def test_checkpoint_carries_the_currency_state(tmp_path: Path) -> None:
    universe = load_builtin_universe()
    running = translator(universe, VARIANTS_CSV, tmp_path)
    running.translate(
        LevelColumns(
            np.array([5]),
            np.array([0], np.int32),
            np.array([25900.0]),
            np.array([1]),
            np.array([0]),
        ),
        FxColumns(np.array([3, 9]), np.array([0, 1]), np.array([0.1287, 0.919])),
    )
    pipeline = IndexPipeline(IndexCalculator(universe), DropLevels())
    state = capture_state(pipeline, universe.fingerprint(), {"fx:0": 4}, 1, running)
    state = msgspec.msgpack.decode(msgspec.msgpack.encode(state), type=EngineState)
    assert state.currency is not None and state.currency.seq == [2, 1, 2]
    resumed = translator(universe, VARIANTS_CSV, tmp_path)
    assert restore_currency(resumed, state)
    assert resumed.snapshot() == running.snapshot()
    fresh = translator(universe, VARIANTS_CSV, tmp_path)
    assert not restore_currency(fresh, capture_state(pipeline, universe.fingerprint()))
    other = translator(universe, VARIANTS_CSV.replace("HSI_CNH", "HSI_CNY"), tmp_path)
    with pytest.raises(StateMismatchError, match="HSI_CNY"):
        restore_currency(other, state)


class DropLevels:
    """A level sink that drops what it gets."""

    def write(self, levels: LevelColumns) -> None:
        del levels


class FakeConsumer:
    """Positions, highwaters and pauses of an ``AIOKafkaConsumer`` (no fetch returns records)."""

    def __init__(self, highwater: dict[TopicPartition, int | None]) -> None:
        self.marks = highwater
        self.paused: set[TopicPartition] = set()

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        del timeout_ms, max_records
        return {}

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.marks[tp]

    async def position(self, tp: TopicPartition) -> int:
        del tp
        return 5

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused.difference_update(tps)


class FakeProducer:
    """Keeps what is sent; every send is acknowledged at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def send(self, topic: str, value: bytes, **_: object) -> asyncio.Future[None]:
        self.sent.append((topic, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def test_waiting_levels_go_out_when_a_stream_catches_up_without_records(
    tmp_path: Path,
) -> None:
    universe = load_builtin_universe()
    (tmp_path / "variants.csv").write_text(VARIANTS_CSV)
    config = ServiceConfig(variants=str(tmp_path / "variants.csv"), checkpoint_interval_ms=10**9)
    registry = CollectorRegistry()
    service = IndexService(
        config, universe, ServiceMetrics(registry, universe.index_codes, version="test")
    )
    channel = service.fx
    assert channel is not None
    channel.max_pending = 1
    ticks, fx = TopicPartition(config.tick_topic, 0), TopicPartition(config.fx_topic, 0)
    consumer = FakeConsumer({ticks: 5, fx: None})  # FX not fetched yet: not caught up
    producer = FakeProducer()
    output = KafkaOutput([producer], service.encoder)
    service._consumer, service._output, service._partitions = consumer, output, [ticks, fx]
    hsi = LevelColumns(*(np.array(c) for c in ([7, 8], [0, 0], [25900.0, 26000.0], [1, 2], [0, 0])))
    assert len(channel.translator.translate(hsi, FxColumns.empty(), fx_caught_up=False)) == 0

    await service._step()  # nothing fetched, FX still unknown: the levels wait, ticks paused
    assert producer.sent == [] and consumer.paused == {ticks}
    assert channel.paused == {config.tick_topic: 1}
    consumer.marks[fx] = 5  # FX at its highwater: caught up, though no record came
    await service._step()
    codec = WireCodec(config.wire_format)
    out = [codec.decode_level(value) for topic, value in producer.sent]
    assert [m.index for m in out] == ["HSI_USD", "HSI_CNH"]
    assert [m.seq for m in out if isinstance(m, IndexLevels)] == [[1, 2], [1, 2]]
    assert channel.translator.pending == (0, 0)
    await service._step()
    assert consumer.paused == set(), "ticks not resumed"


# -- against a broker ------------------------------------------------------------------------------


@pytest.mark.kafka
@pytest.mark.parametrize("wire_format", ["json", "msgpack"])
async def test_variants_equal_replay_bitwise_and_bad_fx_is_dead_lettered(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path, wire_format: WireFormat
) -> None:
    universe = load_builtin_universe()
    timeline = make_timeline(universe, 2400, 3, SEED + 21)
    config = variant_config(topics, kafka_bootstrap, tmp_path, wire_format=wire_format)
    expected = replay_with_variants(universe, timeline, tmp_path)
    await ensure_topics(config)
    live = LiveRun(config, universe)
    bad = bad_fx(live.codec, timeline.clusters[2][0].ts)
    sent: list[BadFx | None] = []
    async with live.running():
        for k, cluster in enumerate(timeline.clusters):
            messages, kinds = cluster_messages(cluster, live.codec, bad if k == 2 else [])
            await live.fx(messages)
            sent += kinds
            if k < len(timeline.segments):
                await live.stock(timeline.segments[k])
    async with TopicReader(kafka_bootstrap, topics.level) as reader:
        records = await reader.read()
    async with TopicReader(kafka_bootstrap, topics.dead_letter) as reader:
        letters = await reader.read()
    got = expand_levels(records, live.codec)

    assert_same_levels(got, expected, "service vs tickindex replay --fx --variants")
    assert_variants_complete(got, timeline)
    usd = [live.codec.decode_level(r.value) for r in records if r.key == b"HSI_USD"]
    assert usd and all(isinstance(m, IndexLevels) and m.prev_close == 3315.3 for m in usd)

    expected_letters = {
        f"{config.fx_topic}[0]@{offset}": (b.reason, b.key, b.value, b.position)
        for offset, b in zip(live.fx_offsets, sent, strict=True)
        if b is not None
    }
    got_letters = dead_letters_by_source(letters)
    assert len(letters) == len(expected_letters)
    assert got_letters == expected_letters
    for reason in {b.reason for b in sent if b is not None}:
        count = sum(1 for b in sent if b is not None and b.reason == reason)
        assert live.sample("tickindex_ticks_rejected_total", reason=reason) == count, reason
        assert live.sample("tickindex_dead_letters_total", reason=reason) == count, reason
    assert live.sample("tickindex_ticks_applied_total") == len(timeline.ticks)
    channel = live.service.fx
    assert channel is not None and channel.translator.stats.fx_applied == len(timeline.fx)


@pytest.mark.kafka
@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
async def test_restart_continues_variants_from_the_checkpoint(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path, delivery: str
) -> None:
    universe = load_builtin_universe()
    timeline = make_timeline(universe, 2400, 4, SEED + 22)
    config = variant_config(topics, kafka_bootstrap, tmp_path, delivery=delivery)
    expected = replay_with_variants(universe, timeline, tmp_path)
    await ensure_topics(config)
    codec = WireCodec(config.wire_format)
    # First run: FX0, S0, FX1, S1, FX2; second run: S2, FX3, S3, FX4.
    first = LiveRun(config, universe)
    async with first.running():
        for k in range(3):
            await first.fx(cluster_messages(timeline.clusters[k], codec, [])[0])
            if k < 2:
                await first.stock(timeline.segments[k])
    assert first.service.fx is not None
    stopped: CurrencyState = first.service.fx.translator.snapshot()
    assert min(stopped.seq) > 0

    second = LiveRun(config, universe, ticks_sent=0, fx_sent=0)
    async with second.running():
        assert second.service.fx is not None
        assert second.service.fx.translator.snapshot() == stopped, "currency state not restored"
        for k in range(2, 4):
            await second.stock(timeline.segments[k])
            await second.fx(cluster_messages(timeline.clusters[k + 1], codec, [])[0])
    async with TopicReader(kafka_bootstrap, topics.level) as reader:
        got = expand_levels(await reader.read(), codec)

    # No duplicates and no gaps across the restart: exactly replay's levels, seq included.
    assert_same_levels(got, expected, "two runs vs tickindex replay --fx --variants")
    assert_variants_complete(got, timeline)
    assert second.sample("tickindex_ticks_consumed_total") == sum(
        len(s) for s in timeline.segments[2:]
    ), "the second run re-read ticks the checkpoint covered"
    assert second.service.fx.received == sum(
        len(cluster_messages(c, codec, [])[0]) for c in timeline.clusters[3:]
    ), "the second run re-read FX ticks the checkpoint covered"
