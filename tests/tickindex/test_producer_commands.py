"""``tickindex simulate`` and ``tickindex publish``: sessions, pacing and what lands on Kafka."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord

from engine.calendar.sessions import NS_PER_SECOND, TradingCalendar
from engine.core.timestamps import parse_timestamp
from engine.kernel.columns import TickColumns
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.universe import Universe
from engine.wire import Tick, TickBatch, WireCodec
from producers.pacing import ReplayPacer, StopControl, continuous_session, describe_hkt
from producers.simulator import MarketSimulator
from tests.support.seed import SEED
from tickindex.cli.main import main
from tickindex.cli.simulate import simulate_market

SUMMARY = re.compile(r"([\d,]+) ticks in ([\d,]+) messages")


def hk(stamp: str) -> int:
    """Nanoseconds of a Hong Kong wall-clock time, ``YYYY-MM-DD HH:MM[:SS]``."""
    return parse_timestamp(stamp.replace(" ", "T") + "+08:00")


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def read_topic(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every message of every partition up to the current end, partition by partition."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = sorted(consumer.assignment())
        end = await consumer.end_offsets(partitions)
        records: dict[int, list[ConsumerRecord[bytes, bytes]]] = defaultdict(list)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in partitions]
            if all(at >= end[tp] for at, tp in zip(positions, partitions, strict=True)):
                break
            for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                records[tp.partition].extend(batch)
        return [r for p in sorted(records) for r in records[p]]
    finally:
        await consumer.stop()


def summary_counts(text: str) -> tuple[int, int]:
    match = SUMMARY.search(text)
    assert match, text
    return int(match.group(1).replace(",", "")), int(match.group(2).replace(",", ""))


# -- calendar and pacing (no broker) ---------------------------------------------------------


def test_hkex_continuous_sessions_lunch_weekend_holidays_and_half_days() -> None:
    calendar = TradingCalendar(holidays=["2026-11-23"], half_days=["2026-11-24"])

    def session(stamp: str) -> tuple[str, str]:
        open_ns, close_ns = continuous_session(calendar, hk(stamp))
        return describe_hkt(open_ns), describe_hkt(close_ns)

    friday = ("2026-11-20 09:30:00 HKT", "2026-11-20 12:00:00 HKT")
    assert session("2026-11-20 00:00") == friday
    assert session("2026-11-20 09:30") == friday
    assert session("2026-11-20 11:59:59") == friday
    afternoon = ("2026-11-20 13:00:00 HKT", "2026-11-20 16:00:00 HKT")
    assert session("2026-11-20 12:00") == afternoon
    assert session("2026-11-20 15:59:59") == afternoon
    # After Friday's close: Monday is a holiday, Tuesday a half day (morning only).
    half_day = ("2026-11-24 09:30:00 HKT", "2026-11-24 12:00:00 HKT")
    assert session("2026-11-20 16:00") == half_day
    assert session("2026-11-21 13:00") == half_day
    assert session("2026-11-24 12:00") == ("2026-11-25 09:30:00 HKT", "2026-11-25 12:00:00 HKT")
    assert continuous_session(calendar, hk("2026-11-20 10:00"))[0] <= hk("2026-11-20 10:00")


class FakeStop(StopControl):
    """A stop control on a fake clock: sleeping moves time instead of waiting."""

    def __init__(self, start_ns: int, duration_s: float | None) -> None:
        self.now_ns = start_ns
        super().__init__(duration_s, clock=lambda: self.now_ns / NS_PER_SECOND)
        self.sleeps: list[float] = []

    def wall_ns(self) -> int:
        return self.now_ns

    async def sleep(self, seconds: float) -> bool:
        left = self.remaining()
        step = max(0.0, seconds if left is None else min(seconds, left))
        self.sleeps.append(step)
        self.now_ns += round(step * NS_PER_SECOND)
        return self.stopped


def run_simulation(start_ns: int, duration_s: float) -> tuple[TickColumns, list[str], FakeStop]:
    universe = load_builtin_universe()
    stop = FakeStop(start_ns, duration_s)
    batches: list[TickColumns] = []
    notes: list[str] = []

    async def publish(ticks: TickColumns) -> None:
        batches.append(ticks)

    count = asyncio.run(
        simulate_market(
            universe,
            publish,
            seed=SEED,
            rate=1000.0,
            stop=stop,
            calendar=TradingCalendar(),  # no holidays
            wall_ns=stop.wall_ns,
            notify=notes.append,
        )
    )
    ticks = TickColumns.concat(batches)
    assert count == len(ticks)
    return ticks, notes, stop


def test_session_aware_simulation_skips_the_lunch_break() -> None:
    ticks, notes, stop = run_simulation(hk("2026-11-20 11:59:58"), duration_s=3600 + 4)
    ts = ticks.ts_event
    morning = ts < hk("2026-11-20 12:00")
    afternoon = ts >= hk("2026-11-20 13:00")
    assert (morning | afternoon).all(), "no tick during the lunch break"
    assert (ts >= hk("2026-11-20 11:59:58")).all() and (ts <= hk("2026-11-20 13:00:02")).all()
    # Two seconds of trading on each side at 1,000 ticks/s, Poisson: far from 1,000 or 3,000.
    assert 1_500 < np.count_nonzero(morning) < 2_500
    assert 1_500 < np.count_nonzero(afternoon) < 2_500
    assert (np.diff(ts) >= 0).all()
    assert notes == [
        "simulate: outside HKEX trading hours, sleeping until 2026-11-20 13:00:00 HKT",
        "simulate: market open (2026-11-20 13:00:00 HKT), publishing",
    ]
    assert max(stop.sleeps) == pytest.approx(3600, abs=0.2), "one long sleep over lunch"
    # Sequence numbers run on per security across the break, one apart.
    assert ticks.seq is not None
    order = np.lexsort((ticks.seq, ticks.security))
    same = np.diff(ticks.security[order]) == 0
    assert (np.diff(ticks.seq[order])[same] == 1).all()


def test_session_aware_simulation_sleeps_through_the_weekend() -> None:
    ticks, notes, stop = run_simulation(hk("2026-11-21 13:00"), duration_s=10)
    assert len(ticks) == 0
    assert notes == ["simulate: outside HKEX trading hours, sleeping until 2026-11-23 09:30:00 HKT"]
    assert sum(stop.sleeps) == pytest.approx(10)


def test_replay_pacer_sleeps_per_slice_and_never_early() -> None:
    start = 1_795_000_000 * NS_PER_SECOND
    ticks = MarketSimulator(load_builtin_universe(), SEED, start_ns=start, rate=500).batch_for(
        20 * NS_PER_SECOND
    )
    wall = [100.0]
    pacer = ReplayPacer(4.0, window_s=0.05, clock=lambda: wall[0])
    first_half, second_half = (
        ticks.slice(0, len(ticks) // 2),
        ticks.slice(len(ticks) // 2, len(ticks)),
    )
    slices = [(0, s) for s in pacer.slices(first_half.ts_event)]
    slices += [(len(first_half), s) for s in pacer.slices(second_half.ts_event)]
    # 20 s of event time at 4x is 5 s of wall time: about 100 slices of 50 ms, not 10,000 ticks.
    assert len(ticks) > 5_000
    assert len(slices) <= 5.0 / 0.05 + 2
    covered = np.concatenate([np.arange(base + s.start, base + s.stop) for base, s in slices])
    assert (covered == np.arange(len(ticks))).all()
    first = int(ticks.ts_event[0])
    for base, s in slices:
        own_due = 100.0 + (ticks.ts_event[base + s.start : base + s.stop] - first) / 1e9 / 4.0
        assert (s.due >= own_due - 1e-9).all(), "a tick would leave before its time"
        assert (s.due - own_due <= 0.05 + 1e-9).all(), "a tick would wait more than one window"
    assert [s.due for _, s in slices] == sorted(s.due for _, s in slices)


# -- simulate on a real broker ---------------------------------------------------------------


@pytest.mark.kafka
def test_simulate_publishes_keyed_ordered_ticks(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = unique("sim")
    asyncio.run(create_topic(kafka_bootstrap, topic, 3))
    before = time.time_ns()
    args = ["simulate", "--bootstrap", kafka_bootstrap, "--topic", topic, "--duration", "1.5"]
    assert main([*args, "--seed", str(SEED), "--rate", "2000"]) == 0
    after = time.time_ns()
    ticks, messages = summary_counts(capsys.readouterr().out)
    assert ticks == messages > 1_000
    records = asyncio.run(read_topic(kafka_bootstrap, topic))
    assert len(records) == messages
    codec = WireCodec("json")
    universe = load_builtin_universe()
    partitions: dict[str, set[int]] = defaultdict(set)
    per_security: dict[str, list[Tick]] = defaultdict(list)
    for record in records:
        tick = codec.decode_tick(record.value or b"")
        assert isinstance(tick, Tick)
        assert record.key == tick.security.encode()
        assert universe.security_id(tick.security) >= 0
        assert before <= tick.ts_event <= after
        partitions[tick.security].add(record.partition)
        per_security[tick.security].append(tick)
    assert all(len(p) == 1 for p in partitions.values())
    assert len({p for ps in partitions.values() for p in ps}) == 3
    for series in per_security.values():
        seqs = [t.seq for t in series]
        assert all(s is not None for s in seqs)
        assert np.all(np.diff(np.array(seqs)) == 1), "per-security seq in order, no gaps"
        assert np.all(np.diff([t.ts_event for t in series]) >= 0)


@pytest.mark.kafka
def test_simulate_tick_batches_in_msgpack(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = unique("simb")
    args = ["simulate", "--bootstrap", kafka_bootstrap, "--topic", topic, "--duration", "1"]
    args += ["--batch-ticks", "50", "--wire-format", "msgpack", "--seed", str(SEED), "--no-seq"]
    assert main(args) == 0
    ticks, messages = summary_counts(capsys.readouterr().out)
    records = asyncio.run(read_topic(kafka_bootstrap, topic))
    assert len(records) == messages < ticks
    batches = [WireCodec("msgpack").decode_tick(r.value or b"") for r in records]
    assert all(isinstance(b, TickBatch) and 0 < len(b.security) <= 50 for b in batches)
    assert sum(len(b.security) for b in batches if isinstance(b, TickBatch)) == ticks
    assert all(b.seq is None for b in batches if isinstance(b, TickBatch))


@pytest.mark.kafka
def test_simulate_stops_cleanly_on_ctrl_c(kafka_bootstrap: str) -> None:
    topic = unique("simsig")
    command = [sys.executable, "-m", "tickindex.cli.main", "simulate", "--bootstrap"]
    process = subprocess.Popen(
        [*command, kafka_bootstrap, "--topic", topic, "--rate", "500"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not asyncio.run(read_topic(kafka_bootstrap, topic)) and time.monotonic() < deadline:
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    ticks, _ = summary_counts(out)
    assert ticks > 0


# -- publish on a real broker ----------------------------------------------------------------


def write_tick_file(path: Path, universe: Universe, span_s: float) -> TickColumns:
    """Seeded ticks over ``span_s`` seconds plus six rows that must not be published."""
    start = 1_795_138_200 * NS_PER_SECOND
    ticks = MarketSimulator(universe, SEED, start_ns=start, rate=30).batch_for(
        round(span_s * NS_PER_SECOND)
    )
    rows = [
        f"{t},{universe.securities[s]},{p!r},100"
        for t, s, p in zip(
            ticks.ts_event.tolist(), ticks.security.tolist(), ticks.price.tolist(), strict=True
        )
    ]
    bad = [
        f"{start + 1},ZZZZ,10.0,1",
        f"{start + 2},ZZZZ,11.0,1",
        f"{start + 3},0700,abc,1",
        f"{start + 4},0005,-1.0,1",
        "yesterday,0005,60.0,1",
        f"{start + 5},0005",
    ]
    for offset, row in enumerate(bad):
        rows.insert(10 + 7 * offset, row)
    path.write_text("ts,security,price,volume\n" + "\n".join(rows) + "\n")
    return ticks


def published_ticks(records: list[ConsumerRecord[bytes, bytes]]) -> list[tuple[str, int, float]]:
    codec = WireCodec("json")
    out: list[tuple[str, int, float]] = []
    for record in records:
        message = codec.decode_tick(record.value or b"")
        if isinstance(message, Tick):
            out.append((message.security, message.ts_event, message.price))
        else:
            out.extend(zip(message.security, message.ts_event, message.price, strict=True))
    return out


def per_security(rows: list[tuple[str, int, float]]) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for security, ts, price in rows:
        out[security].append((ts, price))
    return dict(out)


@pytest.mark.kafka
def test_publish_as_fast_as_possible_reports_rejects(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    universe = load_builtin_universe()
    expected = write_tick_file(tmp_path / "ticks.csv", universe, span_s=20)
    topic = unique("pub")
    asyncio.run(create_topic(kafka_bootstrap, topic, 3))
    args = ["publish", str(tmp_path / "ticks.csv"), "--bootstrap", kafka_bootstrap]
    assert main([*args, "--topic", topic, "--as-fast-as-possible"]) == 0
    out = capsys.readouterr().out
    assert summary_counts(out) == (len(expected), len(expected))
    assert f"rows read {len(expected) + 6:,d}, published {len(expected):,d}, skipped 6" in out
    assert "skipped 2 unknown_security (codes: ZZZZ)" in out
    assert "skipped 1 non_finite_price" in out and "skipped 1 non_positive_price" in out
    assert "skipped 1 bad_timestamp" in out and "skipped 1 undecodable" in out
    records = asyncio.run(read_topic(kafka_bootstrap, topic))
    assert all(r.key is not None for r in records)
    rows = published_ticks(records)
    file_rows = [
        (universe.securities[s], t, p)
        for s, t, p in zip(
            expected.security.tolist(),
            expected.ts_event.tolist(),
            expected.price.tolist(),
            strict=True,
        )
    ]
    assert per_security(rows) == per_security(file_rows), "per security: every tick, in order"


@pytest.mark.kafka
def test_publish_at_50x_reproduces_the_pace_in_tick_batches(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    universe = load_builtin_universe()
    expected = write_tick_file(tmp_path / "ticks.csv", universe, span_s=25)
    span_s = (int(expected.ts_event.max()) - int(expected.ts_event.min())) / NS_PER_SECOND
    topic = unique("pub50")
    args = ["publish", str(tmp_path / "ticks.csv"), "--bootstrap", kafka_bootstrap]
    started = time.monotonic()
    assert main([*args, "--topic", topic, "--speed", "50", "--batch-ticks", "20"]) == 0
    elapsed = time.monotonic() - started
    assert elapsed >= 0.8 * span_s / 50
    out = capsys.readouterr().out
    ticks, messages = summary_counts(out)
    assert ticks == len(expected) and messages < ticks
    records = asyncio.run(read_topic(kafka_bootstrap, topic))
    assert len(records) == messages
    assert [ts for _, ts, _ in published_ticks(records)] == expected.ts_event.tolist()
    # Broker time of the last message against the first: the event-time span at 50x.
    assert records[-1].timestamp - records[0].timestamp >= 0.8 * span_s / 50 * 1000
