"""``ClientQueue``: one stream client's bounded queue, conflating to the latest level per index.

The consumer puts every level into every client's queue without waiting: a full queue is
conflated to the latest level per index (counted) and the client is marked behind until its
sender has written everything queued; a client behind for longer than allowed is disconnected
by the gateway's watchdog. So a slow client never blocks the consumer or the other clients.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from consumers.gateway.book import Level
from consumers.level_client import RecordKey, record_key
from engine.analytics.records import AnalyticsRecord

Item = Level | AnalyticsRecord
"""What a client's queue holds: levels and, when it asked for them, analytics records."""

#: Drop reasons of ``DropCounts``: conflated because the queue was full, or by the client's
#: own ``conflate_ms`` interval.
QUEUE_FULL = "queue_full"
INTERVAL = "conflate_interval"

_client_ids = itertools.count(1)


@dataclass
class DropCounts:
    """Levels a client did not get, by reason."""

    queue_full: int = 0
    conflate_interval: int = 0


def _stream_of(item: Item) -> str | RecordKey:
    return item.index if isinstance(item, Level) else record_key(item)


def latest_per_index(levels: Sequence[Item]) -> list[Item]:
    """The last level of each index (and the last analytics record of each index, pair and
    signal stream) in ``levels``, in the order of those last ones."""
    last = {_stream_of(item): position for position, item in enumerate(levels)}
    return [levels[position] for position in sorted(last.values())]


@dataclass(eq=False)
class ClientQueue:
    """Levels waiting to be sent to one client.

    Parameters
    ----------
    transport : str
        ``"websocket"`` or ``"sse"`` (for metrics and logs).
    indices : frozenset of str, optional
        The client's subscription; None: every index.
    capacity : int
        Most levels queued before the queue conflates.
    conflate_s : float
        The client's conflation interval (0: every level).
    analytics : bool
        Whether the client also gets the analytics records (bounded and conflated like levels).
    clock : callable
        Monotonic clock in seconds.
    """

    transport: str
    indices: frozenset[str] | None
    capacity: int
    conflate_s: float = 0.0
    analytics: bool = False
    clock: Callable[[], float] = time.monotonic
    client_id: int = field(default_factory=lambda: next(_client_ids))
    drops: DropCounts = field(default_factory=DropCounts)
    behind_since: float | None = None
    disconnect_reason: str | None = None
    _levels: list[Item] = field(default_factory=list)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _gone: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, code: str) -> bool:
        """Whether the client subscribed to ``code``."""
        return self.indices is None or code in self.indices

    def put(self, levels: list[Level]) -> None:
        """Queue the subscribed ones of ``levels``, conflating when the queue overflows."""
        if self.disconnect_reason is not None:
            return
        wanted = levels if self.indices is None else [lv for lv in levels if self.wants(lv.index)]
        self._queue(wanted)

    def put_analytics(self, records: list[AnalyticsRecord]) -> None:
        """Queue ``records`` if the client asked for analytics (all of them: no index filter)."""
        if self.analytics and self.disconnect_reason is None:
            self._queue(records)

    def _queue(self, wanted: Sequence[Item]) -> None:
        if not wanted:
            return
        self._levels.extend(wanted)
        if len(self._levels) > self.capacity:
            kept = latest_per_index(self._levels)
            self.drops.queue_full += len(self._levels) - len(kept)
            self._levels = kept
            if self.behind_since is None:
                self.behind_since = self.clock()
        self._ready.set()

    def __len__(self) -> int:
        return len(self._levels)

    def oldest_ts_event(self) -> int | None:
        """Event time of the oldest queued level, if any."""
        return self._levels[0].ts_event if self._levels else None

    async def take(self) -> list[Item]:
        """Wait for levels and take them all (only the latest per index with an interval)."""
        while not self._levels:
            if self.disconnect_reason is not None:
                return []
            self._ready.clear()
            await self._ready.wait()
        taken, self._levels = self._levels, []
        if self.conflate_s > 0:
            kept = latest_per_index(taken)
            self.drops.conflate_interval += len(taken) - len(kept)
            taken = kept
        return taken

    def sent(self) -> None:
        """The sender wrote what it took: the client has caught up if nothing new is queued."""
        if not self._levels:
            self.behind_since = None

    def behind_for(self) -> float:
        """Seconds the client has been behind (0 when it is not)."""
        return 0.0 if self.behind_since is None else self.clock() - self.behind_since

    def disconnect(self, reason: str) -> None:
        """Mark the client for disconnection with ``reason`` and wake its sender."""
        if self.disconnect_reason is None:
            self.disconnect_reason = reason
        self._ready.set()
        self._gone.set()

    async def disconnected(self) -> None:
        """Wait until ``disconnect`` is called."""
        await self._gone.wait()
