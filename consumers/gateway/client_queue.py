"""``ClientQueue``: one stream client's bounded queue, conflating to the latest level per index.

The consumer puts every level into every client's queue without waiting: a full queue is
conflated to the latest level per index (counted) and the client is marked behind until its
sender has written everything queued; a client behind for longer than allowed is disconnected
by the gateway's watchdog. So a slow client never blocks the consumer or the other clients.

Every level is encoded once, when it reaches the gateway (``Outgoing``): the queues hold the
encoded messages beside the items, so a frame for a client is one join of bytes whatever the
number of clients.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import msgspec

from consumers.gateway.book import Gap, Level
from consumers.gateway.ws_frames import text_frame
from consumers.level_client import RecordKey, record_key
from engine.analytics.records import AnalyticsRecord

Item = Level | Gap | AnalyticsRecord
"""What a client is sent: levels, gaps (only before its queue: what it missed) and, when it
asked for them, analytics records."""

#: Drop reasons of ``DropCounts``: conflated because the queue was full, or by the client's
#: own ``conflate_ms`` interval.
QUEUE_FULL = "queue_full"
INTERVAL = "conflate_interval"

_client_ids = itertools.count(1)
_encode = msgspec.json.Encoder().encode


def encode_event(item: Item) -> bytes:
    """The JSON of one stream event: a level, a gap or an analytics record (type-tagged)."""
    return _encode(item.message() if isinstance(item, Level | Gap) else item)


class Outgoing:
    """Stream events and their JSON, position by position; its frame built once however many
    clients it is sent to.

    Parameters
    ----------
    items : list
        The events.
    wire : list of bytes
        The JSON of each event.
    """

    __slots__ = ("_frame", "_latest", "_ws_frame", "items", "wire")

    def __init__(self, items: list[Item], wire: list[bytes]) -> None:
        self.items = items
        self.wire = wire
        self._frame: bytes | None = None
        self._ws_frame: bytes | None = None
        self._latest: Outgoing | None = None

    @classmethod
    def encode(cls, items: Sequence[Item]) -> Outgoing:
        """``items`` with their JSON, each encoded once."""
        return cls(list(items), [encode_event(item) for item in items])

    @classmethod
    def joined(cls, parts: Sequence[Outgoing]) -> Outgoing:
        """The events of ``parts``, one after the other (the one part itself if only one)."""
        if len(parts) == 1:
            return parts[0]
        return cls(
            [item for part in parts for item in part.items],
            [wire for part in parts for wire in part.wire],
        )

    def select(self, positions: list[int]) -> Outgoing:
        """The events at ``positions``."""
        return Outgoing([self.items[i] for i in positions], [self.wire[i] for i in positions])

    def latest(self) -> Outgoing:
        """The last event of each index (and analytics stream), in order; built once."""
        if self._latest is None:
            latest = self.select(latest_per_index(self.items))
            latest._latest = latest
            self._latest = latest
        return self._latest

    def frame(self) -> bytes:
        """One stream message: the JSON array of the events, in order."""
        if self._frame is None:
            self._frame = b"[" + b",".join(self.wire) + b"]"
        return self._frame

    def ws_frame(self) -> bytes:
        """``frame()`` as a WebSocket text frame; built once."""
        if self._ws_frame is None:
            self._ws_frame = text_frame(self.frame())
        return self._ws_frame

    def __len__(self) -> int:
        return len(self.items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Outgoing):
            return NotImplemented
        return (self.items, self.wire) == (other.items, other.wire)

    __hash__ = None  # type: ignore[assignment]


@dataclass
class DropCounts:
    """Levels a client did not get, by reason."""

    queue_full: int = 0
    conflate_interval: int = 0


class Backlog:
    """Several ``Outgoing`` sent as one message, each part's frame reused (no event copied one
    by one: a client that fell a few hand-outs behind costs no more per level than one that
    did not)."""

    __slots__ = ("parts",)

    def __init__(self, parts: list[Outgoing]) -> None:
        self.parts = parts

    def frame(self) -> bytes:
        """One stream message: the JSON array of every part's events, in order."""
        return b"[" + b",".join(memoryview(part.frame())[1:-1] for part in self.parts) + b"]"

    def ws_frame(self) -> bytes:
        """``frame()`` as a WebSocket text frame."""
        return text_frame(self.frame())

    def __len__(self) -> int:
        return sum(map(len, self.parts))

    @property
    def items(self) -> list[Item]:
        """The events of every part, in order."""
        return [item for part in self.parts for item in part.items]

    @property
    def wire(self) -> list[bytes]:
        """The JSON of every event, in order."""
        return [wire for part in self.parts for wire in part.wire]


