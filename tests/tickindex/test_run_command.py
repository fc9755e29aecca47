"""``tickindex run``: the embedded simulator -> calculator -> board job."""

from __future__ import annotations

import argparse
import io
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from consumers.analytics_panel import AnalyticsPanel
from consumers.board import IndexBoard
from engine.calendar.sessions import TradingCalendar, day_number
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.reference_files import load_universe
from tests.support.analytics_stream import hkt
from tests.support.scalar_reference import RefIndex, RefRow
from tests.support.seed import SEED
from tests.support.universes import random_rows
from tickindex.analytics_setup import desk_config
from tickindex.cli import run
from tickindex.cli.main import main
from tickindex.market_clock import MarketClock


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tickindex")
    run.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def write_universe_files(
    folder: Path, indices: list[RefIndex], rows: list[RefRow]
) -> tuple[Path, Path]:
    indices_csv = folder / "indices.csv"
    composition_csv = folder / "composition.csv"
    indices_csv.write_text(
        "index,name,prev_close_level,weight_cap\n"
        + "".join(
            f"{ix.code},Index {ix.code},{ix.prev_close_level!r},"
            f"{'' if ix.weight_cap is None else repr(ix.weight_cap)}\n"
            for ix in indices
        )
    )
    composition_csv.write_text(
        "index,security,issued_shares,faf,cap_factor,prev_close\n"
        + "".join(
            f"{r.index},{r.security},{r.issued_shares!r},{r.faf!r},"
            f"{'' if r.cap_factor is None else repr(r.cap_factor)},{r.prev_close!r}\n"
            for r in rows
        )
    )
    return indices_csv, composition_csv


class FakeTime:
    """A clock that only moves when the run sleeps."""

    def __init__(self, interrupt_after_sleeps: int | None = None) -> None:
        self.now = 0.0
        self.sleeps = 0
        self.interrupt_after_sleeps = interrupt_after_sleeps

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        if self.sleeps == self.interrupt_after_sleeps:
            raise KeyboardInterrupt
        self.now += seconds


def test_register_wires_the_handler() -> None:
    args = parse(["run", "--duration", "2.5", "--rate", "100", "--seed", "3", "--refresh", "1"])
    assert args.handler is run.run_command
    assert (args.duration, args.rate, args.seed, args.refresh) == (2.5, 100.0, 3, 1.0)
    defaults = parse(["run"])
    assert defaults.duration is None
    assert defaults.seed is None
    assert defaults.indices is None
    assert defaults.rate == 2_000.0


@pytest.mark.parametrize("bad", [["--rate", "-5"], ["--duration", "0"], ["--refresh", "x"]])
def test_rejects_non_positive_numbers(bad: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(["run", *bad])
    assert exc.value.code == 2


@pytest.mark.slow
def test_one_second_run_on_files_prints_every_index_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    print(f"seed {SEED}")
    indices, rows = random_rows(np.random.default_rng(SEED), 60, 6)
    indices_csv, composition_csv = write_universe_files(tmp_path, indices, rows)
    files = ["--indices", str(indices_csv), "--composition", str(composition_csv)]
    args = parse(
        ["run", "--once", "--duration", "1", "--rate", "5000", "--seed", str(SEED), *files]
    )

    assert args.handler(args) == 0

    out = capsys.readouterr().out
    assert "\x1b" not in out
    for ix in indices:
        assert f"\n{ix.code} " in out
    summary = out.rstrip().splitlines()[-1]
    assert summary.startswith("tickindex run: ")
    assert "ticks/s" in summary
    assert f"seed {SEED}" in summary
    ticks = int(summary.split()[2].replace(",", ""))
    assert ticks > 0


@pytest.mark.slow
def test_builtin_universe_through_the_tickindex_entry_point(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "--once", "--duration", "1", "--rate", "5000", "--seed", str(SEED)]) == 0
    out = capsys.readouterr().out
    for code in load_builtin_universe().index_codes:
        assert f"\n{code} " in out
    assert out.rstrip().splitlines()[-1].startswith("tickindex run: ")


