"""The board's analytics panel: latest records per index and pair, last signals, 80 columns."""

from __future__ import annotations

import io
import re

import pytest

from consumers.analytics_panel import (
    GREEN,
    RED,
    RESET,
    WIDTH,
    AnalyticsPanel,
    fit,
    hk_dollars,
    hkt_clock,
)
from consumers.board import IndexBoard
from engine.analytics.records import (
    HedgeLine,
    IndexAnalytics,
    Mover,
    PairAnalytics,
    SignalEvent,
)
from engine.calendar.sessions import day_number
from engine.refdata.builtin import load_builtin_universe
from tests.support.analytics_stream import hkt

DAY = day_number("2026-11-23")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def at(hours: float) -> int:
    return hkt(DAY, hours)


def index_record(code: str, ts: int, change: float = 12.5, **fields: object) -> IndexAnalytics:
    values: dict[str, object] = {
        "index": code,
        "ts_event": ts,
        "level": 25_812.5,
        "prev_close": 25_800.0,
        "change": change,
        "change_pct": change / 258.0,
        "adjusted_prev_close": 25_800.0,
        "up": 50,
        "down": 30,
        "unchanged": 3,
        "pct_up": 60.24,
        "vol_session": 0.1834,
        "top": [Mover("0700", 41.3, 621.5, 1.2), Mover("9988", 20.0, 80.0, 0.5)],
        "bottom": [Mover("0005", -12.1, 105.2, -0.8)],
    }
    values.update(fields)
    return IndexAnalytics(**values)  # type: ignore[arg-type]


def pair_record(
    name: str, ts: int, hedge: HedgeLine | None = None, **fields: object
) -> PairAnalytics:
    values: dict[str, object] = {
        "pair": name,
        "a": "HSCI_SC",
        "b": "HSI",
        "ts_event": ts,
        "rs": 101.234,
        "rs_change": 0.01,
        "rs_change_day": 1.234,
        "beta": 0.8412,
        "corr": 0.7123,
        "returns_in_window": 40,
        "hedge": hedge,
    }
    values.update(fields)
    return PairAnalytics(**values)  # type: ignore[arg-type]


HEDGE = HedgeLine("HSI", 50_000_000.0, 42_060_000.0, -12, -3, 41_000.0)


def signal(name: str, ts: int, kind: str = "confirmation", active: bool = True) -> SignalEvent:
    return SignalEvent(name, kind, active, ts, f"sentence of {name}")  # type: ignore[arg-type]


def plain(lines: list[str]) -> list[str]:
    return [ANSI.sub("", line) for line in lines]


def test_latest_index_and_pair_win_and_last_three_signals_newest_first() -> None:
    panel = AnalyticsPanel()
    panel.write_analytics([index_record("HSI", at(10.0), level=1.0), pair_record("P", at(10.0))])
    panel.write_analytics(
        [index_record("HSI", at(10.5)), pair_record("P", at(10.5), hedge=HEDGE, rs=99.5)]
    )
    panel.write_analytics([signal(f"s{i}", at(10.5) + i) for i in range(5)])

    assert panel.indices["HSI"].ts_event == at(10.5)
    assert panel.pairs["P"].rs == 99.5
    assert [event.name for event in panel.signals] == ["s2", "s3", "s4"]
    assert panel.records == 9
    lines = panel.lines()
    assert lines[0] == "ANALYTICS at 10:30:00 HKT"
    shown = [line.split()[2] for line in lines if line.startswith("10:30:00")]
    assert shown == ["on"] * 3
    assert [line.rsplit(maxsplit=1)[-1] for line in lines if line.startswith("10:30:00")] == [
        "s4",
        "s3",
        "s2",
    ]


def test_index_line_breadth_vol_and_movers_in_points() -> None:
    panel = AnalyticsPanel()
    panel.write_analytics([index_record("HSI", at(10.0))])
    line = next(line for line in panel.lines() if line.startswith("HSI "))
    assert line.split() == ["HSI", "60.2", "50/30", "18.3%", "0700", "+41.30", "0005", "-12.10"]


def test_missing_figures_show_as_dashes() -> None:
    panel = AnalyticsPanel()
    empty = index_record("HSI", at(9.5), pct_up=None, vol_session=None, top=[], bottom=[])
    panel.write_analytics([empty, pair_record("P", at(9.5), rs=None, beta=None, corr=None)])
    lines = panel.lines()
    index_line = next(line for line in lines if line.startswith("HSI "))
    assert index_line.split()[1:] == ["-", "50/30", "-", "-", "-", "-", "-"]
    pair = next(line for line in lines if line.startswith("P "))
    assert pair.split()[2:] == ["RS", "-", "+1.23", "beta", "-", "corr", "-"]
    assert "hedge: none" in lines[lines.index(pair) + 1]


def test_pair_line_with_beta_and_hedge_contracts() -> None:
    panel = AnalyticsPanel()
    panel.write_analytics([pair_record("SMALLCAP_VS_HSI", at(11.0), hedge=HEDGE)])
    lines = panel.lines()
    pair = lines.index(next(line for line in lines if line.startswith("SMALLCAP_VS_HSI ")))
    assert lines[pair].split()[1:] == [
        "HSCI_SC/HSI", "RS", "101.23", "+1.23", "beta", "0.84", "corr", "0.71",
    ]  # fmt: skip
    assert lines[pair + 1] == "  hedge HK$ 50m sleeve: -12 HSI -3 MHI  resid HK$ +41k"


