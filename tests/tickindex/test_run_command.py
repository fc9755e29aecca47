"""``tickindex run``: the embedded simulator -> calculator -> board job."""

from __future__ import annotations

import argparse
import io
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from consumers.board import IndexBoard
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.reference_files import load_universe
from tests.support.scalar_reference import RefIndex, RefRow
from tests.support.seed import SEED
from tests.support.universes import random_rows
from tickindex.cli import run
from tickindex.cli.main import main


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
    args = parse(["run", "--duration", "1", "--rate", "5000", "--seed", str(SEED), *files])

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
    assert main(["run", "--duration", "1", "--rate", "5000", "--seed", str(SEED)]) == 0
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
    board = IndexBoard(universe, out, refresh_s=1e9, clock=fake.clock)
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
