"""Helpers of the currency-variant tests against a real broker: variants, a timeline of stock
ticks and FX ticks, the replay reference and the service run in-process."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer

from engine.currency.translator import CurrencyTranslator
from engine.currency.variant_files import load_variants
from engine.kernel.columns import TickColumns
from engine.live.config import ServiceConfig
from engine.refdata.universe import Universe
from engine.wire import FxTick, FxTickBatch, Tick, WireCodec
from producers.kafka_publisher import TickPublisher
from tests.support.live import (
    InProcessService,
    LevelRow,
    LiveTopics,
    by_index,
    send_raw,
    simulate,
    wait_until,
)
from tickindex.cli.main import main

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


def translator(universe: Universe, variants_csv: str, folder: Path) -> CurrencyTranslator:
    (folder / "variants.csv").write_text(variants_csv)
    variants = load_variants(folder / "variants.csv", universe.index_codes)
    closes = [spec.prev_close_level for spec in universe.indices]
    return CurrencyTranslator(variants, universe.index_codes, closes)


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
class LiveRun(InProcessService):
    """The service in-process, fed phase by phase (each phase consumed before the next)."""

    ticks_sent: int = 0
    fx_sent: int = 0
    fx_offsets: list[int] = field(default_factory=list)

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


def variant_config(
    topics: LiveTopics, bootstrap: str, folder: Path, **settings: object
) -> ServiceConfig:
    (folder / "variants.csv").write_text(VARIANTS_CSV)
    defaults: dict[str, object] = {"max_batch_ticks": 150}
    return topics.config(
        bootstrap,
        fx_topic=f"fx-{topics.group}",
        variants=str(folder / "variants.csv"),
        **(defaults | settings),
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
