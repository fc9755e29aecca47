"""Rate-limited logging: one line per kind per interval, with the count of suppressed lines."""

from __future__ import annotations

import logging

import pytest

from engine.live.log_limits import (
    KAFKA_CLIENT_LOGGERS,
    RateLimitedLog,
    RateLimitFilter,
    limit_kafka_client_logs,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_kind_per_interval_with_the_suppressed_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    limited = RateLimitedLog(logging.getLogger("test.limits"), interval_s=10.0, clock=clock)
    caplog.set_level(logging.INFO, logger="test.limits")
    logged = [limited.log("reconnect", logging.ERROR, "node %d down", 1) for _ in range(500)]
    assert logged == [True] + [False] * 499
    assert limited.log("other", logging.WARNING, "another kind")  # kinds are independent
    clock.now += 9.9
    assert not limited.log("reconnect", logging.ERROR, "node %d down", 1)
    clock.now += 0.1
    assert limited.log("reconnect", logging.ERROR, "node %d down", 2)
    assert [r.getMessage() for r in caplog.records] == [
        "node 1 down",
        "another kind",
        "node 2 down (500 similar lines suppressed in the last 10 s)",
    ]
    assert caplog.records[0].levelno == logging.ERROR


def test_the_filter_limits_a_busy_reconnect_loop_of_a_library_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    library = logging.getLogger("test.limits.library")
    limit = RateLimitFilter(interval_s=10.0, clock=clock)
    library.addFilter(limit)
    caplog.set_level(logging.INFO, logger="test.limits.library")
    try:
        for _ in range(60):  # a minute of outage, 100 attempts a second
            clock.now += 1.0
            for _attempt in range(100):
                library.error("Unable connect to node with id %s: %s", 1, "refused")
                library.error("Unable to update metadata from [%s]", 1)
    finally:
        library.removeFilter(limit)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 12  # two templates, one line each per 10 s
    assert lines[0] == "Unable connect to node with id 1: refused"
    assert lines[2] == (
        "Unable connect to node with id 1: refused (999 similar lines suppressed in the last 10 s)"
    )


def test_installing_twice_keeps_one_filter_per_logger() -> None:
    first = limit_kafka_client_logs()
    assert limit_kafka_client_logs() is first
    for name in KAFKA_CLIENT_LOGGERS:
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, RateLimitFilter) for f in filters) == 1, name
