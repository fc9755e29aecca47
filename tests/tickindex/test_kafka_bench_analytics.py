"""``tickindex bench --kafka``: the runs that measure what the analytics topic adds."""

from __future__ import annotations

from engine.live.config import ServiceConfig
from tickindex.bench.kafka import analytics_runs
from tickindex.bench.kafka_figures import KafkaBenchSettings

SINGLE = ServiceConfig(group_id="bench-single", tick_topic="bench-single-tick", metrics_port=-1)


def test_analytics_on_and_off_with_sessions_on_the_single_tick_topic() -> None:
    settings = KafkaBenchSettings(analytics_rounds=2, service={"linger_ms": 3})
    runs = analytics_runs(settings, SINGLE)
    assert list(runs.pairs) == ["analytics"]
    pairs = runs.pairs["analytics"]
    assert len(pairs) == 2
    for on, off in pairs:
        assert on.analytics and not off.analytics
        assert on.sessions and off.sessions, "like for like: analytics imply sessions"
        assert on.tick_topic == off.tick_topic == SINGLE.tick_topic
        assert on.linger_ms == off.linger_ms == 3
    configs = runs.configs()
    assert len({c.group_id for c in configs}) == len(configs) == 4, "each run has its own group"
    assert len({c.analytics_topic for c in configs}) == 4
    assert len({c.state_topic for c in configs}) == 4


def test_no_analytics_runs_with_zero_rounds() -> None:
    assert analytics_runs(KafkaBenchSettings(analytics_rounds=0), SINGLE).configs() == []
