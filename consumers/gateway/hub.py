"""``Gateway``: the level topic consumed into the book and fanned out to the stream clients."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from consumers.gateway.analytics import AnalyticsBook
from consumers.gateway.book import Gap, Level, LevelBook
from consumers.gateway.client_queue import QUEUE_FULL, ClientQueue, Outgoing
from consumers.gateway.day_history import DayHistory
from consumers.gateway.metrics import SLOW, GatewayMetrics
from consumers.gateway.query import Subscription
from consumers.level_client import AnalyticsSubscriber, LevelSubscriber
from engine.analytics.records import AnalyticsRecord
from engine.refdata.universe import Universe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GatewaySettings:
    """How the gateway treats its clients.

    Attributes
    ----------
    queue_levels : int
        Levels queued per stream client before its queue conflates to the latest per index.
    max_behind_s : float
        A client behind (its queue overflowed and is not yet written out) for longer is
        disconnected with reason ``slow``.
    history_levels : int
        Levels kept per index in the history ring (replays and ``/history``).
    max_history_response : int
        Most levels in one ``/history`` answer (the oldest first; ``truncated`` says when
        there are more: ask again from the last one's time).
    max_subscription : int
        Most index codes in one ``indices=`` filter.
    send_buffer_bytes : int, optional
        Kernel send buffer of each stream connection (SO_SNDBUF): bounds what a stalled client
        holds and makes it show as behind sooner; None: the system's default.
    keepalive_s : float
        An idle SSE stream gets a comment this often (so a gone client is noticed).
    frame_interval_s : float
        Levels are handed to the clients at most this often: a level that comes sooner after
        the last hand-out waits for the next, with the others that come meanwhile. Bounds the
        messages per client per second (each one costs the gateway a send whatever its size)
        at the price of this much delay under load; 0: every batch read at once.
    token : str, optional
        Bearer token every request must carry; None: no authentication (loopback only).
    """

    queue_levels: int = 4096
    max_behind_s: float = 5.0
    history_levels: int = 10_000
    max_history_response: int = 100_000
    max_subscription: int = 64
    send_buffer_bytes: int | None = None
    keepalive_s: float = 15.0
    frame_interval_s: float = 0.01
    token: str | None = None


class Gateway:
    """The book, the clients and the metrics of one gateway.

    Parameters
    ----------
    universe : Universe
        The indices served by ``/v1/indices`` and ``/v1/weights`` and accepted in filters.
    settings : GatewaySettings
        Limits and authentication.
    registry : CollectorRegistry
        Where the gateway's metrics are registered.
    day_history : DayHistory, optional
        The recorded day files, for the history the ring no longer (or never) held.
    """

    def __init__(
        self,
        universe: Universe,
        settings: GatewaySettings,
        registry: CollectorRegistry,
        day_history: DayHistory | None = None,
    ) -> None:
        self.universe = universe
        self.settings = settings
        self.registry = registry
        self.book = LevelBook(settings.history_levels)
        self.analytics = AnalyticsBook()
        self.day_history = day_history
        self.clients: set[ClientQueue] = set()
        self.metrics = GatewayMetrics(registry, lambda: list(self.clients))
        self._pending: list[Level] = []
        self._handed_out_at = -float("inf")
        self._hand_out_later: asyncio.TimerHandle | None = None

    def publish(self, levels: Sequence[Level]) -> None:
        """Hand ``levels`` (already in the book) to every client, without waiting: now, or
        with those that follow within ``frame_interval_s`` of the last hand-out."""
        if not levels:
            return
        self.metrics.levels_received.inc(len(levels))
        self._pending.extend(levels)
        if self._hand_out_later is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._hand_out()
            return
        wait = self._handed_out_at + self.settings.frame_interval_s - loop.time()
        if wait <= 0:
            self._hand_out()
        else:
            self._hand_out_later = loop.call_later(wait, self._hand_out)

    def _hand_out(self) -> None:
        if self._hand_out_later is not None:
            self._hand_out_later.cancel()  # harmless when it is the one running now
            self._hand_out_later = None
        with contextlib.suppress(RuntimeError):
            self._handed_out_at = asyncio.get_running_loop().time()
        if not self._pending:
            return
        batch = Outgoing.encode(self._pending)
        self._pending = []
        for client in self.clients:
            before = client.drops.queue_full
            client.put(batch)
            if client.drops.queue_full > before:
                self.metrics.drops.labels(QUEUE_FULL).inc(client.drops.queue_full - before)

    def publish_analytics(self, records: list[AnalyticsRecord]) -> None:
        """Keep the latest of ``records`` and hand them to the clients that asked for them."""
        if not records:
            return
        self.analytics.apply(records)
        self._hand_out()  # the levels before them first
        batch = Outgoing.encode(records)
        for client in self.clients:
            before = client.drops.queue_full
            client.put_analytics(batch)
            if client.drops.queue_full > before:
                self.metrics.drops.labels(QUEUE_FULL).inc(client.drops.queue_full - before)

    async def consume_analytics(self, subscriber: AnalyticsSubscriber) -> None:
        """Read the analytics topic into the book and out to the clients until closed."""
        while not subscriber.closed:
            self.publish_analytics(await subscriber.poll())

    async def consume(self, subscriber: LevelSubscriber) -> None:
        """Read the level topic into the book and out to the clients until closed."""
        async for batch in subscriber:
            self.publish(self.book.apply(batch))

    async def watchdog(self, period_s: float = 0.1) -> None:
        """Disconnect every client behind for longer than ``max_behind_s``, forever."""
        while True:
            await asyncio.sleep(period_s)
            for client in list(self.clients):
                if client.disconnect_reason is None and (
                    client.behind_for() > self.settings.max_behind_s
                ):
                    log.warning(
                        "disconnecting %s client %d: behind for %.1f s (%d levels conflated)",
                        client.transport,
                        client.client_id,
                        client.behind_for(),
                        client.drops.queue_full,
                    )
                    client.disconnect(SLOW)
                    self.metrics.disconnects.labels(SLOW).inc()

    def connect(self, transport: str, wanted: Subscription) -> tuple[ClientQueue, Outgoing]:
        """Register a stream client; also returns what to send before anything queued: what it
        missed since its ``since`` seqs (from the ring, or a ``Gap``) and, when it asked for
        analytics, the latest record of every analytics stream."""
        self._hand_out()  # what the ring holds from now on reaches this client only as missed
        client = ClientQueue(
            transport,
            wanted.indices,
            self.settings.queue_levels,
            conflate_s=wanted.conflate_s,
            analytics=wanted.analytics,
        )
        missed: list[Level | Gap | AnalyticsRecord] = []
        for code, seq in sorted(wanted.since.items()):
            found = self.book.since(code, seq)
            if isinstance(found, Gap):
                missed.append(found)
            else:
                missed.extend(found)
        if wanted.analytics:
            missed.extend(self.analytics.latest())
        self.clients.add(client)
        self.metrics.clients.labels(transport).inc()
        return client, Outgoing.encode(missed)

    def disconnect(self, client: ClientQueue) -> None:
        """Forget a client (idempotent)."""
        if client in self.clients:
            self.clients.discard(client)
            self.metrics.clients.labels(client.transport).dec()
