"""``tickindex restate --what-if``: hypothetical events against the replay without them."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tickindex
from consumers.gateway.rest import index_weights
from tests.support.restate_day import DAY_NS, START_NS, Day, make_day, write_events
from tickindex.cli.main import main
from tickindex.restate_report import hkt, weight_lines
from tickindex.what_if import WeightChange

EFFECTIVE = START_NS + DAY_NS // 2
HSI_ROWS = [("0005.HK", 1000, 0.5, 1.0), ("0700.HK", 500, 0.8, 0.5), ("0941.HK", 200, 0.7, 1.0)]


def _what_if(day: Day, tmp_path: Path, *events: dict[str, Any]) -> dict[str, Any]:
    hypothesis = write_events(tmp_path / "what-if.jsonl", *events)
    out = tmp_path / "diff.json"
    command = ["restate", "--ticks", str(day.ticks), *day.universe_args()]
    command += ["--what-if", str(hypothesis), "--out", str(out)]
    assert main([*command, "--weights-out", str(tmp_path / "weights.csv")]) == 0
    document: dict[str, Any] = json.loads(out.read_text())
    return document


def _hsi_weights(day: Day, tmp_path: Path, cap_factors: dict[str, float]) -> dict[str, float]:
    """``index_weights`` of HSI with these cap factors at the day's last prices."""
    last = day.last_prices()
    folder = tmp_path / f"expected-{len(list(tmp_path.glob('expected-*')))}"
    folder.mkdir()
    (folder / "indices.csv").write_text(
        "index,name,prev_close_level,weight_cap\nHSI,Hang Seng Index,20000,\n"
    )
    rows = "".join(
        f"HSI,{code},{shares},{faf},{cap_factors.get(code, cap)},{last[code]!r}\n"
        for code, shares, faf, cap in HSI_ROWS
    )
    (folder / "composition.csv").write_text(
        "index,security,issued_shares,faf,cap_factor,prev_close\n" + rows
    )
    universe = tickindex.load_universe(folder / "indices.csv", folder / "composition.csv")
    return {
        str(row["security"]): float(str(row["weight"])) for row in index_weights(universe, "HSI")
    }


def test_a_cap_factor_what_if_reports_the_weight_changes_index_weights_gives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day = make_day(tmp_path)
    cap_factors = {"0700.HK": 0.8}  # instead of 0.5
    rows = [
        {
            "index": "HSI",
            "security": code,
            "issued_shares": shares,
            "faf": faf,
            "cap_factor": cap_factors.get(code, cap),
        }
        for code, shares, faf, cap in HSI_ROWS
    ]
    review = {"type": "review", "effective": EFFECTIVE, "rows": rows}
    document = _what_if(day, tmp_path, review)
    before = _hsi_weights(day, tmp_path, {})
    after = _hsi_weights(day, tmp_path, cap_factors)
    changes = {row["security"]: row for row in document["weight_changes"]}
    assert {row["index"] for row in document["weight_changes"]} == {"HSI"}  # CAP untouched
    assert set(changes) == set(before) == set(after)
    for code, row in changes.items():
        assert row["weight_before"] == pytest.approx(before[code], rel=1e-12)
        assert row["weight_after"] == pytest.approx(after[code], rel=1e-12)
        assert row["change"] == pytest.approx(after[code] - before[code], rel=1e-9)
    assert changes["0700.HK"]["change"] > 0  # a bigger cap factor, a bigger weight
    with (tmp_path / "weights.csv").open() as handle:
        written = list(csv.DictReader(handle))
    assert [r["security"] for r in written] == [r["security"] for r in document["weight_changes"]]
    assert written[0]["security"] == "0700.HK"  # the biggest change first
    levels = {row["index"]: row for row in document["indices"]}
    assert levels["CAP"]["differing_rows"] == 0
    assert levels["HSI"]["first_diff_ts"] >= EFFECTIVE
    assert levels["HSI"]["divisor_before"] != levels["HSI"]["divisor_after"]
    out = capsys.readouterr().out
    assert "0700.HK" in out and "1 of 2 indices differ" in out


def test_a_removed_constituent_is_matched_by_tick_not_by_seq(tmp_path: Path) -> None:
    day = make_day(tmp_path)
    removal = {
        "type": "delete_constituent",
        "effective": EFFECTIVE,
        "index": "HSI",
        "security": "0941.HK",
    }
    document = _what_if(day, tmp_path, removal)
    hsi = next(row for row in document["indices"] if row["index"] == "HSI")
    baseline = tickindex.replay(day.ticks, indices=day.indices, composition=day.composition)
    rows = baseline.levels.of("HSI")
    gone = int(np.count_nonzero((rows.security == "0941.HK") & (rows.ts_event >= EFFECTIVE)))
    assert gone > 0
    assert hsi["published_rows"] == len(rows)
    assert hsi["corrected_rows"] == hsi["matched_rows"] == len(rows) - gone
    changes = {row["security"]: row for row in document["weight_changes"]}
    assert changes["0941.HK"]["weight_after"] == 0.0
    assert changes["0941.HK"]["weight_before"] > 0.0


def test_an_event_that_cannot_apply_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day = make_day(tmp_path)
    unknown = {
        "type": "delete_constituent",
        "effective": EFFECTIVE,
        "index": "HSI",
        "security": "B",
    }
    document = _what_if(day, tmp_path, unknown)
    assert document["weight_changes"] == []
    assert all(row["differing_rows"] == 0 for row in document["indices"])
    out, err = capsys.readouterr()
    assert "event not applied: what-if run: " in err and "delete_constituent" in err
    assert "no constituent weight changes" in out


def test_times_are_shown_in_hong_kong_time_to_the_nanosecond() -> None:
    assert hkt(START_NS + 5) == "2026-11-20 09:30:00.000000005"


def test_top_shows_the_largest_weight_changes_of_each_index() -> None:
    changes = [
        WeightChange("HSI", "A", 0.5, 0.6),
        WeightChange("HSI", "B", 0.5, 0.4),
        WeightChange("CAP", "C", 0.2, 0.25),
    ]
    lines = weight_lines(changes, top=1)
    assert len(lines) == 3
    assert lines[1].split()[:2] == ["HSI", "A"] and lines[2].split()[:2] == ["CAP", "C"]
    assert lines[1].split()[2:] == ["50.0000%", "60.0000%", "+10.0000%"]
