"""A replay of a Parquet tick file far larger than its memory cap streams: 20M ticks (86M
levels written to Parquet) under 500 MB of peak RSS, with the engine's final levels."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
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


def _write_ticks(path: Path) -> NDArray[np.float64]:
    """``TICKS`` simulated ticks to Parquet, a batch at a time; the engine's final levels."""
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
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for _ in range(TICKS // BATCH):
            ticks = simulator.next_batch(BATCH)
            calculator.apply(ticks.security, ticks.price, ticks.ts_event)
            security = pa.DictionaryArray.from_arrays(
                pa.array(ticks.security.astype(np.int32)), codes
            )
            writer.write_table(
                pa.table([pa.array(ticks.ts_event), security, pa.array(ticks.price)], schema=schema)
            )
    return np.array(calculator.published_levels)


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
def test_twenty_million_ticks_replay_under_500_mb(tmp_path: Path) -> None:
    ticks, levels = tmp_path / "ticks.parquet", tmp_path / "levels.parquet"
    expected = _write_ticks(ticks)
    assert ticks.stat().st_size > 50 * 2**20
    argv = ["replay", "--ticks", str(ticks), "--out", str(levels), "--no-progress"]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *argv], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    peak = int(done.stdout.strip().splitlines()[-1])
    assert peak < RSS_CAP_BYTES, f"peak RSS {peak / 2**20:.0f} MB"
    assert f"ticks read {TICKS}, applied {TICKS}, skipped 0" in done.stderr
    rows, last = _last_levels(levels, len(expected))
    assert rows > 4 * TICKS  # every level written: the output is larger than the cap too
    assert f"levels written {rows}" in done.stderr
    assert np.array_equal(last, expected)
