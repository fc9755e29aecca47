"""Metrics of a process running several shards: one endpoint, one series set per shard.

Each shard's ``ServiceMetrics`` lives on a registry of its own (so the shards never collide on
one series), kept for the life of the process: a shard given back and taken again continues its
counters. The process registry exposes them all through ``ShardCollector`` with a ``shard``
label added to every sample, next to ``tickindex_shard_owned{shard}`` (1 while this process
runs the shard). Per-shard consumer lag is ``tickindex_consumer_lag_messages{shard,...}``.
A shard given back keeps only its counters and histograms here: its gauges (levels, divisors,
lag, phase, checkpoint age) describe the new owner's state now, and a stale copy would show an
old level beside the live one and a checkpoint age that grows until an alert fires.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from engine.live.metrics import ServiceMetrics

_CUMULATIVE = frozenset({"counter", "histogram"})


class ShardCollector(Collector):
    """Every sample of the shards' registries, labelled with its ``shard``."""

    def __init__(self) -> None:
        self.registries: dict[int, CollectorRegistry] = {}
        self.owned: set[int] = set()

    def collect(self) -> Iterator[Metric]:
        """One family per metric name, the samples of every shard in it (of a shard not owned,
        only its counters and histograms)."""
        families: dict[str, Metric] = {}
        for shard, registry in sorted(self.registries.items()):
            for family in registry.collect():
                if shard not in self.owned and family.type not in _CUMULATIVE:
                    continue
                merged = families.get(family.name)
                if merged is None:
                    merged = Metric(family.name, family.documentation, family.type, family.unit)
                    families[family.name] = merged
                for sample in family.samples:
                    merged.add_sample(
                        sample.name,
                        {**sample.labels, "shard": str(shard)},
                        sample.value,
                        timestamp=sample.timestamp,
                        exemplar=sample.exemplar,
                    )
        yield from families.values()


class ShardMetrics:
    """The process's shard metrics, on its registry.

    Parameters
    ----------
    registry : CollectorRegistry
        The process registry (the one the metrics endpoint serves).
    n_shards : int
        Number of shards (``tickindex_shard_owned`` has a series for each, 0 until owned).
    version : str
        The tickindex version, for each shard's ``tickindex_build_info``.
    """

    def __init__(self, registry: CollectorRegistry, n_shards: int, *, version: str) -> None:
        self.version = version
        self._collector = ShardCollector()
        self._metrics: dict[int, ServiceMetrics] = {}
        registry.register(self._collector)
        self._owned = Gauge(
            "tickindex_shard_owned",
            "1 while this process runs the shard, else 0.",
            ["shard"],
            registry=registry,
        )
        for shard in range(n_shards):
            self._owned.labels(str(shard)).set(0)

    def of_shard(self, shard: int, index_codes: Sequence[str]) -> ServiceMetrics:
        """The metrics of ``shard`` (made on first use, then the same object)."""
        metrics = self._metrics.get(shard)
        if metrics is None:
            registry = CollectorRegistry()
            metrics = ServiceMetrics(registry, index_codes, version=self.version)
            self._metrics[shard] = metrics
            self._collector.registries[shard] = registry
        return metrics

    def set_owned(self, shard: int, owned: bool) -> None:
        """Set ``tickindex_shard_owned{shard}``; a shard given back shows no gauges."""
        self._owned.labels(str(shard)).set(1 if owned else 0)
        if owned:
            self._collector.owned.add(shard)
        else:
            self._collector.owned.discard(shard)
            if shard in self._metrics:
                self._metrics[shard].set_consumer_lag({})
