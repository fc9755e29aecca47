"""The board fits its width: columns drop by priority when narrow, the name widens when wide."""

from __future__ import annotations

import io
import itertools
import re

import numpy as np
import pytest

from consumers.analytics_panel import AnalyticsPanel
from consumers.board import IndexBoard
from consumers.board_layout import MIN_WIDTH, choose_layout
from engine.analytics.records import HedgeLine, IndexAnalytics, Mover, PairAnalytics, SignalEvent
from engine.calendar.sessions import day_number
from engine.kernel.columns import LevelColumns
from engine.refdata.builtin import load_builtin_universe
from tests.support.analytics_stream import hkt

ANSI = re.compile(r"\x1b\[[0-9;]*m")
DAY = day_number("2026-11-23")
REQUIRED = {"code", "level", "change", "change_pct"}


def busy_board(width: int, *, colour: bool = False) -> IndexBoard:
    """The built-in family at +50% (the widest plausible changes), with analytics records."""
    universe = load_builtin_universe()
    panel = AnalyticsPanel()
    board = IndexBoard(
        universe, io.StringIO(), width=width, panel=panel, style="frames", colour=colour
    )
    n = len(universe.indices)
    board.write(
        LevelColumns(
            ts_event=np.full(n, hkt(DAY, 10.0), dtype=np.int64),
            index=np.arange(n, dtype=np.int32),
            level=np.array([1.5 * spec.prev_close_level for spec in universe.indices]),
            seq=np.ones(n, dtype=np.int64),
            security=np.arange(n, dtype=np.int64),
        )
    )
    ts = hkt(DAY, 10.0)
    hedge = HedgeLine("HSI", 50_000_000.0, 42_060_000.0, -12, -3, 41_000.0)
    panel.write_analytics(
        [
            IndexAnalytics(
                index="HSI",
                ts_event=ts,
                level=38_700.0,
                prev_close=25_800.0,
                change=12_900.0,
                change_pct=50.0,
                adjusted_prev_close=25_800.0,
                up=60,
                down=20,
                top=[Mover("0700", 4_100.3, 621.5, 1.2)],
            ),
            PairAnalytics(
                pair="SMALLCAP_VS_HSI",
                a="HSCI_SC",
                b="HSI",
                ts_event=ts,
                rs=101.2,
                rs_change=0.01,
                rs_change_day=1.2,
                beta=0.84,
                corr=0.71,
                returns_in_window=40,
                hedge=hedge,
            ),
            SignalEvent("rule", "confirmation", True, ts, "the small caps lead " * 10),
        ]
    )
    return board


@pytest.mark.parametrize("width", [MIN_WIDTH, 60, 80, 100, 120, 160, 200])
@pytest.mark.parametrize("colour", [False, True])
def test_every_line_fits_the_width(width: int, colour: bool) -> None:
    text = busy_board(width, colour=colour).render()
    assert "ANALYTICS at 10:00:00 HKT" in text
    widths = [len(ANSI.sub("", line)) for line in text.splitlines()]
    assert max(widths) <= width, widths


def test_at_80_columns_the_trader_columns_and_at_160_every_column() -> None:
    narrow, wide = busy_board(80), busy_board(160)
    at_80, at_160 = set(narrow.layout().keys), set(wide.layout().keys)
    assert at_80 == REQUIRED | {"high", "low", "ticks_per_s", "stale"}
    assert at_160 == at_80 | {"name", "prev_close", "updates"}
    header_80, header_160 = (board.render().splitlines()[1] for board in (narrow, wide))
    assert "HIGH" in header_80 and "NAME" not in header_80 and "PREV CLOSE" not in header_80
    assert "NAME" in header_160 and "PREV CLOSE" in header_160 and "UPDATES" in header_160
    hsi_160 = wide.render().splitlines()[2]
    assert "Hang Seng Index" in hsi_160 and "25,800.00" in hsi_160
    # Whole names when wide: the longest built-in name is not cut at 160.
    assert "Hang Seng China Enterprises Index Net Total Return" in wide.render()


def test_columns_drop_in_priority_order_as_the_width_shrinks() -> None:
    kept = [set(choose_layout(width, 9, 50).keys) for width in range(200, MIN_WIDTH - 1, -1)]
    # Each narrower board shows a subset of the wider one's columns but the name, which comes
    # back where dropped columns leave room.
    dropped = []
    for wider, narrower in itertools.pairwise(kept):
        for key in sorted((wider - narrower) - {"name"}):
            if key not in dropped:
                dropped.append(key)
    assert dropped == ["prev_close", "updates", "ticks_per_s", "high", "low", "stale"]
    assert kept[-1] == REQUIRED
    assert all(keys >= REQUIRED for keys in kept)
    assert "name" in kept[0] and "name" not in choose_layout(100, 9, 50).keys


def test_the_name_takes_what_is_left_up_to_the_longest_name() -> None:
    columns = {c.key: c for c in choose_layout(200, 9, 50).columns}
    assert columns["name"].width == 50
    columns = {c.key: c for c in choose_layout(130, 9, 50).columns}
    assert 8 <= columns["name"].width < 50
    short = {c.key: c for c in choose_layout(200, 4, 6).columns}
    assert short["name"].width == 6 and short["code"].width == 5


def test_the_width_comes_from_the_terminal_on_a_screen(monkeypatch: pytest.MonkeyPatch) -> None:
    universe = load_builtin_universe()
    monkeypatch.setenv("COLUMNS", "132")
    assert IndexBoard(universe, io.StringIO(), style="screen").width == 132
    assert IndexBoard(universe, io.StringIO(), style="screen", width=90).width == 90
    assert IndexBoard(universe, io.StringIO(), style="frames").width == 80
    assert IndexBoard(universe, io.StringIO()).width == 80  # not a terminal
