"""Events files: JSON Lines (one tagged event per line) or CSV (columns ``events.CSV_COLUMNS``).

In CSV, empty cells are absent fields and a ``review`` row names a composition file (the core
format, ``prev_close`` read as the reference price of new constituents) relative to the events
file. ``effective`` is integer nanoseconds or ISO-8601 with offset in both formats. Every field
is range-checked as on the control topic (``engine.maintenance.events``); any problem stops the
load with a
``ReferenceDataError`` naming the file and line.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import msgspec

from engine.core.errors import ReferenceDataError
from engine.core.timestamps import parse_timestamp
from engine.maintenance.event_queue import EventOrigin, PendingEvent
from engine.maintenance.events import CSV_COLUMNS, IndexEvent, ReviewRow
from engine.refdata.reference_text import read_reference_text


def load_events(path: str | Path) -> list[IndexEvent]:
    """Events of a file, sorted by effective time (file order among equal times).

    Raises
    ------
    ReferenceDataError
        Naming the file, the line and the problem.
    """
    return [pending.event for pending in load_sourced_events(path)]


def load_sourced_events(path: str | Path) -> list[PendingEvent]:
    """``load_events`` with each event's ``FILE:LINE`` as its origin.

    Schedule these (``IndexPipeline.schedule``) and an event that fails when applied is
    reported as ``FILE:LINE: ...`` (``FailedEvent``).
    """
    source = Path(path)
    name = source.name.lower()
    if name.endswith((".jsonl", ".ndjson")):
        events = _from_jsonl(source, read_reference_text(source))
    elif name.endswith(".csv"):
        events = _from_csv(source, read_reference_text(source))
    else:
        raise ReferenceDataError(str(path), None, "events file must be .jsonl or .csv")
    return sorted(
        (PendingEvent(event, EventOrigin(f"{source}:{line}")) for line, event in events),
        key=lambda pending: pending.event.effective,
    )


def _convert(path: Path, line: int, fields: dict[str, Any]) -> IndexEvent:
    effective = fields.get("effective")
    if isinstance(effective, str):
        try:
            fields["effective"] = parse_timestamp(effective)
        except (ValueError, OverflowError) as exc:
            raise ReferenceDataError(str(path), line, f"effective: {exc}") from None
    try:
        event: IndexEvent = msgspec.convert(fields, IndexEvent, strict=False)
    except msgspec.ValidationError as exc:
        raise ReferenceDataError(str(path), line, f"invalid event: {exc}") from None
    return event


def _from_jsonl(path: Path, text: str) -> list[tuple[int, IndexEvent]]:
    events = []
    # Lines end at "\n" only: JSON strings may hold the other characters str.splitlines() takes.
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            fields = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise ReferenceDataError(str(path), line, f"not JSON: {exc}") from None
        except RecursionError:
            raise ReferenceDataError(str(path), line, "not JSON: nested too deeply") from None
        if not isinstance(fields, dict):
            raise ReferenceDataError(str(path), line, "expected a JSON object")
        events.append((line, _convert(path, line, fields)))
    return events


def _csv_rows(path: Path, text: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and ``(line, cells by column)`` rows; extra cells or a bad CSV stop the load."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        header = [name.strip() for name in next(reader, [])]
        for cells in reader:
            if len(cells) > len(header):
                raise ReferenceDataError(
                    str(path),
                    reader.line_num,
                    f"{len(cells)} cells, the header has {len(header)} columns",
                )
            if any(cell.strip() for cell in cells):
                rows.append((reader.line_num, dict(zip(header, cells, strict=False))))
    except csv.Error as exc:
        raise ReferenceDataError(str(path), reader.line_num, f"bad CSV: {exc}") from None
    return header, rows


def _from_csv(path: Path, text: str) -> list[tuple[int, IndexEvent]]:
    header, rows = _csv_rows(path, text)
    unknown = [name for name in header if name not in CSV_COLUMNS]
    if "effective" not in header or "type" not in header or unknown:
        raise ReferenceDataError(
            str(path),
            1,
            f"header needs effective,type and only columns of {','.join(CSV_COLUMNS)}"
            + (f" (unknown: {','.join(unknown[:5])[:200]})" if unknown else ""),
        )
    events = []
    for line, row in rows:
        fields: dict[str, Any] = {
            key: value.strip() for key, value in row.items() if key and value.strip()
        }
        composition = fields.pop("composition", None)
        if fields.get("type") == "review":
            if composition is None:
                raise ReferenceDataError(str(path), line, "a review row needs a composition file")
            fields["rows"] = _review_rows(path.parent / composition)
        events.append((line, _convert(path, line, fields)))
    return events


_REVIEW_COLUMNS = {"index", "security", "issued_shares", "faf", "cap_factor", "prev_close"}


def _review_rows(path: Path) -> list[ReviewRow]:
    header, rows = _csv_rows(path, read_reference_text(path))
    missing = {"index", "security", "issued_shares", "faf"} - set(header)
    if missing:
        raise ReferenceDataError(str(path), 1, f"missing columns {','.join(sorted(missing))}")
    out = []
    for line, row in rows:
        fields: dict[str, Any] = {
            ("price" if key == "prev_close" else key): value.strip()
            for key, value in row.items()
            if key in _REVIEW_COLUMNS and value.strip()
        }
        try:
            out.append(msgspec.convert(fields, ReviewRow, strict=False))
        except msgspec.ValidationError as exc:
            raise ReferenceDataError(str(path), line, f"bad row: {exc}") from None
    return out
