"""The tick publisher puts the simulator's volumes on the wire, in ``tick`` and ``tick_batch``
messages alike, and a tick without volume stays without one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.live.codec import TickDecoder
from engine.refdata.builtin import load_builtin_universe
from engine.wire import Tick, WireCodec
from producers.kafka_publisher import _volume_list
from producers.simulator import MarketSimulator
from tests.support.live import START_NS, LiveTopics, TopicReader, delete_topics, tick_publisher
from tests.support.seed import SEED


def test_volume_list_gives_none_for_nan_and_for_no_column() -> None:
    universe = load_builtin_universe()
    ticks = MarketSimulator(universe, SEED, start_ns=START_NS).next_batch(4)
    assert ticks.volume is not None
    assert _volume_list(ticks) == ticks.volume.tolist()
    volume = ticks.volume.copy()
    volume[[0, 2]] = np.nan
    assert _volume_list(dataclasses.replace(ticks, volume=volume)) == [
        None,
        volume[1],
        None,
        volume[3],
    ]
    assert _volume_list(dataclasses.replace(ticks, volume=None)) == [None] * 4


@pytest.mark.parametrize("batch_ticks", [0, 64])
async def test_published_ticks_carry_their_volumes(kafka_bootstrap: str, batch_ticks: int) -> None:
    print(f"seed {SEED}")
    universe = load_builtin_universe()
    ticks = MarketSimulator(universe, SEED, start_ns=START_NS).next_batch(500)
    assert ticks.volume is not None
    volume = ticks.volume.copy()
    volume[::7] = np.nan  # ticks without volume among those with one
    ticks = dataclasses.replace(ticks, volume=volume)
    topic = LiveTopics.unique(f"volume-{batch_ticks}").tick
    try:
        async with tick_publisher(
            kafka_bootstrap, topic, universe, batch_ticks=batch_ticks
        ) as publisher:
            await publisher.publish(ticks)
            await publisher.flush()
        async with TopicReader(kafka_bootstrap, topic) as reader:
            records = await reader.read()
    finally:
        await delete_topics(kafka_bootstrap, [topic])
    codec = WireCodec("json")
    if batch_ticks == 0:
        singles = [codec.decode_tick(r.value) for r in records]
        assert all(isinstance(t, Tick) for t in singles)
        assert sum(b'"volume"' not in r.value for r in records) == int(np.isnan(volume).sum())
    fetch = TickDecoder(universe, codec).decode(records)
    assert fetch.undecodable == [] and fetch.bad_volumes == 0
    assert fetch.ticks.volume is not None
    # Per security, order holds (one partition each): compare ticks sorted by (security, seq).
    assert fetch.ticks.seq is not None and ticks.seq is not None
    got = np.lexsort((fetch.ticks.seq, fetch.ticks.security))
    want = np.lexsort((ticks.seq, ticks.security))
    np.testing.assert_array_equal(fetch.ticks.price[got], ticks.price[want])
    np.testing.assert_array_equal(fetch.ticks.volume[got], volume[want])
