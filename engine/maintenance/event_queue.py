"""Scheduled maintenance events: where each came from, the queue, and who may join it.

Events wait in an ``EventQueue`` until their effective time. Each carries its ``EventOrigin``
(an events file line, or the control record's topic, partition, offset, key and bytes), so an
event that fails when it finally applies is still reported against its source. The live
service admits events through ``admission_error``: unknown index or security, an effective
time too far in the past or the future, a duplicate or conflicting event, or a full queue is
refused with a reason instead of being queued.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import msgspec

from engine.maintenance.adjustments import describe
from engine.maintenance.events import (
    AddConstituent,
    IndexEvent,
    ReplaceConstituent,
    Review,
    indices_named,
)

NS_PER_DAY = 86_400 * 10**9


class EventOrigin(msgspec.Struct, frozen=True, array_like=True):
    """Where an event came from.

    Attributes
    ----------
    source : str
        ``FILE:LINE`` for an events file, ``topic[partition]@offset`` for a control record.
    topic, partition, offset, key, value
        The control record (``value`` its original bytes), so a late dead letter can carry
        them; empty for an events file.
    """

    source: str
    topic: str = ""
    partition: int = -1
    offset: int = -1
    key: bytes | None = None
    value: bytes = b""


class PendingEvent(msgspec.Struct, frozen=True, array_like=True):
    """An event waiting for its effective time, with its origin (None: built in code)."""

    event: IndexEvent
    origin: EventOrigin | None = None


@dataclass(frozen=True)
class FailedEvent:
    """An event that could not be applied, with its origin and the reason.

    ``str()`` gives ``SOURCE: cause at EFFECTIVE: error`` (``FILE:LINE: ...`` for files).
    """

    event: IndexEvent
    origin: EventOrigin | None
    error: str

    def __str__(self) -> str:
        where = "" if self.origin is None else f"{self.origin.source}: "
        return f"{where}{describe(self.event)} at {self.event.effective}: {self.error}"


@dataclass(frozen=True)
class EventLimits:
    """What the live service admits onto its event queue.

    Attributes
    ----------
    max_pending : int
        Most events waiting at once.
    max_pending_bytes : int
        Most encoded bytes of waiting events (they are stored in every checkpoint).
    late_tolerance_ns : int
        How far before the last tick time an effective time may be (it then applies at once).
    horizon_ns : int
        How far after the wall clock an effective time may be.
    """

    max_pending: int = 10_000
    max_pending_bytes: int = 4 << 20
    late_tolerance_ns: int = 60 * 10**9
    horizon_ns: int = 400 * NS_PER_DAY


_ENCODER = msgspec.msgpack.Encoder()


class EventQueue:
    """Pending events in effective-time order (file order among equal times)."""

    def __init__(self) -> None:
        self._times: list[int] = []
        self._pending: list[PendingEvent] = []
        self._sizes: list[int] = []
        self._encodings: list[bytes] = []
        self._encoded: Counter[bytes] = Counter()
        self._ids: dict[str, bytes] = {}
        self.total_bytes = 0

    def __len__(self) -> int:
        return len(self._pending)

    def __iter__(self) -> Iterator[PendingEvent]:
        return iter(self._pending)

    def push(self, pending: PendingEvent) -> None:
        """Queue one event after every event effective at or before its time."""
        encoded = _ENCODER.encode(pending.event)
        size = len(encoded) + (0 if pending.origin is None else len(pending.origin.value))
        at = bisect.bisect_right(self._times, pending.event.effective)
        self._times.insert(at, pending.event.effective)
        self._pending.insert(at, pending)
        self._sizes.insert(at, size)
        self._encodings.insert(at, encoded)
        self._encoded[encoded] += 1
        if pending.event.id is not None:
            self._ids[pending.event.id] = encoded
        self.total_bytes += size

    def first_effective(self) -> int | None:
        """Effective time of the next event, None when empty."""
        return self._times[0] if self._times else None

    def pop(self) -> PendingEvent:
        """Take the next event."""
        pending = self._pending.pop(0)
        del self._times[0]
        self.total_bytes -= self._sizes.pop(0)
        encoded = self._encodings.pop(0)
        self._encoded[encoded] -= 1
        if not self._encoded[encoded]:
            del self._encoded[encoded]
        if pending.event.id is not None and self._ids.get(pending.event.id) == encoded:
            del self._ids[pending.event.id]
        return pending

    def conflict(self, event: IndexEvent) -> str | None:
        """Why ``event`` clashes with a waiting one (same event again, or same id), or None."""
        encoded = _ENCODER.encode(event)
        if encoded in self._encoded:
            return "duplicate of a pending event"
        if event.id is not None and event.id in self._ids:
            return f"conflicts with the pending event of id {event.id!r}"
        return None


def _needs_existing(event: IndexEvent) -> list[str]:
    """Security codes the event needs to exist already (adds and reviews introduce theirs)."""
    if isinstance(event, AddConstituent | Review):
        return []
    if isinstance(event, ReplaceConstituent):
        return [event.old_security]
    return [event.security]


def admission_error(
    event: IndexEvent,
    *,
    queue: EventQueue,
    limits: EventLimits,
    index_codes: Iterable[str],
    is_known_security: Callable[[str], bool],
    clock_ns: int | None,
    wall_ns: int,
) -> str | None:
    """Why ``event`` may not join ``queue``, or None when it may.

    Parameters
    ----------
    event : IndexEvent
        A decoded (hence range-checked) event.
    queue : EventQueue
        The waiting events.
    limits : EventLimits
        Bounds of the queue and of effective times.
    index_codes : iterable of str
        Indices of the universe.
    is_known_security : callable
        Whether a security code has an id (registered, or introduced by an admitted event).
    clock_ns : int or None
        Event time of the stream (last tick applied), None before the first tick.
    wall_ns : int
        Wall-clock time, ns.
    """
    if len(queue) >= limits.max_pending:
        return f"too many pending events ({len(queue)})"
    if queue.total_bytes >= limits.max_pending_bytes:
        return f"pending events too large ({queue.total_bytes} bytes)"
    if event.effective > wall_ns + limits.horizon_ns:
        days = limits.horizon_ns // NS_PER_DAY
        return f"effective {event.effective} is more than {days} days ahead of the wall clock"
    if clock_ns is not None and event.effective < clock_ns - limits.late_tolerance_ns:
        return (
            f"effective {event.effective} is in the past: the stream is at {clock_ns}, "
            f"tolerance {limits.late_tolerance_ns // 10**6} ms"
        )
    known_indices = set(index_codes)
    unknown = [code for code in indices_named(event) if code not in known_indices]
    if unknown:
        return f"unknown index {unknown[0]!r}"
    missing = [code for code in _needs_existing(event) if not is_known_security(code)]
    if missing:
        return f"unknown security {missing[0]!r}"
    return queue.conflict(event)
