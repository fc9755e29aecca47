"""``tickindex restate``: tick rows its replays leave out are reported once, as FILE:LINE."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine.kernel.columns import TickColumns
from engine.refdata.builtin import load_builtin_universe
from producers.reject_log import RejectLog
from producers.tickfile import ReadStats
from tickindex.cli.main import main
from tickindex.restating import run_scenario

DAY = "2026-01-05T"
ROWS = [
    f"{DAY}09:30:00+08:00,0700,400.0",
    f"{DAY}09:30:01+08:00,XXXX,1",  # line 3: unknown security
    f"{DAY}09:30:02+08:00,0005,100.5",
    f"{DAY}09:30:03+08:00,0700,-1",  # line 5: not a price
    f"{DAY}09:30:04+08:00,0700,402.0",
]


def _restate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: list[str], *extra: str
) -> tuple[int, str]:
    ticks, published = tmp_path / "ticks.csv", tmp_path / "published.csv"
    ticks.write_text("ts,security,price\n" + "\n".join(rows) + "\n")
    assert main(["replay", "--ticks", str(ticks), "--out", str(published), "--no-progress"]) == 0
    capsys.readouterr()
    argv = ["restate", "--published", str(published), "--ticks", str(ticks), *extra]
    return main(argv), str(ticks)


def test_skipped_tick_rows_are_counted_and_listed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rejects = tmp_path / "rejects.txt"
    code, ticks = _restate(tmp_path, capsys, ROWS, "--rejects", str(rejects))
    assert code == 0
    err = capsys.readouterr().err.split("tickindex restate: ", 1)[1]
    assert err.splitlines() == [
        "ticks read 5, applied 3, skipped 2",
        "  skipped 1 non_positive_price",
        "  skipped 1 unknown_security",
        f"  {ticks}:3: unknown_security: 'XXXX'",
        f"  {ticks}:5: non_positive_price: '-1'",
    ]
    assert rejects.read_text().splitlines() == [line.strip() for line in err.splitlines()[3:]]


def test_strict_stops_at_the_first_bad_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, ticks = _restate(tmp_path, capsys, ROWS, "--strict")
    assert code == 2
    assert (
        f"tickindex restate: error: {ticks}:3: unknown_security: 'XXXX'" in capsys.readouterr().err
    )


def test_nothing_is_said_when_no_row_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = _restate(tmp_path, capsys, [ROWS[0], ROWS[2]])
    assert code == 0
    assert "ticks read" not in capsys.readouterr().err


def test_ticks_the_engine_rejects_are_listed_too() -> None:
    """A source with sequence numbers: a repeated one is the engine's reject, by origin line."""
    universe = load_builtin_universe()
    tencent = universe.security_id("0700")

    class Source:
        stats = ReadStats(rows=3, log=RejectLog("ticks.csv"))

        def __iter__(self) -> Iterator[TickColumns]:
            yield TickColumns(
                np.array([1, 2, 3], dtype=np.int64),
                np.full(3, tencent, dtype=np.int64),
                np.array([400.0, 401.0, 402.0]),
                seq=np.array([1, 1, 2], dtype=np.int64),
                origin=np.array([2, 3, 4], dtype=np.int64),
            )

    source = Source()
    run_scenario(universe, lambda _: source, [])
    assert source.stats.log.summary() == [
        "ticks.csv:3: duplicate_seq: '0700' at 1970-01-01T08:00:00.000000002+08:00"
    ]