Taken = Outgoing | Backlog
"""What a client's sender takes from its queue at once: one stream message."""


def _stream_of(item: Item) -> str | RecordKey:
    if isinstance(item, Gap):
        return ("gap", item.index, False)
    return item.index if isinstance(item, Level) else record_key(item)


def latest_per_index(levels: Sequence[Item]) -> list[int]:
    """Positions of the last level of each index (and the last analytics record of each index,
    pair and signal stream) in ``levels``, in order."""
    last = {_stream_of(item): position for position, item in enumerate(levels)}
    return sorted(last.values())


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
    _chunks: list[Outgoing] = field(default_factory=list)
    _queued: int = 0
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _gone: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, code: str) -> bool:
        """Whether the client subscribed to ``code``."""
        return self.indices is None or code in self.indices

    def put(self, levels: Outgoing) -> None:
        """Queue the subscribed ones of ``levels``, conflating when the queue overflows."""
        if self.disconnect_reason is not None:
            return
        if self.indices is None:
            self._queue(levels)
            return
        kept = [
            position
            for position, item in enumerate(levels.items)
            if isinstance(item, Level) and self.wants(item.index)
        ]
        self._queue(levels.select(kept))

    def put_analytics(self, records: Outgoing) -> None:
        """Queue ``records`` if the client asked for analytics (all of them: no index filter)."""
        if self.analytics and self.disconnect_reason is None:
            self._queue(records)

    def _queue(self, wanted: Outgoing) -> None:
        if not wanted.items:
            return
        self._chunks.append(wanted)  # shared with the other clients: never changed in place
        self._queued += len(wanted)
        if self._queued > self.capacity:
            # Each chunk's latest is shared by every client it went to: a client's conflation
            # costs its number of chunks times the indices, not the levels queued.
            kept = Outgoing.joined([chunk.latest() for chunk in self._chunks]).latest()
            self.drops.queue_full += self._queued - len(kept)
            self._chunks, self._queued = [kept], len(kept)
            if self.behind_since is None:
                self.behind_since = self.clock()
        self._ready.set()

    def __len__(self) -> int:
        return self._queued

    def oldest_ts_event(self) -> int | None:
        """Event time of the oldest queued level, if any (gaps are never queued)."""
        oldest = self._chunks[0].items[0] if self._chunks else None
        return None if oldest is None or isinstance(oldest, Gap) else oldest.ts_event

    async def take(self) -> Taken:
        """Wait for levels and take them all (only the latest per index with an interval)."""
        while not self._chunks:
            if self.disconnect_reason is not None:
                return Outgoing([], [])
            self._ready.clear()
            await self._ready.wait()
        chunks, queued = self._chunks, self._queued
        self._chunks, self._queued = [], 0
        if self.conflate_s > 0:
            kept = Outgoing.joined([chunk.latest() for chunk in chunks]).latest()
            self.drops.conflate_interval += queued - len(kept)
            return kept
        return chunks[0] if len(chunks) == 1 else Backlog(chunks)

    def sent(self) -> None:
        """The sender wrote what it took: the client has caught up if nothing new is queued."""
        if not self._chunks:
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
