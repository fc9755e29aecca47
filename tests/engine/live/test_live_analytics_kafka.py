"""``serve --analytics`` on a real broker: the analytics topic holds replay's records.

The ticks of a trading day's last twenty minutes go to the service in two halves, the service
stopped and started again between them (from its checkpoint); once the feed is quiet, the fake
wall clock moves past the close and the close records go out without another tick. At-least-once
the topic may repeat records after the restart (identified by key, boundary and type);
exactly-once a ``read_committed`` reader sees ``replay --analytics``'s records exactly once each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest

from engine.analytics.records import AnalyticsRecord, IndexAnalytics
from engine.live import service as service_module
from engine.live.config import ServiceConfig
from engine.live.kafka.recovery import AbortPolicy
from engine.live.kafka.topics import ensure_topics
from engine.live.metrics import ServiceMetrics
from engine.live.service import IndexService
from engine.wire import WireCodec
from tests.support.live import (
    InProcessService,
    LiveTopics,
    TopicReader,
    delete_topics,
    publish_ticks,
    wait_until,
)
from tests.support.live_analytics import (
    CLOSE_NS,
    FakeClock,
    afternoon,
    record_identity,
    replay_analytics,
    write_settings,
)
from tests.support.seed import SEED
from tests.support.topic_limits import create_limited_topic, set_topic_limit

pytestmark = pytest.mark.kafka


@dataclass
class AnalyticsService(InProcessService):
    """The shared harness on a fake wall clock."""

    clock: FakeClock = field(default_factory=lambda: FakeClock(0))

    def __post_init__(self) -> None:
        metrics = ServiceMetrics(self.registry, self.universe.index_codes, version="test")
        self.service = IndexService(self.config, self.universe, metrics, clock=self.clock)
        self.codec = WireCodec(self.config.wire_format)

    def records_sent(self) -> float:
        kinds = ("index_analytics", "pair_analytics", "signal_event")
        return sum(self.sample("tickindex_analytics_records_total", kind=k) for k in kinds)


@pytest.fixture
async def analytics_topics(kafka_bootstrap: str, topics: LiveTopics) -> AsyncIterator[list[str]]:
    """The analytics and bars topics of the test (deleted after it)."""
    names = [f"analytics-{topics.group}", f"ohlc-{topics.group}"]
    yield names
    await delete_topics(kafka_bootstrap, names)


async def _read(bootstrap: str, topic: str, *, committed: bool = True) -> list[AnalyticsRecord]:
    codec = WireCodec("json")
    async with TopicReader(bootstrap, topic, committed=committed) as reader:
        return [codec.decode_analytics(r.value) for r in await reader.read()]


def _config(
    topics: LiveTopics, bootstrap: str, names: list[str], settings: Path, **more: object
) -> ServiceConfig:
    analytics_topic, ohlc_topic = names
    return topics.config(
        bootstrap,
        analytics=True,
        analytics_config=str(settings),
        analytics_topic=analytics_topic,
        ohlc_topic=ohlc_topic,
        max_batch_ticks=300,
        **more,
    )


async def _until_closed(live: AnalyticsService, clock: FakeClock, idle_ms: int) -> None:
    """Move the fake wall clock past the close (the feed went quiet); wait for its records."""
    sent_before_close = live.records_sent()
    clock.now = CLOSE_NS + idle_ms * 1_000_000

    async def closed() -> bool:
        return live.records_sent() > sent_before_close

    await wait_until(closed, "the close records")


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
async def test_served_analytics_are_replays_across_a_restart(
    kafka_bootstrap: str,
    topics: LiveTopics,
    analytics_topics: list[str],
    tmp_path: Path,
    delivery: str,
) -> None:
    universe, ticks = afternoon(SEED)
    settings = write_settings(tmp_path)
    expected = replay_analytics(universe, ticks, settings, tmp_path / "replay")
    config = _config(
        topics, kafka_bootstrap, analytics_topics, settings, delivery=delivery,
        checkpoint_interval_ms=200,
    )  # fmt: skip
    await ensure_topics(config)
    half = len(ticks) // 2
    clock = FakeClock(int(ticks.ts_event.max()))  # the feed's end: it is live by then

    await publish_ticks(kafka_bootstrap, topics.tick, universe, ticks.slice(0, half))
    first = AnalyticsService(config, universe, clock=clock)
    async with first.running():
        await first.wait_consumed(half)
    await publish_ticks(kafka_bootstrap, topics.tick, universe, ticks.slice(half, len(ticks)))
    second = AnalyticsService(config, universe, clock=clock)
    async with second.running():
        await second.wait_consumed(len(ticks) - half)
        await _until_closed(second, clock, config.analytics_idle_ms)
    got = await _read(kafka_bootstrap, config.analytics_topic)

    assert any(isinstance(r, IndexAnalytics) and r.final for r in expected)
    if delivery == "exactly-once":
        assert got == expected
    else:
        unique: dict[tuple[bytes, int, str], AnalyticsRecord] = {}
        for record in got:
            identity = record_identity(record)
            assert unique.setdefault(identity, record) == record, "a repeat differs"
        assert list(unique.values()) == expected
    assert first.records_sent() + second.records_sent() >= len(expected)


async def test_analytics_of_aborted_transactions_are_never_read_committed(
    kafka_bootstrap: str,
    topics: LiveTopics,
    analytics_topics: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Enough attempts that the test surely widens the limit before the service gives up.
    monkeypatch.setattr(service_module, "AbortPolicy", partial(AbortPolicy, attempts=20))
    universe, ticks = afternoon(SEED)
    settings = write_settings(tmp_path)
    expected = replay_analytics(universe, ticks, settings, tmp_path / "replay")
    config = _config(topics, kafka_bootstrap, analytics_topics, settings, delivery="exactly-once")
    await create_limited_topic(kafka_bootstrap, topics.level, 200)  # refuses every level message
    await ensure_topics(config)
    await publish_ticks(kafka_bootstrap, topics.tick, universe, ticks)
    clock = FakeClock(int(ticks.ts_event.max()))
    live = AnalyticsService(config, universe, clock=clock)

    async def aborted() -> bool:
        return live.sample("tickindex_transactions_aborted_total") >= 2

    async with live.running():
        await wait_until(aborted, "transactions refused by the broker", 30)
        await set_topic_limit(kafka_bootstrap, topics.level, 1 << 20)
        await live.wait_consumed(len(ticks), timeout=60)
        await _until_closed(live, clock, config.analytics_idle_ms)

    assert await _read(kafka_bootstrap, config.analytics_topic) == expected
    uncommitted = await _read(kafka_bootstrap, config.analytics_topic, committed=False)
    assert len(uncommitted) > len(expected), "the aborted transactions held analytics records"
    assert live.records_sent() == len(expected), "counted once, by the committed run"
