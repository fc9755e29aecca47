"""Prometheus metrics of the live service, on an injected registry (nothing at import time).

The service records once per batch with numpy arrays: per-level values go into a ``BulkHistogram``
in one vectorised call, never a per-tick loop. ``start_metrics_server`` exposes the registry.
"""

from __future__ import annotations

import math
import platform
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from wsgiref.simple_server import WSGIServer

import numpy as np
import prometheus_client
from numpy.typing import NDArray
from prometheus_client import CollectorRegistry, Counter, Gauge

from engine.kernel.screening import RejectReason
from engine.live.collectors import BulkHistogram, IndexSeries

#: ``tickindex_batch_size_ticks`` buckets: 1-2-5 steps from 1 to 100,000 ticks.
BATCH_SIZE_BUCKETS: tuple[float, ...] = tuple(
    float(m * 10**e) for e in range(6) for m in (1, 2, 5) if m * 10**e <= 100_000
)
#: ``tickindex_batch_processing_seconds`` buckets: 50 us to 5 s.
BATCH_SECONDS_BUCKETS: tuple[float, ...] = (
    50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
)  # fmt: skip
#: ``tickindex_event_to_publish_seconds`` buckets: 100 us to 10 s.
LATENCY_BUCKETS: tuple[float, ...] = (
    100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
)  # fmt: skip
#: States of ``tickindex_service_phase{phase}``.
PHASES: tuple[str, ...] = ("starting", "running", "stopping")
#: ``reason`` labels pre-initialised (at 0) on the rejection and dead-letter counters.
REASON_LABELS: tuple[str, ...] = tuple(r.label for r in RejectReason if r != RejectReason.ACCEPTED)
#: ``reason`` of the dead letter written for a level withheld as NaN or infinite.
NONFINITE_LEVEL = "nonfinite_level"
#: ``kind`` labels of ``tickindex_analytics_records_total``: the analytics records' wire types.
ANALYTICS_KINDS: tuple[str, ...] = ("index_analytics", "pair_analytics", "signal_event")


