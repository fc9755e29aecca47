"""The board's day: HKT time and session phase, day high/low, stale flags, summary lines."""

from __future__ import annotations

import io

import numpy as np
import pytest

from consumers.board import IndexBoard
from engine.calendar.sessions import day_number
from engine.kernel.columns import LevelColumns
from engine.refdata.universe import Universe
from tests.support.analytics_stream import hkt
from tests.support.board import FakeClock, small_universe
from tests.support.scalar_reference import RefIndex, RefRow
from tests.support.universes import universe_from_rows

FRIDAY = day_number("2026-12-04")


@pytest.fixture
def universe() -> Universe:
    return small_universe({"HSI": 1000.0, "HSCEI": 200.0, "OTHER": 50.0})


def levels(ts: list[int], index: list[int], level: list[float]) -> LevelColumns:
    n = len(index)
    return LevelColumns(
        ts_event=np.array(ts, dtype=np.int64),
        index=np.array(index, dtype=np.int32),
        level=np.array(level, dtype=np.float64),
        seq=np.arange(1, n + 1, dtype=np.int64),
        security=np.arange(n, dtype=np.int64),
    )


def frame_board(universe: Universe, **options: object) -> IndexBoard:
    return IndexBoard(
        universe,
        io.StringIO(),
        style="frames",
        width=160,
        refresh_s=1e9,
        **options,  # type: ignore[arg-type]
    )


def cells(board: IndexBoard, code: str, key: str) -> str:
    spans = board.layout().spans()
    row = board.universe.index_codes.index(code)
    start, end = spans[key]
    return board.render().splitlines()[2 + row][start:end].strip()


@pytest.mark.parametrize(
    ("hours", "phase"),
    [
        (8.5, "closed"),
        (9.25, "pre-open"),
        (10.0, "morning"),
        (12.5, "lunch"),
        (14.0, "afternoon"),
        (16.0 + 5 / 60, "closing auction"),
        (20.0, "closed"),
    ],
)
def test_title_gives_hkt_time_and_phase_of_the_last_event(
    universe: Universe, hours: float, phase: str
) -> None:
    board = frame_board(universe)
    ts = hkt(FRIDAY, hours)
    board.write(levels([ts], [0], [1001.0]))
    stamp = f"2026-12-04 {int(hours):02d}:{round(hours % 1 * 60):02d}:00 HKT"
    title = board.render().splitlines()[0]
    assert title.startswith(f"tickindex  {stamp}  {phase}  ")
    assert board.summary_line().startswith(f"tickindex {stamp}  {phase}  ")


def test_saturday_is_closed_and_before_any_level_the_wall_clock_is_used(
    universe: Universe,
) -> None:
    board = frame_board(universe, wall_ns=lambda: hkt(FRIDAY + 1, 10.0))
    title = board.render().splitlines()[0]
    assert "2026-12-05 10:00:00 HKT, no ticks yet  closed" in title
    friday = frame_board(universe, wall_ns=lambda: hkt(FRIDAY, 10.0))
    assert "no ticks yet  morning" in friday.render().splitlines()[0]


def test_day_high_and_low_of_the_levels_seen_since_the_hkt_day_began(universe: Universe) -> None:
    board = frame_board(universe)
    assert cells(board, "HSI", "high") == "-" and cells(board, "HSI", "low") == "-"
    morning = hkt(FRIDAY, 10.0)
    board.write(levels([morning] * 4, [0, 0, 1, 0], [1010.0, 990.5, 201.0, 1002.0]))
    board.write(levels([morning + 1], [0], [1015.25]))
    assert (cells(board, "HSI", "high"), cells(board, "HSI", "low")) == ("1,015.25", "990.50")
    assert (cells(board, "HSCEI", "high"), cells(board, "HSCEI", "low")) == ("201.00", "201.00")
    assert cells(board, "OTHER", "high") == "-"
    # 23:59 HKT is still Friday; 00:00 HKT Saturday starts a new day.
    board.write(levels([hkt(FRIDAY, 23.99)], [0], [1100.0]))
    assert cells(board, "HSI", "high") == "1,100.00"
    board.write(levels([hkt(FRIDAY + 1, 0.0), hkt(FRIDAY, 23.995)], [0, 1], [1020.0, 999.0]))
    assert (cells(board, "HSI", "high"), cells(board, "HSI", "low")) == ("1,020.00", "1,020.00")
    assert cells(board, "HSCEI", "high") == "-"  # its only level is of the day before


