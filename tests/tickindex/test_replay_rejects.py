"""``tickindex replay``: every skipped row is counted by reason and listed as FILE:LINE: reason."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import TickColumns
from engine.kernel.screening import RejectReason
from engine.pipeline.chain import IndexPipeline
from engine.refdata.builtin import load_builtin_universe
from producers.reject_log import LineRejects, RejectLog
from tickindex.cli.main import main
from tickindex.levels import LevelCollector

DAY = "2026-01-05T"  # a Monday, a trading day
SUMMARY = re.compile(r"ticks read (\d+), applied (\d+), skipped (\d+)")
REASON = re.compile(r"^  skipped (\d+) (\w+)", re.M)

# (line text, reason label or None when applied); line numbers follow from the order
ROWS: list[tuple[bytes, str | None]] = [
    (f"{DAY}09:30:00+08:00,0700,400.0,7".encode(), None),
    (f"{DAY}09:30:01+08:00,0005,100.5,9".encode(), None),
    (f"{DAY}09:30:02+08:00,XXXX,100.5,1".encode(), "unknown_security"),
    (f"{DAY}09:30:03+08:00,0700,abc,1".encode(), "non_finite_price"),
    (f"{DAY}09:30:03+08:00,0700,nan,1".encode(), "non_finite_price"),
    (f"{DAY}09:30:04+08:00,0700,-1,1".encode(), "non_positive_price"),
    (f"{DAY}09:30:04+08:00,0700,0,1".encode(), "non_positive_price"),
    (f"{DAY}09:30:05+08:00,0700,1e12,1".encode(), "price_out_of_range"),
    (b"notatime,0700,401,1", "bad_timestamp"),
    (f"{DAY}09:30:06+08:00,0700,401".encode(), "undecodable"),  # a cell short
    (f'{DAY}09:30:06+08:00,"0700,402,1'.encode(), "undecodable"),  # a quote left open
    (f"{DAY}09:30:06+08:00,07\xff0,402,1".encode("latin-1"), "undecodable"),  # not UTF-8
    (b"", None),  # blank: neither read nor skipped
    (f"{DAY}08:00:00+08:00,0700,402.2,1".encode(), "outside_session"),  # before the open
    (f"{DAY}12:30:00+08:00,0700,402.2,1".encode(), "outside_session"),  # lunch break
    (f"{DAY}09:30:09+08:00,0005,101.1,1".encode(), None),
]


def _write_ticks(path: Path) -> dict[int, str]:
    """The tick file; reason label by line of every row that must be skipped."""
    path.write_bytes(b"ts,security,price,seq\n" + b"\n".join(text for text, _ in ROWS) + b"\n")
    return {line: reason for line, (_, reason) in enumerate(ROWS, start=2) if reason}


def test_read_is_applied_plus_skipped_and_every_skipped_row_is_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ticks = tmp_path / "ticks.csv"
    bad = _write_ticks(ticks)
    out = tmp_path / "levels.csv"
    argv = ["replay", "--ticks", str(ticks), "--out", str(out), "--sessions", "--no-progress"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    found = SUMMARY.search(err)
    assert found is not None, err
    read, applied, skipped = map(int, found.groups())
    assert (read, applied, skipped) == (len(ROWS) - 1, 3, len(bad))
    by_reason = {label: int(n) for n, label in REASON.findall(err)}
    expected: dict[str, int] = {}
    for reason in bad.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert by_reason == expected
    assert sum(by_reason.values()) == skipped
    # the default rejects file: one FILE:LINE: reason line per skipped row, the engine's too
    rejects = Path(f"{out}.rejects")
    assert f"every skipped row: {rejects}" in err
    listed = [re.match(rf"{re.escape(str(ticks))}:(\d+): (\w+): ", line) for line in
              rejects.read_text().splitlines()]  # fmt: skip
    assert all(listed)
    assert {int(m[1]): m[2] for m in listed if m} == bad
    assert len(listed) == skipped


def test_no_rejects_file_when_nothing_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ticks = tmp_path / "ticks.csv"
    ticks.write_text(f"ts,security,price\n{DAY}09:30:00+08:00,0700,400.0\n")
    out = tmp_path / "levels.csv"
    stale = Path(f"{out}.rejects")
    stale.write_text("from an earlier replay\n")
    assert main(["replay", "--ticks", str(ticks), "--out", str(out), "--no-progress"]) == 0
    assert "ticks read 1, applied 1, skipped 0" in capsys.readouterr().err
    assert not stale.exists()


def test_an_explicit_rejects_file_replaces_the_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ticks = tmp_path / "ticks.csv"
    ticks.write_text(f"ts,security,price\n{DAY}09:30:00+08:00,NOPE,400.0\n")
    out, chosen = tmp_path / "levels.csv", tmp_path / "chosen.txt"
    argv = ["replay", "--ticks", str(ticks), "--out", str(out), "--rejects", str(chosen)]
    assert main([*argv, "--no-progress"]) == 0
    assert f"every skipped row: {chosen}" in capsys.readouterr().err
    assert chosen.read_text() == f"{ticks}:2: unknown_security: 'NOPE'\n"
    assert not Path(f"{out}.rejects").exists()


def test_engine_rejects_are_reported_by_origin_line() -> None:
    """Sequence rejects of the engine name the line the tick came from; ticks without an
    origin (in memory) are only counted."""
    universe = load_builtin_universe()
    log = RejectLog("ticks.csv")
    pipeline = IndexPipeline(
        IndexCalculator(universe),
        LevelCollector(universe.index_codes, universe.securities),
        rejects=LineRejects(log, universe.securities),
    )
    tencent = universe.security_id("0700")
    ts = np.array([1_000_000_000, 1_500_000_000, 2_000_000_000, 3_000_000_000], dtype=np.int64)
    pipeline.process(
        TickColumns(
            ts,
            np.full(4, tencent, dtype=np.int64),
            np.array([400.0, 401.0, 402.0, 403.0]),
            seq=np.array([5, 5, 4, 6], dtype=np.int64),
            origin=np.array([10, 11, 12, 14], dtype=np.int64),
        )
    )
    assert log.first == [
        "ticks.csv:11: duplicate_seq: '0700' at 1970-01-01T08:00:01.500000000+08:00",
        "ticks.csv:12: out_of_order_seq: '0700' at 1970-01-01T08:00:02+08:00",
    ]
    pipeline.process(TickColumns(ts[:1], np.array([tencent]), np.array([1.0]), seq=np.array([1])))
    assert pipeline.stats.rejected[RejectReason.OUT_OF_ORDER_SEQ] == 2
    assert len(log.first) == 2


def test_unusable_volumes_are_in_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ticks = tmp_path / "ticks.csv"
    ticks.write_text(
        "ts,security,price,volume\n"
        f"{DAY}09:30:00+08:00,0700,400.0,100\n"
        f"{DAY}09:30:01+08:00,0700,401.0,lots\n"
        f"{DAY}09:30:02+08:00,0700,402.0,-5\n"
    )
    out = tmp_path / "levels.csv"
    assert main(["replay", "--ticks", str(ticks), "--out", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "ticks read 3, applied 3, skipped 0" in err
    assert "  2 ticks with an unusable volume: kept, without volume" in err
