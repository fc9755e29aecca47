"""``LevelSubscriber`` (dedup, read_committed, resume) and the ``watch``/``record`` commands."""

from __future__ import annotations

import asyncio
import csv
import json
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer

from consumers.level_batch import LevelBatch
from consumers.level_client import LevelSubscriber
from consumers.recorder import DailyLevelRecorder
from engine.refdata.builtin import load_builtin_universe
from engine.wire import IndexLevel, IndexLevels, WireCodec
from tests.support.level_topic import hk, levels, produce, unique
from tickindex.cli.main import main

T0_MS = 1_795_138_200_000


async def collect(subscriber: LevelSubscriber, count: int, wait_s: float = 20) -> list[LevelBatch]:
    """Poll until ``count`` levels arrived, then once more to catch extras."""
    batches: list[LevelBatch] = []
    deadline = time.monotonic() + wait_s
    while sum(map(len, batches)) < count and time.monotonic() < deadline:
        batches.append(await subscriber.poll(200))
    batches.append(await subscriber.poll(300))
    return batches


def rows(batches: Sequence[LevelBatch]) -> list[tuple[str, int, float]]:
    out: list[tuple[str, int, float]] = []
    for batch in batches:
        out.extend(zip(batch.index_codes(), batch.seq.tolist(), batch.level.tolist(), strict=True))
    return out


@pytest.mark.kafka
async def test_duplicates_and_aborted_transactions_are_dropped(kafka_bootstrap: str) -> None:
    topic = unique("lv-dedup")
    hsi = levels("HSI", [1, 2, 3])
    await produce(
        kafka_bootstrap,
        topic,
        [
            hsi,
            levels("HSCEI", [1, 2], base=500.0),
            hsi,  # the same message again: a republished batch after a restart
            levels("HSI", [3, 4, 5]),  # overlaps by one level
            IndexLevel("HSI", 1005.0, 5.0, 5, 10_005, 5),  # duplicate single
            IndexLevel("HSI", 1006.0, 6.0, 6, 10_006, 6),
            b'{"type":"index_levels","index":"HSI"}',
        ],
    )
    aborted = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=unique("tx"))
    await aborted.start()
    try:
        await aborted.begin_transaction()
        await aborted.send_and_wait(topic, WireCodec().encode(levels("HSI", [7, 8])))
        await aborted.abort_transaction()
        async with aborted.transaction():
            await aborted.send_and_wait(topic, WireCodec().encode(levels("HSI", [9])))
    finally:
        await aborted.stop()
    async with LevelSubscriber(kafka_bootstrap, topic, start="earliest") as subscriber:
        got = rows(await collect(subscriber, 9))
        stats = subscriber.stats
        assert subscriber.last_seq == {"HSI": 9, "HSCEI": 2}
    assert got == [
        ("HSI", 1, 1001.0),
        ("HSI", 2, 1002.0),
        ("HSI", 3, 1003.0),
        ("HSCEI", 1, 501.0),
        ("HSCEI", 2, 502.0),
        ("HSI", 4, 1004.0),
        ("HSI", 5, 1005.0),
        ("HSI", 6, 1006.0),
        ("HSI", 9, 1009.0),
    ]
    assert stats.duplicates == 3 + 1 + 1
    assert stats.undecodable == 1
    assert stats.levels == 9


@pytest.mark.kafka
async def test_batches_carry_change_and_times(kafka_bootstrap: str) -> None:
    topic = unique("lv-cols")
    await produce(kafka_bootstrap, topic, [levels("HSTECH", [1, 2], base=5000.0, ts=7_000)])
    await produce(kafka_bootstrap, topic, [IndexLevel("HSI", 25_810.5, 10.5, 7_500, 7_600, 1)])
    async with LevelSubscriber(kafka_bootstrap, topic, start="earliest") as subscriber:
        batch = LevelBatch.concat(await collect(subscriber, 3))
    assert batch.index_codes() == ["HSTECH", "HSTECH", "HSI"]
    assert batch.change.tolist() == [1.0, 2.0, 10.5]
    assert batch.ts_event.tolist() == [7_001, 7_002, 7_500]
    assert batch.ts_published.tolist() == [17_000, 17_000, 7_600]
    universe = load_builtin_universe()
    columns, unknown = batch.to_columns(universe)
    assert unknown == 0
    assert columns.index.tolist() == [universe.index_id(c) for c in ("HSTECH", "HSTECH", "HSI")]


