"""The partial-sum plan's maths without Kafka: workers' partials reduce to the engine's levels."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from engine.maintenance.events import SpecialDividend, StockSplit
from tests.support.seed import SEED
from tickindex.bench.partial_sums.maths import (
    ENCODER,
    WORKER_DECODER,
    Barrier,
    Partials,
    PartialSumWorker,
    UnsupportedEventError,
    WorkerMessage,
    owner_of,
)
from tickindex.bench.partial_sums.reducer import PartialReducer, event_scopes
from tickindex.bench.partial_sums.world import (
    SimulationWorld,
    build_world,
    check_levels,
    reference_levels,
)
from tickindex.bench.scale_world import WorldShape

WORKERS = 3


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SimulationWorld:
    shape = WorldShape(securities=2_000, indices=120, seed=SEED)
    return build_world(shape, 12_000, WORKERS, tmp_path_factory.mktemp("partial"))


def _run(
    world: SimulationWorld, batch: int, *, deaf: int | None = None, hold: bool = True
) -> tuple[PartialReducer, NDArray[np.float64]]:
    """Every worker's ticks in batches of ``batch`` stream ticks, messages over msgpack; the
    reducer and the last level it published per index."""
    universe, ticks = world.universe, world.ticks
    events = list(world.events)
    workers = [
        PartialSumWorker(universe, w, WORKERS, [] if w == deaf else events) for w in range(WORKERS)
    ]
    scopes = event_scopes(universe, events)
    reducer = PartialReducer(universe.divisors, WORKERS, scopes, hold_events=hold)
    published = np.full(len(universe.indices), np.nan)

    def reduce(messages: list[WorkerMessage]) -> None:
        changed = reducer.apply([WORKER_DECODER.decode(ENCODER.encode(m)) for m in messages])
        published[changed] = reducer.levels(changed)

    reduce([w.snapshot() for w in workers])
    owner = owner_of(ticks.security, WORKERS)
    for start in range(0, len(ticks), batch):
        part = slice(start, start + batch)
        messages: list[WorkerMessage] = []
        for w in reversed(range(WORKERS)):  # arrival order differs from worker order
            mine = owner[part] == w
            messages += workers[w].apply(
                ticks.security[part][mine], ticks.price[part][mine], ticks.ts_event[part][mine], 1
            )
        reduce(messages)
    return reducer, published


@pytest.mark.parametrize("batch", [1_000, 4_999])
def test_partials_reduce_to_the_engine_levels(world: SimulationWorld, batch: int) -> None:
    reducer, levels = _run(world, batch)
    check = check_levels(world.universe, levels, reference_levels(world))
    assert check.mismatched == 0 and check.max_rel_diff <= 1e-9
    assert not reducer.pending and not reducer.held.any() and not reducer.missing_barriers
    assert reducer.completed == {0, 1}


def test_the_first_partials_give_the_previous_closes(world: SimulationWorld) -> None:
    universe = world.universe
    workers = [PartialSumWorker(universe, w, WORKERS) for w in range(WORKERS)]
    reducer = PartialReducer(universe.divisors, WORKERS)
    reducer.apply([w.snapshot() for w in workers[:-1]])
    ready_before_the_last = reducer.ready
    reducer.apply([workers[-1].snapshot()])
    closes = np.array([spec.prev_close_level for spec in universe.indices])
    assert reducer.ready and not ready_before_the_last
    np.testing.assert_allclose(reducer.levels(np.arange(closes.size)), closes, rtol=1e-12)


def test_every_worker_answers_an_event_and_only_its_owner_changes(world: SimulationWorld) -> None:
    universe, change = world.universe, world.events[1]
    ticks = world.ticks
    later = ticks.ts_event >= change.effective
    barriers = []
    for w in range(WORKERS):
        worker = PartialSumWorker(universe, w, WORKERS, [change])
        one = np.flatnonzero(later & (owner_of(ticks.security, WORKERS) == w))[:1]
        out = worker.apply(ticks.security[one], ticks.price[one], ticks.ts_event[one], 1)
        barriers += [m for m in out if isinstance(m, Barrier)]
    assert [b.worker for b in barriers] == list(range(WORKERS))
    changed = [b.before != b.after for b in barriers]
    assert changed == [False, True, False]  # the changed security's owner is worker 1
    assert len({b.index for b in barriers}) == 1


def test_a_worker_that_misses_the_events_breaks_the_levels(world: SimulationWorld) -> None:
    reference = reference_levels(world)
    held, levels = _run(world, 1_000, deaf=0)
    assert held.missing_barriers == {0: [0], 1: [0]}  # worker 0 passed both without a barrier
    assert held.held.any() and not held.completed  # the events never complete: indices held
    assert check_levels(world.universe, levels, reference).mismatched > 0
    _, jumped = _run(world, 1_000, deaf=0, hold=False)
    event = world.events[0]
    assert isinstance(event, StockSplit)
    split = world.universe.security_id(event.security)
    m = world.universe.membership
    of_split = np.unique(m.index[m.security == split])
    jump = np.abs(jumped / reference - 1.0)[of_split]
    assert (jump > 1e-9).all()  # mixed pre- and post-split weights: every one of them
    stale = np.abs(levels / reference - 1.0)[of_split]
    most = int(np.argmax(jump))  # where the split security weighs most
    assert stale[most] < jump[most] / 10  # held: it stays at its last level before the split


def test_an_event_the_simulation_cannot_apply_is_refused(world: SimulationWorld) -> None:
    event = SpecialDividend(effective=0, security=world.universe.securities[0], amount=0.1)
    worker = PartialSumWorker(world.universe, 0, WORKERS, [event])
    ticks = world.ticks
    with pytest.raises(UnsupportedEventError):
        worker.apply(ticks.security[:1], ticks.price[:1], ticks.ts_event[:1], 1)


def test_a_tick_that_changes_no_sum_publishes_no_partial(world: SimulationWorld) -> None:
    universe = world.universe
    security = np.flatnonzero(owner_of(np.arange(universe.n_securities), WORKERS) == 0)[:2]
    worker = PartialSumWorker(universe, 0, WORKERS)
    same = universe.prev_close[security]
    out = worker.apply(security, same, np.array([1, 2], dtype=np.int64), 7)
    assert len(out) == 1 and isinstance(out[0], Partials)
    assert out[0].index == b"" and out[0].watermark == 7 and out[0].max_ts == 2
    moved = worker.apply(security[:1], same[:1] * 1.01, np.array([3], dtype=np.int64), 8)
    m = universe.membership
    expected = np.unique(m.index[m.security == security[0]]).astype(np.int32)
    assert isinstance(moved[0], Partials)
    np.testing.assert_array_equal(np.frombuffer(moved[0].index, dtype=np.int32), expected)
