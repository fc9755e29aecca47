"""Level files read back bitwise: the shortest round-trip repr of every level."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from consumers.levelfile import LevelFileWriter
from engine.kernel.columns import LevelColumns
from engine.refdata.builtin import load_builtin_universe

AWKWARD = [
    0.1 + 0.2,
    37100.00000000001,
    4049.9999999999995,
    25800.0,
    5e-324,
    1.7976931348623157e308,
]


def _levels(seed: int) -> LevelColumns:
    rng = np.random.default_rng(seed)
    n = 2_000
    level = np.concatenate([AWKWARD, rng.uniform(1.0, 100_000.0, n - len(AWKWARD))])
    level[len(AWKWARD) :: 3] = np.nextafter(level[len(AWKWARD) :: 3], np.inf)
    return LevelColumns(
        ts_event=np.arange(n, dtype=np.int64) + 1_767_576_600_000_000_000,
        index=(np.arange(n) % 3).astype(np.int32),
        level=level,
        seq=np.arange(n, dtype=np.int64),
        security=(np.arange(n) % 5).astype(np.int64),
    )


def _read(path: Path) -> list[float]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        if ".jsonl" in path.name:
            return [json.loads(line)["level"] for line in handle]
        return [float(row["level"]) for row in csv.DictReader(handle)]


@pytest.mark.parametrize("name", ["levels.csv", "levels.jsonl", "levels.csv.gz"])
def test_levels_read_back_bitwise_in_shortest_form(tmp_path: Path, name: str) -> None:
    levels = _levels(7)
    path = tmp_path / name
    with LevelFileWriter(path, load_builtin_universe()) as writer:
        writer.write(levels.take(slice(0, 700)))
        writer.write(levels.take(slice(700, len(levels))))
    back = np.array(_read(path))
    assert back.view(np.int64).tolist() == levels.level.view(np.int64).tolist()
    if name == "levels.csv":
        cells = [row[2] for row in csv.reader(path.read_text().splitlines()[1:])]
        assert cells[:4] == [
            "0.30000000000000004",
            "37100.00000000001",
            "4049.9999999999995",
            "25800.0",
        ]
        assert cells == [repr(value) for value in levels.level.tolist()]
