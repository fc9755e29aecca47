"""The control channel admits events or dead-letters them (``invalid_event``), bounded."""

from __future__ import annotations

import time

import msgspec
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import LevelColumns, TickColumns
from engine.live.codec import OutgoingMessage
from engine.live.config import ConfigError, load_config
from engine.live.control import ControlChannel, event_limits
from engine.live.kafka.fetch import FetchedRecord
from engine.live.metrics import ServiceMetrics
from engine.maintenance.event_queue import EventLimits, EventOrigin, PendingEvent
from engine.maintenance.events import AddConstituent, IndexEvent, StockSplit
from engine.pipeline.buffers import LevelBuffer
from engine.pipeline.chain import IndexPipeline
from engine.pipeline.state import EngineState, capture_state, restore_state
from engine.refdata.builtin import load_builtin_universe
from producers.simulator import MarketSimulator
from tests.support.seed import SEED

T = 1_795_138_200_000_000_000
SECOND = 10**9
WALL = T  # the wall clock of these tests
DLQ = "dlq"


class _Discard:
    def write(self, levels: LevelColumns) -> None:
        del levels


def _channel(limits: EventLimits | None = None) -> ControlChannel:
    pipeline = IndexPipeline(IndexCalculator(load_builtin_universe()), _Discard())
    return ControlChannel(pipeline, "json", limits, wall_clock=lambda: WALL)


def _records(*values: bytes | dict[str, object] | IndexEvent) -> list[FetchedRecord]:
    return [
        FetchedRecord(
            "control",
            0,
            offset,
            b"k",
            value if isinstance(value, bytes) else msgspec.json.encode(value),
        )
        for offset, value in enumerate(values, start=100)
    ]


def _headers(letter: OutgoingMessage) -> dict[str, str]:
    return {name: value.decode() for name, value in letter.headers}


def _split(effective: int = T + SECOND, security: str = "0700", **fields: object) -> StockSplit:
    return StockSplit(effective=effective, security=security, ratio=2.0, **fields)  # type: ignore[arg-type]


def _tick(channel: ControlChannel, ts: int) -> None:
    universe = channel.pipeline.calculator.universe
    security = universe.security_id("0005")
    channel.pipeline.process(
        TickColumns(
            np.array([ts], dtype=np.int64),
            np.array([security], dtype=np.int64),
            np.array([float(universe.prev_close[security])]),
        )
    )


def test_valid_events_are_scheduled_with_their_source_record() -> None:
    channel = _channel()
    records = _records(_split(), _split(T + 2 * SECOND, id="b"))
    assert channel.receive(records, DLQ) == []
    [first, second] = channel.pipeline.pending
    assert first.origin == EventOrigin(
        "control[0]@100", "control", 0, 100, b"k", records[0].value or b""
    )
    assert second.event.id == "b"


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (b'{"type":"stock_split","effective":1,"security":"0700","ratio":1e308}', "$.ratio"),
        (b"\xff\xfe", "undecodable event"),
        (b"[" * 1000 + b"]" * 1000, "invalid event: Expected `object`, got `array`"),
        (b"", "undecodable event"),
        (_split(security="NOPE"), "unknown security 'NOPE'"),
        (
            {"type": "delete_constituent", "effective": T, "index": "NOIX", "security": "0700"},
            "unknown index 'NOIX'",
        ),
        (
            {"type": "faf_change", "effective": T, "index": "NOIX", "security": "0700", "faf": 1},
            "unknown index 'NOIX'",
        ),
        (
            {
                "type": "review",
                "effective": T,
                "rows": [{"index": "NOIX", "security": "0700", "issued_shares": 1, "faf": 1}],
            },
            "unknown index 'NOIX'",
        ),
        (
            {
                "type": "replace_constituent",
                "effective": T,
                "index": "HSI",
                "old_security": "GONE",
                "security": "0700",
                "issued_shares": 1,
                "faf": 1,
            },
            "unknown security 'GONE'",
        ),
        (_split(T + 401 * 86_400 * SECOND), "more than 400 days ahead"),
    ],
)
def test_invalid_events_are_dead_lettered_with_their_source(
    message: bytes | dict[str, object] | IndexEvent, error: str
) -> None:
    channel = _channel()
    [record] = _records(message)
    [letter] = channel.receive([record], DLQ)
    headers = _headers(letter)
    assert letter.topic == DLQ and letter.key == b"k" and letter.value == record.value
    assert headers["tickindex.reason"] == "invalid_event"
    assert headers["tickindex.source"] == "control[0]@100"
    assert error in headers["tickindex.error"]
    assert len(channel.pipeline.pending) == 0