class ServiceMetrics:
    """Every metric of the live service, registered on the given registry.

    Parameters
    ----------
    registry : CollectorRegistry
        Where every series is registered (never the global registry).
    index_codes : sequence of str
        Index codes in engine order: element ``i`` of per-index arrays is ``index_codes[i]``.
    version : str
        The tickindex version, exported as a label of ``tickindex_build_info``.
    clock : callable, optional
        Wall clock (seconds since the epoch) used for ``tickindex_checkpoint_age_seconds``.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        index_codes: Sequence[str],
        *,
        version: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        codes = tuple(index_codes)
        if len(set(codes)) != len(codes):
            raise ValueError(f"duplicate index codes: {codes}")
        self.index_codes = codes
        self._clock = clock
        self._last_checkpoint = math.nan
        self._lag_keys: set[tuple[str, str]] = set()
        r = registry
        self._consumed = Counter(
            "tickindex_ticks_consumed_total", "Ticks consumed, undecodable included.", registry=r
        )
        self._applied = Counter("tickindex_ticks_applied_total", "Ticks applied.", registry=r)
        self._rejected = Counter(
            "tickindex_ticks_rejected_total", "Ticks rejected, by reason.", ["reason"], registry=r
        )
        self._dead_letters = Counter(
            "tickindex_dead_letters_total", "Dead letters sent, by reason.", ["reason"], registry=r
        )
        for label in REASON_LABELS:
            self._rejected.labels(label)
            self._dead_letters.labels(label)
        self._dead_letters.labels(NONFINITE_LEVEL)
        self._nonfinite = Counter(
            "tickindex_nonfinite_levels_total",
            "Levels withheld because they came out NaN or infinite, per index.",
            ["index"],
            registry=r,
        )
        self._index = IndexSeries(codes, r)
        self._batch_size = BulkHistogram(
            "tickindex_batch_size_ticks", "Ticks consumed per batch.", BATCH_SIZE_BUCKETS, r
        )
        self._batch_seconds = BulkHistogram(
            "tickindex_batch_processing_seconds", "Engine time per batch.", BATCH_SECONDS_BUCKETS, r
        )
        self._latency = BulkHistogram(
            "tickindex_event_to_publish_seconds",
            "Publish wall time minus tick event time, per published level.",
            LATENCY_BUCKETS,
            r,
        )
        lag = "Messages behind the high watermark, per input partition."
        self._lag = Gauge(
            "tickindex_consumer_lag_messages", lag, ["topic", "partition"], registry=r
        )
        age = "Seconds since the last checkpoint (NaN before the first)."
        Gauge("tickindex_checkpoint_age_seconds", age, registry=r).set_function(self._age)
        self._checkpoint_time = Gauge(
            "tickindex_last_checkpoint_timestamp_seconds", "Last checkpoint wall time.", registry=r
        )
        Gauge(
            "tickindex_build_info",
            "Build information (always 1).",
            ["version", "python", "numpy"],
            registry=r,
        ).labels(version, platform.python_version(), np.__version__).set(1)
        self._phase = Gauge("tickindex_service_phase", "Current phase.", ["phase"], registry=r)
        self.set_up(PHASES[0])
        pending = "Maintenance events waiting for their effective time."
        self._pending_events = Gauge("tickindex_pending_events", pending, registry=r)
        self.dead_letter_write_failures = Counter(
            "tickindex_dead_letter_write_failures_total",
            "Dead letters (or audit, bars records) dropped after their sends failed.",
            registry=r,
        )
        self.transactions_aborted = Counter(
            "tickindex_transactions_aborted_total",
            "Exactly-once transactions aborted (retried from the last commit).",
            registry=r,
        )
        self.levels_conflated = Counter(
            "tickindex_levels_conflated_total",
            "Levels never published on the level topic: folded into a later one by conflation.",
            registry=r,
        )
        self._analytics_records = Counter(
            "tickindex_analytics_records_total",
            "Analytics records sent to the analytics topic, by kind.",
            ["kind"],
            registry=r,
        )
        for kind in ANALYTICS_KINDS:
            self._analytics_records.labels(kind)
        self.analytics_records_refused = Counter(
            "tickindex_analytics_records_refused_total",
            "Analytics records not published: a figure not finite or out of bounds.",
            registry=r,
        )
        self._pair_beta = Gauge(
            "tickindex_pair_beta",
            "Last rolling beta of each analytics pair (its first index on its second).",
            ["pair"],
            registry=r,
        )

    def record_batch(
        self,
        *,
        consumed: int,
        applied: int,
        rejected: Mapping[str, int],
        processing_seconds: float,
    ) -> None:
        """Record one processed batch (once per batch, never per tick).

        Parameters
        ----------
        consumed : int
            Ticks taken from the input in this batch, undecodable ones included.
        applied : int
            Ticks applied to the engine.
        rejected : mapping of str to int
            Rejected ticks per ``RejectReason.label``; zero counts may be omitted.
        processing_seconds : float
            Engine time spent on the batch.

        Raises
        ------
        ValueError
            On a negative count (nothing is recorded).
        """
        if consumed < 0 or applied < 0 or any(n < 0 for n in rejected.values()):
            raise ValueError("tick counts must not be negative")
        self._consumed.inc(consumed)
        self._applied.inc(applied)
        for reason, count in rejected.items():
            if count:
                self._rejected.labels(reason).inc(count)
        self._batch_size.observe(consumed)
        self._batch_seconds.observe(processing_seconds)

    def record_published(
        self, levels_per_index: NDArray[np.int64], event_to_publish_seconds: NDArray[np.float64]
    ) -> None:
        """Record one batch's levels once Kafka acknowledged them (once per batch).

        Parameters
        ----------
        levels_per_index : ndarray of int64
            Levels published per index, aligned with ``index_codes``.
        event_to_publish_seconds : ndarray of float64
            One latency per published level, in seconds.

        Raises
        ------
        ValueError
            On a wrongly shaped or negative ``levels_per_index`` (nothing is recorded).
        """
        self._index.add_published(self._index.checked_published(levels_per_index))
        self._latency.observe_many(event_to_publish_seconds)

    def record_dead_letters(self, by_reason: Mapping[str, int]) -> None:
        """Count messages sent to the dead-letter topic, ``by_reason`` (``RejectReason.label``)."""
        if any(n < 0 for n in by_reason.values()):
            raise ValueError("dead-letter counts must not be negative")
        for reason, count in by_reason.items():
            if count:
                self._dead_letters.labels(reason).inc(count)

    def record_control(self, invalid_events: int, pending_events: int) -> None:
        """Count control events dead-lettered (``invalid_event``) and set the pending gauge."""
        self.record_dead_letters({"invalid_event": invalid_events})
        self._pending_events.set(pending_events)

    def record_nonfinite_levels(self, by_index: Mapping[str, int]) -> None:
        """Count levels the engine withheld as NaN or infinite, per index code."""
        for index, count in by_index.items():
            if count > 0:
                self._nonfinite.labels(index).inc(count)

    def record_analytics(
        self, by_kind: Mapping[str, int], refused: int, betas: Mapping[str, float]
    ) -> None:
        """Count one batch's analytics records per kind, the refused ones; set the pair betas.

        Parameters
        ----------
        by_kind : mapping of str to int
            Records sent per wire type (``ANALYTICS_KINDS``).
        refused : int
            Records the codec refused (not sent).
        betas : mapping of str to float
            The last beta of each pair that had one in the batch, by pair name.
        """
        for kind, count in by_kind.items():
            if count:
                self._analytics_records.labels(kind).inc(count)
        if refused:
            self.analytics_records_refused.inc(refused)
        for pair, beta in betas.items():
            self._pair_beta.labels(pair).set(beta)

    def set_consumer_lag(self, lag: Mapping[tuple[str, int], int]) -> None:
        """Replace the consumer lag gauges.

        Parameters
        ----------
        lag : mapping of (str, int) to int
            Messages behind per ``(topic, partition)``, for the whole current assignment;
            partitions absent from it (revoked) lose their series.
        """
        values = {(topic, str(partition)): n for (topic, partition), n in lag.items()}
        for stale in self._lag_keys - values.keys():
            self._lag.remove(*stale)
        for key, n in values.items():
            self._lag.labels(*key).set(n)
        self._lag_keys = set(values)

    def set_index_state(self, levels: NDArray[np.float64], divisors: NDArray[np.float64]) -> None:
        """Set the last level and divisor of every index (aligned with ``index_codes``)."""
        self._index.set_state(levels, divisors)

    def checkpoint_written(self, wall_time_s: float) -> None:
        """Note a checkpoint written at ``wall_time_s`` (``time.time()``); age is per scrape."""
        self._last_checkpoint = float(wall_time_s)
        self._checkpoint_time.set(wall_time_s)

    def set_up(self, phase: str) -> None:
        """Set ``tickindex_service_phase{phase}``: one of ``PHASES``, initially ``starting``."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}, expected one of {PHASES}")
        for name in PHASES:
            self._phase.labels(name).set(1 if name == phase else 0)

    def _age(self) -> float:
        return self._clock() - self._last_checkpoint


class MetricsServer:
    """A running metrics endpoint (from ``start_metrics_server``): ``host``, ``port`` (bound)."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server, self._thread = server, thread
        self.host = str(server.server_address[0])
        self.port = int(server.server_port)
        self._stopped = False

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call more than once."""
        if not self._stopped:
            self._stopped = True
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5.0)


def start_metrics_server(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve ``registry`` over HTTP (any path, e.g. ``/metrics``) from a daemon thread.

    Parameters
    ----------
    registry : CollectorRegistry
        What to expose.
    host : str
        Address to bind, e.g. ``127.0.0.1`` or ``0.0.0.0``.
    port : int
        TCP port; 0 picks a free one (see ``MetricsServer.port``).

    Returns
    -------
    MetricsServer
        The running server; ``stop()`` it when done.
    """
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} outside 0..65535")
    server, thread = prometheus_client.start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, thread)
