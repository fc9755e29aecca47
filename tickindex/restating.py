"""Restatement and what-if replays: replay a day twice and compare the levels, index by index.

``restate_published`` compares published levels with a replay under corrected events (or
corrected reference files); ``tickindex.what_if`` compares a replay under the given events with
one where hypothetical events are added on top.

Rows of the two runs are matched per index by the tick that moved them: the same event time,
the same security and, when one tick time and security repeat, the same occurrence (n-th such
row of the index). With the same ticks and memberships this is the join on ``seq``; it still
holds when a correction changes which ticks move an index (a constituent added or removed),
where sequence numbers stop lining up. Rows only one run has are counted, not compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from engine.core.errors import ReferenceDataError
from engine.kernel.calculator import IndexCalculator
from engine.maintenance.event_queue import PendingEvent
from engine.maintenance.events import securities_named
from engine.pipeline.chain import IndexPipeline
from engine.refdata.universe import Universe
from producers.reject_log import LineRejects, in_line_order
from tickindex.coded_levels import CodedLevels
from tickindex.levels import LevelCollector
from tickindex.replaying import OpenTicks
from tickindex.restate_diff import NO_ROWS, IndexDiff, compare_index, split_runs

__all__ = [
    "DEFAULT_TOLERANCE",
    "IndexDiff",
    "Original",
    "Restatement",
    "ScenarioRun",
    "restate",
    "restate_published",
    "run_scenario",
    "start_divisors",
]

DEFAULT_TOLERANCE = 1e-9
"""Relative difference above which two levels differ: |corrected - published| > 1e-9 x
|published| (float noise of an event re-applied in another order is about 1e-16)."""


@dataclass(frozen=True)
class ScenarioRun:
    """One replay of the day and the engine's state at its end.

    Attributes
    ----------
    levels : CodedLevels
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

    levels: CodedLevels
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
    pipeline = IndexPipeline(
        calculator, collector, rejects=LineRejects(reader.stats.log, universe.securities)
    )
    pipeline.schedule(events)
    stats = pipeline.run(in_line_order(reader, reader.stats.log))
    final = calculator.universe
    return ScenarioRun(
        levels=CodedLevels.taken_from(collector),
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
    events_failed : tuple of str
        Events a replay could not apply, each as ``RUN: SOURCE: event at EFFECTIVE: error``.
    """

    indices: tuple[IndexDiff, ...]
    tolerance: float
    divisor_source: str
    original_reproduces: bool | None = None
    events_failed: tuple[str, ...] = ()

    @property
    def differing(self) -> tuple[IndexDiff, ...]:
        """The indices whose levels differ beyond the tolerance."""
        return tuple(diff for diff in self.indices if diff.first is not None)


def restate(
    published: CodedLevels,
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
    published : CodedLevels
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
    runs = split_runs(published, corrected.levels)
    old, new = runs.published, runs.corrected
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
            old.get(code, NO_ROWS),
            new.get(code, NO_ROWS),
            runs.securities,
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
    failed = tuple(f"corrected run: {failure}" for failure in corrected.events_failed)
    return Restatement(diffs, tolerance, divisor_source, events_failed=failed)


def start_divisors(universe: Universe) -> dict[str, float]:
    """Each index's divisor from the reference data, before any event."""
    return dict(zip(universe.index_codes, universe.divisors.tolist(), strict=True))


@dataclass(frozen=True)
class Original:
    """How the published levels were computed: the reference data and events of that run."""

    universe: Universe
    events: Sequence[PendingEvent]


def restate_published(
    published: CodedLevels,
    universe: Universe,
    open_ticks: OpenTicks,
    events: Sequence[PendingEvent],
    *,
    original: Original | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    published_name: str = "published levels",
) -> Restatement:
    """Replay the day with corrected events (or reference data) and compare with the published
    levels; with the ``original`` run's data also replay that, for the divisors before and to
    check that it reproduces the published levels.

    Parameters
    ----------
    published : CodedLevels
        The levels as published.
    universe : Universe
        The (corrected) reference data at the start of the day.
    open_ticks : callable
        Opens the day's ticks (as for ``run_replay``); called once per replay.
    events : sequence of PendingEvent
        The corrected maintenance events.
    original : Original, optional
        The published run's reference data and events; without it the divisor before is the
        reference data's, before any event.
    tolerance : float
        Relative tolerance (``DEFAULT_TOLERANCE``).
    published_name : str
        How errors name the published levels (the file).

    Returns
    -------
    Restatement
        One ``IndexDiff`` per index.

    Raises
    ------
    ReferenceDataError
        As ``restate``.
    """
    corrected = run_scenario(universe, open_ticks, events)
    if original is None:
        return restate(
            published,
            corrected,
            start_divisors(universe),
            divisor_source="reference data, before any event",
            tolerance=tolerance,
            published_name=published_name,
        )
    replayed = run_scenario(original.universe, open_ticks, original.events)
    check = restate(
        published,
        replayed,
        replayed.divisors,
        divisor_source="",
        tolerance=tolerance,
        published_name=published_name,
    )
    restatement = restate(
        published,
        corrected,
        replayed.divisors,
        divisor_source="end of the replay with the original events and reference data",
        tolerance=tolerance,
        published_name=published_name,
    )
    failed = tuple(f"original run: {failure}" for failure in replayed.events_failed)
    return replace(
        restatement,
        original_reproduces=not check.differing,
        events_failed=failed + restatement.events_failed,
    )
