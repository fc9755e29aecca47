"""Replay I/O benchmark: the same seeded ticks replayed three ways in one run.

1. engine only: ticks already in memory, levels counted and dropped;
2. a Parquet tick file in, a Parquet level file out;
3. a CSV tick file in, a Parquet level file out.

Every way goes through ``run_replay`` (what ``tickindex replay`` runs); the tick files are
written to a temporary folder before any timing. End-to-end ticks/s are reported with their
ratio to engine-only, and the three runs' levels are checked to be the same (count and last
level of every index, bitwise).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from numpy.typing import NDArray

from consumers.columnar_levels import ColumnarLevelWriter
from engine.kernel.columns import LevelColumns, TickColumns
from engine.pipeline.chain import LevelSink
from engine.refdata.universe import Universe
from producers.tick_readers import open_tick_file
from producers.tick_stats import ReadStats
from tickindex.bench.core import simulated_ticks
from tickindex.replaying import OpenLevels, OpenTicks, ReplaySettings, run_replay

MEMORY_BATCH_TICKS = 65_536
"""Ticks per batch of the engine-only run (as ``tickindex.replay`` of in-memory ticks)."""


@dataclass(frozen=True)
class WayFigures:
    """One way of replaying: its time and what it did."""

    name: str
    seconds: float
    ticks_per_s: float
    levels: int
    ratio_to_engine: float
    cpu_seconds: float
    cpu_ratio_to_engine: float


@dataclass(frozen=True)
class ReplayIoResult:
    """Figures of one ``bench --replay-io`` run."""

    ticks: int
    seed: int
    rounds: int
    parquet_bytes: int
    csv_bytes: int
    write_s: float
    ways: tuple[WayFigures, ...]
    same_levels: bool


class _MemoryTicks:
    """Ticks in memory as a tick source."""

    def __init__(self, ticks: TickColumns) -> None:
        self.ticks = ticks
        self.stats = ReadStats(rows=len(ticks))

    def __iter__(self) -> Iterator[TickColumns]:
        for start in range(0, len(self.ticks), MEMORY_BATCH_TICKS):
            yield self.ticks.slice(start, start + MEMORY_BATCH_TICKS)


class _LastLevels:
    """Counts levels and keeps each index's last one (the engine-only run's sink)."""

    def __init__(self, n_indices: int) -> None:
        self.count = 0
        self.last = np.full(n_indices, np.nan)

    def write(self, levels: LevelColumns) -> None:
        self.count += len(levels)
        self.last[levels.index] = levels.level  # numpy keeps the last of repeated ids


def write_tick_files(universe: Universe, ticks: TickColumns, folder: Path) -> tuple[Path, Path]:
    """``ticks.parquet`` and ``ticks.csv`` (``ts,security,price``) in ``folder``."""
    codes = pa.array(universe.securities, type=pa.string())
    table = pa.table(
        {
            "ts": pa.array(ticks.ts_event),
            "security": pa.DictionaryArray.from_arrays(
                pa.array(ticks.security.astype(np.int32)), codes
            ),
            "price": pa.array(ticks.price),
        }
    )
    parquet, csv = folder / "ticks.parquet", folder / "ticks.csv"
    pq.write_table(table, parquet, compression="zstd")
    plain = table.set_column(1, "security", table.column("security").cast(pa.string()))
    pa_csv.write_csv(plain, csv, pa_csv.WriteOptions(quoting_style="none"))
    return parquet, csv


def run_replay_io_benchmark(
    universe: Universe, n_ticks: int, seed: int, *, rounds: int = 3
) -> ReplayIoResult:
    """Replay ``n_ticks`` seeded simulated ticks the three ways, ``rounds`` times in turn, and
    keep each way's best wall time (the machine is shared) and least CPU time."""
    ticks = simulated_ticks(universe, n_ticks, seed)
    with tempfile.TemporaryDirectory(prefix="tickindex-replay-io-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        parquet, csv = write_tick_files(universe, ticks, folder)
        write_s = time.perf_counter() - started
        sink = _LastLevels(len(universe.indices))
        ways: list[tuple[str, OpenTicks, OpenLevels, Path | None]] = [
            (
                "engine only (in memory)",
                lambda _: _MemoryTicks(ticks),
                lambda *_: nullcontext(sink),
                None,
            )
        ]
        for name, source in (
            ("Parquet in -> Parquet out", parquet),
            ("CSV in -> Parquet out", csv),
        ):
            out = folder / f"levels-{source.suffix[1:]}.parquet"
            ways.append((name, _file_opener(source), _level_opener(universe, out), out))
        best = [(float("inf"), float("inf"))] * len(ways)
        for _ in range(rounds):
            sink.count = 0
            for way, (_, open_ticks, open_levels, level_file) in enumerate(ways):
                if level_file is not None:  # written anew as by a replay, not over the last
                    level_file.unlink(missing_ok=True)
                wall, cpu = _timed(universe, open_ticks, open_levels)
                best[way] = (min(best[way][0], wall), min(best[way][1], cpu))
        counts = [sink.count]
        same = True
        for _, _, _, written in ways[1:]:
            assert written is not None
            count, same_last = _check_levels(written, sink.last)
            same = same and same_last and count == sink.count
            counts.append(count)
        sizes = parquet.stat().st_size, csv.stat().st_size
    (engine_s, engine_cpu_s) = best[0]
    figures = tuple(
        WayFigures(
            name,
            wall,
            n_ticks / wall,
            levels,
            engine_s / wall,
            cpu,
            engine_cpu_s / cpu,
        )
        for (name, *_), (wall, cpu), levels in zip(ways, best, counts, strict=True)
    )
    return ReplayIoResult(n_ticks, seed, rounds, sizes[0], sizes[1], write_s, figures, same)


def _file_opener(source: Path) -> OpenTicks:
    return lambda final: open_tick_file(source, final)


def _level_opener(universe: Universe, out: Path) -> OpenLevels:
    def open_levels(
        index_codes: Sequence[str], security_codes: Sequence[str]
    ) -> AbstractContextManager[LevelSink]:
        return ColumnarLevelWriter(
            out, universe, index_codes=index_codes, security_codes=security_codes
        )

    return open_levels


def _timed(
    universe: Universe, open_ticks: OpenTicks, open_levels: OpenLevels
) -> tuple[float, float]:
    """Wall and CPU seconds (every thread of the process) of one replay."""
    started, cpu_started = time.perf_counter(), time.process_time()
    run_replay(universe, open_ticks, open_levels, ReplaySettings())
    return time.perf_counter() - started, time.process_time() - cpu_started


def _check_levels(path: Path, last: NDArray[np.float64]) -> tuple[int, bool]:
    """Rows of a level file and whether its last level per index equals ``last`` bitwise."""
    table = pq.read_table(path, columns=["index", "level"])
    index = table.column("index").combine_chunks().indices.to_numpy()
    level = table.column("level").to_numpy()
    mine = np.full(len(last), np.nan)
    mine[index] = level
    return table.num_rows, bool(np.array_equal(mine, last, equal_nan=True))


def format_replay_io(result: ReplayIoResult, core: int | None) -> str:
    """Human-readable report."""
    where = f"pinned to CPU core {core}" if core is not None else "all cores"
    lines = [
        f"replay I/O: {result.ticks:,} simulated ticks (seed {result.seed}; {where}); tick "
        f"files written in {result.write_s:.1f} s before timing (Parquet "
        f"{result.parquet_bytes / 1e6:,.1f} MB, CSV {result.csv_bytes / 1e6:,.1f} MB); best of "
        f"{result.rounds} rounds",
        *(
            f"  {way.name:<26}: {way.seconds:6.2f} s  {way.ticks_per_s:>12,.0f} ticks/s  "
            f"{way.ratio_to_engine:5.2f}x engine-only  (CPU {way.cpu_seconds:.2f} s, "
            f"{way.cpu_ratio_to_engine:.2f}x; {way.levels:,} levels)"
            for way in result.ways
        ),
    ]
    verdict = "the same" if result.same_levels else "DIFFERENT"
    lines.append(f"  levels of the three ways: {verdict} (count and last level of every index)")
    return "\n".join(lines)
