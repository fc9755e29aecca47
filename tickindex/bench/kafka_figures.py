"""Settings and figures of ``tickindex bench --kafka`` (``tickindex.bench.kafka`` runs it)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class KafkaBenchSettings:
    """Sizes and settings of one run.

    Attributes
    ----------
    ticks, batch_ticks, ticks_per_message : int
        N single-tick messages (raw and service runs); ticks of the batch run, per message.
    latency_rate, latency_seconds, warmup_seconds : float
        Paced ticks per second, for how long; levels of warm-up ticks are not measured.
    service, batch_service, latency_service : dict
        ``ServiceConfig`` settings over the defaults, per run. The batch run takes 10 messages
        (10,000 ticks) per engine batch: 20,000 would make ``index_levels`` messages over 1 MB.
    bootstrap, seed, indices, composition, keep_topics
        Broker, simulator seed, reference data files (None: built-in), leave the topics.
    tick_to_level_rates, tick_to_level_seconds : tuple of float, float
        Paced ticks per second of each tick-to-level run (``tickindex.bench.kafka_tick_to_level``),
        and for how long each; ``warmup_seconds`` of each are not measured.
    mechanisms, mechanism_rounds : bool, int
        Also time the service on the single-tick messages with each of ``MECHANISMS`` on and
        off, back to back, that many rounds (``KafkaBenchResult.mechanisms``).
    analytics_rounds : int
        Time the service on the single-tick messages with ``analytics`` (default settings:
        every index, the default pairs) and without, both with ``sessions`` (which analytics
        imply), back to back, that many rounds (``KafkaBenchResult.analytics``); 0: not.
    """

    bootstrap: str = "127.0.0.1:9092"
    ticks: int = 300_000
    batch_ticks: int = 2_000_000
    ticks_per_message: int = 1_000
    latency_rate: float = 20_000.0
    latency_seconds: float = 10.0
    warmup_seconds: float = 1.0
    seed: int = 7
    service: dict[str, Any] = field(default_factory=dict)
    batch_service: dict[str, Any] = field(default_factory=lambda: {"max_batch_ticks": 10_000})
    latency_service: dict[str, Any] = field(default_factory=dict)
    indices: str | None = None
    composition: str | None = None
    keep_topics: bool = False
    mechanisms: bool = False
    mechanism_rounds: int = 5
    analytics_rounds: int = 2
    tick_to_level_rates: tuple[float, ...] = (1_000.0, 10_000.0, 50_000.0)
    tick_to_level_seconds: float = 5.0


@dataclass(frozen=True)
class ServiceFigures:
    """One timed service run: ticks consumed; levels computed, published, expected; seq gaps."""

    ticks: int
    ticks_per_s: float
    consumed_ticks_per_s: float
    drain_ms: float
    stop_ms: float
    levels: int
    published_levels: int
    expected_levels: int
    gaps: int


@dataclass(frozen=True)
class LatencyFigures:
    """The latency run: ticks sent; levels by service, subscriber, universe; ms after warm-up."""

    ticks: int
    service_ticks: int
    service_levels: int
    received_levels: int
    expected_levels: int
    gaps: int
    measured_levels: int
    publish_p50_ms: float
    publish_p99_ms: float
    publish_max_ms: float
    receive_p50_ms: float
    receive_p99_ms: float
    receive_max_ms: float


@dataclass(frozen=True)
class TickToLevelFigures:
    """One paced rate: ticks sent and their pace on the broker; levels measured; ms quantiles.

    ``unmatched`` counts levels whose tick was not found on the tick topic (0 when sound);
    ``levels`` are those of ticks sent after the warm-up. ``echo_*``: the same quantiles of the
    raw echo at that rate in the same run (``tickindex.bench.kafka_echo``), the floor.
    """

    rate: float
    ticks: int
    broker_ticks_per_s: float
    levels: int
    unmatched: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    echo_p50_ms: float = math.nan
    echo_p99_ms: float = math.nan
    echo_p999_ms: float = math.nan


MECHANISMS = ("output_process", "fetched_records")
"""The service's speed mechanisms, each switched off by its ``ServiceConfig`` setting."""


@dataclass(frozen=True)
class MechanismFigures:
    """The single-tick service run with one mechanism on and off, back to back in alternating
    order, for some rounds: ``speedup`` = ticks/s of the fastest run with it / without it; ``on``
    and ``off`` are those runs, ``on_ticks_per_s`` and ``off_ticks_per_s`` every round's."""

    setting: str
    speedup: float
    on: ServiceFigures
    off: ServiceFigures
    on_ticks_per_s: list[float]
    off_ticks_per_s: list[float]


@dataclass(frozen=True)
class KafkaBenchResult:
    """Headline figures (``ratio`` = service / raw), the runs' details and the settings used.

    ``mechanisms``: with ``KafkaBenchSettings.mechanisms``, one entry per mechanism, else empty.
    ``tick_to_level``: one entry per ``KafkaBenchSettings.tick_to_level_rates``.
    ``analytics``: the single-tick run with analytics on and off (``speedup`` = with / without,
    so the time analytics add is ``1 / speedup - 1``); None with ``analytics_rounds`` 0.
    """

    n: int
    raw_messages: int
    raw_msgs_per_s: float
    service_ticks_per_s: float
    ratio: float
    batch_ticks_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    service: ServiceFigures
    batch: ServiceFigures
    latency: LatencyFigures
    settings: dict[str, Any]
    mechanisms: list[MechanismFigures] = field(default_factory=list)
    tick_to_level: list[TickToLevelFigures] = field(default_factory=list)
    analytics: MechanismFigures | None = None
