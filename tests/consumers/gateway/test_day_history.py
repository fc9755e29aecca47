"""History from the day files of ``tickindex record`` (CSV, JSON Lines, finished Parquet parts):
``DayHistory`` and ``/v1/levels/{code}/history`` with the ring serving the recent part."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from consumers.gateway.app import build_app
from consumers.gateway.book import Level
from consumers.gateway.day_history import DayHistory
from consumers.gateway.hub import Gateway, GatewaySettings
from consumers.level_batch import LevelBatch
from consumers.level_client import LevelSubscriber
from consumers.recorder import DailyLevelRecorder, RecordFormat
from engine.refdata.builtin import load_builtin_universe
from tests.support.level_topic import hk, levels, produce, unique
from tests.support.live import wait_until

DAY1 = hk("2026-11-19 10:00")
DAY2 = hk("2026-11-20 10:00")


def batch(code: str, seqs: list[int], ts: int) -> LevelBatch:
    """What ``levels(code, seqs, ts=ts)`` carries on the topic: level 1000 + seq at ts + seq."""
    seq = np.array(seqs, dtype=np.int64)
    return LevelBatch(
        (code, "OTHER"),
        np.zeros(len(seqs), dtype=np.int32),
        seq + np.float64(1000.0) + 0.1,
        seq.astype(np.float64),
        seq,
        ts + seq,
        ts + seq + 10,
    )


def record(folder: Path, batches: list[LevelBatch], fmt: RecordFormat = "csv") -> None:
    with DailyLevelRecorder(folder, fmt) as recorder:
        for one in batches:
            recorder.write(one)


def seqs(found: list[Level]) -> list[tuple[int, int]]:
    return [(level.ts_event, level.seq) for level in found]


def test_the_levels_of_one_index_from_the_files_of_the_dates_asked(tmp_path: Path) -> None:
    record(tmp_path, [batch("HSI", [1, 2], DAY1), batch("HSCEI", [7], DAY1)])
    record(tmp_path, [batch("HSI", [3, 4], DAY2)], "jsonl")
    history = DayHistory(tmp_path)
    assert [day.isoformat() for day, _ in history.files()] == ["2026-11-19", "2026-11-20"]
    everything = history.levels("HSI", None, None)
    assert seqs(everything) == [(DAY1 + 1, 1), (DAY1 + 2, 2), (DAY2 + 3, 3), (DAY2 + 4, 4)]
    assert everything[0] == Level("HSI", 1001.1, 1, DAY1 + 1)  # the float exactly
    assert seqs(history.levels("HSI", DAY1 + 2, DAY2 + 3)) == [(DAY1 + 2, 2), (DAY2 + 3, 3)]
    assert seqs(history.levels("HSCEI", None, None)) == [(DAY1 + 7, 7)]
    assert history.levels("HSTECH", None, None) == []
    (tmp_path / "levels-2026-11-18.csv").write_text(f"{DAY2 + 9},HSI,1.0,9,\n")
    # a level in the file of a date before the range (as no recorder writes it) shows the
    # file is read only when the range spans its date
    assert (DAY2 + 9, 9) not in seqs(history.levels("HSI", DAY1, None))
    assert (DAY2 + 9, 9) in seqs(history.levels("HSI", None, None))


def test_parquet_parts_give_what_the_same_levels_give_in_csv(tmp_path: Path) -> None:
    day2 = [batch("HSI", [3, 4], DAY2), batch("HSCEI", [5], DAY2), batch("HSI", [6], DAY2)]
    recorded = [batch("HSI", [1, 2], DAY1), batch("HSCEI", [7], DAY1), *day2]
    record(tmp_path / "csv", recorded)
    record(tmp_path / "parquet", recorded[:3], "parquet")
    record(tmp_path / "parquet", recorded[2:], "parquet")  # a level in two parts: HSI 3, 4
    parts = DayHistory(tmp_path / "parquet")
    assert [path.name for _, path in parts.files()] == [
        "levels-2026-11-19.parquet",
        "levels-2026-11-20.1.parquet",
        "levels-2026-11-20.parquet",
    ]
    csv = DayHistory(tmp_path / "csv")
    for code in ("HSI", "HSCEI", "HSTECH"):
        for low, high in ((None, None), (DAY1 + 2, DAY2 + 4), (DAY2 + 4, None), (None, DAY1)):
            assert parts.levels(code, low, high) == csv.levels(code, low, high)
    assert seqs(parts.levels("HSI", DAY1 + 2, DAY2 + 4)) == [
        (DAY1 + 2, 2),
        (DAY2 + 3, 3),
        (DAY2 + 4, 4),
    ]
    assert parts.levels("HSI", None, None)[0] == Level("HSI", 1001.1, 1, DAY1 + 1)


def test_a_part_still_being_written_is_not_read(tmp_path: Path) -> None:
    record(tmp_path, [batch("HSI", [1], DAY1)], "parquet")
    finished = tmp_path / "levels-2026-11-19.parquet"
    finished.rename(tmp_path / "levels-2026-11-19.1.parquet.partial")
    (tmp_path / "levels-2026-11-20.parquet.partial").write_bytes(b"PAR1 no footer yet")
    history = DayHistory(tmp_path)
    assert history.files() == []
    assert history.levels("HSI", None, None) == []


def test_most_leaves_the_files_of_later_dates_unread(tmp_path: Path) -> None:
    record(tmp_path, [batch("HSI", [1, 2], DAY1), batch("HSI", [3, 4], DAY2)])
    history = DayHistory(tmp_path)
    assert seqs(history.levels("HSI", None, None, most=1)) == [(DAY1 + 1, 1), (DAY1 + 2, 2)]
    assert len(history.levels("HSI", None, None, most=2)) == 4  # not more than 2 after day 1


def test_a_line_cut_short_is_skipped_and_a_missing_folder_has_nothing(tmp_path: Path) -> None:
    record(tmp_path, [batch("HSI", [1, 2], DAY1)])
    with (tmp_path / "levels-2026-11-19.csv").open("a") as cut:
        cut.write(f"{DAY1 + 3},HSI,100")
    (tmp_path / "levels-2026-11-20.jsonl").write_text('{"ts":1,"index":"HSI","lev')
    assert seqs(DayHistory(tmp_path).levels("HSI", None, None)) == [(DAY1 + 1, 1), (DAY1 + 2, 2)]
    assert DayHistory(tmp_path / "none").levels("HSI", None, None) == []


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
async def test_history_is_the_day_files_then_the_ring(
    kafka_bootstrap: str, tmp_path: Path, fmt: RecordFormat
) -> None:
    topic = unique("gw-days")
    today = [1, 2, 3, 4, 5, 6]
    await produce(kafka_bootstrap, topic, [levels("HSI", today, ts=DAY2)])
    # the recorder got yesterday and today's levels; the ring keeps only the last 3 of today
    record(tmp_path, [batch("HSI", [1, 2], DAY1), batch("HSI", today, DAY2)], fmt)
    subscriber = LevelSubscriber(kafka_bootstrap, topic, start="earliest", poll_timeout_ms=50)
    settings = GatewaySettings(history_levels=3)
    registry = CollectorRegistry()
    gateway = Gateway(load_builtin_universe(), settings, registry, DayHistory(tmp_path))
    try:
        async with TestClient(TestServer(build_app(gateway, subscriber))) as client:
            await wait_until(
                lambda: asyncio.sleep(0, [lv.seq for lv in gateway.book.latest()] == [6]),
                "the levels in the ring",
            )

            async def history(query: str) -> list[tuple[int, int, float]]:
                body = await (await client.get(f"/v1/levels/HSI/history{query}")).json()
                return [(m["ts_event"], m["seq"], m["level"]) for m in body["levels"]]

            ring = [(DAY2 + s, s, 1000.0 + s) for s in (4, 5, 6)]  # what the topic carries
            recorded = [(DAY2 + s, s, 1000.1 + s) for s in (1, 2, 3)]
            yesterday = [(DAY1 + s, s, 1000.1 + s) for s in (1, 2)]
            assert await history("") == [*yesterday, *recorded, *ring]
            assert await history(f"?from={DAY1 + 2}&to={DAY2 + 5}") == [
                yesterday[1],
                *recorded,
                *ring[:2],
            ]
            assert await history(f"?from={DAY2 + 5}") == ring[1:]  # the ring alone
            assert await history(f"?to={DAY1 + 1}") == yesterday[:1]  # the files alone
            gateway.settings = replace(settings, max_history_response=4)
            cut = await (await client.get("/v1/levels/HSI/history")).json()
            assert [m["seq"] for m in cut["levels"]] == [1, 2, 1, 2]
            assert cut["truncated"] is True
            assert (await (await client.get(f"/v1/levels/HSI/history?from={DAY2 + 4}")).json())[
                "truncated"
            ] is False
    finally:
        await subscriber.close()
