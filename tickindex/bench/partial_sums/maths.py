"""The partial-sum plan's maths: workers own a split of the securities, a reducer adds them up.

An index level is sum(P x IS x FAF x CF) / divisor. When the securities are split between W
workers (by tick partition), each worker keeps, per index, the partial sum over ITS securities;
the level is the sum of the W partials over the divisor. The divisor lives where all partials
meet, the reducer. A maintenance event changes weights (and a split the reference price) from
its effective time on, so every worker must apply it at the same event-time point: each one,
when its ticks cross the effective time, reports its partial sums just before and just after
the event for the indices the event touches (a ``Barrier``); the reducer adjusts the divisor
(new = old x sum of afters / sum of befores, the engine's continuity rule) once all W barriers
are in, and until then holds back the levels of those indices, which would mix pre- and
post-event weights.

The reducer is in ``reducer``. No Kafka here: ``run`` moves these
messages over the broker.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
import numpy as np
from numpy.typing import NDArray

from engine.core.errors import TickIndexError
from engine.maintenance.composition_edits import share_factor
from engine.maintenance.events import (
    BonusIssue,
    Consolidation,
    IndexEvent,
    SharesChange,
    StockSplit,
)
from engine.refdata.universe import Universe

WorkerEvent = StockSplit | Consolidation | BonusIssue | SharesChange


class UnsupportedEventError(TickIndexError):
    """An event type the partial-sum simulation does not apply."""


class Partials(msgspec.Struct, tag="partials", frozen=True):
    """A worker's partial sums for the indices they changed, after a batch of its ticks.

    ``index`` (int32) and ``total`` (float64) are raw little-endian arrays; ``watermark`` is the
    next tick offset of the worker's partition (every tick before it is included); ``max_ts`` the
    largest tick event time included; ``last`` marks the worker's final message.
    """

    worker: int
    index: bytes
    total: bytes
    watermark: int
    max_ts: int
    ticks: int
    last: bool = False


class Barrier(msgspec.Struct, tag="barrier", frozen=True):
    """A worker's partial sums just before and just after event number ``event``."""

    worker: int
    event: int
    index: bytes
    before: bytes
    after: bytes


class ReducedLevels(msgspec.Struct, tag="reduced", frozen=True):
    """Levels of the indices that changed, with the per-worker watermarks they include."""

    index: bytes
    level: bytes
    watermarks: list[int]
    last: bool = False


WorkerMessage = Partials | Barrier
ENCODER = msgspec.msgpack.Encoder()
WORKER_DECODER = msgspec.msgpack.Decoder(WorkerMessage)
REDUCED_DECODER = msgspec.msgpack.Decoder(ReducedLevels)


def owner_of(security: NDArray[np.int64], workers: int) -> NDArray[np.int64]:
    """The worker (tick partition) of each security id: the partition key is the id."""
    owners: NDArray[np.int64] = security % workers
    return owners


def indices_of(universe: Universe, security: int) -> NDArray[np.int64]:
    """Index ids holding ``security``, increasing: the indices an event on it touches."""
    m = universe.membership
    indices: NDArray[np.int64] = np.unique(m.index[m.security == security]).astype(np.int64)
    return indices


def _ranges(
    starts: NDArray[np.int64], lengths: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Concatenated ``arange(start, start + length)``, and each range's offset in the result."""
    offsets = np.cumsum(lengths) - lengths
    flat = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts - offsets, lengths)
    return flat, offsets


