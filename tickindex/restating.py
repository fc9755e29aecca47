"""Restatement and what-if replays: replay a day twice and compare the levels, index by index.

``restate`` compares published levels with a replay under corrected events (or corrected
reference files); ``what_if`` compares a replay under the given events with one where
hypothetical events are added on top, and reports how constituent weights move.

Rows of the two runs are matched per index by the tick that moved them: the same event time,
the same security and, when one tick time and security repeat, the same occurrence (n-th such
row of the index). With the same ticks and memberships this is the join on ``seq``; it still
holds when a correction changes which ticks move an index (a constituent added or removed),
where sequence numbers stop lining up. Rows only one run has are counted, not compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from engine.core.errors import ReferenceDataError
from engine.kernel.calculator import IndexCalculator
from engine.maintenance.event_queue import PendingEvent
from engine.maintenance.events import securities_named
from engine.pipeline.chain import IndexPipeline
from engine.refdata.universe import Universe
from tickindex.levels import LevelCollector, Levels
from tickindex.replaying import OpenTicks
from tickindex.restate_diff import IndexDiff, compare_index, empty_levels, split_by_index

__all__ = [
    "DEFAULT_TOLERANCE",
    "IndexDiff",
    "Restatement",
    "ScenarioRun",
    "WeightChange",
    "closing_weights",
    "restate",
    "run_scenario",
    "start_divisors",
    "weight_changes",
    "what_if",
]

DEFAULT_TOLERANCE = 1e-9
"""Relative difference above which two levels differ: |corrected - published| > 1e-9 x
|published| (float noise of an event re-applied in another order is about 1e-16)."""


@dataclass(frozen=True)
class ScenarioRun:
    """One replay of the day and the engine's state at its end.

    Attributes
    ----------
    levels : Levels
        Every level, in tick order.
    divisors : dict of str to float
        Each index's divisor at the end of the replay.
    universe : Universe
        The composition at the end (maintenance events applied).
    prices : ndarray of float64
        The price per security id of ``universe`` at the end.
    events_failed : tuple of str
        Events that could not be applied, each as ``SOURCE: event at EFFECTIVE: error``.
    """

    levels: Levels
    divisors: dict[str, float]
    universe: Universe
    prices: NDArray[np.float64]
    events_failed: tuple[str, ...]


def run_scenario(
    universe: Universe, open_ticks: OpenTicks, events: Sequence[PendingEvent]
) -> ScenarioRun:
    """Replay the ticks through the engine with ``events``, as ``tickindex replay`` does
    (levels bitwise the same), keeping the engine's final divisors, composition and prices.

    Parameters
    ----------
    universe : Universe
        The reference data at the start of the day.
    open_ticks : callable
        Opens the ticks once the universe is final (as for ``run_replay``).
    events : sequence of PendingEvent
        Maintenance events, applied at their effective times.

    Returns
    -------
    ScenarioRun
        The levels and the end-of-replay state.
    """
    named = [code for pending in events for code in securities_named(pending.event)]
    universe = universe.with_securities(named)
    reader = open_ticks(universe)
    collector = LevelCollector(universe.index_codes, universe.securities)
    calculator = IndexCalculator(universe)
    pipeline = IndexPipeline(calculator, collector)
    pipeline.schedule(events)
    stats = pipeline.run(reader)
    final = calculator.universe
    return ScenarioRun(
        levels=collector.take(),
        divisors=dict(zip(final.index_codes, calculator.divisors.tolist(), strict=True)),
        universe=final,
        prices=calculator.prices.copy(),
        events_failed=tuple(str(failure) for failure in stats.events_failed),
    )


@dataclass(frozen=True)
class Restatement:
    """The comparison of a reference run (published levels) with a corrected one.

    Attributes
    ----------
    indices : tuple of IndexDiff
        One per index with levels in either run, in the universe's index order.
    tolerance : float
        The relative tolerance used.
    divisor_source : str
        Where ``divisor_before`` comes from (the original events' replay, or the reference
        data at the start of the day when there is none).
    original_reproduces : bool or None
        Whether the replay with the original events and reference data gives the published
        levels (within the tolerance); None: not checked (no original replay).
    """

    indices: tuple[IndexDiff, ...]
    tolerance: float
    divisor_source: str
    original_reproduces: bool | None = None

    @property
    def differing(self) -> tuple[IndexDiff, ...]:
        """The indices whose levels differ beyond the tolerance."""
        return tuple(diff for diff in self.indices if diff.first is not None)


def restate(
    published: Levels,
    corrected: ScenarioRun,
    divisors_before: dict[str, float],
    *,
    divisor_source: str,
    tolerance: float = DEFAULT_TOLERANCE,
    published_name: str = "published levels",
) -> Restatement:
    """Compare published levels with a corrected run, index by index.

    Parameters
    ----------
    published : Levels
        The levels as published (a level file's rows).
    corrected : ScenarioRun
        The replay with corrected events or reference data.
    divisors_before : dict of str to float
        The published run's final divisor per index.
    divisor_source : str
        What ``divisors_before`` are, for the report.
    tolerance : float
        Relative tolerance (``DEFAULT_TOLERANCE``).
    published_name : str
        How errors name the published levels (the file).

    Returns
    -------
    Restatement
        One ``IndexDiff`` per index with levels in either run.

    Raises
    ------
    ReferenceDataError
        When the published levels name indices the corrected run does not know, or when no
        published row matches a corrected one (other ticks, another day).
    """
    old, new = split_by_index(published), split_by_index(corrected.levels)
    codes = corrected.universe.index_codes
    unknown = sorted(set(old) - set(codes))
    if unknown:
        raise ReferenceDataError(
            published_name,
            None,
            f"levels of indices the reference data does not have: {', '.join(unknown)} "
            f"(known: {', '.join(codes)})",
        )
    diffs = tuple(
        compare_index(
            code,
            old.get(code, empty_levels()),
            new.get(code, empty_levels()),
            divisor_before=divisors_before.get(code, float("nan")),
            divisor_after=corrected.divisors[code],
            tolerance=tolerance,
        )
        for code in codes
        if code in old or code in new
    )
    if not len(published):
        raise ReferenceDataError(published_name, None, "no published levels in it")
    if not any(diff.matched for diff in diffs):
        raise ReferenceDataError(
            published_name,
            None,
            "no published level matches a replayed one (same index, tick time and security): "
            "are they levels of these ticks?",
        )
    return Restatement(diffs, tolerance, divisor_source)


def start_divisors(universe: Universe) -> dict[str, float]:
    """Each index's divisor from the reference data, before any event."""
    return dict(zip(universe.index_codes, universe.divisors.tolist(), strict=True))


@dataclass(frozen=True)
class WeightChange:
    """How one constituent's weight in one index moves (0 when not a member)."""

    index: str
    security: str
    before: float
    after: float

    @property
    def change(self) -> float:
        """``after - before``."""
        return self.after - self.before


def closing_weights(run: ScenarioRun) -> dict[str, dict[str, float]]:
    """Weight of every constituent in its index at the end of a run: price x IS x FAF x CF over
    the index's total, with the composition, cap factors and prices of the end of the replay.

    Returns
    -------
    dict
        Index code to security code to weight (a fraction of 1), biggest first.
    """
    members = run.universe.membership
    value = run.prices[members.security] * run.universe.weights()
    totals = np.bincount(members.index, weights=value, minlength=len(run.universe.indices))
    share = value / totals[members.index]
    order = np.lexsort((-share, members.index))
    weights: dict[str, dict[str, float]] = {code: {} for code in run.universe.index_codes}
    codes = run.universe.securities
    for index, security, weight in zip(
        members.index[order].tolist(),
        members.security[order].tolist(),
        share[order].tolist(),
        strict=True,
    ):
        weights[run.universe.indices[index].code][codes[security]] = weight
    return weights


def weight_changes(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
) -> list[WeightChange]:
    """Every constituent whose weight differs, biggest absolute change first within each index
    (indices in the order of ``after``); a constituent in one run only has weight 0 in the
    other."""
    changes: list[WeightChange] = []
    for index in dict.fromkeys([*after, *before]):
        old, new = before.get(index, {}), after.get(index, {})
        moved = [
            WeightChange(index, security, old.get(security, 0.0), new.get(security, 0.0))
            for security in dict.fromkeys([*old, *new])
            if old.get(security, 0.0) != new.get(security, 0.0)
        ]
        changes.extend(sorted(moved, key=lambda c: -abs(c.change)))
    return changes


def what_if(
    baseline: ScenarioRun, scenario: ScenarioRun, *, tolerance: float = DEFAULT_TOLERANCE
) -> tuple[Restatement, list[WeightChange]]:
    """Compare a replay with hypothetical events added (``scenario``) with the one without.

    Returns
    -------
    tuple of Restatement and list of WeightChange
        The level differences (``baseline`` in the place of the published levels) and every
        constituent weight that moves at the end of the day.
    """
    restatement = restate(
        baseline.levels,
        scenario,
        baseline.divisors,
        divisor_source="replay without the what-if events",
        tolerance=tolerance,
        published_name="the replay without the what-if events",
    )
    return restatement, weight_changes(closing_weights(baseline), closing_weights(scenario))
