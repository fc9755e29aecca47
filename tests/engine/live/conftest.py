"""Fixtures shared by the live service's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.live import LiveTopics, delete_topics


@pytest.fixture
async def topics(kafka_bootstrap: str, request: pytest.FixtureRequest) -> AsyncIterator[LiveTopics]:
    """Topics of the test's own (deleted after it, with the FX topic ``fx-<group>`` if made)."""
    names = LiveTopics.unique(request.node.name)
    yield names
    await delete_topics(kafka_bootstrap, [*names.names, f"fx-{names.group}"])
