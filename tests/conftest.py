"""Fixtures and hooks of the tickindex tests (helpers live in ``tests/support``)."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest

from tests.support.real_parts import missing_real_part
from tests.support.seed import SEED


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The broker tests/run.sh started (or KAFKA_BOOTSTRAP); fails in CI when unreachable."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            pass
    except OSError as exc:
        missing_real_part(
            f"no Kafka broker at {bootstrap}: {exc} (bash deploy/kafka/kafka.sh start)"
        )
    return bootstrap


def pytest_report_header() -> str:
    return f"tickindex random seed: {SEED} (set TICKINDEX_TEST_SEED to change)"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the broker is a ``kafka`` test, whether or not its module says so."""
    for item in items:
        if "kafka_bootstrap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(SEED)
