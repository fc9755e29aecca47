"""``tickindex restate`` finds a planted error: levels published with a wrong split ratio."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tickindex
from tests.support.reference_files import COMPOSITION, INDICES, write
from tests.support.restate_day import DAY_NS, START_NS, Day, make_day, write_events
from tickindex.cli.main import main

SPLIT_AT = START_NS + DAY_NS // 2  # applied before the first tick at or after it
SECURITY = "0005.HK"  # in both indices (HSI and CAP)


def _split(ratio: float) -> dict[str, Any]:
    return {"type": "stock_split", "effective": SPLIT_AT, "security": SECURITY, "ratio": ratio}


@pytest.fixture
def day(tmp_path: Path) -> Day:
    return make_day(tmp_path, split=(SECURITY, SPLIT_AT, 2.0))


def _restate(
    day: Day, tmp_path: Path, *extra: str, published_name: str = "published.csv"
) -> dict[str, Any]:
    wrong = write_events(tmp_path / "wrong.jsonl", _split(3.0))
    right = write_events(tmp_path / "right.jsonl", _split(2.0))
    published = tmp_path / published_name
    args = ["--ticks", str(day.ticks), *day.universe_args()]
    assert main(["replay", *args, "--events", str(wrong), "--out", str(published)]) == 0
    out = tmp_path / "diff.json"
    command = ["restate", *args, "--published", str(published), "--events", str(right)]
    assert main([*command, "--out", str(out), *extra]) == 0
    document: dict[str, Any] = json.loads(out.read_text())
    return document


def test_restate_finds_the_first_tick_the_max_difference_and_the_corrected_close(
    day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _restate(day, tmp_path)
    report = {row["index"]: row for row in document["indices"]}
    wrong = tickindex.replay(
        day.ticks, indices=day.indices, composition=day.composition, events=tmp_path / "wrong.jsonl"
    ).levels
    right = tickindex.replay(
        day.ticks, indices=day.indices, composition=day.composition, events=tmp_path / "right.jsonl"
    ).levels
    assert set(report) == {"HSI", "CAP"}
    for code in ("HSI", "CAP"):
        old, new = wrong.of(code), right.of(code)
        # Same ticks, same members: the rows line up one to one (independent of the tool).
        assert np.array_equal(old.seq, new.seq) and np.array_equal(old.ts_event, new.ts_event)
        diff = np.abs(new.level - old.level)
        beyond = np.flatnonzero(diff > 1e-9 * np.abs(old.level))
        # The planted error shows at the first tick of the split security after the split.
        first_split_tick = np.flatnonzero((old.security == SECURITY) & (old.ts_event >= SPLIT_AT))[
            0
        ]
        assert beyond[0] == first_split_tick
        row = report[code]
        assert row["first_diff_ts"] == int(old.ts_event[first_split_tick])
        assert row["first_diff_seq"] == int(old.seq[first_split_tick])
        assert row["first_diff_security"] == SECURITY
        assert row["first_diff_published"] == float(old.level[first_split_tick])
        assert row["first_diff_corrected"] == float(new.level[first_split_tick])
        assert row["max_abs_diff"] == float(diff.max())
        assert row["max_abs_seq"] == int(old.seq[np.argmax(diff)])
        assert row["max_rel_diff"] == float((diff / old.level).max())
        assert row["differing_rows"] == beyond.size
        assert row["matched_rows"] == row["published_rows"] == row["corrected_rows"] == len(old)
        assert row["close_published"] == float(old.level[-1])
        assert row["close_corrected"] == float(new.level[-1])
        assert row["close_diff"] == float(new.level[-1] - old.level[-1])
        assert row["max_abs_diff"] > 1.0  # a real error, not float noise
    out = capsys.readouterr().out
    assert "2 of 2 indices differ beyond a relative 1e-09" in out
    assert f"#{report['HSI']['first_diff_seq']} {SECURITY}" in out


def _audit_divisors(path: Path) -> dict[str, float]:
    with path.open() as handle:
        return {row["index"]: float(row["new_divisor"]) for row in csv.DictReader(handle)}


def test_divisor_before_is_the_original_events_and_after_the_corrected_ones(
    day: Day, tmp_path: Path
) -> None:
    document = _restate(day, tmp_path, "--original-events", str(tmp_path / "wrong.jsonl"))
    audits = {}
    for name in ("wrong", "right"):
        audit = tmp_path / f"{name}-audit.csv"
        command = ["replay", "--ticks", str(day.ticks), *day.universe_args()]
        command += ["--events", str(tmp_path / f"{name}.jsonl"), "--out", str(tmp_path / "x.csv")]
        assert main([*command, "--audit", str(audit)]) == 0
        audits[name] = _audit_divisors(audit)
    assert document["divisor_before_source"].startswith("end of the replay with the original")
    assert document["original_reproduces_published"] is True
    for row in document["indices"]:
        assert row["divisor_before"] == audits["wrong"][row["index"]]
        assert row["divisor_after"] == audits["right"][row["index"]]


def test_without_original_events_the_divisor_before_is_the_reference_datas(
    day: Day, tmp_path: Path
) -> None:
    document = _restate(day, tmp_path)
    universe = tickindex.load_universe(day.indices, day.composition)
    start = dict(zip(universe.index_codes, universe.divisors.tolist(), strict=True))
    assert document["divisor_before_source"] == "reference data, before any event"
    assert document["original_reproduces_published"] is None
    assert {row["index"]: row["divisor_before"] for row in document["indices"]} == start


def test_the_csv_diff_holds_the_same_numbers_as_the_json(day: Day, tmp_path: Path) -> None:
    document = _restate(day, tmp_path)
    published = tmp_path / "published.csv"
    csv_out = tmp_path / "diff.csv"
    command = ["restate", "--ticks", str(day.ticks), *day.universe_args()]
    command += ["--published", str(published), "--events", str(tmp_path / "right.jsonl")]
    assert main([*command, "--out", str(csv_out)]) == 0
    with csv_out.open() as handle:
        rows = list(csv.DictReader(handle))
    for row, expected in zip(rows, document["indices"], strict=True):
        assert row["index"] == expected["index"]
        assert float(row["max_abs_diff"]) == expected["max_abs_diff"]
        assert int(row["first_diff_ts"]) == expected["first_diff_ts"]
        assert float(row["close_corrected"]) == expected["close_corrected"]


@pytest.mark.parametrize(
    "suffix", [".csv", ".jsonl", ".csv.gz", ".jsonl.gz", ".parquet", ".arrow", ".arrows"]
)
def test_published_levels_equal_to_the_replay_differ_nowhere(
    day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    right = write_events(tmp_path / "right.jsonl", _split(2.0))
    published = tmp_path / f"published{suffix}"
    args = ["--ticks", str(day.ticks), *day.universe_args(), "--events", str(right)]
    assert main(["replay", *args, "--out", str(published)]) == 0
    out = tmp_path / "diff.json"
    assert main(["restate", *args, "--published", str(published), "--out", str(out)]) == 0
    for row in json.loads(out.read_text())["indices"]:
        assert row["differing_rows"] == 0 and row["first_diff_ts"] is None
        assert row["max_abs_diff"] == 0.0
        assert row["close_published"] == row["close_corrected"]
    assert "0 of 2 indices differ" in capsys.readouterr().out


def test_a_correction_in_the_reference_data(
    day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    wrong_indices, wrong_composition = write(
        wrong, INDICES, COMPOSITION.replace("HSI,0941.HK,200,0.7,", "HSI,0941.HK,200,0.9,")
    )
    published = tmp_path / "published.csv"
    original = ["--indices", str(wrong_indices), "--composition", str(wrong_composition)]
    command = ["replay", "--ticks", str(day.ticks), "--out", str(published)]
    assert main([*command, *original]) == 0
    out = tmp_path / "diff.json"
    command = ["restate", "--ticks", str(day.ticks), *day.universe_args(), "--out", str(out)]
    command += ["--published", str(published), "--original-indices", str(wrong_indices)]
    assert main([*command, "--original-composition", str(wrong_composition)]) == 0
    document = json.loads(out.read_text())
    report = {row["index"]: row for row in document["indices"]}
    assert document["original_reproduces_published"] is True
    old = tickindex.replay(day.ticks, indices=wrong_indices, composition=wrong_composition).levels
    new = tickindex.replay(day.ticks, indices=day.indices, composition=day.composition).levels
    old, new = old.of("HSI"), new.of("HSI")
    diff = np.abs(new.level - old.level)
    first = np.flatnonzero(diff > 1e-9 * old.level)[0]
    assert report["HSI"]["first_diff_seq"] == int(old.seq[first])
    assert report["HSI"]["max_abs_diff"] == float(diff.max())
    assert report["HSI"]["close_corrected"] == float(new.level[-1])
    assert report["CAP"]["differing_rows"] == 0
    before = tickindex.load_universe(wrong_indices, wrong_composition).divisors[0]
    after = tickindex.load_universe(day.indices, day.composition).divisors[0]
    assert (report["HSI"]["divisor_before"], report["HSI"]["divisor_after"]) == (before, after)
    assert "the original replay reproduces the published levels" in capsys.readouterr().out


def test_original_events_that_do_not_give_the_published_levels_are_flagged(
    day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _restate(day, tmp_path, "--original-events", str(tmp_path / "right.jsonl"))
    assert document["original_reproduces_published"] is False
    assert "the original replay does NOT reproduce the published levels" in capsys.readouterr().out


def test_conflated_published_levels_match_the_replays_level_of_the_same_tick(
    day: Day, tmp_path: Path
) -> None:
    wrong = write_events(tmp_path / "wrong.jsonl", _split(3.0))
    right = write_events(tmp_path / "right.jsonl", _split(2.0))
    published = tmp_path / "published.csv"
    args = ["--ticks", str(day.ticks), *day.universe_args()]
    replay = ["replay", *args, "--events", str(wrong), "--out", str(published)]
    assert main([*replay, "--conflate-ms", "60000"]) == 0
    out = tmp_path / "diff.json"
    restate = ["restate", *args, "--published", str(published), "--events", str(right)]
    assert main([*restate, "--out", str(out)]) == 0
    indices, composition = day.indices, day.composition
    conflated = tickindex.replay(
        day.ticks, indices=indices, composition=composition, events=wrong, conflate_ms=60000
    ).levels
    corrected = tickindex.replay(
        day.ticks, indices=indices, composition=composition, events=right
    ).levels
    for row in json.loads(out.read_text())["indices"]:
        rows, every = conflated.of(row["index"]), corrected.of(row["index"])
        assert row["matched_rows"] == row["published_rows"] == len(rows) < row["corrected_rows"]
        assert np.array_equal(every.seq, np.arange(1, len(every) + 1))  # no gaps: seq - 1 = row
        diff = np.abs(every.level[rows.seq - 1] - rows.level)
        first = np.flatnonzero(diff > 1e-9 * rows.level)[0]
        assert row["first_diff_seq"] == int(rows.seq[first])
        assert row["max_abs_diff"] == float(diff.max())
        assert row["close_corrected"] == float(every.level[-1])


def test_published_levels_in_parquet_give_the_report_of_the_csv(day: Day, tmp_path: Path) -> None:
    from_csv = _restate(day, tmp_path)
    from_parquet = _restate(day, tmp_path, published_name="published.parquet")
    assert from_parquet["indices"] == from_csv["indices"]
    assert any(row["differing_rows"] for row in from_parquet["indices"])


def test_published_csv_with_quotes_and_crlf_gives_the_same_report(day: Day, tmp_path: Path) -> None:
    plain = _restate(day, tmp_path)
    published = tmp_path / "published.csv"
    rows = published.read_text().splitlines()
    quoted = [rows[0], *(",".join(f'"{cell}"' for cell in row.split(",")) for row in rows[1:])]
    (tmp_path / "quoted.csv").write_bytes("\r\n".join(quoted).encode() + b"\r\n")
    out = tmp_path / "quoted.json"
    command = ["restate", "--ticks", str(day.ticks), *day.universe_args(), "--out", str(out)]
    command += ["--published", str(tmp_path / "quoted.csv")]
    assert main([*command, "--events", str(tmp_path / "right.jsonl")]) == 0
    assert json.loads(out.read_text())["indices"] == plain["indices"]