def test_an_event_introducing_a_security_makes_later_ones_on_it_valid() -> None:
    channel = _channel()
    add = AddConstituent(
        effective=T, index="HSI", security="NEWCO", issued_shares=1e9, faf=0.5, price=10.0
    )
    universe = channel.pipeline.calculator.universe
    assert channel.receive(_records(add, _split(security="NEWCO")), DLQ) == []
    grown = channel.pipeline.calculator.universe
    assert grown.security_id("NEWCO") == len(universe.securities)
    assert channel.pipeline.sequence_guard.last_seq.size == len(grown.securities)


def test_events_too_late_for_the_stream_are_refused_within_tolerance_accepted() -> None:
    channel = _channel(EventLimits(late_tolerance_ns=5 * SECOND))
    _tick(channel, T + 100 * SECOND)
    late, within = _split(T + 94 * SECOND), _split(T + 96 * SECOND)
    [letter] = channel.receive(_records(late, within), DLQ)
    assert "in the past" in _headers(letter)["tickindex.error"]
    assert channel.pipeline.pending_events == (within,)
    _tick(channel, T + 101 * SECOND)  # applies before the next tick
    assert channel.pipeline.stats.events_applied == 1


def test_duplicates_and_conflicting_ids_are_refused() -> None:
    channel = _channel()
    event = _split(id="x")
    other = _split(T + 5 * SECOND, id="x")
    letters = channel.receive(_records(event, event, other), DLQ)
    errors = [_headers(letter)["tickindex.error"] for letter in letters]
    assert ["duplicate" in errors[0], "conflicts" in errors[1]] == [True, True]
    assert channel.pipeline.pending_events == (event,)
    channel.pipeline.apply_due_events(T + 10 * SECOND)
    assert channel.receive(_records(event), DLQ) == []  # applied events no longer conflict


def test_pending_events_are_bounded_in_number_and_bytes() -> None:
    channel = _channel(EventLimits(max_pending=3))
    events = [_split(T + k * SECOND) for k in range(1, 6)]
    letters = channel.receive(_records(*events), DLQ)
    assert [_headers(letter)["tickindex.error"] for letter in letters] == [
        "too many pending events (3)"
    ] * 2
    assert [_headers(letter)["tickindex.source"] for letter in letters] == [
        "control[0]@103",
        "control[0]@104",
    ]
    assert len(channel.pipeline.pending) == 3
    small = _channel(EventLimits(max_pending_bytes=300))
    letters = small.receive(_records(*events), DLQ)
    assert letters and "pending events too large" in _headers(letters[0])["tickindex.error"]
    assert small.pipeline.events.total_bytes < 300 + 200


def test_events_failing_at_their_effective_time_are_dead_lettered_from_the_kept_record() -> None:
    channel = _channel()
    add = {"type": "add_constituent", "effective": T, "index": "HSI", "security": "0700",
           "issued_shares": 1e9, "faf": 0.5}  # fmt: skip
    records = _records(add, _split())
    assert channel.receive(records, DLQ) == []
    failed_before = len(channel.pipeline.stats.events_failed)
    _tick(channel, T + 2 * SECOND)
    [letter] = channel.failed_letters(failed_before, DLQ)
    headers = _headers(letter)
    assert headers["tickindex.reason"] == "invalid_event"
    assert headers["tickindex.source"] == "control[0]@100"
    assert "already a constituent" in headers["tickindex.error"]
    assert letter.value == records[0].value and letter.key == b"k"
    assert channel.pipeline.stats.events_applied == 1


