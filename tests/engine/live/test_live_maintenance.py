"""Maintenance events through the live service's control topic equal offline replay."""

from __future__ import annotations

import asyncio
import csv
import time
import uuid
from pathlib import Path

import msgspec
import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry

from engine.kernel.columns import TickColumns
from engine.kernel.screening import RejectReason
from engine.live.config import load_config
from engine.live.kafka.topics import ensure_topics
from engine.live.metrics import ServiceMetrics
from engine.live.service import IndexService
from engine.maintenance.adjustments import DivisorChange
from engine.maintenance.events import IndexEvent, ReplaceConstituent, RightsIssue, StockSplit
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.reference_files import load_universe
from engine.refdata.universe import Universe
from engine.wire import IndexLevels, WireCodec
from producers.kafka_publisher import TickPublisher
from producers.simulator import MarketSimulator
from tests.support.seed import SEED
from tickindex.cli.main import main

START_NS = 1_795_138_200_000_000_000


def _events() -> list[IndexEvent]:
    return [
        StockSplit(effective=START_NS + 1_000_000_000, security="0700", ratio=2.0),
        RightsIssue(
            effective=START_NS + 2_000_000_000,
            security="0005",
            new_shares=1,
            per_held=4,
            subscription_price=50.0,
        ),
        ReplaceConstituent(
            effective=START_NS + 3_000_000_000,
            index="HSI",
            old_security="0001",
            security="NEWCO",
            issued_shares=1.5e9,
            faf=0.8,
            price=30.0,
        ),
    ]


def _ticks(universe: Universe) -> TickColumns:
    """Seeded ticks over 4 s that trade ex the corporate actions (split, rights)."""
    ticks = MarketSimulator(universe, SEED, start_ns=START_NS, rate=3000).batch_for(4 * 10**9)
    price = ticks.price.copy()
    after_split = (ticks.security == universe.security_id("0700")) & (
        ticks.ts_event >= START_NS + 1_000_000_000
    )
    price[after_split] /= 2
    hsbc = universe.security_id("0005")
    cum = universe.prev_close[hsbc]
    after_rights = (ticks.security == hsbc) & (ticks.ts_event >= START_NS + 2_000_000_000)
    price[after_rights] *= (4 * cum + 50.0) / (5 * cum)
    return TickColumns(ticks.ts_event, ticks.security, price)


def _write_csv(path: Path, universe: Universe, ticks: TickColumns) -> None:
    with path.open("w") as handle:
        handle.write("ts,security,price\n")
        handle.writelines(
            f"{t},{universe.securities[s]},{p!r}\n"
            for t, s, p in zip(
                ticks.ts_event.tolist(), ticks.security.tolist(), ticks.price.tolist(), strict=True
            )
        )


async def _serve_and_collect(
    bootstrap: str, universe: Universe, ticks: TickColumns, events: list[IndexEvent]
) -> tuple[list[tuple[int, str, float, int]], list[DivisorChange]]:
    run = uuid.uuid4().hex[:8]
    config = load_config(
        overrides={
            "bootstrap": bootstrap,
            "tick_topic": f"maint-ticks-{run}",
            "level_topic": f"maint-levels-{run}",
            "dead_letter_topic": f"maint-dlq-{run}",
            "state_topic": f"maint-state-{run}",
            "control_topic": f"maint-control-{run}",
            "audit_topic": f"maint-audit-{run}",
            "group_id": f"maint-{run}",
            "metrics_port": -1,
        }
    )
    await ensure_topics(config)
    codec = WireCodec()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        encoder = msgspec.json.Encoder()
        for event in events:
            await producer.send_and_wait(config.control_topic, encoder.encode(event))
        publisher = TickPublisher(producer, config.tick_topic, universe, codec)
        await publisher.publish(ticks)
        await publisher.flush()
    finally:
        await producer.stop()
    service = IndexService(
        config, universe, ServiceMetrics(CollectorRegistry(), universe.index_codes, version="t")
    )
    task = asyncio.create_task(service.run())
    deadline = time.monotonic() + 60
    while service.pipeline.stats.ticks_in < len(ticks) and time.monotonic() < deadline:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    service.request_stop()
    await task
    return await _read_levels(bootstrap, config.level_topic), await _read_audit(
        bootstrap, config.audit_topic
    )


