"""Replay outputs as DataFrames: levels, bars and analytics through Arrow to pandas and polars,
equal to the files ``tickindex replay`` writes; and the levels streamed as record batches."""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Generator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import tickindex
from engine.kernel.columns import TickColumns
from producers.simulator import MarketSimulator
from tests.support.seed import SEED
from tickindex.cli.main import main
from tickindex.replay_stream import LEVEL_SCHEMA

START_NS = 1_795_138_200_000_000_000  # 2026-11-20 09:30 HKT, a trading day


def write_ticks(path: Path, ticks: TickColumns, universe: tickindex.Universe) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ts", "security", "price"])
        writer.writerows(
            (t, universe.securities[s], repr(p))
            for t, s, p in zip(
                ticks.ts_event.tolist(), ticks.security.tolist(), ticks.price.tolist(), strict=True
            )
        )
    return path


def decoded(table: pa.Table) -> pa.Table:
    """``table`` with its dictionary-encoded code columns as plain strings."""
    plain = pa.schema(
        [
            (field.name, pa.string() if field.name in ("index", "security") else field.type)
            for field in table.schema
        ]
    )
    return table.cast(plain)


@pytest.fixture(scope="module")
def tick_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    print(f"seed {SEED}")
    universe = tickindex.load_universe()
    ticks = MarketSimulator(universe, SEED, start_ns=START_NS).next_batch(30_000)
    return write_ticks(tmp_path_factory.mktemp("ticks") / "ticks.csv", ticks, universe)


def test_levels_as_arrow_pandas_and_polars_hold_the_exact_values(tick_file: Path) -> None:
    levels = tickindex.replay(tick_file).levels
    table = levels.to_arrow()
    assert table.schema == LEVEL_SCHEMA
    assert table.column("ts_event").cast(pa.int64()).to_numpy().tolist() == levels.ts_event.tolist()
    assert table.column("level").to_numpy().tobytes() == levels.level.tobytes()
    frame = levels.to_pandas()
    assert frame["index"].astype(str).tolist() == levels.index.tolist()
    assert frame["ts_event"].dt.tz is not None
    assert (frame["ts_event"].astype("int64").to_numpy() == levels.ts_event).all()
    assert frame["level"].to_numpy().tobytes() == levels.level.tobytes()
    polars_frame = levels.to_polars()
    assert polars_frame["seq"].to_list() == levels.seq.tolist()
    assert polars_frame["security"].cast(str).to_list() == levels.security.tolist()


def test_bars_and_analytics_in_memory_equal_the_command_s_files(
    tick_file: Path, tmp_path: Path
) -> None:
    result = tickindex.replay(tick_file, ohlc=True, analytics=True)
    bars_file, analytics_file = tmp_path / "bars.csv", tmp_path / "analytics.jsonl"
    args = ["replay", "--ticks", str(tick_file), "--out", str(tmp_path / "levels.csv")]
    assert main([*args, "--ohlc", str(bars_file), "--analytics", str(analytics_file)]) == 0
    assert result.bars is not None and len(result.bars) > 0
    with bars_file.open(newline="") as handle:
        expected = list(csv.DictReader(handle))
    bars = result.bars.to_pandas()
    assert len(bars) == len(expected)
    for row, want in zip(bars.to_dict("records"), expected, strict=True):
        assert (str(row["date"]), str(row["index"])) == (want["date"], want["index"])
        assert row["count"] == int(want["count"])
        assert row["close"] == float(want["close"])  # the file's shortest decimal, exactly
    lines = [json.loads(line) for line in analytics_file.read_text().splitlines()]
    assert [type(r).__name__ for r in result.analytics] == [
        {"index_analytics": "IndexAnalytics", "pair_analytics": "PairAnalytics"}.get(
            line["type"], "SignalEvent"
        )
        for line in lines
    ]
    index_rows = [line for line in lines if line["type"] == "index_analytics"]
    table = result.analytics_table("index")
    assert table.num_rows == len(index_rows) > 0
    assert table.column("level").to_pylist() == [row["level"] for row in index_rows]
    assert table.column("ts_event").cast(pa.int64()).to_pylist() == [
        row["ts_event"] for row in index_rows
    ]
    assert result.analytics_table("pair").num_rows == sum(
        line["type"] == "pair_analytics" for line in lines
    )
    with pytest.raises(ValueError, match="kind"):
        result.analytics_table("bogus")  # type: ignore[arg-type]


def test_streamed_batches_are_the_replay_s_levels_in_order(tick_file: Path) -> None:
    levels = tickindex.replay(tick_file).levels
    batches = list(tickindex.replay_batches(tick_file, batch_rows=10_000, queue_batches=2))
    assert len(batches) > 3 and all(batch.schema == LEVEL_SCHEMA for batch in batches)
    assert {batch.num_rows for batch in batches[:-1]} == {10_000} and batches[-1].num_rows <= 10_000
    streamed = pa.Table.from_batches(batches)
    assert decoded(streamed).equals(decoded(levels.to_arrow()))


def test_leaving_the_stream_early_stops_the_replay(tick_file: Path) -> None:
    stream = tickindex.replay_batches(tick_file, batch_rows=1_000, queue_batches=1)
    first = next(stream)
    assert isinstance(stream, Generator)
    stream.close()  # the worker thread is joined: nothing keeps running
    assert first.num_rows == 1_000
    assert not [t for t in threading.enumerate() if t.name == "tickindex-replay"]


def test_a_failing_replay_raises_in_the_loop(tmp_path: Path) -> None:
    with pytest.raises(tickindex.TickIndexError):
        list(tickindex.replay_batches(tmp_path / "missing.csv"))
    with pytest.raises(ValueError, match="batch_rows"):
        next(tickindex.replay_batches([], batch_rows=0))


def test_bars_of_an_untraded_index_have_no_prices() -> None:
    bars = tickindex.Bars(
        date=np.array(["2026-11-20"]),
        index=np.array(["HSI"]),
        open=np.array([np.nan]),
        high=np.array([np.nan]),
        low=np.array([np.nan]),
        close=np.array([25000.5]),
        count=np.array([0]),
    )
    row = bars.to_arrow().to_pylist()[0]
    assert (row["open"], row["high"], row["low"], row["close"]) == (None, None, None, 25000.5)
