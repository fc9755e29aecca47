"""``FetchWork`` under a publication policy: conflated levels, held levels in the checkpoint.

The held levels go into the checkpoint, so a fresh ``FetchWork`` restored from it (a restart,
exactly-once recovery) publishes what an uninterrupted one would; a quiet feed's held levels
come out once their interval has passed on the wall clock.
"""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from engine.kernel.columns import LevelColumns
from engine.kernel.publication import Publication
from engine.live.codec import Record
from engine.live.config import ServiceConfig
from engine.live.fetch_work import FetchWork
from engine.live.metrics import ServiceMetrics
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.universe import Universe
from engine.wire import WireCodec
from tests.support.live import simulate
from tests.support.poison import singles
from tests.support.records import FakeRecord

CONFIG = ServiceConfig(
    max_batch_ticks=64, publication="HSI=all,*=20ms", complete_level_topic="all-levels"
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fetches(universe: Universe, n: int, parts: int) -> list[dict[str, list[Record]]]:
    messages = singles(universe, simulate(universe, n, seed=21), WireCodec(CONFIG.wire_format))
    records: list[Record] = [
        FakeRecord(CONFIG.tick_topic, 0, offset, key, value)
        for offset, (key, value) in enumerate(messages)
    ]
    size = -(-n // parts)
    return [{CONFIG.tick_topic: records[at : at + size]} for at in range(0, n, size)]


def _work(universe: Universe, clock: FakeClock) -> FetchWork:
    metrics = ServiceMetrics(CollectorRegistry(), universe.index_codes, version="test")
    work = FetchWork(CONFIG, universe, metrics)
    work.publication = Publication(
        CONFIG.publication, work.encoder.codes, complete=True, clock=clock
    )
    return work


def _split(rows: list[LevelColumns]) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """(index, seq, count) of the level topic's rows and (index, seq) of the complete topic's."""
    out = LevelColumns.concat(rows)
    assert out.count is not None
    published = sorted(zip(out.index.tolist(), out.seq.tolist(), out.count.tolist(), strict=True))
    complete = out.take(out.count == 0)
    return [row for row in published if row[2] > 0], sorted(
        zip(complete.index.tolist(), complete.seq.tolist(), strict=True)
    )


def test_restored_from_a_checkpoint_the_work_publishes_what_an_uninterrupted_one_would() -> None:
    universe = load_builtin_universe()
    fetches = _fetches(universe, 1_200, 6)
    clock = FakeClock()
    running = _work(universe, clock)
    expected = [running.process(fetch)[0] for fetch in fetches]

    first = _work(universe, clock)
    got = [first.process(fetch)[0] for fetch in fetches[:3]]
    state = first.capture({}, 1)
    assert state.publication is not None and len(state.publication.seq) > 0
    second = _work(universe, clock)
    second.restore(state)
    got += [second.process(fetch)[0] for fetch in fetches[3:]]

    published, complete = _split(got)
    assert (published, complete) == _split(expected)
    assert len(complete) == len({row[:2] for row in complete}), "no level twice"
    assert len(published) < len(complete) // 3
    hsi = universe.index_codes.index("HSI")
    assert [row[1] for row in complete if row[0] == hsi] == [
        row[1] for row in published if row[0] == hsi
    ], "HSI=all: every HSI level on the level topic"
    conflated = running.metrics.levels_conflated._value.get()
    held = running.publication.held()
    assert held is not None and held.levels.count is not None
    # Every level is published, folded into a published one (counted), or still held.
    assert conflated + len(published) + int(held.levels.count.sum()) == len(complete)


def test_a_quiet_feed_gets_its_held_levels_out_through_an_empty_fetch() -> None:
    universe = load_builtin_universe()
    clock = FakeClock()
    work = _work(universe, clock)
    (fetch,) = _fetches(universe, 50, 1)
    work.process(fetch)
    held = work.publication.held()
    assert held is not None and len(held.levels) > 0
    assert not work.idle_release_due()
    clock.now += 0.025  # 25 ms without a level: past the 20 ms interval
    assert work.idle_release_due()
    released, messages = work.process({})
    assert messages == []
    assert released.count is not None and np.all(released.count > 0)
    assert sorted(zip(released.index.tolist(), released.seq.tolist(), strict=True)) == sorted(
        zip(held.levels.index.tolist(), held.levels.seq.tolist(), strict=True)
    )
    assert not work.idle_release_due()
    assert len(work.process({})[0]) == 0
