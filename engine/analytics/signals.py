"""Signals: rules (``signal_rules``) evaluated at each boundary, reported on a change of state.

At each boundary the caller gives every series the rules read (``RuleSet.series()``) as a
mapping name -> float; a missing or non-finite value is "not available", and every condition
on it is false (a threshold, a cross, a rising or falling window through it), so ``all`` over
it is false and ``any`` needs another condition. A rule fires only when its state changes: false ->
true gives an event with ``active`` True, true -> false one with ``active`` False; nothing is
reported while the state stays. Every rule starts false, so a rule already true at the first
boundary fires there.

The evaluator keeps, per series, the values of the last boundaries that ``cross`` (2) and
``rising``/``falling`` (``intervals + 1``) need, across day rolls like any other boundary, and
captures them with the rules' states, so a restored evaluator neither repeats nor misses an
event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import msgspec
import numpy as np
from numpy.typing import NDArray

from engine.analytics.signal_rules import (
    AllOf,
    AnyOf,
    Condition,
    Cross,
    Falling,
    Kind,
    Rising,
    Rule,
    RuleSet,
    Threshold,
    condition_series,
)


@dataclass(frozen=True)
class SignalEvent:
    """A rule's change of state at a boundary.

    Attributes
    ----------
    name, kind, sentence : str
        The rule's.
    active : bool
        True: the condition started holding; False: it stopped.
    ts_event : int
        The boundary, ns since the epoch.
    values : dict of str to float
        The rule's series at the boundary, finite ones only.
    """

    name: str
    kind: Kind
    sentence: str
    active: bool
    ts_event: int
    values: dict[str, float]


class SignalsState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Checkpoint of a ``SignalEvaluator``: active rules and recent series values (None: NaN)."""

    active: list[str]
    history: dict[str, list[float | None]]


def _depth(condition: Condition) -> dict[str, int]:
    """Values of each series a condition needs: the current one, plus its history."""
    match condition:
        case AllOf(of=parts) | AnyOf(of=parts):
            depth: dict[str, int] = {}
            for part in parts:
                for name, need in _depth(part).items():
                    depth[name] = max(depth.get(name, 1), need)
            return depth
        case Cross():
            return dict.fromkeys(condition_series(condition), 2)
        case Rising(series=series, intervals=n) | Falling(series=series, intervals=n):
            return {series: n + 1}
        case _:
            return {condition.series: 1}


class SignalEvaluator:
    """Evaluates a rule set at each boundary and reports changes of state (module docstring).

    Parameters
    ----------
    rules : RuleSet
        The rules, e.g. from ``load_rules``.
    """

    def __init__(self, rules: RuleSet) -> None:
        self._rules = rules.rules
        depth: dict[str, int] = {}
        for rule in self._rules:
            for name, need in _depth(rule.when).items():
                depth[name] = max(depth.get(name, 1), need)
        self._series = tuple(sorted(depth))
        self._row = {name: row for row, name in enumerate(self._series)}
        self._depth = np.array([depth[name] for name in self._series], dtype=np.int64)
        width = int(self._depth.max()) if self._depth.size else 1
        # Oldest to newest by column; the newest (last column) is the current boundary's.
        self._history = np.full((len(self._series), width), np.nan)
        self._rule_series = [tuple(dict.fromkeys(condition_series(r.when))) for r in self._rules]
        self._active = np.zeros(len(self._rules), dtype=bool)

    @property
    def series(self) -> tuple[str, ...]:
        """The series the rules read, sorted."""
        return self._series

    @property
    def active(self) -> dict[str, bool]:
        """Each rule's current state."""
        return {rule.name: bool(on) for rule, on in zip(self._rules, self._active, strict=True)}

    def evaluate(self, ts_event: int, values: Mapping[str, float]) -> list[SignalEvent]:
        """Take boundary ``ts_event``'s series values and return the rules that changed state.

        Call once per boundary, in event-time order (the history advances by one each call).
        """
        current = np.array([values.get(name, np.nan) for name in self._series], dtype=np.float64)
        current[~np.isfinite(current)] = np.nan
        self._history[:, :-1] = self._history[:, 1:]
        self._history[:, -1] = current
        events = []
        for position, rule in enumerate(self._rules):
            holds = self._holds(rule.when)
            if holds != self._active[position]:
                self._active[position] = holds
                events.append(self._event(position, rule, holds, ts_event))
        return events

    def _event(self, position: int, rule: Rule, active: bool, ts_event: int) -> SignalEvent:
        latest = {name: float(self._last(name, 1)[0]) for name in self._rule_series[position]}
        finite = {name: value for name, value in latest.items() if np.isfinite(value)}
        return SignalEvent(rule.name, rule.kind, rule.sentence, active, ts_event, finite)

    def _last(self, series: str, count: int) -> NDArray[np.float64]:
        """The series' values at the last ``count`` boundaries, oldest first."""
        return self._history[self._row[series], -count:]

    def _holds(self, condition: Condition) -> bool:
        match condition:
            case AllOf(of=parts):
                return all(self._holds(part) for part in parts)
            case AnyOf(of=parts):
                return any(self._holds(part) for part in parts)
            case Threshold(series=series, op=op, value=value):
                return _compare(float(self._last(series, 1)[0]), op, value)
            case Cross():
                return self._crossed(condition)
            case Rising(series=series, intervals=n):
                return bool(np.all(np.diff(self._last(series, n + 1)) > 0))
            case Falling(series=series, intervals=n):
                return bool(np.all(np.diff(self._last(series, n + 1)) < 0))
        raise AssertionError(condition)  # pragma: no cover - the union is exhaustive

    def _crossed(self, cross: Cross) -> bool:
        before, now = self._last(cross.series, 2)
        if cross.other is not None:
            ref_before, ref_now = self._last(cross.other, 2)
        else:
            ref_before = ref_now = np.float64(cross.value)
        if not np.isfinite([before, now, ref_before, ref_now]).all():
            return False
        if cross.direction == "above":
            return bool(before <= ref_before and now > ref_now)
        return bool(before >= ref_before and now < ref_now)

    def capture(self) -> SignalsState:
        """The rules' states and series history, for ``restore`` (JSON and MessagePack safe)."""
        history = {
            name: [None if np.isnan(v) else v for v in self._last(name, int(need)).tolist()]
            for name, need in zip(self._series, self._depth.tolist(), strict=True)
        }
        active = [rule.name for rule, on in zip(self._rules, self._active, strict=True) if on]
        return SignalsState(active=active, history=history)

    def restore(self, state: SignalsState) -> None:
        """Resume from ``capture()``, matched by rule and series name.

        Rules or series not in the state start fresh (false, no history); a saved history
        longer than needed now keeps its latest values.
        """
        names = set(state.active)
        self._active = np.array([rule.name in names for rule in self._rules], dtype=bool)
        self._history[:] = np.nan
        for name, saved in state.history.items():
            row = self._row.get(name)
            if row is None or not saved:
                continue
            latest = np.array([np.nan if v is None else v for v in saved], dtype=np.float64)
            latest = latest[-self._history.shape[1] :]
            self._history[row, -latest.size :] = latest


def _compare(value: float, op: str, reference: float) -> bool:
    """``value op reference``; False when ``value`` is NaN (as every comparison with NaN)."""
    if op == ">":
        return value > reference
    if op == ">=":
        return value >= reference
    if op == "<":
        return value < reference
    return value <= reference
