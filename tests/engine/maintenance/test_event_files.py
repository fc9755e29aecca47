"""Events files: every event type in JSON Lines and CSV, time formats, order and bad input."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.core.errors import ReferenceDataError
from engine.maintenance.event_files import load_events
from engine.maintenance.events import (
    CSV_COLUMNS,
    AddConstituent,
    BonusIssue,
    CashDividend,
    Consolidation,
    DeleteConstituent,
    FafChange,
    IndexEvent,
    ReplaceConstituent,
    Review,
    ReviewRow,
    RightsIssue,
    SharesChange,
    SpecialDividend,
    StockSplit,
)

# 2026-01-05 09:30 Hong Kong time (+08:00) = 01:30 UTC, in nanoseconds since the epoch
OPEN = int(datetime(2026, 1, 5, 1, 30, tzinfo=UTC).timestamp()) * 1_000_000_000
ISO_OPEN = "2026-01-05T09:30:00+08:00"

# One event of each type, in effective-time order. The files below list them shuffled.
EXPECTED: list[IndexEvent] = [
    StockSplit(effective=OPEN, security="0700.HK", ratio=2.0, id="split-1"),
    Consolidation(effective=OPEN, security="0005.HK", ratio=10.0),
    BonusIssue(effective=OPEN + 123, security="0005.HK", ratio=0.1),
    RightsIssue(
        effective=OPEN + 1_000, security="1299.HK", new_shares=1, per_held=4, subscription_price=1
    ),
    SpecialDividend(effective=OPEN + 2_000, security="0005.HK", amount=0.5),
    CashDividend(effective=OPEN + 3_000, security="0005.HK", amount=0.25, withholding_rate=0.1),
    SharesChange(effective=OPEN + 4_000, security="0700.HK", issued_shares=9.4e9),
    FafChange(effective=OPEN + 5_000, security="0700.HK", faf=0.65, index="HSI"),
    AddConstituent(
        effective=OPEN + 6_000,
        index="HSI",
        security="9988.HK",
        issued_shares=2e10,
        faf=0.85,
        price=80.5,
    ),
    DeleteConstituent(effective=OPEN + 7_000, index="HSI", security="1299.HK"),
    ReplaceConstituent(
        effective=OPEN + 8_000,
        index="HSI",
        old_security="0005.HK",
        security="3690.HK",
        issued_shares=6.2e9,
        faf=0.8,
        cap_factor=0.9,
        price=120.0,
    ),
    Review(
        effective=OPEN + 9_000,
        rows=[
            ReviewRow("HSI", "0700.HK", 9.5e9, 0.7),
            ReviewRow("HSI", "9988.HK", 2e10, 0.85, 0.5, 80.0),
        ],
    ),
]

JSONL_LINES = [
    f'{{"type": "special_dividend", "effective": {OPEN + 2_000}, "security": "0005.HK",'
    ' "amount": 0.5}',
    '{"type": "bonus_issue", "effective": "2026-01-05T01:30:00.000000123Z",'
    ' "security": "0005.HK", "ratio": 0.1}',
    f'{{"type": "review", "effective": {OPEN + 9_000}, "rows": ['
    '{"index": "HSI", "security": "0700.HK", "issued_shares": 9.5e9, "faf": 0.7},'
    ' {"index": "HSI", "security": "9988.HK", "issued_shares": 2e10, "faf": 0.85,'
    ' "cap_factor": 0.5, "price": 80.0}]}',
    f'{{"type": "stock_split", "effective": "{ISO_OPEN}", "security": "0700.HK", "ratio": 2,'
    ' "id": "split-1"}',
    "",  # blank lines are skipped
    f'{{"type": "consolidation", "effective": {OPEN}, "security": "0005.HK", "ratio": 10}}',
    f'{{"type": "rights_issue", "effective": {OPEN + 1_000}, "security": "1299.HK",'
    ' "new_shares": 1, "per_held": 4, "subscription_price": 1}',
    f'{{"type": "dividend", "effective": {OPEN + 3_000}, "security": "0005.HK",'
    ' "amount": 0.25, "withholding_rate": 0.1}',
    f'{{"type": "shares_change", "effective": {OPEN + 4_000}, "security": "0700.HK",'
    ' "issued_shares": 9.4e9}',
    f'{{"type": "faf_change", "effective": {OPEN + 5_000}, "security": "0700.HK", "faf": 0.65,'
    ' "index": "HSI"}',
    f'{{"type": "add_constituent", "effective": {OPEN + 6_000}, "index": "HSI",'
    ' "security": "9988.HK", "issued_shares": 2e10, "faf": 0.85, "price": 80.5}',
    f'{{"type": "delete_constituent", "effective": {OPEN + 7_000}, "index": "HSI",'
    ' "security": "1299.HK"}',
    f'{{"type": "replace_constituent", "effective": {OPEN + 8_000}, "index": "HSI",'
    ' "old_security": "0005.HK", "security": "3690.HK", "issued_shares": 6.2e9, "faf": 0.8,'
    ' "cap_factor": 0.9, "price": 120}',
]

CSV_HEADER = ",".join(CSV_COLUMNS)
# effective,type,index,security,old_security,ratio,new_shares,per_held,subscription_price,
# amount,withholding_rate,issued_shares,faf,cap_factor,price,composition,id
CSV_ROWS = [
    f"{OPEN + 9_000},review,,,,,,,,,,,,,,reviews/2026q1.csv,",
    f"{OPEN + 8_000},replace_constituent,HSI,3690.HK,0005.HK,,,,,,,6.2e9,0.8,0.9,120,,",
    f"{ISO_OPEN},stock_split,,0700.HK,,2,,,,,,,,,,,split-1",
    f"{OPEN},consolidation,,0005.HK,,10,,,,,,,,,,,",
    "2026-01-05T01:30:00.000000123Z,bonus_issue,,0005.HK,,0.1,,,,,,,,,,,",
    f"{OPEN + 1_000},rights_issue,,1299.HK,,,1,4,1,,,,,,,,",
    f"{OPEN + 2_000},special_dividend,,0005.HK,,,,,,0.5,,,,,,,",
    f"{OPEN + 3_000},dividend,,0005.HK,,,,,,0.25,0.1,,,,,,",
    f"{OPEN + 4_000},shares_change,,0700.HK,,,,,,,,9.4e9,,,,,",
    f"{OPEN + 5_000},faf_change,HSI,0700.HK,,,,,,,,,0.65,,,,",
    f"{OPEN + 6_000},add_constituent,HSI,9988.HK,,,,,,,,2e10,0.85,,80.5,,",
    f"{OPEN + 7_000},delete_constituent,HSI,1299.HK,,,,,,,,,,,,,",
]
COMPOSITION = """index,security,issued_shares,faf,cap_factor,prev_close
HSI,0700.HK,9.5e9,0.7,,
HSI,9988.HK,2e10,0.85,0.5,80.0
"""


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_every_event_type_sorted_by_effective_time(tmp_path: Path) -> None:
    events = load_events(write(tmp_path / "events.jsonl", JSONL_LINES))
    assert events == EXPECTED
    assert [e.effective for e in events] == sorted(e.effective for e in events)


def test_csv_every_event_type_with_review_composition_next_to_it(tmp_path: Path) -> None:
    folder = tmp_path / "maintenance"
    write(folder / "reviews" / "2026q1.csv", COMPOSITION.splitlines())
    events = load_events(write(folder / "events.csv", [CSV_HEADER, *CSV_ROWS]))
    assert events == EXPECTED


def test_iso_and_nanosecond_times_are_the_same_instant(tmp_path: Path) -> None:
    lines = [
        f'{{"type": "stock_split", "effective": {OPEN}, "security": "B", "ratio": 2}}',
        f'{{"type": "stock_split", "effective": "{ISO_OPEN}", "security": "A", "ratio": 2}}',
        '{"type": "stock_split", "effective": "2026-01-05T01:30:00Z", "security": "C", "ratio": 2}',
        f'{{"type": "stock_split", "effective": "{OPEN - 1}", "security": "D", "ratio": 2}}',
    ]
    events = load_events(write(tmp_path / "events.ndjson", lines))
    # equal times keep file order; "OPEN - 1" as a string is nanoseconds too
    assert [(e.effective, getattr(e, "security", "")) for e in events] == [
        (OPEN - 1, "D"),
        (OPEN, "B"),
        (OPEN, "A"),
        (OPEN, "C"),
    ]


SPLIT = '{"type": "stock_split", "effective": 1, "security": "A", "ratio": 2}'
CSV_OK = "1,stock_split,,A,,2,,,,,,,,,,,"


@pytest.mark.parametrize(
    ("name", "lines", "line", "problem"),
    [
        ("bad.jsonl", [SPLIT, '{"type": "merger", "effective": 1}'], 2, "merger"),
        (
            "bad.jsonl",
            [SPLIT, SPLIT, SPLIT.replace(', "ratio": 2', "")],
            3,
            "missing required field `ratio`",
        ),
        ("bad.jsonl", [SPLIT.replace("2}", '"two"}')], 1, "ratio"),
        ("bad.jsonl", [SPLIT.replace("1,", '"2026-01-05T09:30:00",')], 1, "no UTC offset"),
        ("bad.jsonl", [SPLIT.replace("1,", '"yesterday",')], 1, "effective"),
        ("bad.jsonl", [SPLIT, "{not json"], 2, "not JSON"),
        ("bad.jsonl", ["[1, 2]"], 1, "JSON object"),
        ("bad.jsonl", [SPLIT.replace("}", ', "colour": "red"}')], 1, "colour"),
        ("bad.csv", [CSV_HEADER, CSV_OK, "1,merger,,A,,,,,,,,,,,,,"], 3, "merger"),
        ("bad.csv", [CSV_HEADER, "1,stock_split,,A,,,,,,,,,,,,,"], 2, "ratio"),
        ("bad.csv", [CSV_HEADER, "1,stock_split,,A,,two,,,,,,,,,,,"], 2, "ratio"),
        ("bad.csv", [CSV_HEADER, "2026-01-05 09:30,stock_split,,A,,2,,,,,,,,,,,"], 2, "offset"),
        ("bad.csv", ["effective,type,security,ratioo", "1,stock_split,A,2"], 1, "ratioo"),
        ("bad.csv", ["type,security,ratio", "stock_split,A,2"], 1, "effective"),
        ("bad.csv", [CSV_HEADER, CSV_OK, CSV_OK, "5,review,,,,,,,,,,,,,,,"], 4, "composition"),
    ],
    ids=[
        "jsonl-unknown-type",
        "jsonl-missing-field",
        "jsonl-bad-number",
        "jsonl-time-without-offset",
        "jsonl-bad-time",
        "jsonl-not-json",
        "jsonl-not-an-object",
        "jsonl-unknown-field",
        "csv-unknown-type",
        "csv-missing-field",
        "csv-bad-number",
        "csv-time-without-offset",
        "csv-unknown-column",
        "csv-no-effective-column",
        "csv-review-without-composition",
    ],
)
def test_bad_events_file_names_file_line_and_problem(
    tmp_path: Path, name: str, lines: list[str], line: int, problem: str
) -> None:
    path = write(tmp_path / name, lines)
    with pytest.raises(ReferenceDataError) as caught:
        load_events(path)
    error = caught.value
    assert (error.path, error.line) == (str(path), line)
    assert problem in error.problem
    assert str(error).startswith(f"{path}:{line}: ")


def test_bad_or_missing_review_composition_names_that_file(tmp_path: Path) -> None:
    events = write(tmp_path / "events.csv", [CSV_HEADER, "5,review,,,,,,,,,,,,,,q1.csv,"])
    with pytest.raises(ReferenceDataError, match="cannot open") as caught:
        load_events(events)
    assert caught.value.path == str(tmp_path / "q1.csv")
    write(tmp_path / "q1.csv", [COMPOSITION.splitlines()[0], "HSI,0700.HK,lots,0.7,,"])
    with pytest.raises(ReferenceDataError) as caught:
        load_events(events)
    assert (caught.value.path, caught.value.line) == (str(tmp_path / "q1.csv"), 2)


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ReferenceDataError, match=r"\.jsonl or \.csv"):
        load_events(write(tmp_path / "events.txt", [SPLIT]))
    with pytest.raises(ReferenceDataError, match="cannot open"):
        load_events(tmp_path / "absent.jsonl")