@pytest.mark.kafka
async def test_resume_from_a_time_and_live_start(kafka_bootstrap: str) -> None:
    topic = unique("lv-time")
    await produce(kafka_bootstrap, topic, [levels("HSI", [1, 2])], timestamp_ms=T0_MS)
    await produce(kafka_bootstrap, topic, [levels("HSI", [3, 4])], timestamp_ms=T0_MS + 60_000)
    from_time = (T0_MS + 30_000) * 1_000_000
    async with LevelSubscriber(kafka_bootstrap, topic, from_time_ns=from_time) as subscriber:
        assert [seq for _, seq, _ in rows(await collect(subscriber, 2))] == [3, 4]
    # Live: only what is published after the subscriber is positioned.
    async with LevelSubscriber(kafka_bootstrap, topic) as live:
        assert len(await live.poll(300)) == 0
        await produce(kafka_bootstrap, topic, [levels("HSI", [5])])
        assert [seq for _, seq, _ in rows(await collect(live, 1))] == [5]
    # A time after every message: nothing old, new messages still arrive.
    late = (int(time.time() * 1000) + 3_600_000) * 1_000_000
    async with LevelSubscriber(kafka_bootstrap, topic, from_time_ns=late) as subscriber:
        assert len(await subscriber.poll(300)) == 0
        await produce(kafka_bootstrap, topic, [levels("HSI", [6])])
        assert [seq for _, seq, _ in rows(await collect(subscriber, 1))] == [6]


@pytest.mark.kafka
async def test_group_offsets_resume_and_iteration_ends_on_close(kafka_bootstrap: str) -> None:
    topic, group = unique("lv-group"), unique("g")
    await produce(kafka_bootstrap, topic, [levels("HSI", [1, 2]), levels("HSCEI", [1])])
    first = LevelSubscriber(kafka_bootstrap, topic, group_id=group, start="earliest")
    seen: list[tuple[str, int, float]] = []
    async for batch in first:
        seen.extend(rows([batch]))
        if len(seen) >= 3:
            await first.close()
    assert [(code, seq) for code, seq, _ in seen] == [("HSI", 1), ("HSI", 2), ("HSCEI", 1)]
    await produce(kafka_bootstrap, topic, [levels("HSI", [3])])
    async with LevelSubscriber(kafka_bootstrap, topic, group_id=group, start="earliest") as second:
        assert [(code, seq) for code, seq, _ in rows(await collect(second, 1))] == [("HSI", 3)]


# -- recorder ----------------------------------------------------------------------------------


def two_day_levels() -> list[IndexLevels]:
    """HSI and HSCEI levels on Friday 20 and Monday 23 November 2026 (Hong Kong), one level
    a nanosecond before Hong Kong midnight (16:00 UTC, still the 20th)."""
    friday = [hk("2026-11-20 15:59"), hk("2026-11-21 00:00") - 1]
    monday = [hk("2026-11-23 09:30"), hk("2026-11-23 09:31")]
    out = []
    for code, base in (("HSI", 25_000.0), ("HSCEI", 9_000.0)):
        stamps = friday + monday
        out.append(
            IndexLevels(code, base, [base + k for k in range(4)], stamps, [1, 2, 3, 4], stamps[-1])
        )
    return out


