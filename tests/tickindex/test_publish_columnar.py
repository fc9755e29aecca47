"""``tickindex publish`` of a Parquet tick file: every usable tick, in file order."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine.kernel.columns import TickColumns
from engine.refdata.builtin import load_builtin_universe
from producers.columnar_ticks import ColumnarTickReader
from producers.kafka_publisher import TickPublisher
from producers.pacing import StopControl
from producers.tick_readers import open_tick_file
from tickindex.cli.publish import publish_file

START_NS = 1_795_138_200_000_000_000


@dataclass
class _Stats:
    ticks: int = 0
    messages: int = 0
    bytes: int = 0


@dataclass
class _Publisher:
    """Keeps what it is given instead of sending it to Kafka."""

    sent: list[TickColumns] = field(default_factory=list)
    stats: _Stats = field(default_factory=_Stats)

    async def ready(self) -> None:
        return None

    async def publish(self, ticks: TickColumns) -> None:
        self.sent.append(ticks)
        self.stats.ticks += len(ticks)
        self.stats.messages += 1

    async def flush(self) -> None:
        return None


def test_publish_a_parquet_file(tmp_path: Path) -> None:
    universe = load_builtin_universe()
    codes = [universe.securities[k % 20] for k in range(1_000)]
    codes[10] = "ZZZZ"
    prices = np.linspace(1.0, 100.0, 1_000)
    prices[20] = -1.0
    path = tmp_path / "ticks.parquet"
    table = pa.table({"ts": START_NS + np.arange(1_000), "security": codes, "price": prices})
    pq.write_table(table, path)
    reader = open_tick_file(path, universe)
    assert isinstance(reader, ColumnarTickReader)
    publisher = _Publisher()
    report = asyncio.run(
        publish_file(reader, cast(TickPublisher, publisher), pacer=None, stop=StopControl())
    )
    sent = TickColumns.concat(publisher.sent)
    kept = np.ones(1_000, dtype=bool)
    kept[[10, 20]] = False
    assert sent.ts_event.tolist() == (START_NS + np.arange(1_000))[kept].tolist()
    assert sent.price.tolist() == prices[kept].tolist()
    assert report.ticks == 998
    assert report.read.rows == 1_000 and sum(report.read.skipped.values()) == 2
