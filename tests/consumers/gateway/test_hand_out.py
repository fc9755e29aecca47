"""The gateway's hand-outs: levels that come within ``frame_interval_s`` of the last hand-out
go to the clients together, and a client connecting meanwhile gets each level once."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Sequence

import numpy as np
from prometheus_client import CollectorRegistry

from consumers.gateway.app import settle_heap
from consumers.gateway.book import Level
from consumers.gateway.hub import Gateway, GatewaySettings
from consumers.gateway.query import Subscription
from consumers.level_batch import LevelBatch
from engine.refdata.builtin import load_builtin_universe


def gateway(interval_s: float) -> Gateway:
    settings = GatewaySettings(frame_interval_s=interval_s)
    return Gateway(load_builtin_universe(), settings, CollectorRegistry())


def hsi(seqs: range) -> LevelBatch:
    n = len(seqs)
    seq = np.array(seqs, dtype=np.int64)
    return LevelBatch(
        ("HSI",),
        np.zeros(n, dtype=np.int32),
        (1000.0 + seq).astype(np.float64),
        np.zeros(n),
        seq,
        seq,
        seq,
    )


def everything(since: dict[str, int] | None = None) -> Subscription:
    return Subscription(indices=None, conflate_s=0.0, since=since or {}, analytics=False)


def seqs(levels: Sequence[object]) -> list[int]:
    return [level.seq for level in levels if isinstance(level, Level)]


async def test_levels_within_the_interval_go_out_together() -> None:
    hub = gateway(0.05)
    client, _ = hub.connect("websocket", everything())
    hub.publish(hub.book.apply(hsi(range(1, 3))))  # the first: at once
    first = await client.take()
    hub.publish(hub.book.apply(hsi(range(3, 5))))
    hub.publish(hub.book.apply(hsi(range(5, 6))))
    assert len(client) == 0  # waiting for the interval to pass
    second = await asyncio.wait_for(client.take(), 1.0)
    assert (seqs(first.items), seqs(second.items)) == ([1, 2], [3, 4, 5])


async def test_a_client_connecting_while_levels_wait_gets_each_once() -> None:
    hub = gateway(0.05)
    hub.publish(hub.book.apply(hsi(range(1, 3))))
    hub.publish(hub.book.apply(hsi(range(3, 6))))  # waiting for the next hand-out
    client, missed = hub.connect("websocket", everything({"HSI": 1}))
    hub.publish(hub.book.apply(hsi(range(6, 7))))
    later = await asyncio.wait_for(client.take(), 1.0)
    assert seqs(missed.items) + seqs(later.items) == [2, 3, 4, 5, 6]


def test_without_an_event_loop_levels_go_out_at_once() -> None:
    hub = gateway(10.0)
    client, _ = hub.connect("sse", everything())
    hub.publish(hub.book.apply(hsi(range(1, 3))))
    hub.publish(hub.book.apply(hsi(range(3, 4))))
    assert len(client) == 3


def test_settling_the_heap_keeps_what_lives_now_out_of_collections() -> None:
    before = gc.get_freeze_count()
    kept = [[n] for n in range(1000)]  # alive now, containers the collector would track
    try:
        settle_heap()
        assert gc.get_freeze_count() >= before + len(kept)
    finally:
        gc.unfreeze()
