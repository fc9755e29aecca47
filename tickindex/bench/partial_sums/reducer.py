"""The reducer of the partial-sum plan: latest partial per (worker, index), summed, / divisor.

It holds the divisors and adjusts them at each event once every worker's ``Barrier`` is in.
It knows the broadcast events too (``EventScope``: effective time and indices), so it holds an
event's indices from the first sign that any worker passed the effective time: a barrier, or a
partial whose largest tick time is at or after it. A worker whose partial passes an event's
effective time before its barrier for that event missed the event; it is named in
``missing_barriers`` and the event can never complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from engine.maintenance.events import IndexEvent
from engine.refdata.universe import Universe
from tickindex.bench.partial_sums.maths import Barrier, Partials, WorkerMessage, indices_of


@dataclass(frozen=True)
class EventScope:
    """What the reducer knows of a broadcast event: when, and which indices it touches."""

    effective: int
    index: NDArray[np.int64]


def event_scopes(universe: Universe, events: list[IndexEvent]) -> list[EventScope]:
    """Scopes of ``events`` numbered as the workers number them (by effective time)."""
    scopes = []
    for event in sorted(events, key=lambda e: e.effective):
        security = universe.security_id(getattr(event, "security", ""))
        scopes.append(EventScope(event.effective, indices_of(universe, security)))
    return scopes


@dataclass
class _PendingEvent:
    """An event some worker has passed: the barriers received so far."""

    index: NDArray[np.int64]
    before: NDArray[np.float64]
    after: NDArray[np.float64]
    workers: set[int] = field(default_factory=set)
    missing: set[int] = field(default_factory=set)


@dataclass
class PartialReducer:
    """The latest partial per (worker, index); level = sum over workers / divisor.

    ``hold_events=False`` publishes an event's indices with the old divisor until every barrier
    is in (what a reducer that does not wait for all partitions would publish).
    """

    divisors: NDArray[np.float64]
    workers: int
    events: list[EventScope] = field(default_factory=list)
    hold_events: bool = True
    partial: NDArray[np.float64] = field(init=False)
    watermarks: NDArray[np.int64] = field(init=False)
    held: NDArray[np.int64] = field(init=False)
    pending: dict[int, _PendingEvent] = field(init=False, default_factory=dict)
    completed: set[int] = field(init=False, default_factory=set)
    started: set[int] = field(init=False, default_factory=set)
    finished: set[int] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.divisors = self.divisors.astype(np.float64, copy=True)
        self.partial = np.zeros((self.workers, self.divisors.size))
        self.watermarks = np.zeros(self.workers, dtype=np.int64)
        self.held = np.zeros(self.divisors.size, dtype=np.int64)

    @property
    def ready(self) -> bool:
        """Every worker's first message is in."""
        return len(self.started) == self.workers

    @property
    def missing_barriers(self) -> dict[int, list[int]]:
        """Per event number, the workers that passed its effective time without its barrier."""
        return {k: sorted(p.missing) for k, p in self.pending.items() if p.missing}

    def levels(self, indices: NDArray[np.int64]) -> NDArray[np.float64]:
        """Current levels of ``indices`` (workers added in worker order)."""
        levels: NDArray[np.float64] = self.partial[:, indices].sum(axis=0) / self.divisors[indices]
        return levels

    def apply(self, messages: list[WorkerMessage]) -> NDArray[np.int64]:
        """Take worker messages in arrival order; the indices whose level may be published."""
        changed = np.zeros(self.divisors.size, dtype=bool)
        for message in messages:
            index = np.frombuffer(message.index, dtype=np.int32)
            if isinstance(message, Partials):
                self._passed(message)
                self.partial[message.worker, index] = np.frombuffer(message.total)
                self.started.add(message.worker)
                self.watermarks[message.worker] = max(
                    self.watermarks[message.worker], message.watermark
                )
                if message.last:
                    self.finished.add(message.worker)
            else:
                self.partial[message.worker, index] = np.frombuffer(message.after)
                self._barrier(message, index, changed)
            changed[index] = True
        if self.hold_events:
            changed &= self.held == 0
        return np.flatnonzero(changed)

    def _pending(self, number: int, index: NDArray[np.int64]) -> _PendingEvent:
        pending = self.pending.get(number)
        if pending is None:
            pending = _PendingEvent(index, np.zeros(index.size), np.zeros(index.size))
            self.pending[number] = pending
            self.held[index] += 1
        return pending

    def _passed(self, message: Partials) -> None:
        """Hold the events ``message`` is past; note it if its worker sent no barrier."""
        for number, scope in enumerate(self.events):
            if scope.effective <= message.max_ts and number not in self.completed:
                pending = self._pending(number, scope.index)
                if message.worker not in pending.workers:
                    pending.missing.add(message.worker)

    def _barrier(
        self, message: Barrier, index: NDArray[np.int32], changed: NDArray[np.bool_]
    ) -> None:
        pending = self._pending(message.event, index.astype(np.int64))
        pending.before += np.frombuffer(message.before)
        pending.after += np.frombuffer(message.after)
        pending.workers.add(message.worker)
        if len(pending.workers) == self.workers:
            self.divisors[pending.index] *= pending.after / pending.before
            self.held[pending.index] -= 1
            changed[pending.index] = True
            del self.pending[message.event]
            self.completed.add(message.event)