async def _read(bootstrap: str, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        enable_auto_commit=False,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 2:
            fetched = await consumer.getmany(timeout_ms=200)
            for records in fetched.values():
                values.extend(r.value for r in records if r.value is not None)
                idle_since = time.monotonic()
    finally:
        await consumer.stop()
    return values


async def _read_levels(bootstrap: str, topic: str) -> list[tuple[int, str, float, int]]:
    codec = WireCodec()
    rows: list[tuple[int, str, float, int]] = []
    for value in await _read(bootstrap, topic):
        message = codec.decode_level(value)
        assert isinstance(message, IndexLevels)
        rows.extend(
            (ts, message.index, level, seq)
            for ts, level, seq in zip(message.ts_event, message.level, message.seq, strict=True)
        )
    return rows


async def _read_audit(bootstrap: str, topic: str) -> list[DivisorChange]:
    decoder = msgspec.json.Decoder(DivisorChange)
    return [decoder.decode(value) for value in await _read(bootstrap, topic)]


@pytest.mark.kafka
def test_control_topic_events_equal_replay_with_events_file(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    print(f"seed {SEED}")
    events = _events()
    universe = load_builtin_universe().with_securities(["NEWCO"])
    ticks = _ticks(universe)
    _write_csv(tmp_path / "ticks.csv", universe, ticks)
    (tmp_path / "events.jsonl").write_bytes(
        b"".join(msgspec.json.encode(event) + b"\n" for event in events)
    )
    args = ["replay", "--ticks", str(tmp_path / "ticks.csv"), "--out", str(tmp_path / "l.csv")]
    args += ["--events", str(tmp_path / "events.jsonl"), "--audit", str(tmp_path / "audit.csv")]
    assert main(args) == 0
    with (tmp_path / "l.csv").open() as handle:
        expected = [
            (int(r["ts"]), r["index"], float(r["level"]), int(r["seq"]))
            for r in csv.DictReader(handle)
        ]
    live, audit = asyncio.run(_serve_and_collect(kafka_bootstrap, universe, ticks, events))

    def per_index(rows: list[tuple[int, str, float, int]]) -> dict[str, list[object]]:
        out: dict[str, list[object]] = {}
        for row in rows:
            out.setdefault(row[1], []).append(row)
        return out

    assert per_index(live) == per_index(expected)
    with (tmp_path / "audit.csv").open() as handle:
        replay_audit = [(r["index"], float(r["new_divisor"])) for r in csv.DictReader(handle)]
    assert [(a.index, a.new_divisor) for a in audit] == replay_audit
    assert {a.cause.split()[0] for a in audit} == {
        "stock_split",
        "rights_issue",
        "replace_constituent",
    }
    hsi = np.array([level for _, index, level, _ in expected if index == "HSI"])
    assert np.abs(np.diff(hsi) / hsi[:-1]).max() < 0.005, "a corporate action moved the HSI"


async def _serve_sessions(
    bootstrap: str, universe: Universe, ticks: TickColumns, eod_dir: Path
) -> tuple[list[bytes], list[bytes], IndexService]:
    run = uuid.uuid4().hex[:8]
    config = load_config(
        overrides={
            "bootstrap": bootstrap,
            "tick_topic": f"sess-ticks-{run}",
            "level_topic": f"sess-levels-{run}",
            "dead_letter_topic": f"sess-dlq-{run}",
            "state_topic": f"sess-state-{run}",
            "control_topic": f"sess-control-{run}",
            "audit_topic": f"sess-audit-{run}",
            "ohlc_topic": f"sess-ohlc-{run}",
            "group_id": f"sess-{run}",
            "metrics_port": -1,
            "sessions": True,
            "eod_dir": str(eod_dir),
        }
    )
    await ensure_topics(config)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        publisher = TickPublisher(producer, config.tick_topic, universe, WireCodec())
        await publisher.publish(ticks)
        await publisher.flush()
    finally:
        await producer.stop()
    registry = CollectorRegistry()
    service = IndexService(
        config, universe, ServiceMetrics(registry, universe.index_codes, version="t")
    )
    task = asyncio.create_task(service.run())
    deadline = time.monotonic() + 60
    while service.pipeline.stats.ticks_in < len(ticks) and time.monotonic() < deadline:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    service.request_stop()
    await task
    bars = await _read(bootstrap, config.ohlc_topic)
    letters = await _read(bootstrap, config.dead_letter_topic)
    return bars, letters, service


@pytest.mark.kafka
def test_live_sessions_reject_lunch_ticks_and_roll_at_the_next_day(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    print(f"seed {SEED}")
    universe = load_builtin_universe()
    morning = MarketSimulator(universe, SEED, start_ns=START_NS, rate=200).batch_for(10**10)
    lunch_ns = START_NS + 3 * 3600 * 10**9  # 12:30 HKT
    lunch = TickColumns(np.array([lunch_ns, lunch_ns + 1]), morning.security[:2], morning.price[:2])
    next_day = TickColumns(
        np.array([START_NS + 3 * 86_400 * 10**9]), morning.security[:1], morning.price[:1]
    )
    ticks = TickColumns.concat([morning, lunch, next_day])
    bars, letters, service = asyncio.run(
        _serve_sessions(kafka_bootstrap, universe, ticks, tmp_path / "eod")
    )
    assert service.pipeline.stats.rejected == {RejectReason.OUTSIDE_SESSION: 2}
    assert len(letters) == 2
    decoded = [msgspec.json.decode(bar) for bar in bars]
    assert {bar["index"] for bar in decoded} == set(universe.index_codes)
    assert {bar["date"] for bar in decoded} == {"2026-11-20"}
    rolled = tmp_path / "eod" / "2026-11-23"
    day2 = load_universe(rolled / "indices.csv", rolled / "composition.csv")
    hsi = next(bar for bar in decoded if bar["index"] == "HSI")
    assert day2.indices[day2.index_id("HSI")].prev_close_level == pytest.approx(
        hsi["close"], rel=1e-12
    )
