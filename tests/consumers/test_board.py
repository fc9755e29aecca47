"""The live index board: last level per index, change vs previous close, rates, drawing."""

from __future__ import annotations

import io

import numpy as np
import pytest

from consumers.board import CURSOR_HOME, GREEN, RED, IndexBoard
from engine.kernel.columns import LevelColumns
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.universe import Universe
from tests.support.board import FakeClock, small_universe
from tests.support.seed import SEED


@pytest.fixture
def universe() -> Universe:
    return small_universe({"UP": 1000.0, "DOWN": 200.0, "FLAT": 50.0})


def levels(index: list[int], level: list[float]) -> LevelColumns:
    n = len(index)
    return LevelColumns(
        ts_event=np.arange(1, n + 1, dtype=np.int64) * 1_000_000_000,
        index=np.array(index, dtype=np.int32),
        level=np.array(level, dtype=np.float64),
        seq=np.arange(1, n + 1, dtype=np.int64),
        security=np.zeros(n, dtype=np.int64),
    )


def board_cells(board: IndexBoard, text: str | None = None) -> dict[str, dict[str, str]]:
    """Index code -> column key -> its cell, from the board's last frame (or ``render()``)."""
    text = board.render() if text is None else text.rstrip("\n").split("\n\n")[-1]
    spans = board.layout().spans()
    rows = text.splitlines()[2 : 2 + len(board.universe.indices)]
    return {
        row.split()[0]: {key: row[start:end].strip() for key, (start, end) in spans.items()}
        for row in rows
    }


def moves(cells: dict[str, str]) -> list[str]:
    return [cells["level"], cells["change"], cells["change_pct"]]


def test_change_vs_previous_close_and_last_level_wins(universe: Universe) -> None:
    board = IndexBoard(universe, io.StringIO(), colour=False, refresh_s=1e9, width=160)
    board.write(levels([0, 1, 0, 0, 1], [1005.0, 150.0, 990.0, 1020.0, 190.0]))

    rows = board_cells(board)
    assert set(rows) == {"UP", "DOWN", "FLAT"}
    assert moves(rows["UP"]) == ["1,020.00", "+20.00", "+2.00%"]
    assert moves(rows["DOWN"]) == ["190.00", "-10.00", "-5.00%"]
    assert moves(rows["FLAT"]) == ["50.00", "+0.00", "+0.00%"]
    assert [rows[code]["updates"] for code in ("UP", "DOWN", "FLAT")] == ["3", "2", "0"]
    assert [rows[code]["prev_close"] for code in ("UP", "DOWN", "FLAT")] == [
        "1,000.00",
        "200.00",
        "50.00",
    ]
    np.testing.assert_array_equal(board.updates, [3, 2, 0])


def test_levels_and_totals_accumulate_across_batches(universe: Universe) -> None:
    board = IndexBoard(universe, io.StringIO(), colour=False, refresh_s=1e9)
    board.write(levels([2, 0], [51.0, 1001.0]))
    board.write(levels([2], [49.5]))
    board.write(LevelColumns.empty())
    np.testing.assert_array_equal(board.levels, [1001.0, 200.0, 49.5])
    np.testing.assert_array_equal(board.updates, [1, 0, 2])
    assert moves(board_cells(board)["FLAT"])[1:] == ["-0.50", "-1.00%"]


def test_percentage_carries_the_sign_of_the_change_shown(universe: Universe) -> None:
    board = IndexBoard(universe, io.StringIO(), colour=False, refresh_s=1e9)
    board.write(levels([0, 1, 2], [999.67, 199.999, 50.001]))
    rows = board_cells(board)
    assert moves(rows["UP"])[1:] == ["-0.33", "-0.03%"]
    assert moves(rows["DOWN"])[1:] == ["+0.00", "+0.00%"]
    assert moves(rows["FLAT"])[1:] == ["+0.00", "+0.00%"]


