"""Events files: JSON Lines (one tagged event per line) or CSV (columns ``events.CSV_COLUMNS``).

In CSV, empty cells are absent fields and a ``review`` row names a composition file (the core
format, ``prev_close`` read as the reference price of new constituents) relative to the events
file. ``effective`` is integer nanoseconds or ISO-8601 with offset in both formats.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import msgspec

from engine.errors import ReferenceDataError
from engine.events import CSV_COLUMNS, IndexEvent, Review, ReviewRow
from engine.timestamps import parse_timestamp


def load_events(path: str | Path) -> list[IndexEvent]:
    """Events of a file, sorted by effective time (file order among equal times).

    Raises
    ------
    ReferenceDataError
        Naming the file, the line and the problem.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ReferenceDataError(str(path), None, f"cannot open: {exc.strerror}") from exc
    name = source.name.lower()
    if name.endswith((".jsonl", ".ndjson")):
        events = _from_jsonl(source, text)
    elif name.endswith(".csv"):
        events = _from_csv(source, text)
    else:
        raise ReferenceDataError(str(path), None, "events file must be .jsonl or .csv")
    return sorted(events, key=lambda event: event.effective)


def _convert(path: Path, line: int, fields: dict[str, Any]) -> IndexEvent:
    effective = fields.get("effective")
    if isinstance(effective, str):
        try:
            fields["effective"] = parse_timestamp(effective)
        except ValueError as exc:
            raise ReferenceDataError(str(path), line, f"effective: {exc}") from None
    try:
        event: IndexEvent = msgspec.convert(fields, IndexEvent, strict=False)
    except msgspec.ValidationError as exc:
        raise ReferenceDataError(str(path), line, f"invalid event: {exc}") from None
    return event


def _from_jsonl(path: Path, text: str) -> list[IndexEvent]:
    events = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            fields = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise ReferenceDataError(str(path), line, f"not JSON: {exc}") from None
        if not isinstance(fields, dict):
            raise ReferenceDataError(str(path), line, "expected a JSON object")
        events.append(_convert(path, line, fields))
    return events


def _from_csv(path: Path, text: str) -> list[IndexEvent]:
    reader = csv.DictReader(text.splitlines())
    header = [name.strip() for name in reader.fieldnames or []]
    unknown = [name for name in header if name not in CSV_COLUMNS]
    if "effective" not in header or "type" not in header or unknown:
        raise ReferenceDataError(
            str(path),
            1,
            f"header needs effective,type and only columns of {','.join(CSV_COLUMNS)}"
            + (f" (unknown: {','.join(unknown)})" if unknown else ""),
        )
    events = []
    for row in reader:
        line = reader.line_num
        fields: dict[str, Any] = {
            key.strip(): value.strip()
            for key, value in row.items()
            if key and value and value.strip()
        }
        composition = fields.pop("composition", None)
        if fields.get("type") == "review":
            if composition is None:
                raise ReferenceDataError(str(path), line, "a review row needs a composition file")
            fields["rows"] = _review_rows(path.parent / composition)
        events.append(_convert(path, line, fields))
    return events


def _review_rows(path: Path) -> list[ReviewRow]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ReferenceDataError(str(path), None, f"cannot open: {exc.strerror}") from exc
    rows = []
    reader = csv.DictReader(text.splitlines())
    for row in reader:
        try:
            rows.append(
                ReviewRow(
                    index=row["index"].strip(),
                    security=row["security"].strip(),
                    issued_shares=float(row["issued_shares"]),
                    faf=float(row["faf"]),
                    cap_factor=float(row["cap_factor"]) if row.get("cap_factor") else None,
                    price=float(row["prev_close"]) if row.get("prev_close") else None,
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ReferenceDataError(str(path), reader.line_num, f"bad row: {exc}") from None
    return rows


def review_from_files(effective: int, composition: str | Path) -> Review:
    """A review event from a composition file (for operators publishing one)."""
    return Review(effective=effective, rows=_review_rows(Path(composition)))