def test_receive_registers_a_fetch_of_new_securities_at_once_keeping_levels() -> None:
    channel = _channel()
    levels = channel.pipeline.calculator.levels.copy()
    adds = [
        AddConstituent(
            effective=T + SECOND, index="HSI", security=f"N{k:05d}", issued_shares=1e9, faf=0.5
        )
        for k in range(10_000)
    ]
    started = time.perf_counter()
    assert channel.receive(_records(*adds), DLQ) == []
    elapsed = time.perf_counter() - started
    print(f"10,000 add events in one fetch: {elapsed:.3f} s")
    universe = channel.pipeline.calculator.universe
    assert universe.security_id("N09999") == len(universe.securities) - 1
    np.testing.assert_array_equal(channel.pipeline.calculator.levels, levels)


def test_checkpoint_keeps_pending_events_with_origins_and_the_clock() -> None:
    channel = _channel()
    _tick(channel, T)
    channel.receive(_records(_split(), _split(T + 2 * SECOND, security="0005")), DLQ)
    base = channel.pipeline.calculator.universe.fingerprint()
    state = capture_state(channel.pipeline, base)
    encoded = msgspec.msgpack.encode(state)
    restored = _channel()
    restore_state(restored.pipeline, msgspec.msgpack.decode(encoded, type=EngineState))
    assert restored.pipeline.pending == channel.pipeline.pending
    assert restored.pipeline.clock_ns == T
    assert restored.pipeline.events.total_bytes == channel.pipeline.events.total_bytes


def test_a_version_3_checkpoint_with_pending_events_still_restores() -> None:
    channel = _channel()
    base = channel.pipeline.calculator.universe.fingerprint()
    state = msgspec.structs.replace(
        capture_state(channel.pipeline, base), pending_events=[_split()], version=3
    )
    old = msgspec.msgpack.encode(state)
    restored = _channel()
    restore_state(restored.pipeline, msgspec.msgpack.decode(old, type=EngineState))
    assert restored.pipeline.pending == (PendingEvent(_split()),)


def test_failed_letters_of_an_event_without_origin_carry_the_event() -> None:
    channel = _channel()
    channel.pipeline.schedule([StockSplit(effective=T, security="NOPE", ratio=2.0)])
    channel.pipeline.apply_due_events(T)
    [letter] = channel.failed_letters(0, DLQ)
    assert msgspec.json.decode(letter.value)["security"] == "NOPE"


def test_config_and_metrics_of_the_limits() -> None:
    config = load_config(
        env={"TICKINDEX_MAX_PENDING_EVENTS": "5", "TICKINDEX_EVENT_HORIZON_DAYS": "10"}
    )
    limits = event_limits(config)
    assert limits.max_pending == 5 and limits.horizon_ns == 10 * 86_400 * SECOND
    assert limits.late_tolerance_ns == 60 * SECOND
    for bad in ({"max_pending_events": 0}, {"event_late_tolerance_ms": -1}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            load_config(overrides=bad)
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry, ("HSI",), version="t")
    metrics.record_control(3, 7)
    metrics.record_control(0, 6)
    assert (
        registry.get_sample_value("tickindex_dead_letters_total", {"reason": "invalid_event"}) == 3
    )
    assert registry.get_sample_value("tickindex_pending_events") == 6


def test_registering_securities_mid_stream_keeps_levels_bitwise() -> None:
    universe = load_builtin_universe()
    ticks = MarketSimulator(universe, SEED, start_ns=T).next_batch(20_000)
    first, second = ticks.slice(0, 10_000), ticks.slice(10_000, 20_000)
    plain_levels, registering_levels = LevelBuffer(), LevelBuffer()
    plain = IndexPipeline(IndexCalculator(universe), plain_levels)
    registering = IndexPipeline(IndexCalculator(universe), registering_levels)
    plain.process(first)
    registering.process(first)
    registering.register_securities([f"NEW{k}" for k in range(100)])
    np.testing.assert_array_equal(registering.calculator.levels, plain.calculator.levels)
    plain.process(second)
    registering.process(second)
    expected, got = plain_levels.batches[-1], registering_levels.batches[-1]
    np.testing.assert_array_equal(got.level, expected.level)
