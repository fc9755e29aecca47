"""The OHLC bars file: no ``nan`` cell, prices read back bitwise."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from consumers.barsfile import BarsFileWriter
from engine.calendar.ohlc import NO_TS, OhlcBars

DAY = 20_458  # 2026-01-05


def _bars() -> OhlcBars:
    nan = np.nan
    return OhlcBars(
        day=np.full(3, DAY, dtype=np.int64),
        index=np.arange(3, dtype=np.int32),
        open=np.array([100.1, nan, nan]),
        high=np.array([0.1 + 0.2, nan, nan]),
        low=np.array([99.5, nan, nan]),
        close=np.array([4049.9999999999995, 3020.0, nan]),
        count=np.array([5, 0, 0], dtype=np.int64),
        close_ts=np.array([1, NO_TS, NO_TS], dtype=np.int64),
    )


def test_untraded_indices_have_empty_cells_and_prices_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    with BarsFileWriter(path, ("TRADED", "CARRIED", "UNKNOWN")) as writer:
        writer.write_bars(_bars())
    text = path.read_text()
    assert "nan" not in text.lower()
    rows = {r["index"]: r for r in csv.DictReader(text.splitlines())}
    traded, carried, unknown = rows["TRADED"], rows["CARRIED"], rows["UNKNOWN"]
    assert traded["date"] == "2026-01-05" and traded["count"] == "5"
    assert float(traded["high"]) == 0.1 + 0.2 and float(traded["close"]) == 4049.9999999999995
    assert [carried[c] for c in ("open", "high", "low", "close", "count")] == [
        "",
        "",
        "",
        "3020.0",
        "0",
    ]
    assert [unknown[c] for c in ("open", "high", "low", "close")] == ["", "", "", ""]
