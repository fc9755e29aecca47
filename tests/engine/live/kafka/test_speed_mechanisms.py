"""Each speed mechanism switched off (or refused by the aiokafka version guard) gives the same
levels as with every mechanism on: the plain paths are the service, only slower."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple

import aiokafka
import numpy as np
import pytest

from engine.live.kafka.fetch import _FetchResults, aiokafka_checked
from engine.live.kafka.output import KafkaOutput
from engine.live.kafka.output_process import ProcessOutput
from engine.live.kafka.output_switch import AdaptiveOutput
from engine.live.kafka.topics import ensure_topics
from engine.refdata.builtin import load_builtin_universe
from tests.support.live import (
    InProcessService,
    LiveTopics,
    assert_same_levels,
    publish_ticks,
    read_levels,
    replay_levels,
    simulate,
)

SWITCHED_OFF = {
    "all-on": {},
    "no-output-process": {"output_process": False},
    "no-adaptive-output": {"adaptive_output": False},
    "no-fetched-records": {"fetched_records": False},
}


@pytest.mark.parametrize("version", ["0.11.0", "0.14.0", "0.14.7rc1"])
def test_checked_aiokafka_versions(version: str) -> None:
    assert aiokafka_checked(version)


@pytest.mark.parametrize("version", ["0.10.2", "0.15.0", "1.0.0", "dev"])
def test_unchecked_aiokafka_versions(version: str) -> None:
    assert not aiokafka_checked(version)


class Observed(NamedTuple):
    """What the running service used: its output stage and fetch results."""

    output: type
    fetch_results: type


async def _serve_and_compare(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path, seed: int, **settings: object
) -> Observed:
    """Serve 3,000 seeded ticks with ``settings``; the levels must be replay's, bitwise."""
    universe = load_builtin_universe()
    ticks = simulate(universe, 3000, seed)
    config = topics.config(kafka_bootstrap, max_batch_ticks=300, **settings)
    await ensure_topics(config)
    await publish_ticks(kafka_bootstrap, topics.tick, universe, ticks)
    live = InProcessService(config, universe)
    async with live.running() as service:
        await live.wait_consumed(len(ticks))
        fetcher: Any = getattr(service._consumer, "_fetcher", None)
        observed = Observed(type(service._output), type(fetcher._records))
    got = await read_levels(kafka_bootstrap, topics.level)
    assert_same_levels(got, replay_levels(universe, ticks, tmp_path), "service vs replay")
    return observed


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
    stage: type = KafkaOutput
    if settings.get("output_process", True):
        stage = AdaptiveOutput if settings.get("adaptive_output", True) else ProcessOutput
    assert used.output is stage
    assert (used.fetch_results is _FetchResults) == settings.get("fetched_records", True)


@pytest.mark.kafka
async def test_an_unchecked_aiokafka_version_falls_back_to_consumer_records(
    kafka_bootstrap: str,
    topics: LiveTopics,
    tmp_path: Path,
    rng: np.random.Generator,
    *,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(aiokafka, "__version__", "0.15.0")
    seed = int(rng.integers(1 << 31))
    with caplog.at_level(logging.WARNING, logger="engine.live.kafka.fetch"):
        used = await _serve_and_compare(kafka_bootstrap, topics, tmp_path, seed)
    assert "not checked with aiokafka 0.15.0" in caplog.text
    assert used.fetch_results is not _FetchResults
