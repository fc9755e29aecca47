"""A replay of a tick file far larger than its memory cap streams: 20M ticks (86M levels
written to Parquet) under 500 MB of peak RSS, with the engine's final levels; from Parquet, and
from a CSV file larger on disk than the cap itself."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from numpy.typing import NDArray

from engine.kernel.calculator import IndexCalculator
from engine.refdata.builtin import load_builtin_universe
from producers.simulator import MarketSimulator

TICKS = 20_000_000
BATCH = 1_000_000
RSS_CAP_BYTES = 500 * 2**20
START_NS = 1_795_138_200_000_000_000

# Runs the command, then reports the process's peak resident set (VmHWM) on the last line.
_CHILD = """
import sys
from tickindex.cli.main import main
code = main(sys.argv[1:])
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(int(peak.split()[1]) * 1024)
sys.exit(code)
"""


@dataclass(frozen=True)
class TickFiles:
    """The same ticks in Parquet and CSV, and the engine's final levels after them."""

    parquet: Path
    csv: Path
    levels: NDArray[np.float64]


@pytest.fixture(scope="module")
def tick_files(tmp_path_factory: pytest.TempPathFactory) -> TickFiles:
    """``TICKS`` simulated ticks to Parquet and CSV, a batch at a time."""
    folder = tmp_path_factory.mktemp("large")
    parquet, csv = folder / "ticks.parquet", folder / "ticks.csv"
    universe = load_builtin_universe()
    simulator = MarketSimulator(universe, 5, start_ns=START_NS)
    calculator = IndexCalculator(universe)
    codes = pa.array(universe.securities, type=pa.string())
    schema = pa.schema(
        [
            ("ts", pa.int64()),
            ("security", pa.dictionary(pa.int32(), pa.string())),
            ("price", pa.float64()),
        ]
    )
    with (
        pq.ParquetWriter(parquet, schema, compression="zstd") as writer,
        csv.open("wb") as csv_file,
    ):
        for at in range(TICKS // BATCH):
            ticks = simulator.next_batch(BATCH)
            calculator.apply(ticks.security, ticks.price, ticks.ts_event)
            security = pa.DictionaryArray.from_arrays(
                pa.array(ticks.security.astype(np.int32)), codes
            )
            table = pa.table(
                [pa.array(ticks.ts_event), security, pa.array(ticks.price)], schema=schema
            )
            writer.write_table(table)
            as_text = table.set_column(1, "security", security.cast(pa.string()))
            options = pacsv.WriteOptions(include_header=at == 0, quoting_style="none")
            pacsv.write_csv(as_text, csv_file, write_options=options)
    return TickFiles(parquet, csv, np.array(calculator.published_levels))


def _last_levels(path: Path, n_indices: int) -> tuple[int, NDArray[np.float64]]:
    """Rows of a level file and the last level of each index, read a batch at a time."""
    last = np.full(n_indices, np.nan)
    rows = 0
    for batch in pq.ParquetFile(path).iter_batches(columns=["index", "level"]):
        index = batch.column(0)
        last[index.indices.to_numpy()] = batch.column(1).to_numpy()
        rows += batch.num_rows
    return rows, last


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_twenty_million_ticks_replay_under_500_mb(
    tick_files: TickFiles, kind: str, tmp_path: Path
) -> None:
    ticks, levels = getattr(tick_files, kind), tmp_path / "levels.parquet"
    assert ticks.stat().st_size > (RSS_CAP_BYTES if kind == "csv" else 50 * 2**20)
    argv = ["replay", "--ticks", str(ticks), "--out", str(levels), "--no-progress"]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *argv], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    peak = int(done.stdout.strip().splitlines()[-1])
    assert peak < RSS_CAP_BYTES, f"peak RSS {peak / 2**20:.0f} MB"
    assert f"ticks read {TICKS}, applied {TICKS}, skipped 0" in done.stderr
    rows, last = _last_levels(levels, len(tick_files.levels))
    assert rows > 4 * TICKS  # every level written: the output is larger than the cap too
    assert f"levels written {rows}" in done.stderr
    assert np.array_equal(last, tick_files.levels)
