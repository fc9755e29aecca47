"""``FetchWork``: the engine of one fetch; its state restored into a fresh one goes on the same.

Exactly-once recovery (``IndexService._rebuild_engine``) builds a fresh ``FetchWork`` and restores
the last committed state into it; everything else of the service is kept.
"""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from engine.kernel.columns import LevelColumns
from engine.live.codec import Record
from engine.live.config import ServiceConfig
from engine.live.fetch_work import FetchWork
from engine.live.metrics import ServiceMetrics
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.universe import Universe
from engine.wire import WireCodec
from tests.support.live import InProcessService, simulate
from tests.support.poison import batches, singles
from tests.support.records import FakeRecord

CONFIG = ServiceConfig(max_batch_ticks=64)


def _fetches(universe: Universe) -> tuple[dict[str, list[Record]], dict[str, list[Record]]]:
    """Two fetches of tick records; the second with an undecodable one (a dead letter)."""
    messages = singles(universe, simulate(universe, 400, seed=11), WireCodec(CONFIG.wire_format))
    records = _records(messages)
    records.insert(300, FakeRecord(CONFIG.tick_topic, 0, 10_000, None, b"\xff{not json"))
    return {CONFIG.tick_topic: records[:200]}, {CONFIG.tick_topic: records[200:]}


def _records(messages: list[tuple[bytes | None, bytes]]) -> list[Record]:
    return [
        FakeRecord(CONFIG.tick_topic, 0, offset, key, value)
        for offset, (key, value) in enumerate(messages)
    ]


def _work(universe: Universe) -> FetchWork:
    metrics = ServiceMetrics(CollectorRegistry(), universe.index_codes, version="test")
    return FetchWork(CONFIG, universe, metrics)


def _columns(levels: LevelColumns) -> list[list[float]]:
    return [c.tolist() for c in (levels.ts_event, levels.index, levels.level, levels.seq)]


def test_a_fresh_work_restored_from_a_capture_computes_the_same() -> None:
    universe = load_builtin_universe()
    first, second = _fetches(universe)
    running = _work(universe)
    levels, _ = running.process(first)
    assert len(levels) > 0
    state = running.capture({f"{CONFIG.tick_topic}:0": 200}, 1)

    restored = _work(universe)
    assert restored.restore(state), "no currency variants: nothing missing"
    assert restored.capture(state.offsets, 1) == state

    expected_levels, expected_messages = running.process(second)
    got_levels, got_messages = restored.process(second)
    assert _columns(got_levels) == _columns(expected_levels)
    assert len(got_levels) > 0
    assert [m.topic for m in got_messages] == [m.topic for m in expected_messages]
    assert [m.topic for m in got_messages] == [CONFIG.dead_letter_topic]


def test_messages_to_fetch_follow_the_ticks_per_message() -> None:
    universe = load_builtin_universe()
    codec, work = WireCodec(CONFIG.wire_format), _work(universe)
    assert work.max_records() == CONFIG.max_batch_ticks
    ticks = simulate(universe, 100, seed=12)
    tick_batches = batches(universe, ticks, codec, 10)
    work.process({CONFIG.tick_topic: _records(tick_batches)})
    assert work.max_records() == 64 // 10, "rises at once"
    work.process({CONFIG.tick_topic: _records(singles(universe, ticks, codec))})
    assert work.max_records() == 64 // 9, "decays slowly"


def test_recovery_replaces_only_the_engine_and_restores_the_committed_state() -> None:
    universe = load_builtin_universe()
    first, second = _fetches(universe)
    service = InProcessService(CONFIG, universe).service
    service.work.process(first)
    committed = service.checkpoints.decode(service._checkpoint_message().value)
    committed_levels = service.calculator.levels.copy()
    service.work.process(second)  # the aborted batch
    assert not np.array_equal(service.calculator.levels, committed_levels)
    aborted = service.work
    kept = {name: value for name, value in vars(service).items() if name != "work"}

    service._rebuild_engine(committed)

    assert service.work is not aborted
    after = {name: value for name, value in vars(service).items() if name != "work"}
    assert after.keys() == kept.keys()
    assert all(after[name] is value for name, value in kept.items()), "service state replaced"
    assert service.pipeline is service.work.pipeline
    np.testing.assert_array_equal(service.calculator.levels, committed_levels)
    assert service.decoder.universe is service.calculator.universe
