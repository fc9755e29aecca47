"""The public Python API: codes in and out, the same levels as the engine and the CLI, errors."""

from __future__ import annotations

import csv
import doctest
import inspect
import json
import math
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

import tickindex
import tickindex.index_engine
from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import TickColumns
from engine.refdata.builtin import builtin_files
from producers.simulator import MarketSimulator
from tests.support.paths import REPO as ROOT
from tickindex.cli.main import main

START_NS = 1_795_138_200_000_000_000  # 2026-11-20 09:30 HKT

PUBLIC_NAMES = {
    "BadTickError",
    "Bars",
    "Engine",
    "FxTick",
    "FxTickBatch",
    "IndexLevel",
    "IndexLevels",
    "LevelRecord",
    "Levels",
    "ReplayResult",
    "Tick",
    "TickBatch",
    "TickIndexError",
    "UnknownCodeError",
    "Universe",
    "WireCodec",
    "load_universe",
    "replay",
    "replay_batches",
}


def _simulated(n: int, seed: int) -> tuple[tickindex.Universe, TickColumns]:
    universe = tickindex.load_universe()
    return universe, MarketSimulator(universe, seed, start_ns=START_NS).next_batch(n)


def _rows(universe: tickindex.Universe, ticks: TickColumns) -> list[tuple[int, str, float]]:
    return [
        (t, universe.securities[s], p)
        for t, s, p in zip(
            ticks.ts_event.tolist(), ticks.security.tolist(), ticks.price.tolist(), strict=True
        )
    ]


def _write_ticks(path: Path, rows: list[tuple[int, str, float]]) -> Path:
    with path.open("w") as handle:
        handle.write("ts,security,price\n")
        handle.writelines(f"{t},{s},{p!r}\n" for t, s, p in rows)
    return path


LevelRows = tuple[list[int], list[str], list[float], list[int], list[str]]
"""A level file's columns: ts, index, level, seq, security."""


def _cli_levels(path: Path) -> LevelRows:
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    return (
        [int(r["ts"]) for r in rows],
        [r["index"] for r in rows],
        [float(r["level"]) for r in rows],
        [int(r["seq"]) for r in rows],
        [r["security"] for r in rows],
    )


def _columns(levels: tickindex.Levels) -> LevelRows:
    return (
        levels.ts_event.tolist(),
        levels.index.tolist(),
        levels.level.tolist(),
        levels.seq.tolist(),
        levels.security.tolist(),
    )


# -- the package -------------------------------------------------------------------------------


def test_all_lists_exactly_the_public_names_each_documented() -> None:
    assert set(tickindex.__all__) == PUBLIC_NAMES
    assert len(tickindex.__all__) == len(PUBLIC_NAMES)
    for name in tickindex.__all__:
        assert inspect.getdoc(getattr(tickindex, name)), name