def test_key_indices_first_else_the_first_received() -> None:
    panel = AnalyticsPanel(max_indices=2)
    panel.write_analytics([index_record(code, at(10.0)) for code in ("X1", "X2", "X3")])
    assert [record.index for record in panel.shown_indices()] == ["X1", "X2"]
    panel.write_analytics([index_record(code, at(10.1)) for code in ("HSCI_SC", "HSI", "X4")])
    assert [record.index for record in panel.shown_indices()] == ["HSI", "HSCI_SC"]


def long_records() -> list[IndexAnalytics | PairAnalytics | SignalEvent]:
    long_code = "I" * 40
    movers = [Mover("S" * 40, 1e12, 1e6, 1e6)]
    return [
        index_record("HSI", at(10.0), change=-1.0, top=movers, bottom=movers, up=10**9),
        index_record(long_code, at(10.0), change=3e11, pct_up=100.0, vol_session=123.45),
        pair_record(
            "N" * 60,
            at(10.0),
            hedge=HedgeLine("H" * 40, 1e15, 1e15, -(10**15), 10**15, -1e14),
            a=long_code,
            b=long_code,
            rs=1e9,
            rs_change_day=-1e9,
            beta=-123456.0,
            corr=-1.0,
        ),
        pair_record("P", at(10.0), hedge=HedgeLine("HSCEI", 1e7, 5e6, 10**9, -(10**9), 2e9)),
        SignalEvent("x" * 60, "invalidation", True, at(10.0), "word " * 800),
        SignalEvent("y", "info", False, at(10.0), "line\nbreaks\tand tabs " * 10),
    ]


@pytest.mark.parametrize("colour", [False, True])
def test_every_line_fits_in_80_columns_with_long_names_and_huge_numbers(colour: bool) -> None:
    panel = AnalyticsPanel(key_indices=("HSI", "I" * 40))
    panel.write_analytics(long_records())
    lines = panel.lines(colour=colour)
    assert len(lines) == 1 + 1 + 2 + 2 * 2 + 1 + 2
    for line in plain(lines):
        assert len(line) <= WIDTH, line
        assert "\n" not in line and "\t" not in line
    assert any(line.endswith("~") for line in lines)


def test_no_colour_codes_unless_asked() -> None:
    panel = AnalyticsPanel()
    panel.write_analytics(
        [
            index_record("HSI", at(10.0)),
            index_record("HSCEI", at(10.0), change=-3.0),
            pair_record("P", at(10.0), hedge=HEDGE),
            signal("good", at(10.0)),
            signal("bad", at(10.0), kind="invalidation"),
        ]
    )
    assert not any("\x1b" in line for line in panel.lines())
    coloured = panel.lines(colour=True)
    assert plain(coloured) == panel.lines()
    by_start = {ANSI.sub("", line).split()[0]: line for line in coloured if line.strip()}
    assert by_start["HSI"].startswith(GREEN + "HSI")
    assert by_start["HSCEI"].startswith(RED + "HSCEI")
    assert RED + "  -12.10" + RESET in by_start["HSI"]
    assert GREEN + "  +41.30" + RESET in by_start["HSI"]
    assert GREEN + " +1.23" in by_start["P"]
    signal_lines = [line for line in coloured if "sentence of" in line]
    assert signal_lines[0].startswith(RED) and signal_lines[1].startswith(GREEN)


def test_board_draws_the_panel_under_the_table_only_when_it_refreshes() -> None:
    universe = load_builtin_universe()
    out = io.StringIO()
    panel = AnalyticsPanel()
    board = IndexBoard(universe, out, refresh_s=1e9, panel=panel, style="frames")
    panel.write_analytics([index_record("HSI", at(10.0)), pair_record("P", at(10.0), HEDGE)])
    assert out.getvalue() == ""  # records alone never draw
    board.refresh(force=True)
    text = out.getvalue()
    table_end = text.index("HSCEI_NTR")
    assert text.index("ANALYTICS at 10:00:00 HKT") > table_end
    assert "-12 HSI -3 MHI" in text
    panel_lines = text[text.index("ANALYTICS") :].rstrip("\n").splitlines()
    assert all(len(line) <= WIDTH for line in panel_lines)


def test_board_says_when_time_is_simulated() -> None:
    universe = load_builtin_universe()
    board = IndexBoard(universe, io.StringIO(), colour=False, simulated_time=True)
    assert "simulated time" in board.render().splitlines()[0]
    board.last_event_ns = at(10.25)
    assert "  SIMULATED 2026-11-23 10:15:00 HKT  morning  " in board.render().splitlines()[0]
    assert "ANALYTICS" not in board.render()


def test_helpers() -> None:
    assert hkt_clock(at(16.0 + 10 / 60)) == "16:10:00"
    assert fit("abcdef", 4) == "abc~"
    assert fit("abcd", 4) == "abcd"
    assert [hk_dollars(x) for x in (41_000.0, -1_234_567.0, 5e7, 3.4e9, -12.0)] == [
        "+41k", "-1.2m", "+50m", "+3.4bn", "-12",
    ]  # fmt: skip
