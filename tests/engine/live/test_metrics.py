"""Prometheus metrics of the live service: values, bulk bucketing, threads, HTTP and promtool."""

from __future__ import annotations

import math
import platform
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import cast

import numpy as np
import pytest
from numpy.typing import NDArray
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.utils import floatToGoString

from engine.kernel.screening import RejectReason
from engine.live.collectors import BulkHistogram
from engine.live.metrics import (
    BATCH_SIZE_BUCKETS,
    LATENCY_BUCKETS,
    PHASES,
    REASON_LABELS,
    ServiceMetrics,
    start_metrics_server,
)
from tests.support.real_parts import require_tool

CODES = ("HSI", "HSCEI", "HSTECH")
LATENCY = "tickindex_event_to_publish_seconds"
METRIC_NAMES = (
    "tickindex_ticks_consumed_total",
    "tickindex_ticks_applied_total",
    "tickindex_ticks_rejected_total",
    "tickindex_dead_letters_total",
    "tickindex_levels_published_total",
    "tickindex_batch_size_ticks_bucket",
    "tickindex_batch_processing_seconds_bucket",
    "tickindex_event_to_publish_seconds_bucket",
    "tickindex_consumer_lag_messages",
    "tickindex_index_level",
    "tickindex_index_divisor",
    "tickindex_checkpoint_age_seconds",
    "tickindex_build_info",
)


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture
def metrics(registry: CollectorRegistry, clock: FakeClock) -> ServiceMetrics:
    return ServiceMetrics(registry, CODES, version="1.2.3", clock=clock)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    sample = registry.get_sample_value(name, labels)
    assert sample is not None, f"no sample {name}{labels}"
    return sample


le = cast(Callable[[float], str], floatToGoString)


def reference_cumulative(values: list[float], bounds: tuple[float, ...]) -> list[int]:
    """Plain-Python Prometheus bucketing: a value counts in every bucket with le >= value."""
    return [sum(1 for v in values if not math.isnan(v) and v <= b) for b in (*bounds, math.inf)]


def exposed_cumulative(
    registry: CollectorRegistry, name: str, bounds: tuple[float, ...]
) -> list[int]:
    return [int(value(registry, f"{name}_bucket", le=le(b))) for b in (*bounds, math.inf)]


def test_labelled_series_exist_at_zero_from_construction(registry: CollectorRegistry) -> None:
    ServiceMetrics(registry, CODES, version="1.2.3")
    assert set(REASON_LABELS) == {r.label for r in RejectReason} - {"accepted"}
    for reason in REASON_LABELS:
        assert value(registry, "tickindex_ticks_rejected_total", reason=reason) == 0
        assert value(registry, "tickindex_dead_letters_total", reason=reason) == 0
    for code in CODES:
        assert value(registry, "tickindex_levels_published_total", index=code) == 0
        assert math.isnan(value(registry, "tickindex_index_level", index=code))
    assert value(registry, "tickindex_ticks_consumed_total") == 0
    assert value(registry, f"{LATENCY}_count") == 0
    assert math.isnan(value(registry, "tickindex_checkpoint_age_seconds"))
    assert value(registry, "tickindex_service_phase", phase="starting") == 1
    info = {"version": "1.2.3", "python": platform.python_version(), "numpy": np.__version__}
    assert value(registry, "tickindex_build_info", **info) == 1


