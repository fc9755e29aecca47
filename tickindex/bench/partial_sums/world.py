"""The partial-sum simulation's input: a seeded world, its ticks, two events, the engine's answer.

The world is ``scale_world``'s (written to files and loaded); the ticks are the bench's seeded
simulation. Two events are broadcast: a 2-for-1 split of a security of worker 0 a third of the
way into the stream (its later ticks are halved, as a real feed would quote them) and a 1.5x
shares change of a security of worker 1 at two thirds. The reference is the single-process
engine (``tickindex.replay`` of the same ticks and events): its final level of every index.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np
from numpy.typing import NDArray

from engine.kernel.columns import TickColumns
from engine.maintenance.events import IndexEvent, SharesChange, StockSplit
from engine.refdata.reference_files import load_universe
from engine.refdata.universe import Universe
from engine.wire import TickBatch
from tickindex.bench.core import simulated_ticks
from tickindex.bench.partial_sums.maths import owner_of
from tickindex.bench.scale_world import WorldFiles, WorldShape, write_world
from tickindex.replay_api import replay

SPLIT_RATIO = 2.0
SHARES_GROWTH = 1.5
LEVEL_TOLERANCE = 1e-9  # relative: the reducer adds the partials in another order


@dataclass(frozen=True)
class SimulationWorld:
    """Reference files, universe, ticks (security ids, event order) and the broadcast events."""

    files: WorldFiles
    universe: Universe
    ticks: TickColumns
    events: tuple[IndexEvent, ...]
    events_path: Path


def build_world(shape: WorldShape, n_ticks: int, workers: int, folder: Path) -> SimulationWorld:
    """Write the world into ``folder``, simulate ``n_ticks`` ticks and place the two events."""
    files = write_world(shape, folder)
    universe = load_universe(files.indices, files.composition)
    ticks = simulated_ticks(universe, n_ticks, shape.seed)
    events = _events(universe, ticks, workers)
    split = events[0]
    assert isinstance(split, StockSplit)
    quoted = (ticks.security == universe.security_id(split.security)) & (
        ticks.ts_event >= split.effective
    )
    ticks.price[quoted] /= SPLIT_RATIO
    events_path = folder / "events.jsonl"
    events_path.write_bytes(b"".join(msgspec.json.encode(e) + b"\n" for e in events))
    return SimulationWorld(files, universe, ticks, events, events_path)


def _events(universe: Universe, ticks: TickColumns, workers: int) -> tuple[IndexEvent, ...]:
    """The split (worker 0's most traded security) and the shares change (worker 1's)."""
    traded = np.bincount(ticks.security, minlength=universe.n_securities)
    owners = owner_of(np.arange(universe.n_securities, dtype=np.int64), workers)
    split_id = int(np.argmax(np.where(owners == 0, traded, -1)))
    change_id = int(np.argmax(np.where(owners == 1 % workers, traded, -1)))
    m = universe.membership
    shares = float(m.issued_shares[np.flatnonzero(m.security == change_id)[0]])
    n = len(ticks)
    return (
        StockSplit(
            effective=int(ticks.ts_event[n // 3]),
            security=universe.securities[split_id],
            ratio=SPLIT_RATIO,
        ),
        SharesChange(
            effective=int(ticks.ts_event[2 * n // 3]),
            security=universe.securities[change_id],
            issued_shares=round(shares * SHARES_GROWTH),
        ),
    )


def reference_levels(world: SimulationWorld) -> NDArray[np.float64]:
    """Final level of every index from the single-process engine, same ticks and events."""
    universe, ticks = world.universe, world.ticks
    codes = np.array(universe.securities)[ticks.security]
    batch = TickBatch(codes.tolist(), ticks.price.tolist(), ticks.ts_event.tolist())
    result = replay(
        batch,
        indices=world.files.indices,
        composition=world.files.composition,
        events=world.events_path,
    )
    if result.events_applied != len(world.events) or result.ticks_applied != len(ticks):
        raise RuntimeError(f"the reference replay did not apply everything: {result.summary}")
    final = np.array([spec.prev_close_level for spec in universe.indices], dtype=np.float64)
    for code, level in result.levels.last().items():
        final[universe.index_id(code)] = level
    return final


@dataclass(frozen=True)
class LevelCheck:
    """Reduced final levels against the engine's."""

    max_rel_diff: float
    mismatched: int
    worst_index: str


def check_levels(
    universe: Universe, reduced: NDArray[np.float64], reference: NDArray[np.float64]
) -> LevelCheck:
    """How far each reduced level is from the engine's (relative), and how many exceed 1e-9."""
    diff = np.abs(reduced - reference) / np.abs(reference)
    diff[np.isnan(diff)] = np.inf
    worst = int(np.argmax(diff))
    return LevelCheck(
        max_rel_diff=float(diff[worst]),
        mismatched=int(np.count_nonzero(diff > LEVEL_TOLERANCE)),
        worst_index=universe.indices[worst].code,
    )