def test_the_package_is_marked_typed_and_ships_the_marker() -> None:
    assert resources.files("tickindex").joinpath("py.typed").is_file()
    with (ROOT / "pyproject.toml").open("rb") as handle:
        package_data = tomllib.load(handle)["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["tickindex"]


def test_the_engine_docstring_example_runs() -> None:
    result = doctest.testmod(tickindex.index_engine, raise_on_error=False)
    assert result.attempted > 0
    assert result.failed == 0


# -- load_universe -----------------------------------------------------------------------------


def test_load_universe_from_files_equals_the_builtin_family() -> None:
    indices, composition = builtin_files()
    from_files = tickindex.load_universe(indices, str(composition))
    builtin = tickindex.load_universe()
    assert from_files.fingerprint() == builtin.fingerprint()
    assert "HSI" in builtin.index_codes


def test_load_universe_wants_both_files_or_neither() -> None:
    indices, _ = builtin_files()
    with pytest.raises(ValueError, match="both indices and composition"):
        tickindex.load_universe(indices)


# -- Engine ------------------------------------------------------------------------------------


def test_engine_takes_codes_and_gives_the_calculators_levels_by_index_code() -> None:
    universe, ticks = _simulated(5_000, seed=3)
    engine = tickindex.Engine(universe)
    rows = _rows(universe, ticks)
    levels = engine.apply(
        [r[0] for r in rows[:3000]], [r[1] for r in rows[:3000]], [r[2] for r in rows[:3000]]
    )
    more = engine.apply(
        ticks.ts_event[3000:], np.array([r[1] for r in rows[3000:]]), ticks.price[3000:]
    )
    calculator = IndexCalculator(universe)
    expected = calculator.apply(ticks.security, ticks.price)
    got_level = np.concatenate([levels.level, more.level])
    got_index = np.concatenate([levels.index, more.index])
    np.testing.assert_array_equal(got_level, expected.level)  # bitwise
    assert got_index.tolist() == [universe.index_codes[i] for i in expected.index.tolist()]
    got_security = np.concatenate([levels.security, more.security]).tolist()
    assert got_security == [rows[t][1] for t in expected.tick.tolist()]
    assert engine.levels() == dict(
        zip(universe.index_codes, calculator.published_levels.tolist(), strict=True)
    )
    assert engine.level("HSI") == engine.levels()["HSI"]
    assert engine.index_codes == universe.index_codes


def test_engine_levels_helpers() -> None:
    engine = tickindex.Engine()
    levels = engine.apply([START_NS, START_NS + 1], ["0700", "0005"], [630.0, 104.0])
    hsi = levels.of("HSI")
    assert hsi.index.tolist() == ["HSI", "HSI"]
    assert hsi.security.tolist() == ["0700", "0005"]
    assert hsi.seq.tolist() == [1, 2]
    assert levels.last()["HSI"] == engine.level("HSI") == hsi.level[-1]
    record = levels.records()[0]
    assert (record.ts, record.index, record.security) == (START_NS, "HSI", "0700")
    assert len(levels.of("NOPE")) == 0


def test_engine_rejects_unknown_codes_clearly_and_applies_nothing() -> None:
    engine = tickindex.Engine()
    before = engine.levels()
    with pytest.raises(tickindex.UnknownCodeError, match="unknown security codes: 'XXXX', '5'"):
        engine.apply([1, 2, 3, 4], ["0700", "XXXX", "5", "XXXX"], [630.0, 1.0, 1.0, 1.0])
    assert engine.levels() == before
    with pytest.raises(tickindex.UnknownCodeError, match="unknown index code: 'NOPE'") as caught:
        engine.level("NOPE")
    assert isinstance(caught.value, LookupError)
    assert isinstance(caught.value, tickindex.TickIndexError)
    assert not caught.value.retriable


@pytest.mark.parametrize("price", [0.0, -1.0, math.nan, math.inf, 1e13])
def test_engine_rejects_a_price_it_cannot_apply(price: float) -> None:
    engine = tickindex.Engine()
    before = engine.levels()
    with pytest.raises(tickindex.BadTickError, match=r"tick 1 \(0005 at .*\): .*nothing applied"):
        engine.apply([1, 2], ["0700", "0005"], [630.0, price])
    assert engine.levels() == before


@pytest.mark.parametrize(
    ("ts", "codes", "prices", "problem"),
    [
        (["1"], ["0700"], [630.0], "ts_event must be integer nanoseconds"),
        ([1.5], ["0700"], [630.0], "ts_event must be integer nanoseconds"),
        ([1], [700], [630.0], "security must be codes"),
        ([1], ["0700"], ["630.0"], "price must be numbers"),
    ],
)
def test_engine_never_takes_text_for_numbers_or_numbers_for_codes(
    ts: list[object], codes: list[object], prices: list[object], problem: str
) -> None:
    with pytest.raises(TypeError, match=problem):
        tickindex.Engine().apply(ts, codes, prices)  # type: ignore[arg-type]


def test_engine_wants_columns_of_equal_length() -> None:
    with pytest.raises(ValueError, match="equal length"):
        tickindex.Engine().apply([1, 2], ["0700"], [630.0, 631.0])


def test_engine_conflates_and_close_releases_the_last_interval() -> None:
    engine = tickindex.Engine(conflate_ms=1000)
    held = engine.apply(
        [START_NS, START_NS + 1, START_NS + 2], ["0700", "0700", "0700"], [630.0, 631.0, 632.0]
    )
    assert len(held) == 0
    released = engine.close()
    assert released.of("HSI").seq.tolist() == [3]
    assert released.of("HSI").level.tolist() == [engine.level("HSI")]


@pytest.mark.parametrize("conflate_ms", [0, -5, 366 * 86_400_000 + 1])
def test_conflation_must_be_positive_and_at_most_a_year(conflate_ms: int) -> None:
    with pytest.raises(ValueError, match="positive number of milliseconds"):
        tickindex.Engine(conflate_ms=conflate_ms)
    with pytest.raises(ValueError, match="positive number of milliseconds"):
        tickindex.replay([], conflate_ms=conflate_ms)


def test_the_replay_command_refuses_the_same_conflation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["replay", "--ticks", "t.csv", "--out", str(tmp_path / "l.csv"), "--conflate-ms"]
    with pytest.raises(SystemExit) as exited:
        main([*args, "0"])
    assert exited.value.code == 2
    assert "must be a positive number of milliseconds, got 0" in capsys.readouterr().err


def test_unknown_code_error_names_five_codes_and_counts_the_rest() -> None:
    codes = [f"X{n}" for n in range(8)]
    with pytest.raises(tickindex.UnknownCodeError) as caught:
        tickindex.Engine().apply(list(range(1, 9)), codes, [1.0] * 8)
    assert str(caught.value) == "unknown security codes: 'X0', 'X1', 'X2', 'X3', 'X4' and 3 more"
    assert caught.value.codes == tuple(codes)


# -- replay ------------------------------------------------------------------------------------


def _events_file(path: Path, universe: tickindex.Universe, ticks: TickColumns) -> Path:
    middle = int(ticks.ts_event[len(ticks) // 2])
    events = [
        {"type": "stock_split", "effective": middle, "security": "0700", "ratio": 2},
        {
            "type": "add_constituent",
            "effective": middle + 1,
            "index": "HSTECH",
            "security": "2432",
            "issued_shares": 1_200_000_000,
            "faf": 0.6,
            "price": 35.0,
        },
    ]
    assert "2432" not in universe.securities
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


@pytest.mark.parametrize("conflate_ms", [None, 50])
def test_replay_equals_the_replay_command_bitwise(tmp_path: Path, conflate_ms: int | None) -> None:
    universe, ticks = _simulated(4_000, seed=5)
    tick_file = _write_ticks(tmp_path / "ticks.csv", _rows(universe, ticks))
    events = _events_file(tmp_path / "events.jsonl", universe, ticks)
    out = tmp_path / "levels.csv"
    args = ["replay", "--no-progress", "--ticks", str(tick_file), "--out", str(out)]
    args += ["--events", str(events)]
    if conflate_ms is not None:
        args += ["--conflate-ms", str(conflate_ms)]
    assert main(args) == 0
    result = tickindex.replay(tick_file, events=events, conflate_ms=conflate_ms)
    assert _columns(result.levels) == _cli_levels(out)
    assert len(result.levels) > 0
    assert result.events_applied == 2
    assert result.events_failed == ()
    assert (result.ticks_read, result.ticks_applied, result.skipped) == (4_000, 4_000, {})
    assert result.summary[0].startswith("ticks read 4000, applied 4000, skipped 0;")


def test_replay_of_in_memory_ticks_equals_replay_of_the_file(tmp_path: Path) -> None:
    universe, ticks = _simulated(70_000, seed=7)  # more than one in-memory batch
    rows = _rows(universe, ticks)
    from_file = tickindex.replay(_write_ticks(tmp_path / "ticks.csv", rows)).levels
    batch = tickindex.TickBatch(
        security=[r[1] for r in rows], price=[r[2] for r in rows], ts_event=[r[0] for r in rows]
    )
    for given in (
        rows,
        batch,
        [tickindex.Tick(security=s, price=p, ts_event=t) for t, s, p in rows[:100]] + rows[100:],
    ):
        assert _columns(tickindex.replay(given).levels) == _columns(from_file)


def test_replay_skips_and_counts_unknown_codes_and_bad_prices() -> None:
    ticks = [
        (START_NS, "0700", 630.0),
        (START_NS + 1, "NOPE", 10.0),
        (START_NS + 2, "0005", -1.0),
        (START_NS + 3, "NOPE", 11.0),
        (START_NS + 4, "0005", 104.0),
    ]
    result = tickindex.replay(ticks)
    assert (result.ticks_read, result.ticks_applied) == (5, 2)
    assert result.skipped == {"unknown_security": 2, "non_positive_price": 1}
    assert "  skipped 2 unknown_security (codes: NOPE)" in result.summary
    assert set(result.levels.security.tolist()) == {"0700", "0005"}


def test_replay_of_a_missing_file_is_the_projects_error(tmp_path: Path) -> None:
    with pytest.raises(tickindex.TickIndexError, match="cannot open"):
        tickindex.replay(tmp_path / "missing.csv")


def test_replay_of_custom_reference_files(tmp_path: Path) -> None:
    (tmp_path / "indices.csv").write_text(
        "index,name,prev_close_level,weight_cap\nTWO,Two stocks,1000.0,\n"
    )
    (tmp_path / "composition.csv").write_text(
        "index,security,issued_shares,faf,cap_factor,prev_close\n"
        "TWO,AAA,100,1.0,,10.0\nTWO,BBB,100,1.0,,10.0\n"
    )
    result = tickindex.replay(
        [(1, "AAA", 11.0), (2, "BBB", 9.0)],
        indices=tmp_path / "indices.csv",
        composition=tmp_path / "composition.csv",
    )
    assert result.levels.index.tolist() == ["TWO", "TWO"]
    assert result.levels.level.tolist() == pytest.approx([1050.0, 1000.0])