@dataclass
class PartialSumWorker:
    """Per-index partial sums over the securities of worker ``worker`` of ``workers``.

    Each batch recomputes the partial of every index a traded security belongs to from its own
    rows (no running sum to drift), in one vectorised pass.
    """

    universe: Universe
    worker: int
    workers: int
    events: list[IndexEvent] = field(default_factory=list)
    prices: NDArray[np.float64] = field(init=False)
    partial: NDArray[np.float64] = field(init=False)
    applied: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        m = self.universe.membership
        mine = np.flatnonzero(owner_of(m.security.astype(np.int64), self.workers) == self.worker)
        by_index = mine[np.argsort(m.index[mine], kind="stable")]
        self.row_index = m.index[by_index].astype(np.int64)
        self.row_security = m.security[by_index].astype(np.int64)
        self.row_shares = m.issued_shares[by_index].copy()
        self.row_faf_cf = m.faf[by_index] * m.cap_factor[by_index]
        n_indices, n_securities = len(self.universe.indices), self.universe.n_securities
        self.index_start = np.searchsorted(self.row_index, np.arange(n_indices + 1))
        self.security_order = np.argsort(self.row_security, kind="stable")
        self.security_start = np.searchsorted(
            self.row_security[self.security_order], np.arange(n_securities + 1)
        )
        self.prices = np.nan_to_num(self.universe.prev_close, nan=0.0).astype(np.float64)
        self.partial = np.zeros(n_indices)
        self.partial[:] = self._sums(np.arange(n_indices, dtype=np.int64))
        self.events = sorted(self.events, key=lambda event: event.effective)

    def snapshot(self) -> Partials:
        """Every index's partial sum (the worker's first message)."""
        everything = np.arange(self.partial.size, dtype=np.int32)
        return Partials(self.worker, everything.tobytes(), self.partial.tobytes(), 0, 0, 0)

    def apply(
        self,
        security: NDArray[np.int64],
        price: NDArray[np.float64],
        ts_event: NDArray[np.int64],
        watermark: int,
    ) -> list[WorkerMessage]:
        """Apply ticks of this worker (in event order); the messages they produce, in order.

        Events effective inside the batch split it: ticks before the effective time, then the
        event (a ``Barrier``), then the rest; the last ``Partials`` carries ``watermark``.
        """
        messages: list[WorkerMessage] = []
        start = 0
        while self.applied < len(self.events):
            event = self.events[self.applied]
            cut = start + int(np.searchsorted(ts_event[start:], event.effective, side="left"))
            if cut == len(ts_event):
                break
            messages += self._ticks(security[start:cut], price[start:cut], ts_event[start:cut])
            messages.append(self._barrier(event))
            self.applied += 1
            start = cut
        tail = self._ticks(security[start:], price[start:], ts_event[start:])
        max_ts = int(ts_event[-1]) if ts_event.size else 0
        closing = tail[0] if tail else Partials(self.worker, b"", b"", 0, 0, 0)
        messages.append(msgspec.structs.replace(closing, watermark=watermark, max_ts=max_ts))
        return messages

    def _ticks(
        self, security: NDArray[np.int64], price: NDArray[np.float64], ts_event: NDArray[np.int64]
    ) -> list[Partials]:
        if security.size == 0:
            return []
        traded, last_from_end = np.unique(security[::-1], return_index=True)
        self.prices[traded] = price[::-1][last_from_end]
        touched = np.unique(self.row_index[self._rows_of_securities(traded)])
        sums = self._sums(touched)
        changed = touched[sums != self.partial[touched]]
        self.partial[touched] = sums
        index = changed.astype(np.int32).tobytes()
        total = self.partial[changed].tobytes()
        return [Partials(self.worker, index, total, 0, int(ts_event[-1]), int(security.size))]

    def _barrier(self, event: IndexEvent) -> Barrier:
        """Apply ``event`` to this worker's rows; its before/after partials of the touched indices.

        Every worker answers, also one without rows of the event's security: the reducer needs
        every worker's partial AT the event time, and only the worker knows it.
        """
        if not isinstance(event, WorkerEvent):
            raise UnsupportedEventError(f"the partial-sum simulation cannot apply {event!r}")
        security = self.universe.security_id(event.security)
        touched = indices_of(self.universe, security)
        before = self.partial[touched].copy()
        if security % self.workers == self.worker:  # as owner_of
            rows = self._rows_of_securities(np.array([security], dtype=np.int64))
            if isinstance(event, SharesChange):
                self.row_shares[rows] = event.issued_shares
            else:
                factor = share_factor(event)
                self.row_shares[rows] *= factor
                self.prices[security] /= factor
            self.partial[touched] = self._sums(touched)
        return Barrier(
            self.worker,
            self.applied,
            touched.astype(np.int32).tobytes(),
            before.tobytes(),
            self.partial[touched].tobytes(),
        )

    def _rows_of_securities(self, securities: NDArray[np.int64]) -> NDArray[np.int64]:
        starts = self.security_start[securities]
        flat, _ = _ranges(starts, self.security_start[securities + 1] - starts)
        rows: NDArray[np.int64] = self.security_order[flat]
        return rows

    def _sums(self, indices: NDArray[np.int64]) -> NDArray[np.float64]:
        """Partial sum of each of ``indices`` over this worker's rows (0 without rows)."""
        starts = self.index_start[indices]
        lengths = self.index_start[indices + 1] - starts
        rows, offsets = _ranges(starts, lengths)
        terms = self.prices[self.row_security[rows]] * self.row_shares[rows] * self.row_faf_cf[rows]
        sums = np.zeros(indices.size)
        nonempty = lengths > 0
        if rows.size:
            sums[nonempty] = np.add.reduceat(terms, offsets[nonempty])
        return sums