def test_record_batch_twice(metrics: ServiceMetrics, registry: CollectorRegistry) -> None:
    latencies_1 = np.array([0.0001, 0.0004, 0.003, 0.003, 12.0])
    latencies_2 = np.array([0.01, 0.02])
    metrics.record_batch(
        consumed=120,
        applied=100,
        rejected={"unknown_security": 15, "undecodable": 5, "bad_timestamp": 0},
        processing_seconds=0.004,
    )
    metrics.record_published(np.array([3, 0, 2], dtype=np.int64), latencies_1)
    metrics.record_batch(
        consumed=7,
        applied=6,
        rejected={"unknown_security": 1},
        processing_seconds=0.0002,
    )
    metrics.record_published(np.array([1, 1, 0], dtype=np.int64), latencies_2)
    assert value(registry, "tickindex_ticks_consumed_total") == 127
    assert value(registry, "tickindex_ticks_applied_total") == 106
    rejected = {
        r: value(registry, "tickindex_ticks_rejected_total", reason=r) for r in REASON_LABELS
    }
    assert rejected == {
        r: {"unknown_security": 16, "undecodable": 5}.get(r, 0) for r in REASON_LABELS
    }
    published = [value(registry, "tickindex_levels_published_total", index=c) for c in CODES]
    assert published == [4, 1, 2]
    assert value(registry, "tickindex_batch_size_ticks_count") == 2
    assert value(registry, "tickindex_batch_size_ticks_sum") == 127
    sizes = exposed_cumulative(registry, "tickindex_batch_size_ticks", BATCH_SIZE_BUCKETS)
    assert sizes == reference_cumulative([120, 7], BATCH_SIZE_BUCKETS)
    assert value(registry, "tickindex_batch_processing_seconds_count") == 2
    assert value(registry, "tickindex_batch_processing_seconds_sum") == pytest.approx(0.0042)
    assert value(registry, f"{LATENCY}_count") == 7
    all_latencies = [*latencies_1.tolist(), *latencies_2.tolist()]
    assert value(registry, f"{LATENCY}_sum") == pytest.approx(sum(all_latencies))
    assert exposed_cumulative(registry, LATENCY, LATENCY_BUCKETS) == reference_cumulative(
        all_latencies, LATENCY_BUCKETS
    )


def test_bad_batch_records_nothing(metrics: ServiceMetrics, registry: CollectorRegistry) -> None:
    with pytest.raises(ValueError, match="levels_per_index"):
        metrics.record_published(np.array([1, 2], dtype=np.int64), np.zeros(3))
    with pytest.raises(ValueError, match="negative"):
        metrics.record_published(np.array([1, -1, 0], dtype=np.int64), np.zeros(3))
    with pytest.raises(ValueError, match="negative"):
        metrics.record_batch(
            consumed=3,
            applied=3,
            rejected={"unknown_security": -1},
            processing_seconds=0.001,
        )
    assert value(registry, "tickindex_ticks_consumed_total") == 0
    assert value(registry, "tickindex_batch_size_ticks_count") == 0
    assert value(registry, f"{LATENCY}_count") == 0
    assert value(registry, "tickindex_levels_published_total", index=CODES[0]) == 0


def boundary_values(bounds: tuple[float, ...], rng: np.random.Generator) -> NDArray[np.float64]:
    edges = np.array(bounds)
    exact = np.repeat(edges, 2)
    around = np.concatenate([np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])
    between = (edges[:-1] + edges[1:]) / 2
    outside = np.array([-1.0, 0.0, edges[0] / 2, edges[-1] * 3, np.inf])
    randoms = np.exp(rng.uniform(np.log(edges[0] / 10), np.log(edges[-1] * 10), 2000))
    values = np.concatenate([exact, around, between, outside, randoms])
    return rng.permutation(values)


def test_bulk_histogram_buckets_match_plain_python_and_prometheus_client(
    registry: CollectorRegistry, rng: np.random.Generator
) -> None:
    values = boundary_values(LATENCY_BUCKETS, rng)
    bulk = BulkHistogram("bulk_seconds", "Bulk.", LATENCY_BUCKETS, registry)
    for chunk in np.array_split(values, 7):
        bulk.observe_many(chunk)
    bulk.observe_many(np.array([np.nan, 0.5, np.nan]))  # NaN is ignored, the rest counts
    expected = [*values.tolist(), 0.5]
    assert exposed_cumulative(registry, "bulk_seconds", LATENCY_BUCKETS) == reference_cumulative(
        expected, LATENCY_BUCKETS
    )
    assert value(registry, "bulk_seconds_count") == len(expected)
    assert value(registry, "bulk_seconds_sum") == math.fsum(expected)  # +inf included

    finite = values[np.isfinite(values)]
    other = CollectorRegistry()
    plain = Histogram("plain_seconds", "Plain.", buckets=LATENCY_BUCKETS, registry=other)
    single = BulkHistogram("single_seconds", "Single.", LATENCY_BUCKETS, other)
    for v in finite.tolist():
        plain.observe(v)
        single.observe(v)
    bulk_finite = BulkHistogram("bulk_finite_seconds", "Bulk.", LATENCY_BUCKETS, other)
    bulk_finite.observe_many(finite)
    plain_buckets = exposed_cumulative(other, "plain_seconds", LATENCY_BUCKETS)
    assert exposed_cumulative(other, "single_seconds", LATENCY_BUCKETS) == plain_buckets
    assert exposed_cumulative(other, "bulk_finite_seconds", LATENCY_BUCKETS) == plain_buckets
    assert value(other, "bulk_finite_seconds_sum") == pytest.approx(
        value(other, "plain_seconds_sum")
    )


