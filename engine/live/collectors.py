"""Prometheus collectors fed with numpy arrays: a histogram observed per batch, per-index series.

Both keep their state in arrays and expand it into samples only when scraped, so the service
never touches a metric per tick.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar, cast

import numpy as np
from numpy.typing import NDArray
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

_T = TypeVar("_T", bound=np.generic)
_format_bound = cast(Callable[[float], str], floatToGoString)


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


class IndexSeries(Collector):
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
