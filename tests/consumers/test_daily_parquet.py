"""``record --format parquet``: each Hong Kong day as parts, written under a ``.partial`` name and
renamed into place once finished (in time, at a row cap, on close); ``durable``; no pyarrow for
CSV/JSON Lines."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from consumers.daily_parquet import DailyParquetLevels
from consumers.day_files import MAX_OPEN_FILES
from consumers.level_batch import LevelBatch
from consumers.recorder import DailyLevelRecorder
from tests.support.paths import REPO

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


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _parts(folder: Path, **options: float) -> tuple[DailyParquetLevels, FakeClock]:
    clock = FakeClock()
    parts = DailyParquetLevels(
        lambda day: folder / f"levels-{day.isoformat()}.parquet",
        part_seconds=options.get("part_seconds", 60.0),
        part_rows=int(options.get("part_rows", 1_000_000)),
        clock=clock,
    )
    return parts, clock


DAY = date(2026, 11, 21)


def test_a_part_is_written_as_partial_and_renamed_into_place_once_old_enough(
    tmp_path: Path,
) -> None:
    parts, clock = _parts(tmp_path, part_seconds=5.0)
    assert parts.durable
    parts.write(DAY, _levels([1, 2], [MIDNIGHT + 1, MIDNIGHT + 2]))
    clock.now += 4.9
    assert (parts.finish_due(), parts.durable) == (False, False)
    assert [p.name for p in tmp_path.iterdir()] == ["levels-2026-11-21.parquet.partial"]
    parts.write(DAY, _levels([3], [MIDNIGHT + 3]))
    clock.now += 0.1
    assert (parts.finish_due(), parts.durable) == (True, True)
    assert [p.name for p in tmp_path.iterdir()] == ["levels-2026-11-21.parquet"]
    assert [row[3] for row in _rows(tmp_path / "levels-2026-11-21.parquet")] == [1, 2, 3]
    clock.now += 100.0
    assert not parts.finish_due()  # nothing open: no empty part
    parts.write(DAY, _levels([4], [MIDNIGHT + 4]))  # the day's next part, aged from now
    assert not parts.finish_due()
    parts.close()
    assert [row[3] for row in _rows(tmp_path / "levels-2026-11-21.1.parquet")] == [4]
    assert parts.parts_finished == 2
    assert not list(tmp_path.glob("*.partial"))


def test_every_open_part_is_finished_when_one_holds_part_rows(tmp_path: Path) -> None:
    parts, _ = _parts(tmp_path, part_rows=3)
    parts.write(DAY, _levels([1, 2], [MIDNIGHT + 1, MIDNIGHT + 2]))
    parts.write(DAY - timedelta(days=1), _levels([7], [MIDNIGHT - 7]))
    assert not parts.finish_due()
    parts.write(DAY, _levels([3], [MIDNIGHT + 3]))
    assert parts.finish_due() and parts.durable
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "levels-2026-11-20.parquet",
        "levels-2026-11-21.parquet",
    ]


def test_a_restart_removes_the_partial_file_a_killed_recorder_left(tmp_path: Path) -> None:
    killed = DailyLevelRecorder(tmp_path, "parquet")
    killed.write(_levels([1], [MIDNIGHT + 1]))
    assert not killed.durable  # killed here: no footer, never renamed
    partial = tmp_path / "levels-2026-11-21.parquet.partial"
    assert partial.exists()
    with DailyLevelRecorder(tmp_path, "parquet") as again:
        assert not partial.exists()
        again.write(_levels([1, 2], [MIDNIGHT + 1, MIDNIGHT + 2]))
    assert [row[3] for row in _rows(tmp_path / "levels-2026-11-21.parquet")] == [1, 2]
    assert again.durable and again.files == {DAY: tmp_path / "levels-2026-11-21.parquet"}


def test_csv_is_durable_after_every_write(tmp_path: Path) -> None:
    with DailyLevelRecorder(tmp_path, "csv") as recorder:
        recorder.write(_levels([1], [MIDNIGHT + 1]))
        assert recorder.durable


def test_recording_csv_or_jsonl_and_reading_history_import_no_pyarrow(tmp_path: Path) -> None:
    script = f"""
import sys
import numpy as np
from consumers.gateway.day_history import DayHistory
from consumers.level_batch import LevelBatch
from consumers.recorder import DailyLevelRecorder
seq = np.array([1], dtype=np.int64)
ts = seq + {MIDNIGHT}
batch = LevelBatch(("HSI",), np.zeros(1, np.int32), seq * 1.0, seq * 1.0, seq, ts, ts)
for fmt in ("csv", "jsonl"):
    with DailyLevelRecorder({str(tmp_path)!r}, fmt) as recorder:
        recorder.write(batch)
assert len(DayHistory({str(tmp_path)!r}).levels("HSI", None, None)) == 1
assert "pyarrow" not in sys.modules, "pyarrow imported"
"""
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO)
