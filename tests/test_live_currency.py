"""Currency variants in the live service: FX decoding, level encoding and checkpoints without a
broker, then the service on a real broker (FX ticks on their own topic).

The reference of the broker tests is ``tickindex replay --fx --variants`` on the same ticks and
FX ticks. The live merge is exact when each fetch is a consistent time slice of both streams
(``engine.live.fx``), so the tests publish in phases that alternate the streams in event time
(FX cluster, stock segment, FX cluster, ...) and wait until the service has consumed each phase:
whatever the fetch boundaries, the level topic must then hold replay's levels bitwise, variant
``seq`` included.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import msgspec
import numpy as np
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from engine.builtin import load_builtin_universe
from engine.calculator import IndexCalculator
from engine.cli.main import main
from engine.columns import LevelColumns, TickColumns
from engine.currency import CurrencyState, CurrencyTranslator, FxColumns
from engine.live.codec import LevelEncoder
from engine.live.config import ServiceConfig
from engine.live.fx import FxChannel
from engine.live.metrics import ServiceMetrics
from engine.live.service import IndexService
from engine.live.topics import ensure_topics
from engine.pipeline import IndexPipeline
from engine.state import EngineState, StateMismatchError, capture_state, restore_currency
from engine.universe import Universe
from engine.wire import FxTick, FxTickBatch, IndexLevel, IndexLevels, Tick, WireCodec, WireFormat
from producers.fxfile import load_variants
from producers.kafka_publisher import TickPublisher
from tests.conftest import SEED
from tests.live_support import (
    LevelRow,
    LiveTopics,
    TopicReader,
    assert_same_levels,
    by_index,
    delete_topics,
    expand_levels,
    send_raw,
    simulate,
    wait_until,
)

# HSI and HSCEI in USD share one pair; HSI in CNH uses another (prev closes of the built-in
# universe: HSI 25800, HSCEI 9150).
VARIANTS_CSV = (
    "index,base_index,currency,fx_pair,prev_close_level,fx_prev_close\n"
    "HSI_USD,HSI,USD,HKDUSD,3315.3,0.1285\n"
    "HSCEI_USD,HSCEI,USD,HKDUSD,1175.775,0.1285\n"
    "HSI_CNH,HSI,CNH,HKDCNH,23736.0,0.92\n"
)
VARIANT_CODES = ("HSI_USD", "HSCEI_USD", "HSI_CNH")
FX_PER_CLUSTER = 8


# -- without a broker: FX decoding, level encoding, checkpoints ---------------------------------


@dataclass(frozen=True)
class FakeRecord:
    """A fetched record (the parts ``Record`` names)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def translator(universe: Universe, variants_csv: str, folder: Path) -> CurrencyTranslator:
    (folder / "variants.csv").write_text(variants_csv)
    variants = load_variants(folder / "variants.csv", universe.index_codes)
    closes = [spec.prev_close_level for spec in universe.indices]
    return CurrencyTranslator(variants, universe.index_codes, closes)


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
    single = LevelEncoder(
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


# -- against a broker ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FxRow:
    """One good FX tick as published (pair spelled as sent)."""

    ts: int
    pair: str
    rate: float


@dataclass(frozen=True)
class BadFx:
    """A bad FX message: key, value, expected dead-letter reason and batch position."""

    key: bytes | None
    value: bytes
    reason: str
    position: int | None = None


@dataclass
class Timeline:
    """Stock tick segments and FX clusters, alternating in event time: FX, S, FX, S, ..., FX."""

    segments: list[TickColumns]
    clusters: list[list[FxRow]]

    @property
    def ticks(self) -> TickColumns:
        return TickColumns.concat(self.segments)

    @property
    def fx(self) -> list[FxRow]:
        return [row for cluster in self.clusters for row in cluster]


def make_timeline(universe: Universe, n_ticks: int, n_segments: int, seed: int) -> Timeline:
    """Seeded ticks cut into segments; between (and around) them clusters of FX ticks."""
    ticks = simulate(universe, n_ticks, seed)
    ts = ticks.ts_event
    wide = np.flatnonzero(np.diff(ts) > 10 * FX_PER_CLUSTER)  # room for a cluster in the gap
    cuts = [
        int(wide[np.searchsorted(wide, n_ticks * k // n_segments)]) + 1
        for k in range(1, n_segments)
    ]
    bounds = [0, *cuts, n_ticks]
    segments = [ticks.slice(a, b) for a, b in pairwise(bounds)]
    windows = [(int(ts[0]) - 10**6, int(ts[0]))]
    windows += [(int(s.ts_event[-1]), int(n.ts_event[0])) for s, n in pairwise(segments)]
    windows.append((int(ts[-1]), int(ts[-1]) + 10**6))
    rng = np.random.default_rng(seed)
    rates = {"HKDUSD": 0.1285, "HKDCNH": 0.92}
    clusters = []
    for lo, hi in windows:
        cluster = []
        for j in range(FX_PER_CLUSTER):
            pair = str(rng.choice(list(rates)))
            rates[pair] *= math.exp(rng.normal(0.0, 5e-4))
            # Distinct stamps strictly inside the gap; a spelling replay and service normalise.
            spelled = "hkd/usd" if pair == "HKDUSD" and j == 1 else pair
            cluster.append(
                FxRow(lo + (hi - lo) * (j + 1) // (FX_PER_CLUSTER + 1), spelled, rates[pair])
            )
        clusters.append(cluster)
    return Timeline(segments, clusters)


def cluster_messages(
    cluster: list[FxRow], codec: WireCodec, bad: list[BadFx]
) -> tuple[list[tuple[bytes | None, bytes]], list[BadFx | None]]:
    """The cluster as FX messages (singles, a mixed batch with one bad tick, a batch), with
    ``bad`` messages in the middle; per message, its ``BadFx`` (or None for a good one)."""
    encode = codec.encode
    out: list[tuple[tuple[bytes | None, bytes], BadFx | None]] = [
        ((r.pair.encode(), encode(FxTick(r.pair, r.rate, r.ts))), None) for r in cluster[:2]
    ]
    out += [((b.key, b.value), b) for b in bad]
    a, c = cluster[2], cluster[3]
    mixed = encode(
        FxTickBatch([a.pair, "EURUSD", c.pair], [a.rate, 1.08, c.rate], [a.ts, c.ts, c.ts])
    )
    out.append(((None, mixed), BadFx(None, mixed, "fx_unknown_pair", 1)))
    rest = cluster[4:]
    batch = FxTickBatch([r.pair for r in rest], [r.rate for r in rest], [r.ts for r in rest])
    out.append(((None, encode(batch)), None))
    return [m for m, _ in out], [b for _, b in out]


def bad_fx(codec: WireCodec, ts: int) -> list[BadFx]:
    """Every kind of bad FX message (none of them may move a variant)."""
    encode = codec.encode
    out = [
        BadFx(None, b"\xc1 not an fx tick {", "fx_undecodable"),
        BadFx(b"EURUSD", encode(FxTick("EURUSD", 1.08, ts)), "fx_unknown_pair"),
        BadFx(b"HKDUSD", encode(FxTick("HKDUSD", 0.0, ts)), "fx_non_positive_rate"),
        BadFx(b"HKDUSD", encode(FxTick("HKDUSD", -0.1285, ts)), "fx_non_positive_rate"),
        BadFx(None, encode(FxTickBatch(["HKDUSD", "HKDUSD"], [0.13], [ts, ts])), "fx_undecodable"),
        BadFx(b"0700", encode(Tick("0700", 401.2, ts)), "fx_undecodable"),  # a stock tick
    ]
    if codec.wire_format == "msgpack":
        out += [
            BadFx(b"HKDCNH", encode(FxTick("HKDCNH", r, ts)), "fx_non_finite_rate")
            for r in (math.nan, math.inf, -math.inf)
        ]
    else:
        nan = f'{{"type":"fx_tick","pair":"HKDCNH","rate":NaN,"ts_event":{ts}}}'.encode()
        out.append(BadFx(b"HKDCNH", nan, "fx_undecodable"))
    return out


def replay_with_variants(universe: Universe, timeline: Timeline, folder: Path) -> list[LevelRow]:
    """``tickindex replay --fx --variants`` on the timeline's good ticks and FX ticks."""
    ticks, codes = timeline.ticks, universe.securities
    (folder / "ticks.csv").write_text(
        "ts,security,price\n"
        + "".join(
            f"{t},{codes[s]},{p!r}\n"
            for t, s, p in zip(
                ticks.ts_event.tolist(), ticks.security.tolist(), ticks.price.tolist(), strict=True
            )
        )
    )
    (folder / "fx.csv").write_text(
        "ts,pair,rate\n" + "".join(f"{r.ts},{r.pair},{r.rate!r}\n" for r in timeline.fx)
    )
    argv = ["replay", "--ticks", str(folder / "ticks.csv"), "--out", str(folder / "levels.csv")]
    argv += ["--fx", str(folder / "fx.csv"), "--variants", str(folder / "variants.csv")]
    assert main([*argv, "--no-progress"]) == 0
    with (folder / "levels.csv").open() as handle:
        return [
            LevelRow(r["index"], int(r["seq"]), int(r["ts"]), float(r["level"]))
            for r in csv.DictReader(handle)
        ]


@dataclass
class LiveRun:
    """The service in-process, fed phase by phase (each phase consumed before the next)."""

    config: ServiceConfig
    universe: Universe
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    ticks_sent: int = 0
    fx_sent: int = 0
    fx_offsets: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        metrics = ServiceMetrics(self.registry, self.universe.index_codes, version="test")
        self.service = IndexService(self.config, self.universe, metrics)
        self.codec = WireCodec(self.config.wire_format)

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        assert value is not None, f"no sample {name}{labels}"
        return value

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[IndexService]:
        task = asyncio.create_task(self.service.run())

        async def started() -> bool:
            if task.done():
                task.result()
            return self.service.ready.is_set()

        try:
            await wait_until(started, "the service to start", 20)
            yield self.service
        finally:
            self.service.request_stop()
            try:
                await asyncio.wait_for(task, timeout=20)
            finally:
                task.cancel()

    async def stock(self, segment: TickColumns) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.config.bootstrap, acks="all")
        await producer.start()
        try:
            publisher = TickPublisher(producer, self.config.tick_topic, self.universe, self.codec)
            await publisher.publish(segment)
            await publisher.flush()
        finally:
            await producer.stop()
        self.ticks_sent += len(segment)

        async def consumed() -> bool:
            return self.sample("tickindex_ticks_consumed_total") >= self.ticks_sent

        await wait_until(consumed, f"{self.ticks_sent} ticks consumed")

    async def fx(self, messages: list[tuple[bytes | None, bytes]]) -> None:
        self.fx_offsets += await send_raw(self.config.bootstrap, self.config.fx_topic, messages)
        self.fx_sent += len(messages)
        channel = self.service.fx
        assert channel is not None

        async def consumed() -> bool:
            return channel.received >= self.fx_sent

        await wait_until(consumed, f"{self.fx_sent} FX messages consumed")


@pytest.fixture
async def topics(kafka_bootstrap: str, request: pytest.FixtureRequest) -> AsyncIterator[LiveTopics]:
    names = LiveTopics.unique(request.node.name)
    yield names
    await delete_topics(kafka_bootstrap, [*names.names, f"fx-{names.group}"])


def variant_config(
    topics: LiveTopics, bootstrap: str, folder: Path, **settings: object
) -> ServiceConfig:
    (folder / "variants.csv").write_text(VARIANTS_CSV)
    return topics.config(
        bootstrap,
        fx_topic=f"fx-{topics.group}",
        variants=str(folder / "variants.csv"),
        max_batch_ticks=150,
        **settings,
    )


def assert_variants_complete(got: list[LevelRow], timeline: Timeline) -> None:
    """Every variant's seq runs 1..n without gaps; n = base levels + FX ticks of its pair."""
    rows = by_index(got)
    pairs = [r.pair.upper().replace("/", "") for r in timeline.fx]
    moves = {
        "HSI_USD": len(rows["HSI"]) + pairs.count("HKDUSD"),
        "HSCEI_USD": len(rows["HSCEI"]) + pairs.count("HKDUSD"),
        "HSI_CNH": len(rows["HSI"]) + pairs.count("HKDCNH"),
    }
    for code in VARIANT_CODES:
        assert [r.seq for r in rows[code]] == list(range(1, moves[code] + 1)), code
    # Independent of replay: the last HSI_USD level is the last HSI level at the last rate.
    last_rate = next(r.rate for r in reversed(timeline.fx) if r.pair.upper() != "HKDCNH")
    expected = rows["HSI"][-1].level * last_rate * 3315.3 / (0.1285 * 25800.0)
    assert rows["HSI_USD"][-1].level == pytest.approx(expected, rel=1e-12)


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
    got_letters = {}
    for letter in letters:
        headers = {name: value.decode() for name, value in letter.headers}
        position = headers.get("tickindex.batch_position")
        got_letters[headers["tickindex.source"]] = (
            headers["tickindex.reason"],
            letter.key,
            letter.value,
            None if position is None else int(position),
        )
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
