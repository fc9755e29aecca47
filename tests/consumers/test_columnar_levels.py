"""Level files in Parquet and Arrow IPC: the exact numbers of the CSV level file."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq
import pytest

from consumers.columnar_levels import ColumnarLevelWriter, compression_of
from consumers.level_writers import open_level_writer
from consumers.levelfile import LevelFileWriter
from engine.core.errors import InputFileError
from engine.kernel.columns import LevelColumns
from engine.refdata.builtin import load_builtin_universe
from producers.simulator import MarketSimulator
from tickindex.cli.main import main

START_NS = 1_795_138_200_000_000_000


@pytest.fixture(scope="module")
def tick_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    universe = load_builtin_universe()
    ticks = MarketSimulator(universe, 11, start_ns=START_NS).next_batch(20_000)
    path = tmp_path_factory.mktemp("ticks") / "ticks.csv"
    table = pa.table(
        {
            "ts": ticks.ts_event,
            "security": np.array(universe.securities, dtype=object)[ticks.security],
            "price": ticks.price,
        }
    )
    pa_csv.write_csv(table, path, pa_csv.WriteOptions(quoting_style="none"))
    return path


def _read_csv_levels(path: Path) -> dict[str, list[object]]:
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    return {
        "ts": [int(r["ts"]) for r in rows],
        "index": [r["index"] for r in rows],
        "level": [float(r["level"]) for r in rows],
        "seq": [int(r["seq"]) for r in rows],
        "security": [r["security"] for r in rows],
    }


def _read_columnar(path: Path) -> pa.Table:
    if path.suffix == ".parquet":
        return pq.read_table(path)
    with pa.memory_map(str(path)) as source:
        reader = pa_ipc.open_file(source) if path.suffix == ".arrow" else pa_ipc.open_stream(source)
        return reader.read_all()


@pytest.mark.parametrize("name", ["levels.parquet", "levels.arrow", "levels.arrows"])
def test_replay_writes_the_numbers_of_the_csv_level_file(
    tmp_path: Path, tick_file: Path, name: str
) -> None:
    assert main(["replay", "--ticks", str(tick_file), "--out", str(tmp_path / "levels.csv")]) == 0
    assert main(["replay", "--ticks", str(tick_file), "--out", str(tmp_path / name)]) == 0
    want = _read_csv_levels(tmp_path / "levels.csv")
    table = _read_columnar(tmp_path / name)
    assert table.schema.names == ["ts", "index", "level", "seq", "security"]
    assert pa.types.is_dictionary(table.schema.field("index").type)
    got = {column: table.column(column).to_pylist() for column in table.schema.names}
    assert len(got["ts"]) == len(want["ts"]) > 20_000
    for column, values in want.items():
        assert got[column] == values, column  # floats compared exactly


def test_parquet_ticks_to_parquet_levels(tmp_path: Path, tick_file: Path) -> None:
    text = pa_csv.ConvertOptions(column_types={"security": pa.string()})
    ticks = pa_csv.read_csv(tick_file, convert_options=text)
    pq.write_table(ticks, tmp_path / "ticks.parquet")
    out = [tmp_path / "from-csv.parquet", tmp_path / "from-parquet.parquet"]
    assert main(["replay", "--ticks", str(tick_file), "--out", str(out[0])]) == 0
    assert main(["replay", "--ticks", str(tmp_path / "ticks.parquet"), "--out", str(out[1])]) == 0
    assert pq.read_table(out[0]).equals(pq.read_table(out[1]))


def test_row_groups_are_bounded(tmp_path: Path) -> None:
    universe = load_builtin_universe()
    path = tmp_path / "levels.parquet"
    with ColumnarLevelWriter(path, universe, group_rows=1_000) as writer:
        for start in range(0, 5_000, 700):
            n = min(700, 5_000 - start)
            writer.write(
                LevelColumns(
                    ts_event=np.arange(start, start + n, dtype=np.int64),
                    index=np.zeros(n, dtype=np.int32),
                    level=np.full(n, 0.1 + 0.2),
                    seq=np.arange(start, start + n, dtype=np.int64) + 1,
                    security=np.zeros(n, dtype=np.int64),
                )
            )
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == 5_000 and writer.rows_written == 5_000
    assert max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) < 2_000
    table = pq.read_table(path)
    assert table.column("level").to_pylist() == [0.1 + 0.2] * 5_000
    assert table.column("index").to_pylist()[0] == universe.index_codes[0]


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("levels.parquet", "zstd"),
        ("levels.snappy.parquet", "snappy"),
        ("a.b.lz4.arrow", "lz4"),
        ("levels.none.parquet", None),
    ],
)
def test_compression_from_the_name(name: str, codec: str | None) -> None:
    assert compression_of(name) == codec


def test_parquet_compression_follows_the_name(tmp_path: Path) -> None:
    universe = load_builtin_universe()
    for name, codec in (("a.parquet", "ZSTD"), ("b.snappy.parquet", "SNAPPY")):
        with ColumnarLevelWriter(tmp_path / name, universe) as writer:
            writer.write(
                LevelColumns(
                    ts_event=np.array([1]),
                    index=np.array([0], dtype=np.int32),
                    level=np.array([1.0]),
                    seq=np.array([1]),
                    security=np.array([0]),
                )
            )
        column = pq.ParquetFile(tmp_path / name).metadata.row_group(0).column(2)
        assert column.compression == codec


def test_open_level_writer_routes_by_extension(tmp_path: Path) -> None:
    universe = load_builtin_universe()
    with open_level_writer(tmp_path / "l.parquet", universe) as columnar:
        assert isinstance(columnar, ColumnarLevelWriter)
    with open_level_writer(tmp_path / "l.csv", universe) as text:
        assert isinstance(text, LevelFileWriter)


def test_an_unwritable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="cannot write"):
        ColumnarLevelWriter(tmp_path / "missing" / "l.parquet", load_builtin_universe())
