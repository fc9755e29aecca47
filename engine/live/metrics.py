"""Prometheus metrics of the live service, on an injected registry (nothing at import time).

The service records once per batch with numpy arrays: per-level values go into a ``BulkHistogram``
in one vectorised call, never a per-tick loop. ``start_metrics_server`` exposes the registry.
"""

from __future__ import annotations

import bisect
import math
import platform
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar, cast
from wsgiref.simple_server import WSGIServer

import numpy as np
import prometheus_client
from numpy.typing import NDArray
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from engine.screening import RejectReason

_T = TypeVar("_T", bound=np.generic)
_format_bound = cast(Callable[[float], str], floatToGoString)

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


class BulkHistogram(Collector):
    """A histogram fed with whole numpy arrays.

    Prometheus bucket semantics (a value counts in every bucket whose upper bound ``le`` is
    ``>=`` it) and the standard ``_bucket{le=...}``, ``_sum`` and ``_count`` exposition.
    ``observe_many`` sorts an array once and counts it into every bucket with one
    ``np.searchsorted`` of the bounds (3x faster than searching each value); only the final
    addition holds the lock, so ``collect()`` (run by the HTTP exporter thread) always sees
    whole batches. NaN values are ignored.

    Parameters
    ----------
    name : str
        Metric name, without the ``_bucket``/``_sum``/``_count`` suffixes.
    documentation : str
        Help text.
    buckets : sequence of float
        Finite, strictly increasing upper bounds; a trailing ``+Inf`` is optional (implied).
    registry : CollectorRegistry
        Where the histogram registers itself.
    """

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        bounds = np.asarray(buckets, dtype=np.float64)
        if bounds.ndim == 1 and bounds.size and bounds[-1] == math.inf:
            bounds = bounds[:-1]
        if bounds.ndim != 1 or bounds.size == 0:
            raise ValueError(f"{name}: need at least one finite bucket bound")
        if not np.isfinite(bounds).all() or (np.diff(bounds) <= 0).any():
            raise ValueError(f"{name}: bucket bounds must be finite and strictly increasing")
        self._name, self._documentation = name, documentation
        self._edges = np.append(bounds, math.inf)  # +Inf counts every value except NaN
        self._bounds_list: list[float] = bounds.tolist()
        self._le = [_format_bound(b) for b in self._bounds_list] + ["+Inf"]
        self._cumulative = np.zeros(self._edges.size, dtype=np.int64)
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe_many(self, values: NDArray[np.float64]) -> None:
        """Add every value of an array (any shape) in one vectorised call.

        Parameters
        ----------
        values : ndarray of float64
            The observations, e.g. one latency per published level of a batch.
        """
        ordered = np.sort(np.asarray(values, dtype=np.float64), axis=None)  # NaN sorts last
        cumulative = np.searchsorted(ordered, self._edges, side="right")  # values <= each le
        total = float(ordered[: cumulative[-1]].sum())
        with self._lock:
            self._cumulative += cumulative
            self._sum += total

    def observe(self, value: float) -> None:
        """Add one ``value`` (ignored if NaN); for one observation per batch."""
        value = float(value)
        if math.isnan(value):
            return
        slot = bisect.bisect_left(self._bounds_list, value)
        with self._lock:
            self._cumulative[slot:] += 1
            self._sum += value

    def describe(self) -> Iterable[Metric]:
        """The family without samples, so that the registry detects name clashes."""
        return [HistogramMetricFamily(self._name, self._documentation)]

    def collect(self) -> Iterable[Metric]:
        """One consistent snapshot: cumulative buckets, sum and count."""
        with self._lock:
            cumulative: list[int] = self._cumulative.tolist()
            total = self._sum
        buckets = list(zip(self._le, cumulative, strict=True))
        return [HistogramMetricFamily(self._name, self._documentation, buckets, total)]


class _IndexSeries(Collector):
    """Per-index series kept as numpy arrays and expanded only at scrape time."""

    def __init__(self, index_codes: tuple[str, ...], registry: CollectorRegistry) -> None:
        self._codes = index_codes
        self._published = np.zeros(len(index_codes), dtype=np.int64)
        self._levels = np.full(len(index_codes), np.nan)
        self._divisors = np.full(len(index_codes), np.nan)
        self._created = time.time()
        self._lock = threading.Lock()
        registry.register(self)

    def _aligned(self, what: str, array: NDArray[_T]) -> NDArray[_T]:
        if array.shape != (len(self._codes),):
            raise ValueError(f"{what}: shape {array.shape}, expected ({len(self._codes)},)")
        return array

    def checked_published(self, counts: NDArray[np.int64]) -> NDArray[np.int64]:
        array = self._aligned("levels_per_index", np.asarray(counts, dtype=np.int64))
        if (array < 0).any():
            raise ValueError("levels_per_index: negative count")
        return array

    def add_published(self, counts: NDArray[np.int64]) -> None:
        with self._lock:
            self._published += counts

    def set_state(self, levels: NDArray[np.float64], divisors: NDArray[np.float64]) -> None:
        new_levels = self._aligned("levels", np.array(levels, dtype=np.float64))
        new_divisors = self._aligned("divisors", np.array(divisors, dtype=np.float64))
        with self._lock:
            self._levels, self._divisors = new_levels, new_divisors

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            published: list[int] = self._published.tolist()
            levels: list[float] = self._levels.tolist()
            divisors: list[float] = self._divisors.tolist()
        families = self._families()
        published_total, level, divisor = families
        for i, code in enumerate(self._codes):
            published_total.add_metric([code], published[i], created=self._created)
            level.add_metric([code], levels[i])
            divisor.add_metric([code], divisors[i])
        return families

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            CounterMetricFamily(
                "tickindex_levels_published_total", "Levels published, per index.", labels=["index"]
            ),
            GaugeMetricFamily("tickindex_index_level", "Last level, per index.", labels=["index"]),
            GaugeMetricFamily("tickindex_index_divisor", "Divisor, per index.", labels=["index"]),
        )


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
        self._index = _IndexSeries(codes, r)
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
