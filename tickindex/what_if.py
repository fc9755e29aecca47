"""What-if replays: hypothetical maintenance events on top of the day's, and what they do to
the levels and to the constituent weights of each index."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from engine.maintenance.event_queue import PendingEvent
from engine.refdata.universe import Universe
from tickindex.replaying import OpenTicks
from tickindex.restating import DEFAULT_TOLERANCE, Restatement, ScenarioRun, restate, run_scenario

__all__ = ["WeightChange", "WhatIf", "closing_weights", "weight_changes", "what_if"]


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


@dataclass(frozen=True)
class WhatIf:
    """What hypothetical events change.

    Attributes
    ----------
    restatement : Restatement
        The levels with the hypothetical events against those without (in the place of the
        published levels).
    weights : list of WeightChange
        Every constituent weight that differs at the end of the day, biggest change first
        within each index.
    """

    restatement: Restatement
    weights: list[WeightChange]


def what_if(
    universe: Universe,
    open_ticks: OpenTicks,
    events: Sequence[PendingEvent],
    hypothetical: Sequence[PendingEvent],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
) -> WhatIf:
    """Replay the day with ``events``, then with ``hypothetical`` events added, and compare.

    Parameters
    ----------
    universe : Universe
        The reference data at the start of the day.
    open_ticks : callable
        Opens the day's ticks (as for ``run_replay``); called once per replay.
    events : sequence of PendingEvent
        The day's maintenance events.
    hypothetical : sequence of PendingEvent
        The events added on top of them.
    tolerance : float
        Relative tolerance (``DEFAULT_TOLERANCE``).

    Returns
    -------
    WhatIf
        The level differences and the weight changes.
    """
    baseline = run_scenario(universe, open_ticks, events)
    scenario = run_scenario(universe, open_ticks, [*events, *hypothetical])
    restatement = restate(
        baseline.levels,
        scenario,
        baseline.divisors,
        divisor_source="replay without the what-if events",
        tolerance=tolerance,
        published_name="the replay without the what-if events",
    )
    failed = [
        *(f"run without the what-if: {failure}" for failure in baseline.events_failed),
        *(f"what-if run: {failure}" for failure in scenario.events_failed),
    ]
    weights = weight_changes(closing_weights(baseline), closing_weights(scenario))
    return WhatIf(replace(restatement, events_failed=tuple(failed)), weights)
