"""Poison control events among valid ones: the service goes on, each is dead-lettered and counted.

Ticks before and after the control events; the valid events move divisors exactly as ``replay
--events`` with only them, every poison event is on the dead-letter topic (reason
``invalid_event``, naming its control record), the counter matches, no level is non-finite.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import msgspec
import pytest

from engine.kernel.columns import TickColumns
from engine.live.kafka.topics import ensure_topics
from engine.maintenance.events import IndexEvent, RightsIssue, SharesChange, StockSplit
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.universe import Universe
from producers.simulator import MarketSimulator
from tests.support.live import (
    START_NS,
    InProcessService,
    LevelRow,
    LiveTopics,
    TopicReader,
    assert_same_levels,
    publish_ticks,
    read_levels,
    send_raw,
    wait_until,
)
from tests.support.seed import SEED
from tickindex.cli.main import main

SECOND = 10**9
DAY = 86_400 * SECOND


def _json(event: object) -> bytes:
    return msgspec.json.encode(event)


VALID: list[IndexEvent] = [
    StockSplit(effective=START_NS + 2_500_000_000, security="0700", ratio=2.0),
    RightsIssue(
        effective=START_NS + 3_000_000_000,
        security="0005",
        new_shares=1,
        per_held=4,
        subscription_price=50.0,
    ),
]
# Admitted, never effective during the test: they fill the queue (max_pending_events=5).
FUTURE: list[IndexEvent] = [
    SharesChange(effective=START_NS + 10 * DAY, security="1299", issued_shares=1.1e10),
    SharesChange(effective=START_NS + 11 * DAY, security="1299", issued_shares=1.2e10),
]


def _poison() -> list[tuple[bytes, str]]:
    """(message, words of its dead letter's error) in sending order, before the queue fills."""
    split = {"type": "stock_split", "effective": START_NS + 3 * SECOND, "security": "0700"}
    return [
        (_json(split | {"ratio": 1e308}), "$.ratio"),
        (
            _json(
                {
                    "type": "rights_issue",
                    "effective": START_NS + 3 * SECOND,
                    "security": "0005",
                    "new_shares": 1e300,
                    "per_held": 1,
                    "subscription_price": 1e308,
                }
            ),
            "$.new_shares",
        ),
        (
            _json(
                {
                    "type": "delete_constituent",
                    "effective": START_NS + 3 * SECOND,
                    "index": "NOIX",
                    "security": "0700",
                }
            ),
            "unknown index 'NOIX'",
        ),
        (_json(split | {"security": "NOPE", "ratio": 2}), "unknown security 'NOPE'"),
        (_json(split | {"effective": START_NS, "ratio": 2}), "in the past"),
        (_json(split | {"effective": 2**63, "ratio": 2}), "$.effective"),
        (_json(split | {"effective": START_NS + 500 * DAY, "ratio": 2}), "days ahead"),
        (b'{"type":"stock_split",' + b"[" * 1000, "undecodable event"),
        # In range and admitted, refused when applied: the dividend is above the price.
        (
            _json(
                {
                    "type": "special_dividend",
                    "effective": START_NS + 3_500_000_000,
                    "security": "0027",
                    "amount": 1e6,
                }
            ),
            "amount must be below the price",
        ),
    ]


def _ticks(universe: Universe) -> TickColumns:
    return MarketSimulator(universe, SEED, start_ns=START_NS, rate=2000).batch_for(4 * SECOND)


def _replay(universe: Universe, ticks: TickColumns, folder: Path) -> list[LevelRow]:
    """``tickindex replay --events`` with only the valid events."""
    tick_file, level_file = folder / "ticks.csv", folder / "levels.csv"
    events_file = folder / "events.jsonl"
    events_file.write_bytes(b"".join(_json(event) + b"\n" for event in VALID))
    with tick_file.open("w") as handle:
        handle.write("ts,security,price\n")
        handle.writelines(
            f"{t},{universe.securities[s]},{p!r}\n"
            for t, s, p in zip(
                ticks.ts_event.tolist(), ticks.security.tolist(), ticks.price.tolist(), strict=True
            )
        )
    argv = ["replay", "--ticks", str(tick_file), "--out", str(level_file), "--no-progress"]
    assert main([*argv, "--events", str(events_file)]) == 0
    with level_file.open() as handle:
        return [
            LevelRow(r["index"], int(r["seq"]), int(r["ts"]), float(r["level"]))
            for r in csv.DictReader(handle)
        ]


@pytest.mark.kafka
@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
async def test_poison_control_events_are_dead_lettered_and_levels_equal_replay(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path, delivery: str
) -> None:
    print(f"seed {SEED}")
    universe = load_builtin_universe()
    ticks = _ticks(universe)
    cut = int((ticks.ts_event < START_NS + 2 * SECOND).sum())
    before, after = ticks.slice(0, cut), ticks.slice(cut, len(ticks))
    config = topics.config(
        kafka_bootstrap,
        delivery=delivery,
        max_pending_events=5,
        event_late_tolerance_ms=500,
        max_batch_ticks=200,
    )
    await ensure_topics(config)
    await publish_ticks(kafka_bootstrap, topics.tick, universe, before)
    poison = _poison()
    too_many = _json(SharesChange(effective=START_NS + 12 * DAY, security="1299", issued_shares=1))
    stream = [
        *(_json(event) for event in VALID[:1]),
        *(message for message, _ in poison),
        *(_json(event) for event in [*VALID[1:], *FUTURE]),
        too_many,
    ]
    live = InProcessService(config, universe)
    async with live.running() as service:
        await live.wait_consumed(len(before))
        offsets = await send_raw(kafka_bootstrap, topics.control, [(b"c", v) for v in stream])

        async def received() -> bool:
            refused = live.sample("tickindex_dead_letters_total", reason="invalid_event")
            return refused + len(service.pipeline.events) == len(stream)

        await wait_until(received, "every control event admitted or refused")
        assert live.sample("tickindex_pending_events") == 5
        await publish_ticks(kafka_bootstrap, topics.tick, universe, after)
        await live.wait_consumed(len(ticks))
        assert service.ready.is_set() and not service.drained.is_set()
    async with TopicReader(kafka_bootstrap, topics.dead_letter) as reader:
        letters = await reader.read()
    got = await read_levels(kafka_bootstrap, topics.level)

    by_offset = dict(zip(stream, offsets, strict=True))
    expected = {f"{topics.control}[0]@{by_offset[message]}": words for message, words in poison}
    expected[f"{topics.control}[0]@{by_offset[too_many]}"] = "too many pending events (5)"
    assert len(letters) == len(expected)
    for letter in letters:
        headers = {name: value.decode() for name, value in letter.headers}
        assert headers["tickindex.reason"] == "invalid_event"
        source = headers["tickindex.source"]
        assert expected[source] in headers["tickindex.error"], (source, headers)
        assert letter.value == stream[offsets.index(int(source.rsplit("@", 1)[1]))]
    assert {
        h.decode() for letter in letters for n, h in letter.headers if n == "tickindex.source"
    } == set(expected)
    assert live.sample("tickindex_dead_letters_total", reason="invalid_event") == len(expected)
    assert service.pipeline.stats.events_applied == len(VALID)
    assert all(math.isfinite(row.level) and row.level > 0 for row in got)
    assert_same_levels(got, _replay(universe, ticks, tmp_path), "live vs replay of valid events")
