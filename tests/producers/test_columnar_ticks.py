"""Tick files in Parquet and Arrow IPC, and CSV through Arrow's reader: the same ticks, rejects
and levels as the Python CSV reader."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq
import pytest

from engine.core.errors import InputFileError
from engine.kernel.columns import TickColumns
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.universe import Universe
from producers.arrow_csv import ArrowCsvBlocks
from producers.columnar_ticks import ColumnarTickReader
from producers.tick_readers import open_tick_file
from producers.tickfile import TickFileReader
from tickindex import replay

START_NS = 1_795_138_200_000_000_000
BAD_CELLS = ["", " 12", "abc", "0x10", "+5", "1_0", "-3", "nan", "inf", "1e400", "9" * 20]


@pytest.fixture(scope="module")
def universe() -> Universe:
    return load_builtin_universe()


def _clean_table(universe: Universe, n: int, seed: int) -> pa.Table:
    """``n`` seeded ticks of known securities with a volume each."""
    rng = np.random.default_rng(seed)
    codes = np.array(universe.securities, dtype=object)[
        rng.integers(0, len(universe.securities), n)
    ]
    return pa.table(
        {
            "ts": START_NS + np.sort(rng.integers(0, 10**12, n)),
            "security": pa.array(codes, type=pa.string()),
            "price": np.round(rng.uniform(1, 500, n), 3),
            "volume": rng.integers(0, 10_000, n).astype(np.float64),
        }
    )


def _write_all(table: pa.Table, folder: Path) -> dict[str, Path]:
    """The same ticks as CSV (plain, gzip, zstd), Parquet, Arrow file and Arrow stream."""
    paths = {
        name: folder / f"ticks.{name}"
        for name in ("csv", "csv.gz", "csv.zst", "parquet", "arrow", "arrows")
    }
    options = pa_csv.WriteOptions(quoting_style="none")
    pa_csv.write_csv(table, paths["csv"], options)
    for name, codec in (("csv.gz", "gzip"), ("csv.zst", "zstd")):
        with pa.output_stream(str(paths[name]), compression=codec) as out:
            out.write(paths["csv"].read_bytes())
    pq.write_table(table, paths["parquet"], row_group_size=1000)
    with pa_ipc.new_file(str(paths["arrow"]), table.schema) as writer:
        writer.write_table(table, max_chunksize=700)
    with pa_ipc.new_stream(str(paths["arrows"]), table.schema) as writer:
        writer.write_table(table, max_chunksize=700)
    return paths


def test_levels_are_bitwise_the_same_from_every_format(tmp_path: Path, universe: Universe) -> None:
    paths = _write_all(_clean_table(universe, 5_000, seed=3), tmp_path)
    results = {name: replay(path) for name, path in paths.items()}
    reference = results["csv"]
    assert reference.ticks_applied == 5_000 and len(reference.levels) > 5_000
    for name, result in results.items():
        assert result.ticks_read == 5_000, name
        for column in ("ts_event", "index", "level", "seq", "security"):
            got, want = getattr(result.levels, column), getattr(reference.levels, column)
            assert np.array_equal(got, want), (name, column)


def test_csv_levels_match_the_python_csv_reader(
    tmp_path: Path, universe: Universe, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write_all(_clean_table(universe, 3_000, seed=4), tmp_path)["csv"]
    fast = replay(path)
    monkeypatch.setattr(ArrowCsvBlocks, "read", lambda self, block, lines: None)
    python = replay(path)
    assert np.array_equal(fast.levels.level, python.levels.level)
    assert np.array_equal(fast.levels.ts_event, python.levels.ts_event)


def _messy_csv(rng: random.Random, codes: list[str]) -> str:
    """A CSV tick file with bad cells, bad rows, quotes, blank lines and odd line ends."""
    columns = ["ts", "security", "price"] + (["volume"] if rng.random() < 0.6 else [])
    columns += ["seq"] if rng.random() < 0.5 else []
    rng.shuffle(columns)
    lines = [",".join(columns)]
    for i in range(rng.randint(0, 300)):
        row = {
            "ts": str(START_NS + i * 1000),
            "security": rng.choice(codes),
            "price": f"{rng.uniform(1, 100):.3f}",
            "volume": str(rng.randint(0, 1000)),
            "seq": str(i),
        }
        for name in ("ts", "price", "volume"):
            if rng.random() < 0.05:
                row[name] = rng.choice([*BAD_CELLS, "2026-11-20T09:30:00+08:00", " 100 "])
        if rng.random() < 0.03:
            row["security"] = rng.choice(["XX", f" {codes[0]} ", ""])
        line = ",".join(row[name] for name in columns)
        if rng.random() < 0.02:
            line += ",extra"
        if rng.random() < 0.02:
            line = rng.choice(["", " ", '"' + line])
        if rng.random() < 0.1:
            cells = line.split(",")
            k = rng.randrange(len(cells))
            pattern = rng.choice(['"{}"', '"{}""x"', '"{}"x', '{}"x', '"{}\nmore"', '"{},y"'])
            cells[k] = pattern.format(cells[k])
            line = ",".join(cells)
        lines.append(line)
    end = "\r\n" if rng.random() < 0.2 else "\n"
    return end.join(lines) + (end if rng.random() < 0.8 else "")


def _read(
    path: Path, universe: Universe, monkeypatch: pytest.MonkeyPatch, *, arrow: bool
) -> tuple[TickColumns | None, str, TickFileReader]:
    rejects = io.StringIO()
    with monkeypatch.context() as patch:
        if not arrow:
            patch.setattr(ArrowCsvBlocks, "read", lambda self, block, lines: None)
        reader = TickFileReader(path, universe, rejects=rejects, chunk_bytes=2_000)
        batches = list(reader)
    return (TickColumns.concat(batches) if batches else None), rejects.getvalue(), reader


@pytest.mark.parametrize("seed", range(3))
def test_messy_csv_reads_the_same_through_arrow_and_python(
    tmp_path: Path, universe: Universe, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = random.Random(seed)
    used_arrow = 0
    read = ArrowCsvBlocks.read

    def counting(self: ArrowCsvBlocks, block: bytes, lines: int) -> pa.Table | None:
        nonlocal used_arrow
        table = read(self, block, lines)
        used_arrow += table is not None
        return table

    monkeypatch.setattr(ArrowCsvBlocks, "read", counting)
    for trial in range(40):
        path = tmp_path / f"ticks{trial}.csv"
        path.write_text(_messy_csv(rng, list(universe.securities)))
        python, python_rejects, slow = _read(path, universe, monkeypatch, arrow=False)
        fast, fast_rejects, quick = _read(path, universe, monkeypatch, arrow=True)
        assert fast_rejects == python_rejects, path.read_text()
        assert (quick.stats.rows, quick.stats.skipped) == (slow.stats.rows, slow.stats.skipped)
        assert quick.stats.bad_volumes == slow.stats.bad_volumes
        assert quick.stats.unknown_codes == slow.stats.unknown_codes
        if python is None or fast is None:
            assert python is fast is None
            continue
        for column in ("ts_event", "security", "price"):
            assert np.array_equal(getattr(fast, column), getattr(python, column)), column
        assert (fast.volume is None) == (python.volume is None)
        if fast.volume is not None and python.volume is not None:
            assert np.array_equal(fast.volume, python.volume, equal_nan=True)
    assert used_arrow > 20  # most clean blocks went through Arrow


def test_parquet_rejects_name_the_row(tmp_path: Path, universe: Universe) -> None:
    code = universe.securities[0]
    table = pa.table(
        {
            "ts_event": pa.array(
                [START_NS, None, START_NS + 2, -5, START_NS + 4], type=pa.timestamp("ns", "UTC")
            ),
            "security": pa.array([code, code, "NOPE", code, code]).dictionary_encode(),
            "price": [1.5, 2.0, 3.0, 4.0, None],
            "volume": [10.0, None, 1.0, 1.0, -3.0],
        }
    )
    path = tmp_path / "ticks.parquet"
    pq.write_table(table, path)
    rejects = io.StringIO()
    reader = ColumnarTickReader(path, universe, rejects=rejects)
    ticks = TickColumns.concat(list(reader))
    assert ticks.ts_event.tolist() == [START_NS]
    assert ticks.volume is not None and ticks.volume.tolist() == [10.0]
    assert rejects.getvalue().splitlines() == [
        f"{path}:2: bad_timestamp: None",
        f"{path}:3: unknown_security: 'NOPE'",
        f"{path}:4: bad_timestamp: -5",
        f"{path}:5: non_finite_price: None",
    ]
    assert reader.stats.rows == 5 and reader.stats.used == 1
    assert reader.stats.unknown_codes == {"NOPE": 1}


def test_timestamps_of_any_unit_and_text(tmp_path: Path, universe: Universe) -> None:
    code = universe.securities[0]
    seconds = START_NS // 10**9
    table = pa.table(
        {
            "ts": pa.array([seconds, seconds + 1], type=pa.timestamp("s")),
            "security": [code, code],
            "price": [1.0, 2.0],
        }
    )
    pq.write_table(table, tmp_path / "s.parquet")
    text = table.set_column(0, "ts", pa.array(["2026-11-20T09:30:00+08:00", str(START_NS)]))
    pq.write_table(text, tmp_path / "text.parquet")
    ticks = TickColumns.concat(list(ColumnarTickReader(tmp_path / "s.parquet", universe)))
    assert ticks.ts_event.tolist() == [START_NS, START_NS + 10**9]
    ticks = TickColumns.concat(list(ColumnarTickReader(tmp_path / "text.parquet", universe)))
    assert ticks.ts_event.tolist() == [START_NS, START_NS]


def test_strict_stops_at_the_first_bad_row(tmp_path: Path, universe: Universe) -> None:
    table = pa.table({"ts": [START_NS, START_NS], "security": ["NOPE", "X"], "price": [1.0, 1.0]})
    pq.write_table(table, tmp_path / "t.parquet")
    reader = ColumnarTickReader(tmp_path / "t.parquet", universe, strict=True)
    with pytest.raises(InputFileError, match=r"t\.parquet:1: unknown_security"):
        list(reader)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        (b"not parquet at all", "not a Parquet file"),
        ("missing", "lacks price"),
        ("float ts", "ts is double: expected integer nanoseconds"),
    ],
)
def test_unusable_files_raise_naming_the_file(
    tmp_path: Path, universe: Universe, content: bytes | str | None, problem: str
) -> None:
    path = tmp_path / "ticks.parquet"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "missing":
        pq.write_table(pa.table({"ts": [1], "security": ["A"]}), path)
    elif content == "float ts":
        pq.write_table(pa.table({"ts": [1.5], "security": ["A"], "price": [1.0]}), path)
    with pytest.raises(InputFileError, match=problem):
        ColumnarTickReader(path, universe)


def test_batches_are_bounded(tmp_path: Path, universe: Universe) -> None:
    path = _write_all(_clean_table(universe, 5_000, seed=5), tmp_path)["parquet"]
    sizes = [len(batch) for batch in ColumnarTickReader(path, universe, batch_rows=1_024)]
    assert max(sizes) <= 1_024 and sum(sizes) == 5_000


def test_progress_counts_rows(tmp_path: Path, universe: Universe) -> None:
    path = _write_all(_clean_table(universe, 3_000, seed=6), tmp_path)["parquet"]
    seen: list[tuple[int, int]] = []
    list(
        ColumnarTickReader(
            path, universe, batch_rows=1_000, progress=lambda d, t: seen.append((d, t))
        )
    )
    assert seen[-1] == (3_000, 3_000)


def test_open_tick_file_routes_by_extension(tmp_path: Path, universe: Universe) -> None:
    paths = _write_all(_clean_table(universe, 10, seed=7), tmp_path)
    assert isinstance(open_tick_file(paths["parquet"], universe), ColumnarTickReader)
    assert isinstance(open_tick_file(paths["arrows"], universe), ColumnarTickReader)
    assert isinstance(open_tick_file(paths["csv.zst"], universe), TickFileReader)


def test_a_corrupt_zstd_file_is_named(tmp_path: Path, universe: Universe) -> None:
    path = tmp_path / "ticks.csv.zst"
    path.write_bytes(b"garbage" * 100)
    with pytest.raises(InputFileError, match="not a valid zstd file"):
        list(TickFileReader(path, universe))