@pytest.mark.kafka
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_record_rolls_files_per_hong_kong_day(
    kafka_bootstrap: str, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = unique("rec")
    messages = two_day_levels()
    asyncio.run(produce(kafka_bootstrap, topic, [*messages, messages[0]]))
    args = ["record", "--bootstrap", kafka_bootstrap, "--topic", topic, "--out-dir"]
    args += [str(tmp_path), "--format", fmt, "--from-beginning", "--duration", "2"]
    assert main(args) == 0
    assert "8 levels written to 2 file(s), 4 duplicates dropped" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"levels-2026-11-20.{fmt}",
        f"levels-2026-11-23.{fmt}",
    ]
    for day, seqs in (("2026-11-20", [1, 2]), ("2026-11-23", [3, 4])):
        path = tmp_path / f"levels-{day}.{fmt}"
        if fmt == "csv":
            assert path.read_text().splitlines()[0] == "ts,index,level,seq,security"
            with path.open() as handle:
                got = [
                    (r["index"], int(r["seq"]), float(r["level"]), int(r["ts"]), r["security"])
                    for r in csv.DictReader(handle)
                ]
        else:
            got = [
                (r["index"], r["seq"], r["level"], r["ts"], r["security"])
                for r in map(json.loads, path.read_text().splitlines())
            ]
        expected = [
            (m.index, s, m.level[s - 1], m.ts_event[s - 1], "") for s in seqs for m in messages
        ]
        assert got == expected, "event-time order, each level once"


def one_level(seq: int, ts: int) -> LevelBatch:
    """One HSI level: level seq + 0.5, change seq, ts_event ``ts``."""
    value = np.array([seq], dtype=np.int64)
    level = value.astype(np.float64)
    stamp = np.array([ts], dtype=np.int64)
    return LevelBatch(("HSI",), np.zeros(1, np.int32), level + 0.5, level, value, stamp, stamp)


def test_recorder_splits_at_hong_kong_midnight_and_appends(tmp_path: Path) -> None:
    midnight = hk("2026-11-21 00:00")  # 16:00 UTC on the 20th
    with DailyLevelRecorder(tmp_path) as recorder:
        recorder.write(LevelBatch.concat([one_level(2, midnight), one_level(1, midnight - 1)]))
    with DailyLevelRecorder(tmp_path) as recorder:  # a restart appends, without a new header
        recorder.write(one_level(3, midnight + 1))
    assert (tmp_path / "levels-2026-11-20.csv").read_text().splitlines() == [
        "ts,index,level,seq,security",
        f"{midnight - 1},HSI,1.5,1,",
    ]
    assert (tmp_path / "levels-2026-11-21.csv").read_text().splitlines() == [
        "ts,index,level,seq,security",
        f"{midnight},HSI,2.5,2,",
        f"{midnight + 1},HSI,3.5,3,",
    ]


# -- watch -------------------------------------------------------------------------------------


WATCH = [sys.executable, "-m", "tickindex.cli.main", "watch", "--refresh", "0.1"]


def board_messages() -> list[IndexLevels]:
    """One level per built-in index at +1% of its previous close, and one unknown index."""
    universe = load_builtin_universe()
    out = [
        IndexLevels(spec.code, spec.prev_close_level, [spec.prev_close_level * 1.01], [1], [1], 2)
        for spec in universe.indices
    ]
    return [*out, IndexLevels("NOT_AN_INDEX", 100.0, [101.0], [1], [1], 2)]


@pytest.mark.kafka
def test_watch_shows_every_index(kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]) -> None:
    topic = unique("watch")
    asyncio.run(produce(kafka_bootstrap, topic, board_messages()))
    args = ["watch", "--bootstrap", kafka_bootstrap, "--topic", topic, "--from-beginning"]
    assert main([*args, "--duration", "1", "--once"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\nINDEX ") == 1  # one frame
    final = captured.out.strip().split("\n\n")[-1].splitlines()
    universe = load_builtin_universe()
    assert len(final) == 2 + len(universe.indices)
    for spec, line in zip(universe.indices, final[2:], strict=True):
        assert line.split()[0] == spec.code
        assert f"{spec.prev_close_level * 1.01:,.2f}" in line and "+1.00%" in line
    assert "not in the universe" in captured.err
    assert "13 levels, 0 duplicates dropped, 1 of unknown indices" in captured.err


@pytest.mark.kafka
def test_watch_exits_0_on_sigterm(kafka_bootstrap: str) -> None:
    topic = unique("watchsig")
    asyncio.run(produce(kafka_bootstrap, topic, board_messages()))
    process = subprocess.Popen(
        [*WATCH, "--bootstrap", kafka_bootstrap, "--topic", topic, "--from-beginning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:  # summary lines: not a terminal
            if line.startswith("tickindex ") and "HSI 26,058.00 +1.00%" in line:
                break
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "13 levels" in err
