"""Tick file batches carry the file line of every tick (``origin``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.refdata.builtin import load_builtin_universe
from producers.tickfile import TickFileReader


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_every_tick_carries_its_line(tmp_path: Path, suffix: str) -> None:
    if suffix == ".csv":
        rows = ["ts,security,price", *(f"{i},0700,{400 + i}" for i in range(1, 6))]
        rows[3] = "3,NOPE,1.0"  # line 4 skipped
        rows.insert(5, "")  # a blank line 6
    else:
        rows = [f'{{"ts":{i},"security":"0700","price":{400 + i}}}' for i in range(1, 6)]
        rows[2] = "not json"  # line 3 skipped
    path = tmp_path / f"ticks{suffix}"
    path.write_text("\n".join(rows) + "\n")
    reader = TickFileReader(path, load_builtin_universe(), chunk_bytes=40)
    batches = list(reader)
    assert all(batch.origin is not None for batch in batches)
    origins = [int(n) for batch in batches if batch.origin is not None for n in batch.origin]
    expected = [2, 3, 5, 7] if suffix == ".csv" else [1, 2, 4, 5]
    assert origins == expected
    assert reader.stats.rows == 5 and reader.stats.used == 4