def test_last_level_per_index_on_a_large_random_batch(universe: Universe) -> None:
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED)
    index = rng.integers(0, 3, 10_000).tolist()
    level = rng.uniform(10, 2000, 10_000).tolist()
    board = IndexBoard(universe, io.StringIO(), colour=False, refresh_s=1e9)
    board.write(levels(index, level))
    last = dict(zip(index, level, strict=True))
    np.testing.assert_array_equal(board.levels, [last[0], last[1], last[2]])
    np.testing.assert_array_equal(board.updates, np.bincount(index, minlength=3))


def test_ticks_per_second_over_the_refresh_window(universe: Universe) -> None:
    clock = FakeClock()
    out = io.StringIO()
    board = IndexBoard(universe, out, colour=False, refresh_s=0.5, clock=clock, style="frames")
    board.write(levels([0, 0, 0, 1], [1.0, 2.0, 3.0, 4.0]))
    assert board.draws == 0
    assert out.getvalue() == ""

    clock.now += 2.0
    assert board.refresh()
    rows = board_cells(board, out.getvalue())
    assert rows["UP"]["ticks_per_s"] == "1.5"
    assert rows["DOWN"]["ticks_per_s"] == "0.5"
    assert rows["FLAT"]["ticks_per_s"] == "0.0"
    # Four levels of four ticks (distinct event times) over 2 s: the title's rates.
    assert "2 ticks/s  2 levels/s" in out.getvalue().splitlines()[0]

    assert not board.refresh()
    assert board.draws == 1
    clock.now += 1.0
    assert board.refresh()
    assert board_cells(board)["UP"]["ticks_per_s"] == "0.0"
    board.write(levels([0], [5.0]))
    clock.now += 0.01
    assert board.refresh(force=True)
    assert board.draws == 3
    assert board_cells(board)["UP"]["ticks_per_s"] == "0.0"


def test_plain_frames_when_asked(universe: Universe) -> None:
    out = io.StringIO()
    board = IndexBoard(universe, out, refresh_s=0.0, style="frames")
    assert not board.colour
    board.write(levels([0, 1], [1010.0, 190.0]))
    text = out.getvalue()
    assert "\x1b" not in text
    assert "UP" in text
    assert text.endswith("\n\n")


def test_colours_and_in_place_redraw_on_a_terminal(universe: Universe) -> None:
    out = io.StringIO()
    board = IndexBoard(universe, out, refresh_s=0.0, style="screen", width=80)
    assert board.colour
    board.write(levels([0, 1], [1010.0, 190.0]))
    board.refresh(force=True)
    text = out.getvalue()
    assert text.startswith(CURSOR_HOME)
    assert text.count(CURSOR_HOME) == 2
    up_line = next(line for line in text.splitlines() if line.startswith("UP"))
    down_line = next(line for line in text.splitlines() if line.startswith("DOWN"))
    flat_line = next(line for line in text.splitlines() if line.startswith("FLAT"))
    assert GREEN in up_line
    assert RED in down_line
    assert GREEN not in flat_line
    assert RED not in flat_line


def test_builtin_universe_lists_every_index() -> None:
    universe = load_builtin_universe()
    board = IndexBoard(universe, io.StringIO(), colour=False, width=160)
    text = board.render()
    for spec in universe.indices:
        line = next(line for line in text.splitlines() if line.startswith(spec.code + " "))
        assert spec.name[:16] in line
        assert f"{spec.prev_close_level:,.2f}" in line


def test_the_board_fits_80_columns() -> None:
    universe = load_builtin_universe()
    board = IndexBoard(universe, io.StringIO(), colour=False)
    n = len(universe.indices)
    board.write(  # every index 50% up: the widest changes a day can plausibly show
        LevelColumns(
            ts_event=np.zeros(n, dtype=np.int64),
            index=np.arange(n, dtype=np.int32),
            level=np.array([1.5 * spec.prev_close_level for spec in universe.indices]),
            seq=np.ones(n, dtype=np.int64),
            security=np.zeros(n, dtype=np.int64),
        )
    )
    widths = [len(line) for line in board.render().splitlines()]
    assert max(widths) <= 80, widths
