"""``tickindex replay --events``: an event that fails to apply is a skipped row of the events
file (EVENTS:LINE in the rejects file), and the summary accounts for every event."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tickindex.cli.main import main

DAY = "2026-01-05T"  # a Monday, a trading day


def split(security: str, at: str) -> str:
    event = {"type": "stock_split", "effective": at, "security": security, "ratio": 2.0}
    return json.dumps(event)


def test_failed_events_are_listed_by_line_and_every_event_is_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ticks, events, out = tmp_path / "ticks.csv", tmp_path / "events.jsonl", tmp_path / "l.csv"
    ticks.write_text(
        f"ts,security,price\n{DAY}09:30:00+08:00,0700,400.0\n{DAY}09:30:05+08:00,0005,100.5\n"
    )
    events.write_text(
        "\n".join(
            [
                split("ZZZ9", f"{DAY}09:30:03+08:00"),  # line 1: in no index, fails
                "",
                split("0005", f"{DAY}09:30:02+08:00"),  # line 3: applied
                split("0700", "2026-01-06T09:30:00+08:00"),  # line 4: after the last tick
                split("0700", f"{DAY}09:30:01.25+08:00"),  # line 5: applied
            ]
        )
        + "\n"
    )
    argv = ["replay", "--ticks", str(ticks), "--events", str(events), "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "ticks read 2, applied 2, skipped 0" in err
    assert (
        "events read 4, applied 2, failed 1, not reached 1 (effective after the last tick)" in err
    )
    rejects = Path(f"{out}.rejects")
    assert f"every skipped row: {rejects}" in err
    assert rejects.read_text().splitlines() == [
        f"{events}:1: event_failed: stock_split security=ZZZ9 ratio=2.0 at "
        f"{DAY}09:30:03+08:00: security 'ZZZ9' is in no index"
    ]


def test_events_all_applied_leave_no_rejects_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ticks, events, out = tmp_path / "ticks.csv", tmp_path / "events.jsonl", tmp_path / "l.csv"
    ticks.write_text(f"ts,security,price\n{DAY}09:30:05+08:00,0005,100.5\n")
    events.write_text(split("0005", f"{DAY}09:30:02+08:00") + "\n")
    argv = ["replay", "--ticks", str(ticks), "--events", str(events), "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "events read 1, applied 1, failed 0, not reached 0\n" in err
    assert "every skipped row" not in err and not Path(f"{out}.rejects").exists()
