"""``record --format parquet``: one Parquet file per Hong Kong day, parts after a restart."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from consumers.day_files import MAX_OPEN_FILES
from consumers.level_batch import LevelBatch
from consumers.recorder import DailyLevelRecorder

MIDNIGHT = 1_795_190_400_000_000_000  # 2026-11-21 00:00 HKT


def _levels(seqs: list[int], ts: list[int]) -> LevelBatch:
    seq = np.array(seqs, dtype=np.int64)
    level = seq.astype(np.float64) + 0.1 + 0.2  # not a round number: exact values kept
    stamps = np.array(ts, dtype=np.int64)
    zeros = np.zeros(len(seqs), np.int32)
    return LevelBatch(("HSI",), zeros, level, level, seq, stamps, stamps)


def _rows(path: Path) -> list[tuple[object, ...]]:
    table = pq.read_table(path)
    return list(zip(*(table.column(name).to_pylist() for name in table.schema.names), strict=True))


def test_days_split_at_hong_kong_midnight_and_a_restart_starts_a_part(tmp_path: Path) -> None:
    with DailyLevelRecorder(tmp_path, "parquet") as recorder:
        recorder.write(_levels([2, 1], [MIDNIGHT, MIDNIGHT - 1]))
    assert recorder.rows_written == 2
    with DailyLevelRecorder(tmp_path, "parquet") as again:
        again.write(_levels([3], [MIDNIGHT + 1]))
    assert _rows(tmp_path / "levels-2026-11-20.parquet") == [
        (MIDNIGHT - 1, "HSI", 1 + 0.1 + 0.2, 1, "")
    ]
    assert _rows(tmp_path / "levels-2026-11-21.parquet") == [
        (MIDNIGHT, "HSI", 2 + 0.1 + 0.2, 2, "")
    ]
    assert _rows(tmp_path / "levels-2026-11-21.1.parquet") == [
        (MIDNIGHT + 1, "HSI", 3 + 0.1 + 0.2, 3, "")
    ]
    assert again.files == {date(2026, 11, 21): tmp_path / "levels-2026-11-21.1.parquet"}


def test_a_day_closed_to_open_others_gets_a_new_part(tmp_path: Path) -> None:
    day_ns = 86_400 * 10**9
    with DailyLevelRecorder(tmp_path, "parquet") as recorder:
        for k in range(MAX_OPEN_FILES + 1):
            recorder.write(_levels([k + 1], [MIDNIGHT + k * day_ns]))
        recorder.write(_levels([9], [MIDNIGHT + 1]))  # its day's file was finished
    first = date(2026, 11, 21)
    assert _rows(tmp_path / "levels-2026-11-21.parquet")[0][3] == 1
    assert _rows(tmp_path / "levels-2026-11-21.1.parquet")[0][3] == 9
    assert len(recorder.files) == MAX_OPEN_FILES + 1
    assert first + timedelta(days=MAX_OPEN_FILES) in recorder.files


def test_row_groups_of_many_levels(tmp_path: Path) -> None:
    with DailyLevelRecorder(tmp_path, "parquet") as recorder:
        for start in range(0, 200_000, 50_000):
            seqs = list(range(start + 1, start + 50_001))
            recorder.write(_levels(seqs, [MIDNIGHT + s for s in seqs]))
    meta = pq.ParquetFile(tmp_path / "levels-2026-11-21.parquet").metadata
    assert meta.num_rows == 200_000 and meta.num_row_groups >= 2
    seq = pq.read_table(tmp_path / "levels-2026-11-21.parquet").column("seq").to_numpy()
    assert np.array_equal(seq, np.arange(1, 200_001))
