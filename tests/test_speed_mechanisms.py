"""Each speed mechanism switched off gives the same levels as with every mechanism on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from engine.live.kafka.output import KafkaOutput
from engine.live.kafka.output_process import ProcessOutput
from engine.live.kafka.topics import ensure_topics
from engine.refdata.builtin import load_builtin_universe
from tests.live_support import (
    InProcessService,
    LiveTopics,
    assert_same_levels,
    delete_topics,
    publish_ticks,
    read_levels,
    replay_levels,
    simulate,
)

SWITCHED_OFF = {
    "all-on": {},
    "no-output-process": {"output_process": False},
}


@pytest.fixture
async def topics(kafka_bootstrap: str, request: pytest.FixtureRequest) -> AsyncIterator[LiveTopics]:
    names = LiveTopics.unique(request.node.name)
    yield names
    await delete_topics(kafka_bootstrap, names.names)


async def _serve_and_compare(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path, seed: int, **settings: object
) -> type:
    """Serve 3,000 seeded ticks with ``settings``; the levels must be replay's, bitwise.

    Returns the type of the output stage the service used."""
    universe = load_builtin_universe()
    ticks = simulate(universe, 3000, seed)
    config = topics.config(kafka_bootstrap, max_batch_ticks=300, **settings)
    await ensure_topics(config)
    await publish_ticks(kafka_bootstrap, topics.tick, universe, ticks)
    live = InProcessService(config, universe)
    async with live.running() as service:
        await live.wait_consumed(len(ticks))
        output = type(service._output)
    got = await read_levels(kafka_bootstrap, topics.level)
    assert_same_levels(got, replay_levels(universe, ticks, tmp_path), "service vs replay")
    return output


@pytest.mark.kafka
@pytest.mark.parametrize("settings", SWITCHED_OFF.values(), ids=SWITCHED_OFF.keys())
async def test_each_switched_off_mechanism_gives_the_same_levels(
    kafka_bootstrap: str,
    topics: LiveTopics,
    tmp_path: Path,
    rng: np.random.Generator,
    settings: dict[str, bool],
) -> None:
    seed = int(rng.integers(1 << 31))
    used = await _serve_and_compare(kafka_bootstrap, topics, tmp_path, seed, **settings)
    assert used is (ProcessOutput if settings.get("output_process", True) else KafkaOutput)
