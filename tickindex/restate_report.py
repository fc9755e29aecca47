"""Restatement input and output: published level files in, a table and CSV/JSON files out."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from consumers.levelfile import CSV_HEADER, LevelRecord, open_output_file
from engine.calendar.sessions import HKT_OFFSET_NS
from engine.core.errors import InputFileError
from engine.core.file_formats import columnar_format
from tickindex.coded_levels import CodedLevels
from tickindex.levels import Levels
from tickindex.restate_diff import IndexDiff, LevelPoint
from tickindex.restating import Restatement
from tickindex.what_if import WeightChange

__all__ = [
    "diff_rows",
    "hkt",
    "read_level_file",
    "table_lines",
    "weight_lines",
    "write_diff",
    "write_weight_changes",
]


def read_level_file(path: str) -> CodedLevels:
    """A level file as ``tickindex replay`` writes it: CSV ``ts,index,level,seq,security`` or
    JSON Lines with those keys, optionally gzipped; or Parquet or Arrow IPC with those columns
    (``tickindex.columnar_level_file``; a bad level is then named by ``FILE:ROW``).

    A well-formed CSV file is parsed by Arrow's CSV reader; only a file with a problem is read
    again row by row, to name the line.

    Raises
    ------
    InputFileError
        When the file is missing or unreadable, or a row is not a level (``FILE:LINE: ...``).
    """
    columnar = columnar_format(path)
    first_line: int | None = 1
    if columnar is not None:
        from tickindex.columnar_level_file import read_columnar_levels  # noqa: PLC0415

        levels = read_columnar_levels(path, columnar)
    else:
        levels, first_line = _text_levels(path)
    bad = np.flatnonzero(~(np.isfinite(levels.level) & (levels.level > 0)))
    if bad.size:
        line = None if first_line is None else int(bad[0]) + first_line
        problem = f"level must be positive and finite: {levels.level[bad[0]]}"
        raise InputFileError(path, line, problem)
    return levels


def _text_levels(path: str) -> tuple[CodedLevels, int | None]:
    """The rows of a CSV or JSON Lines level file, and the line of its first row (None for
    JSON Lines, whose blank lines make rows and lines differ). A well-formed CSV file goes
    through Arrow's CSV reader; only a file with a problem is read row by row, to name the
    line."""
    if path.lower().removesuffix(".gz").endswith((".jsonl", ".ndjson")):
        return CodedLevels.from_levels(_from_records(_jsonl_records(path, _text(path)))), None
    _check_header(path)
    from tickindex.columnar_level_file import read_csv_levels  # noqa: PLC0415

    levels = read_csv_levels(path)
    if levels is None:
        levels = CodedLevels.from_levels(_from_records(_csv_records(path, _text(path))))
    return levels, 2


def _check_header(path: str) -> None:
    try:
        with gzip.open(path) if path.lower().endswith(".gz") else open(path, "rb") as handle:
            first = handle.readline(len(CSV_HEADER) + 3).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputFileError(path, None, f"cannot read the level file: {problem}") from None
    if first.rstrip("\r\n") != CSV_HEADER:
        raise InputFileError(path, 1, f"the header must be {CSV_HEADER}")


def _text(path: str) -> str:
    try:
        raw = Path(path).read_bytes()
        return (gzip.decompress(raw) if path.lower().endswith(".gz") else raw).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputFileError(path, None, f"cannot read the level file: {problem}") from None


def _from_records(records: Iterator[LevelRecord]) -> Levels:
    rows = list(records)
    return Levels(
        ts_event=np.array([r.ts for r in rows], dtype=np.int64),
        index=np.array([r.index for r in rows], dtype=np.str_),
        level=np.array([r.level for r in rows], dtype=np.float64),
        seq=np.array([r.seq for r in rows], dtype=np.int64),
        security=np.array([r.security for r in rows], dtype=np.str_),
    )


def _jsonl_records(path: str, text: str) -> Iterator[LevelRecord]:
    decoder = msgspec.json.Decoder(LevelRecord)
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                yield decoder.decode(line)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                raise InputFileError(path, number, f"not a level: {exc}") from None


def _csv_records(path: str, text: str) -> Iterator[LevelRecord]:
    rows = csv.reader(io.StringIO(text))
    next(rows, None)  # the header, checked already
    for number, row in enumerate(rows, start=2):
        try:
            ts, code, level, seq, security = row
            yield LevelRecord(int(ts), code, float(level), int(seq), security)
        except ValueError:
            raise InputFileError(path, number, f"not a level row: {','.join(row)}") from None


DIFF_COLUMNS = (
    "index",
    "published_rows",
    "corrected_rows",
    "matched_rows",
    "differing_rows",
    "first_diff_ts",
    "first_diff_seq",
    "first_diff_security",
    "first_diff_published",
    "first_diff_corrected",
    "max_abs_diff",
    "max_abs_ts",
    "max_abs_seq",
    "max_rel_diff",
    "max_rel_ts",
    "max_rel_seq",
    "divisor_before",
    "divisor_after",
    "close_published",
    "close_corrected",
    "close_diff",
)


def diff_rows(restatement: Restatement) -> list[dict[str, Any]]:
    """One dict per index, keys ``DIFF_COLUMNS`` (None where there is nothing to say)."""
    return [_diff_row(diff) for diff in restatement.indices]


def _diff_row(diff: IndexDiff) -> dict[str, Any]:
    def at(point: LevelPoint | None, *fields: str) -> list[Any]:
        return [None if point is None else getattr(point, name) for name in fields]

    first = at(diff.first, "ts_event", "seq", "security", "published", "corrected")
    max_abs = at(diff.max_abs, "abs_diff", "ts_event", "seq")
    max_rel = at(diff.max_rel, "rel_diff", "ts_event", "seq")
    close_diff = diff.close_corrected - diff.close_published
    values = [
        diff.index,
        diff.published_rows,
        diff.corrected_rows,
        diff.matched,
        diff.differing,
        *first,
        *max_abs,
        *max_rel,
        diff.divisor_before,
        diff.divisor_after,
        diff.close_published,
        diff.close_corrected,
        close_diff,
    ]
    return {
        column: None if isinstance(value, float) and math.isnan(value) else value
        for column, value in zip(DIFF_COLUMNS, values, strict=True)
    }


def write_diff(
    path: str, restatement: Restatement, weights: Sequence[WeightChange] | None = None
) -> None:
    """Write the per-index diff: JSON (``.json``: tolerance, divisor source, indices and
    weight changes) or CSV (``DIFF_COLUMNS``, full float precision, empty for none)."""
    rows = diff_rows(restatement)
    with open_output_file(path, "w") as handle:
        if path.lower().removesuffix(".gz").endswith(".json"):
            document: dict[str, Any] = {
                "tolerance": restatement.tolerance,
                "divisor_before_source": restatement.divisor_source,
                "original_reproduces_published": restatement.original_reproduces,
                "indices": rows,
            }
            if weights is not None:
                document["weight_changes"] = [_weight_row(change) for change in weights]
            json.dump(document, handle, indent=1)
            handle.write("\n")
            return
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(DIFF_COLUMNS)
        writer.writerows([_cell(row[column]) for column in DIFF_COLUMNS] for row in rows)


def write_weight_changes(path: str, weights: Sequence[WeightChange]) -> None:
    """Every weight change as CSV ``index,security,weight_before,weight_after,change``."""
    with open_output_file(path, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["index", "security", "weight_before", "weight_after", "change"])
        writer.writerows(
            [c.index, c.security, repr(c.before), repr(c.after), repr(c.change)] for c in weights
        )


def _weight_row(change: WeightChange) -> dict[str, Any]:
    return {
        "index": change.index,
        "security": change.security,
        "weight_before": change.before,
        "weight_after": change.after,
        "change": change.change,
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def table_lines(restatement: Restatement) -> list[str]:
    """The human table: per index the first differing tick, the largest differences, the
    divisors and the close (levels to 6 decimals, differences in 3 significant digits)."""
    header = (
        f"{'index':<10} {'first difference (HKT #seq security)':<46} {'max abs':>10} "
        f"{'max rel':>10} {'divisor before -> after':>37} {'close published -> corrected':>31}"
    )
    lines = [header]
    for diff in restatement.indices:
        first = (
            f"{hkt(diff.first.ts_event)} #{diff.first.seq} {diff.first.security}"
            if diff.first is not None
            else "none"
        )
        max_abs = f"{diff.max_abs.abs_diff:.3g}" if diff.max_abs is not None else "-"
        max_rel = f"{diff.max_rel.rel_diff:.3g}" if diff.max_rel is not None else "-"
        divisors = f"{diff.divisor_before:.10g} -> {diff.divisor_after:.10g}"
        close = f"{diff.close_published:.6f} -> {diff.close_corrected:.6f}"
        lines.append(
            f"{diff.index:<10} {first:<46} {max_abs:>10} {max_rel:>10} {divisors:>37} {close:>31}"
        )
    count = len(restatement.differing)
    lines.append(
        f"{count} of {len(restatement.indices)} indices differ beyond a relative "
        f"{restatement.tolerance:g}; divisor before: {restatement.divisor_source}"
    )
    if restatement.original_reproduces is not None:
        verdict = "reproduces" if restatement.original_reproduces else "does NOT reproduce"
        lines.append(f"the original replay {verdict} the published levels")
    return lines


def hkt(ts_ns: int) -> str:
    """``ts_ns`` as Hong Kong date and time to the nanosecond, e.g. ``2026-11-20 09:30:00.5``
    is ``2026-11-20 09:30:00.500000000``."""
    seconds, nanoseconds = divmod(ts_ns + HKT_OFFSET_NS, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{nanoseconds:09d}"


def weight_lines(weights: Sequence[WeightChange], top: int) -> list[str]:
    """The ``top`` largest weight changes of each index, in percent of the index."""
    lines = [f"{'index':<10} {'security':<12} {'weight before':>14} {'after':>10} {'change':>10}"]
    shown: dict[str, int] = {}
    for change in weights:
        if shown.get(change.index, 0) >= top:
            continue
        shown[change.index] = shown.get(change.index, 0) + 1
        lines.append(
            f"{change.index:<10} {change.security:<12} {change.before:>13.4%} "
            f"{change.after:>10.4%} {change.change:>+10.4%}"
        )
    if not weights:
        lines.append("no constituent weight changes")
    return lines
