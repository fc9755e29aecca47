"""Tick file reading: formats, timestamps, bad rows skipped and counted with line numbers."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from engine.core.errors import TickInputError
from engine.core.timestamps import BAD_TIMESTAMP, parse_timestamp, parse_timestamps
from engine.kernel.columns import TickColumns
from engine.kernel.screening import RejectReason
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.universe import Universe
from producers.chunked_file import file_format
from producers.tickfile import TickFileReader


@pytest.fixture(scope="module")
def universe() -> Universe:
    return load_builtin_universe()


def test_iso_timestamps_with_offsets_and_nanoseconds() -> None:
    assert parse_timestamp("2026-11-20T09:30:00+08:00") == 1_795_138_200_000_000_000
    assert parse_timestamp("2026-11-20T01:30:00Z") == 1_795_138_200_000_000_000
    assert parse_timestamp("2026-11-20T01:30:00.000000123Z") == 1_795_138_200_000_000_123
    assert parse_timestamp("2026-11-20T01:30:00.5+00:00") == 1_795_138_200_500_000_000
    assert parse_timestamp(" 1795138200000000000 ") == 1_795_138_200_000_000_000


def test_timestamp_without_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_timestamp("2026-11-20T09:30:00")


def test_vectorised_timestamps_mark_bad_values() -> None:
    out = parse_timestamps(["5", "2026-11-20T01:30:00Z", "yesterday", "5"])
    assert out.tolist() == [5, 1_795_138_200_000_000_000, BAD_TIMESTAMP, 5]


def test_file_format_from_name() -> None:
    assert file_format("a/ticks.CSV", "tick") == "csv"
    assert file_format("ticks.jsonl.gz", "tick") == "jsonl"
    with pytest.raises(TickInputError, match="unknown tick file type"):
        file_format("ticks.parquet", "tick")


def _read(
    path: Path, universe: Universe
) -> tuple[TickFileReader, list[int], list[str], list[float]]:
    reader = TickFileReader(path, universe, chunk_bytes=64)
    batches = list(reader)
    ts = np.concatenate([b.ts_event for b in batches]).tolist()
    codes = [universe.securities[s] if s >= 0 else "?" for b in batches for s in b.security]
    prices = np.concatenate([b.price for b in batches]).tolist()
    return reader, ts, codes, prices


def test_csv_any_column_order_extra_columns_and_bad_rows(
    tmp_path: Path, universe: Universe
) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text(
        "volume,price,security,ts,seq\n"
        "100,400.2,0700,1000,1\n"
        "5,abc,0005,1001,2\n"
        "5,60.1,NOPE,1002,3\n"
        "oops\n"
        "7,61.0,0005,2026-11-20T01:30:00Z,4\n"
        "7,61.0,0005,half past nine,5\n"
        "\n"
    )
    reader, ts, codes, prices = _read(path, universe)
    assert ts == [1000, 1_795_138_200_000_000_000]
    assert codes == ["0700", "0005"]
    assert prices == [400.2, 61.0]
    assert reader.stats.rows == 6
    assert reader.stats.used == 2
    assert reader.stats.skipped == {
        RejectReason.UNDECODABLE: 1,
        RejectReason.BAD_TIMESTAMP: 1,
        RejectReason.NON_FINITE_PRICE: 1,
        RejectReason.UNKNOWN_SECURITY: 1,
    }
    assert reader.stats.unknown_codes == {"NOPE": 1}
    assert [e.split(": ")[0:2] for e in reader.stats.log.summary()] == [
        [f"{path}:3", "non_finite_price"],
        [f"{path}:4", "unknown_security"],
        [f"{path}:5", "undecodable"],
        [f"{path}:7", "bad_timestamp"],
    ]


def test_csv_without_required_columns_is_a_clear_error(tmp_path: Path, universe: Universe) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text("time,code,px\n1,0700,1.0\n")
    with pytest.raises(TickInputError, match=r"ticks.csv:1: header lacks ts,security,price"):
        list(TickFileReader(path, universe))


def test_missing_file_is_a_clear_error(tmp_path: Path, universe: Universe) -> None:
    with pytest.raises(TickInputError, match="cannot open"):
        TickFileReader(tmp_path / "none.csv", universe)


def test_jsonl_gzipped_with_a_broken_line(tmp_path: Path, universe: Universe) -> None:
    path = tmp_path / "ticks.jsonl.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(
            b'{"ts": 1, "security": "0700", "price": 400.0, "volume": 3}\n'
            b'{"ts": "2026-11-20T09:30:00+08:00", "security": "0005", "price": 61.5}\n'
            b'{"ts": 3, "security": "0005"\n'
            b'{"ts": 4, "security": "0005", "price": 62}\n'
        )
    reader, ts, codes, prices = _read(path, universe)
    assert ts == [1, 1_795_138_200_000_000_000, 4]
    assert codes == ["0700", "0005", "0005"]
    assert prices == [400.0, 61.5, 62.0]
    assert reader.stats.skipped == {RejectReason.UNDECODABLE: 1}
    assert reader.stats.log.summary()[0].startswith(f"{path}:3: undecodable")


def _volumes(reader: TickFileReader) -> list[float] | None:
    volume = TickColumns.concat(list(reader)).volume
    return None if volume is None else [float(v) for v in volume]


def test_csv_volume_column_is_read_and_screened(tmp_path: Path, universe: Universe) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text(
        "ts,security,price,volume\n"
        "1,0700,400.2,1500\n"
        "2,0005,61.0,\n"
        "3,0005,61.1,-200\n"
        "4,NOPE,61.1,abc\n"
        "5,0700,400.4,lots\n"
        "6,0700,400.6, 2e13\n"
        "7,0005,61.2,inf\n"
        "8,0005,61.3, 300 \n"
    )
    reader = TickFileReader(path, universe, chunk_bytes=64)
    volumes = _volumes(reader)
    assert volumes is not None
    np.testing.assert_array_equal(volumes, [1500.0, np.nan, np.nan, np.nan, np.nan, np.nan, 300.0])
    assert reader.stats.used == 7 and reader.stats.skipped == {RejectReason.UNKNOWN_SECURITY: 1}
    assert reader.stats.bad_volumes == 4  # the blank cell is no volume, the rejected row is out


def test_files_without_volume_give_no_volume_column(tmp_path: Path, universe: Universe) -> None:
    csv_path = tmp_path / "ticks.csv"
    csv_path.write_text("ts,security,price\n1,0700,400.2\n2,0005,61.0\n")
    blank_path = tmp_path / "blank.csv"
    blank_path.write_text("ts,security,price,volume\n1,0700,400.2,\n2,0005,61.0, \n")
    jsonl_path = tmp_path / "ticks.jsonl"
    jsonl_path.write_text('{"ts": 1, "security": "0700", "price": 400.0}\n')
    for path in (csv_path, blank_path, jsonl_path):
        reader = TickFileReader(path, universe)
        assert _volumes(reader) is None and reader.stats.bad_volumes == 0


def test_jsonl_volume_numbers_text_and_missing(tmp_path: Path, universe: Universe) -> None:
    path = tmp_path / "ticks.jsonl.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(
            b'{"ts": 1, "security": "0700", "price": 400.0, "volume": 3000}\n'
            b'{"ts": 2, "security": "0005", "price": 61.5}\n'
            b'{"ts": 3, "security": "0005", "price": 61.6, "volume": "1200"}\n'
            b'{"ts": 4, "security": "0005", "price": 61.7, "volume": -1}\n'
            b'{"ts": 5, "security": "0005", "price": 61.8, "volume": null}\n'
        )
    reader = TickFileReader(path, universe)
    volumes = _volumes(reader)
    assert volumes is not None
    np.testing.assert_array_equal(volumes, [3000.0, np.nan, 1200.0, np.nan, np.nan])
    assert reader.stats.bad_volumes == 1 and reader.stats.used == 5