def test_bulk_histogram_bucket_validation(registry: CollectorRegistry) -> None:
    for bad in ([], [1.0, 1.0], [2.0, 1.0], [0.1, math.nan], [math.inf]):
        with pytest.raises(ValueError, match="bucket"):
            BulkHistogram("bad_seconds", "Bad.", bad, registry)
    explicit_inf = BulkHistogram("ok_seconds", "Ok.", [0.5, 1.0, math.inf], registry)
    explicit_inf.observe_many(np.array([0.5, 2.0]))
    assert value(registry, "ok_seconds_bucket", le="0.5") == 1
    assert value(registry, "ok_seconds_bucket", le="+Inf") == 2
    explicit_inf.observe_many(np.empty(0))
    explicit_inf.observe(math.nan)
    assert value(registry, "ok_seconds_count") == 2


def test_collect_while_observing_from_another_thread(registry: CollectorRegistry) -> None:
    batch = 1000
    bulk = BulkHistogram("threaded_seconds", "Threaded.", LATENCY_BUCKETS, registry)
    started, stop = threading.Event(), threading.Event()
    written = 0

    def writer() -> None:
        nonlocal written
        halves = np.full(batch, 0.5)
        while not stop.is_set():
            bulk.observe_many(halves)
            written += 1
            started.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert started.wait(timeout=10)
        for _ in range(300):
            (family,) = bulk.collect()
            samples = {(s.name, s.labels.get("le")): s.value for s in family.samples}
            count = samples["threaded_seconds_count", None]
            assert count > 0
            assert count % batch == 0  # whole batches only
            assert samples["threaded_seconds_sum", None] == 0.5 * count  # sum agrees with count
            assert samples["threaded_seconds_bucket", "0.5"] == count
            assert samples["threaded_seconds_bucket", "0.25"] == 0
            generate_latest(registry)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert value(registry, "threaded_seconds_count") == batch * written


def test_checkpoint_age_grows(
    metrics: ServiceMetrics, registry: CollectorRegistry, clock: FakeClock
) -> None:
    assert math.isnan(value(registry, "tickindex_checkpoint_age_seconds"))
    metrics.checkpoint_written(clock.now - 2.5)
    assert value(registry, "tickindex_checkpoint_age_seconds") == 2.5
    clock.now += 10.0
    assert value(registry, "tickindex_checkpoint_age_seconds") == 12.5
    assert value(registry, "tickindex_last_checkpoint_timestamp_seconds") == clock.now - 12.5
    metrics.checkpoint_written(clock.now)
    assert value(registry, "tickindex_checkpoint_age_seconds") == 0.0


def test_checkpoint_age_uses_wall_clock_by_default(registry: CollectorRegistry) -> None:
    metrics = ServiceMetrics(registry, CODES, version="1.2.3")
    metrics.checkpoint_written(time.time())
    first = value(registry, "tickindex_checkpoint_age_seconds")
    time.sleep(0.02)
    assert value(registry, "tickindex_checkpoint_age_seconds") >= first + 0.015


