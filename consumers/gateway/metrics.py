"""Prometheus metrics of the gateway, on an injected registry (nothing at import time)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from consumers.gateway.client_queue import INTERVAL, QUEUE_FULL, ClientQueue

TRANSPORTS = ("websocket", "sse")
DROP_REASONS = (QUEUE_FULL, INTERVAL)
#: Reasons of ``tickindex_gateway_disconnects_total``.
SLOW = "slow"
DISCONNECT_REASONS = (SLOW,)
NS_PER_S = 1e9


class _ClientCollector(Collector):
    """Per-client series, read from the live clients at each scrape (none left behind)."""

    def __init__(self, clients: Callable[[], Iterable[ClientQueue]], clock: Callable[[], float]):
        self._clients = clients
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["client", "transport"]
        queued = GaugeMetricFamily(
            "tickindex_gateway_client_queued_levels", "Levels queued per client.", labels=labels
        )
        lag = GaugeMetricFamily(
            "tickindex_gateway_client_lag_seconds",
            "Wall time minus the event time of the oldest level queued per client (0: none).",
            labels=labels,
        )
        now_ns = self._clock() * NS_PER_S
        for client in self._clients():
            key = [str(client.client_id), client.transport]
            queued.add_metric(key, len(client))
            oldest = client.oldest_ts_event()
            lag.add_metric(key, 0.0 if oldest is None else max(0.0, (now_ns - oldest) / NS_PER_S))
        yield queued
        yield lag

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


class GatewayMetrics:
    """Every metric of the gateway, registered on ``registry``.

    Parameters
    ----------
    registry : CollectorRegistry
        Where every series is registered (never the global registry).
    clients : callable
        The connected clients, read at each scrape for the per-client series.
    clock : callable, optional
        Wall clock (seconds since the epoch) for the per-client lag.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        clients: Callable[[], Iterable[ClientQueue]],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        r = registry
        self.levels_received = Counter(
            "tickindex_gateway_levels_received_total",
            "Levels read from the level topic.",
            registry=r,
        )
        self.clients = Gauge(
            "tickindex_gateway_clients", "Connected stream clients.", ["transport"], registry=r
        )
        self.messages = Counter(
            "tickindex_gateway_messages_sent_total",
            "Stream events (levels, gaps, analytics records) sent to clients.",
            ["transport"],
            registry=r,
        )
        self.frames = Counter(
            "tickindex_gateway_frames_sent_total",
            "Stream messages (WebSocket messages, SSE events; each a JSON array of events) sent.",
            ["transport"],
            registry=r,
        )
        self.drops = Counter(
            "tickindex_gateway_levels_dropped_total",
            "Levels conflated away before reaching a client, by reason.",
            ["reason"],
            registry=r,
        )
        self.disconnects = Counter(
            "tickindex_gateway_disconnects_total",
            "Clients disconnected by the gateway, by reason.",
            ["reason"],
            registry=r,
        )
        for transport in TRANSPORTS:
            self.clients.labels(transport)
            self.messages.labels(transport)
            self.frames.labels(transport)
        for reason in DROP_REASONS:
            self.drops.labels(reason)
        for reason in DISCONNECT_REASONS:
            self.disconnects.labels(reason)
        r.register(_ClientCollector(clients, clock))

    def count_drops(self, client: ClientQueue, before: tuple[int, int]) -> tuple[int, int]:
        """Add the client's drops since ``before`` (its counts then) and return its counts now."""
        now = (client.drops.queue_full, client.drops.conflate_interval)
        for reason, new, old in zip(DROP_REASONS, now, before, strict=True):
            if new > old:
                self.drops.labels(reason).inc(new - old)
        return now
