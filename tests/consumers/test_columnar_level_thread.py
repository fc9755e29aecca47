"""The Parquet level writer's thread: groups handed over in order and bounded, a failed write
raised (not hung on), and the codecs per column."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from consumers import columnar_levels
from consumers.columnar_levels import PARQUET_CODECS, ColumnarLevelWriter
from engine.core.errors import InputFileError
from engine.kernel.columns import LevelColumns
from engine.refdata.builtin import load_builtin_universe


def _levels(start: int, n: int) -> LevelColumns:
    return LevelColumns(
        ts_event=np.arange(start, start + n, dtype=np.int64),
        index=np.zeros(n, dtype=np.int32),
        level=np.arange(start, start + n) / 7.0,
        seq=np.arange(start, start + n, dtype=np.int64) + 1,
        security=np.zeros(n, dtype=np.int64),
    )


def test_groups_are_written_in_order_and_the_engine_waits_beyond_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    handed: list[int] = []
    path = tmp_path / "levels.parquet"
    writer = ColumnarLevelWriter(path, load_builtin_universe(), group_rows=100)
    write_group = writer._write_group

    def held_write(group: list[LevelColumns]) -> None:
        release.wait(10)
        write_group(group)

    monkeypatch.setattr(writer, "_write_group", held_write)

    def run_engine() -> None:
        for start in range(0, 1_000, 100):
            writer.write(_levels(start, 100))
            handed.append(start)

    engine = threading.Thread(target=run_engine)
    engine.start()
    engine.join(0.5)
    # IN_FLIGHT groups handed over, the first held: the engine waits to hand over the next.
    assert engine.is_alive()
    assert len(handed) == columnar_levels.IN_FLIGHT
    release.set()
    engine.join(10)
    writer.close()
    level = pq.read_table(path).column("level").to_numpy()
    assert np.array_equal(level, np.arange(1_000) / 7.0)


def test_a_failed_write_is_raised_and_nothing_hangs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = ColumnarLevelWriter(
        tmp_path / "levels.parquet", load_builtin_universe(), group_rows=10
    )
    written: list[int] = []

    def failing_write(group: list[LevelColumns]) -> None:
        written.append(len(group))
        raise OSError("disk full")

    monkeypatch.setattr(writer, "_write_group", failing_write)
    with pytest.raises(InputFileError, match="write failed: disk full"):
        for start in range(0, 1_000, 10):
            writer.write(_levels(start, 10))
    # Groups handed over after the failed one are not written (cancelled or failing too).
    assert len(written) <= columnar_levels.IN_FLIGHT + 1
    with pytest.raises(InputFileError, match="write failed"):
        writer.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("level-writer")]


def test_codecs_per_column_unless_the_name_says_one(tmp_path: Path) -> None:
    universe = load_builtin_universe()
    for name, expected in (
        ("a.parquet", {column: codec.upper() for column, codec in PARQUET_CODECS.items()}),
        ("b.zstd.parquet", dict.fromkeys(PARQUET_CODECS, "ZSTD")),
    ):
        with ColumnarLevelWriter(tmp_path / name, universe) as writer:
            writer.write(_levels(0, 1_000))
        group = pq.ParquetFile(tmp_path / name).metadata.row_group(0)
        codecs = {group.column(i).path_in_schema: group.column(i).compression for i in range(5)}
        assert codecs == expected
        assert pq.read_table(tmp_path / name).column("level").to_numpy().tolist() == (
            (np.arange(1_000) / 7.0).tolist()
        )