def test_stale_flag_after_no_move_for_the_configured_wall_time(universe: Universe) -> None:
    clock = FakeClock()
    board = frame_board(universe, clock=clock, stale_after_s=30.0)
    morning = hkt(FRIDAY, 10.0)
    board.write(levels([morning, morning], [0, 1], [1001.0, 201.0]))
    clock.now += 20.0
    # HSI moves; HSCEI gets a level equal to its last one: an update, not a move.
    board.write(levels([morning + 1, morning + 1], [0, 1], [1002.0, 201.0]))
    assert [cells(board, code, "stale") for code in ("HSI", "HSCEI", "OTHER")] == ["", "", ""]
    clock.now += 10.0
    assert [cells(board, code, "stale") for code in ("HSI", "HSCEI", "OTHER")] == [
        "",
        "STALE",
        "STALE",
    ]
    assert "HSCEI 201.00 +0.50% STALE" in board.summary_line()
    assert "HSI 1,002.00 +0.20%  " in board.summary_line() + "  "
    # Over lunch nothing moves and nothing is flagged.
    board.write(levels([hkt(FRIDAY, 12.5)], [0], [1002.0]))
    clock.now += 100.0
    assert [cells(board, code, "stale") for code in ("HSI", "HSCEI", "OTHER")] == ["", "", ""]


def test_a_batch_that_moves_and_comes_back_moved(universe: Universe) -> None:
    clock = FakeClock()
    board = frame_board(universe, clock=clock, stale_after_s=5.0)
    morning = hkt(FRIDAY, 10.0)
    board.write(levels([morning], [0], [1000.0]))  # its previous close: not a move
    clock.now += 5.0
    assert cells(board, "HSI", "stale") == "STALE"
    board.write(levels([morning + 1, morning + 2], [0, 0], [1001.0, 1000.0]))
    assert cells(board, "HSI", "stale") == ""


def test_ticks_behind_the_levels_are_counted_once(universe: Universe) -> None:
    board = frame_board(universe)
    ts = hkt(FRIDAY, 10.0)
    batch = levels([ts, ts, ts, ts + 1], [0, 1, 2, 0], [1001.0, 201.0, 51.0, 1002.0])
    batch.security[:] = [7, 7, 7, 7]  # one tick moved three indices, then another
    board.write(batch)
    same_tick = levels([ts + 1], [1], [202.0])  # the same tick's next level, next batch
    same_tick.security[:] = 7
    board.write(same_tick)
    board.write(levels([ts + 2], [1], [203.0]))
    assert board.ticks == 3
    assert int(board.updates.sum()) == 6


def test_not_a_terminal_one_summary_line_per_refresh_never_frames(universe: Universe) -> None:
    clock = FakeClock()
    out = io.StringIO()
    board = IndexBoard(universe, out, refresh_s=1.0, clock=clock)
    assert board.style == "lines" and not board.colour
    morning = hkt(FRIDAY, 10.0)
    for step in range(1, 4):
        clock.now += 1.0
        board.write(levels([morning + step * 1_000_000_000], [0], [1000.0 + step]))
    board.refresh(force=True)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert "\x1b" not in out.getvalue() and "INDEX" not in out.getvalue()
    assert lines[-1] == (
        "tickindex 2026-12-04 10:00:03 HKT  morning  1 ticks/s  "
        "HSI 1,003.00 +0.30%  HSCEI 200.00 +0.00%"
    )


def test_summary_line_shows_the_first_indices_without_key_indices() -> None:
    indices = [RefIndex(f"IX{i}", 100.0) for i in range(6)]
    rows = [RefRow(ix.code, "A", 1e6, 1.0, None, 10.0) for ix in indices]
    board = IndexBoard(universe_from_rows(indices, rows), io.StringIO())
    line = board.summary_line()
    assert "IX0 100.00 +0.00%" in line and "IX3 " in line and "IX4" not in line