def test_gauges(metrics: ServiceMetrics, registry: CollectorRegistry) -> None:
    metrics.set_index_state(np.array([25800.5, 9100.0, 5600.25]), np.array([1e6, 2e6, 3e6]))
    assert value(registry, "tickindex_index_level", index="HSCEI") == 9100.0
    assert value(registry, "tickindex_index_divisor", index="HSTECH") == 3e6
    with pytest.raises(ValueError, match="levels"):
        metrics.set_index_state(np.zeros(2), np.zeros(3))
    metrics.set_consumer_lag({("ticks", 0): 5, ("ticks", 1): 0})
    assert value(registry, "tickindex_consumer_lag_messages", topic="ticks", partition="0") == 5
    metrics.set_consumer_lag({("ticks", 1): 7})  # partition 0 revoked
    assert value(registry, "tickindex_consumer_lag_messages", topic="ticks", partition="1") == 7
    lag_0 = {"topic": "ticks", "partition": "0"}
    assert registry.get_sample_value("tickindex_consumer_lag_messages", lag_0) is None
    metrics.record_dead_letters({"non_finite_price": 2, "undecodable": 0})
    metrics.record_dead_letters({"non_finite_price": 1})
    assert value(registry, "tickindex_dead_letters_total", reason="non_finite_price") == 3
    metrics.set_up("running")
    assert [value(registry, "tickindex_service_phase", phase=p) for p in PHASES] == [0, 1, 0]
    with pytest.raises(ValueError, match="phase"):
        metrics.set_up("crashed")


def test_nothing_registered_on_import() -> None:
    code = (
        "import prometheus_client as p\n"
        "before = {m.name for m in p.REGISTRY.collect()}\n"
        "import engine.live.metrics as m\n"
        "from prometheus_client.registry import Collector\n"
        "from prometheus_client.metrics import MetricWrapperBase\n"
        "assert {m.name for m in p.REGISTRY.collect()} == before\n"
        "kinds = (MetricWrapperBase, m.BulkHistogram, m.ServiceMetrics)\n"
        "assert not [k for k, v in vars(m).items() if isinstance(v, kinds)]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    empty = CollectorRegistry()
    assert list(empty.collect()) == []


def test_registries_are_independent(registry: CollectorRegistry) -> None:
    other = CollectorRegistry()
    first = ServiceMetrics(registry, CODES, version="1")
    ServiceMetrics(other, ("XYZ",), version="2")
    first.record_dead_letters({"undecodable": 4})
    assert value(registry, "tickindex_dead_letters_total", reason="undecodable") == 4
    assert value(other, "tickindex_dead_letters_total", reason="undecodable") == 0
    assert other.get_sample_value("tickindex_index_level", {"index": "HSI"}) is None
    with pytest.raises(ValueError, match="Duplicated"):
        ServiceMetrics(registry, CODES, version="1")  # same registry twice clashes
    with pytest.raises(ValueError, match="duplicate index"):
        ServiceMetrics(CollectorRegistry(), ("HSI", "HSI"), version="1")


@pytest.fixture
def scraped(metrics: ServiceMetrics, registry: CollectorRegistry) -> str:
    metrics.record_batch(
        consumed=10,
        applied=9,
        rejected={"non_positive_price": 1},
        processing_seconds=0.0015,
    )
    metrics.record_published(np.array([4, 2, 1], dtype=np.int64), np.linspace(0.0001, 0.2, 7))
    metrics.set_index_state(np.array([25800.0, 9100.0, 5600.0]), np.array([1e6, 2e6, 3e6]))
    metrics.set_consumer_lag({("ticks", 0): 3})
    metrics.checkpoint_written(time.time())
    server = start_metrics_server(registry, "127.0.0.1", 0)
    try:
        assert server.port > 0
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            text: str = response.read().decode()
    finally:
        server.stop()
        server.stop()  # idempotent
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=2)
    return text


def test_http_scrape_exposes_every_metric(scraped: str) -> None:
    for name in METRIC_NAMES:
        assert f"\n{name}" in scraped, name
    assert 'tickindex_levels_published_total{index="HSI"} 4.0' in scraped


@pytest.mark.prometheus
def test_promtool_check_metrics_is_clean(scraped: str) -> None:
    promtool = require_tool("promtool")
    result = subprocess.run(
        [promtool, "check", "metrics"],
        check=False,
        input=scraped,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