def test_paced_run_generates_the_configured_rate_of_event_time() -> None:
    print(f"seed {SEED}")
    universe = load_builtin_universe()
    fake = FakeTime()
    board = IndexBoard(universe, io.StringIO(), refresh_s=0.5, clock=fake.clock)
    summary = run.simulate_live(
        universe,
        board,
        seed=SEED,
        rate=2_000.0,
        duration_s=3.0,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    assert summary.elapsed_s == pytest.approx(3.0)
    assert abs(summary.ticks - 6_000) < 5 * np.sqrt(6_000)
    assert summary.levels == int(board.updates.sum())
    assert summary.levels >= summary.ticks
    assert fake.sleeps == pytest.approx(30, abs=1)
    assert board.draws >= 6


def test_ctrl_c_ends_the_run_cleanly_with_a_final_board() -> None:
    universe = load_builtin_universe()
    fake = FakeTime(interrupt_after_sleeps=5)
    out = io.StringIO()
    board = IndexBoard(universe, out, refresh_s=1e9, clock=fake.clock, style="frames")
    summary = run.simulate_live(universe, board, seed=SEED, clock=fake.clock, sleep=fake.sleep)
    assert summary.elapsed_s == pytest.approx(0.4)
    assert summary.ticks > 0
    assert board.draws == 1
    assert all(f"\n{code} " in out.getvalue() for code in universe.index_codes)
    assert "seed" in summary.line()


def test_same_seed_same_market(tmp_path: Path) -> None:
    print(f"seed {SEED}")
    rows = random_rows(np.random.default_rng(SEED), 40, 4)
    universe = load_universe(*write_universe_files(tmp_path, *rows))
    results = []
    for _ in range(2):
        fake = FakeTime()
        board = IndexBoard(universe, io.StringIO(), clock=fake.clock)
        run.simulate_live(
            universe, board, seed=SEED, duration_s=1.0, clock=fake.clock, sleep=fake.sleep
        )
        results.append(board.levels.copy())
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.slow
def test_ctrl_c_exits_zero_with_a_summary() -> None:
    # A child of a non-interactive shell may inherit SIGINT as ignored; restore Ctrl-C first.
    entry = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from tickindex.cli.main import main; sys.exit(main(sys.argv[1:]))"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", entry, "run", "--seed", str(SEED), "--refresh", "0.2"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    first_line = child.stdout.readline()
    assert first_line.startswith("tickindex ")
    child.send_signal(signal.SIGINT)
    rest, _ = child.communicate(timeout=30)
    assert child.returncode == 0
    summary = rest.rstrip().splitlines()[-1]
    assert summary.startswith("tickindex run: ")
    assert f"seed {SEED}" in summary


FRIDAY = day_number("2026-12-04")
SATURDAY_NOON = hkt(FRIDAY + 1, 12.0)


def analytics_run(
    wall_ns: int, duration_s: float, rate: float = 500.0
) -> tuple[run.RunSummary, IndexBoard, AnalyticsPanel, MarketClock]:
    universe = load_builtin_universe()
    fake = FakeTime()
    panel = AnalyticsPanel()
    market = MarketClock.for_wall_time(TradingCalendar(), wall_ns)
    board = IndexBoard(
        universe,
        io.StringIO(),
        refresh_s=1e9,
        clock=fake.clock,
        panel=panel,
        simulated_time=market.simulated,
    )
    summary = run.simulate_live(
        universe,
        board,
        seed=SEED,
        rate=rate,
        duration_s=duration_s,
        step_s=1.0,
        clock=fake.clock,
        sleep=fake.sleep,
        analytics=run.RunAnalytics(desk_config(universe), market, panel),
    )
    return summary, board, panel, market


def test_register_analytics_flags() -> None:
    assert parse(["run"]).analytics is True
    assert parse(["run"]).analytics_config is None
    assert parse(["run", "--no-analytics"]).analytics is False
    assert parse(["run", "--analytics-config", "a.toml"]).analytics_config == "a.toml"
    with pytest.raises(SystemExit) as exc:
        parse(["run", "--no-analytics", "--analytics-config", "a.toml"])
    assert exc.value.code == 2


def test_outside_trading_hours_the_run_simulates_a_trading_day_with_analytics() -> None:
    print(f"seed {SEED}")
    summary, board, panel, market = analytics_run(SATURDAY_NOON, duration_s=120.0)

    assert market.simulated and market.start_ns == hkt(FRIDAY, 9.5)
    assert summary.simulated_from_ns == hkt(FRIDAY, 9.5)
    assert abs(summary.ticks - 60_000) < 5 * np.sqrt(60_000)
    assert board.last_event_ns is not None
    assert hkt(FRIDAY, 9.5) < board.last_event_ns <= hkt(FRIDAY, 9.5 + 2 / 60)
    # One boundary a second, 09:30:01 - 09:32:00, each with every index and both pairs.
    indices = [r for r in panel.indices.values() if r.ts_event == hkt(FRIDAY, 9.5 + 2 / 60)]
    assert len(indices) == len(board.universe.indices)
    assert summary.analytics_records == panel.records >= 120 * (13 + 2)
    smallcap = panel.pairs["SMALLCAP_VS_HSI"]
    assert smallcap.beta is not None and smallcap.returns_in_window >= 20
    assert smallcap.hedge is not None and smallcap.hedge.sleeve_notional == 50_000_000.0

    text = board.render()
    assert "SIMULATED 2026-12-04 09:3" in text.splitlines()[0]
    panel_lines = text[text.index("ANALYTICS at 09:32:00 HKT") :].splitlines()
    assert all(len(line) <= 80 for line in panel_lines)
    assert any(line.startswith("HSCI_SC ") for line in panel_lines)
    assert any(line.startswith("  hedge HK$ 50m sleeve: ") for line in panel_lines)
    assert "simulated trading from 2026-12-04 09:30:00 HKT" in summary.line()
    assert "analytics records" in summary.line()


def test_in_trading_hours_event_time_is_wall_time_and_stops_over_lunch() -> None:
    print(f"seed {SEED}")
    monday = FRIDAY + 3
    summary, board, panel, market = analytics_run(hkt(monday, 11 + 59 / 60), duration_s=120.0)

    assert not market.simulated
    assert summary.simulated_from_ns is None
    assert abs(summary.ticks - 30_000) < 5 * np.sqrt(30_000)  # 11:59 - 12:00 only
    assert board.last_event_ns is not None
    assert hkt(monday, 11.99) < board.last_event_ns < hkt(monday, 12.0)
    assert panel.last_ts == hkt(monday, 12.0)  # the morning's last boundary passed, no tick
    assert "SIMULATED" not in board.render()


def test_without_analytics_no_panel_and_no_sessions() -> None:
    universe = load_builtin_universe()
    fake = FakeTime()
    board = IndexBoard(universe, io.StringIO(), clock=fake.clock)
    summary = run.simulate_live(
        universe, board, seed=SEED, duration_s=1.0, clock=fake.clock, sleep=fake.sleep
    )
    assert summary.analytics_records is None
    assert "analytics" not in summary.line()
    assert "ANALYTICS" not in board.render()


def test_desk_config_pairs_hedged_and_rules_only_where_the_universe_has_them(
    tmp_path: Path,
) -> None:
    builtin = desk_config(load_builtin_universe())
    assert builtin.pairs is not None
    assert [pair.name for pair in builtin.pairs] == ["SMALLCAP_VS_HSI", "HSTECH_VS_HSI"]
    assert {pair.sleeve_notional for pair in builtin.pairs} == {50_000_000.0}
    assert builtin.sample_ms == 5_000
    assert {rule.kind for rule in builtin.rules} == {"confirmation", "invalidation", "info"}
    assert all(len(rule.sentence) <= 80 - 21 for rule in builtin.rules)  # the panel's room
    other = load_universe(
        *write_universe_files(tmp_path, *random_rows(np.random.default_rng(1), 9, 2))
    )
    bare = desk_config(other)
    assert bare.pairs == () and bare.rules == ()


@pytest.mark.slow
@pytest.mark.parametrize("flags", [[], ["--no-analytics"]])
def test_command_with_and_without_the_panel(
    flags: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: SATURDAY_NOON)
    argv = ["run", "--duration", "1.5", "--rate", "2000", "--seed", str(SEED), "--once"]
    assert main([*argv, *flags]) == 0
    out = capsys.readouterr().out
    summary = out.rstrip().splitlines()[-1]
    if flags:
        assert "ANALYTICS" not in out
        assert "analytics" not in summary
        assert "SIMULATED" not in out
    else:
        assert "\nANALYTICS at 09:30:01 HKT\n" in out
        assert "\nHSI " in out[out.index("ANALYTICS") :]
        assert "SIMULATED 2026-12-04 09:30:01 HKT" in out
        assert "analytics records, simulated trading from 2026-12-04 09:30:00 HKT" in summary


def test_command_reads_the_analytics_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: SATURDAY_NOON)
    config = tmp_path / "analytics.json"
    config.write_text('{"indices": ["HSCEI"], "pairs": [], "interval_ms": 100}')
    argv = ["run", "--duration", "0.5", "--seed", str(SEED), "--once"]
    argv += ["--analytics-config", str(config)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    drawn = out[out.rindex("ANALYTICS") :]
    assert "\nHSCEI " in drawn
    assert "\nHSI " not in drawn
    assert "_VS_" not in drawn
    config.write_text('{"indices": ["NOPE"]}')
    assert main(argv) == 2
    assert "NOPE" in capsys.readouterr().err


def test_register_board_flags() -> None:
    defaults = parse(["run"])
    assert (defaults.width, defaults.once, defaults.stale_after) == (None, False, 30.0)
    args = parse(["run", "--width", "120", "--once", "--stale-after", "5"])
    assert (args.width, args.once, args.stale_after) == (120, True, 5.0)
    for bad in (["--width", "39"], ["--width", "wide"], ["--stale-after", "0"]):
        with pytest.raises(SystemExit) as exc:
            parse(["run", *bad])
        assert exc.value.code == 2


@pytest.mark.slow
def test_once_prints_one_frame_of_the_given_width(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: SATURDAY_NOON)
    argv = ["run", "--once", "--duration", "0.5", "--seed", str(SEED), "--width", "160"]
    assert main(argv) == 0
    out = capsys.readouterr().out.rstrip("\n").splitlines()
    frame, summary = out[:-1], out[-1]
    assert summary.startswith("tickindex run: ")
    assert frame[0].startswith("tickindex  SIMULATED 2026-12-04 09:30:00 HKT  morning  ")
    ticks_per_s = int(frame[0].split("  ")[3].removesuffix(" ticks/s").replace(",", ""))
    assert ticks_per_s > 1_000  # over the whole run (2,000 ticks/s of simulated market)
    assert sum(line.startswith("INDEX ") for line in frame) == 1
    assert "PREV CLOSE" in frame[1] and "NAME" in frame[1]
    assert all(len(line) <= 160 for line in frame)
    assert "ANALYTICS" in "\n".join(frame)


@pytest.mark.slow
def test_without_a_terminal_the_run_prints_summary_lines_not_frames(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: SATURDAY_NOON)
    argv = ["run", "--duration", "1.2", "--seed", str(SEED), "--refresh", "0.5"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.rstrip("\n").splitlines()
    assert lines[-1].startswith("tickindex run: ")
    board_lines = lines[:-1]
    assert 2 <= len(board_lines) <= 4  # every 0.5 s and once at the end
    for line in board_lines:
        assert line.startswith("tickindex SIMULATED 2026-12-04 09:30:0")
        assert " HKT  morning  " in line and "  HSI " in line and "  HSCI_SC " in line
    assert "INDEX" not in "\n".join(lines) and "ANALYTICS" not in "\n".join(lines)
