"""The live service's analytics in tests: a seeded afternoon of ticks, settings, references.

The stream is the last twenty minutes of a trading day (the continuous session's end and the
closing auction), so it crosses interval boundaries, sample points and the session close. The
reference records are ``tickindex replay --analytics`` on the same ticks and settings.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from engine.analytics.records import AnalyticsRecord, kafka_key
from engine.calendar.sessions import TradingCalendar
from engine.kernel.columns import TickColumns
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.universe import Universe
from engine.wire import Tick, WireCodec
from producers.simulator import MarketSimulator
from tests.support.analytics_stream import FRIDAY, hkt
from tickindex.cli.main import main

SETTINGS = {
    "interval_ms": 10_000,
    "sample_ms": 60_000,
    "window": 5,
    "rules": [
        {
            "name": "hsi-up",
            "kind": "info",
            "sentence": "HSI is above its previous close",
            "when": {"type": "threshold", "series": "HSI.change", "op": ">", "value": 0.0},
        }
    ],
}
"""Analytics settings of the tests: few records, every kind of them."""

CLOSE_NS = TradingCalendar().closing_auction_end(FRIDAY)
"""The session close of the stream's day (16:10 HKT)."""


class FakeClock:
    """A wall clock (ns) the test moves."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@functools.cache
def afternoon(seed: int, rate: float = 5.0) -> tuple[Universe, TickColumns]:
    """The built-in family and seeded ticks (with volumes) from 15:50 HKT to the close."""
    universe = load_builtin_universe()
    start = hkt(FRIDAY, 15.0 + 50 / 60)
    simulator = MarketSimulator(universe, seed, start_ns=start, rate=rate)
    ticks = simulator.batch_for(CLOSE_NS - start - 1)
    assert ticks.volume is not None and int(ticks.ts_event.max()) < CLOSE_NS
    return universe, ticks


def write_settings(folder: Path) -> Path:
    """``SETTINGS`` as a JSON analytics settings file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "analytics.json"
    path.write_text(json.dumps(SETTINGS))
    return path


def write_tick_csv(path: Path, universe: Universe, ticks: TickColumns) -> None:
    """``ticks`` with their volumes as a CSV tick file (floats by ``repr``: read back exactly)."""
    assert ticks.volume is not None
    codes = universe.securities
    with path.open("w") as handle:
        handle.write("ts,security,price,volume\n")
        handle.writelines(
            f"{t},{codes[s]},{p!r},{v!r}\n"
            for t, s, p, v in zip(
                ticks.ts_event.tolist(),
                ticks.security.tolist(),
                ticks.price.tolist(),
                ticks.volume.tolist(),
                strict=True,
            )
        )


def replay_analytics(
    universe: Universe, ticks: TickColumns, settings: Path, folder: Path
) -> list[AnalyticsRecord]:
    """The records of ``tickindex replay --analytics`` on ``ticks`` (a CSV tick file)."""
    folder.mkdir(parents=True, exist_ok=True)
    tick_file, out = folder / "ticks.csv", folder / "analytics.jsonl"
    write_tick_csv(tick_file, universe, ticks)
    argv = ["replay", "--no-progress", "--ticks", str(tick_file), "--out", str(folder / "l.csv")]
    assert main([*argv, "--analytics", str(out), "--analytics-config", str(settings)]) == 0
    codec = WireCodec("json")
    return [codec.decode_analytics(line.encode()) for line in out.read_text().splitlines()]


def tick_messages(universe: Universe, ticks: TickColumns, codec: WireCodec) -> list[bytes]:
    """One ``tick`` message per tick, with its seq and volume (as ``TickPublisher`` sends)."""
    assert ticks.seq is not None and ticks.volume is not None
    columns = (ticks.security, ticks.price, ticks.ts_event, ticks.seq, ticks.volume)
    codes = universe.securities
    return [
        codec.encode(Tick(codes[s], p, t, seq=q, volume=v))
        for s, p, t, q, v in zip(*(c.tolist() for c in columns), strict=True)
    ]


def record_identity(record: AnalyticsRecord) -> tuple[bytes, int, str]:
    """What identifies a record across an at-least-once restart: key, boundary, type."""
    tag = record.__struct_config__.tag
    assert isinstance(tag, str)
    return kafka_key(record), record.ts_event, tag
