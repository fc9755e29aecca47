"""With the output process, a service stopped by refused levels still says why (DeliveryError).

The failed ``ProcessOutput`` re-raises its own ``OutputProcessError`` on ``close``; it must be
closed quietly so that error does not replace the reason the service stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial

import pytest

from engine.builtin import load_builtin_universe
from engine.errors import DeliveryError
from engine.live import service as service_module
from engine.live.recovery import AbortPolicy
from engine.live.topics import ensure_topics
from engine.wire import WireCodec
from tests.conftest import SEED
from tests.live_support import (
    InProcessService,
    LiveTopics,
    TopicReader,
    delete_topics,
    read_levels,
    send_raw,
    simulate,
)
from tests.poison_support import singles
from tests.topic_limits import create_limited_topic

pytestmark = pytest.mark.kafka

LEVEL_LIMIT = 200  # every level message of a batch is larger


@pytest.fixture
async def topics(kafka_bootstrap: str, request: pytest.FixtureRequest) -> AsyncIterator[LiveTopics]:
    names = LiveTopics.unique(request.node.name)
    yield names
    await delete_topics(kafka_bootstrap, names.names)


async def test_a_level_kafka_always_refuses_stops_the_output_process_service_clearly(
    kafka_bootstrap: str, topics: LiveTopics, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        service_module, "AbortPolicy", partial(AbortPolicy, attempts=3, first_delay_s=0.05)
    )
    universe = load_builtin_universe()
    ticks = simulate(universe, 300, SEED + 32)
    config = topics.config(
        kafka_bootstrap, delivery="exactly-once", max_batch_ticks=100, output_process=True
    )
    await create_limited_topic(kafka_bootstrap, topics.level, LEVEL_LIMIT)
    await ensure_topics(config)
    await send_raw(kafka_bootstrap, topics.tick, singles(universe, ticks, WireCodec("json")))
    live = InProcessService(config, universe)

    with pytest.raises(DeliveryError, match=f"{topics.level}.*MessageSizeTooLarge") as info:
        await asyncio.wait_for(live.service.run(), timeout=60)
    assert "3 transactions in a row" in str(info.value)
    assert not info.value.retriable
    assert live.sample("tickindex_transactions_aborted_total") == 3
    assert await read_levels(kafka_bootstrap, topics.level) == []
    async with TopicReader(kafka_bootstrap, topics.state) as reader:
        assert await reader.read() == [], "no checkpoint committed"
