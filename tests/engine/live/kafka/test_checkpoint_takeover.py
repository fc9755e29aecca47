"""Restoring a shard's checkpoint on a real broker while another shard's dead owner left a
transaction open on the shared state topic.

Every shard checkpoints to the same compacted state partition, in its own transactions. A shard
owner killed mid-transaction leaves that transaction open until the next owner of its shard
fences it (or it times out), and until then ``read_committed`` readers stop at its first record
(the partition's last stable offset). A shard restarting then (the group's rebalance restarts
every shard) must still restore its own latest committed checkpoint, written after that record:
restoring an older one would publish its levels since then a second time.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from aiokafka import AIOKafkaProducer

from engine.live.config import ServiceConfig
from engine.live.kafka.checkpoints import CheckpointStore
from engine.live.kafka.output import make_producers
from engine.live.kafka.topics import ensure_topics
from engine.pipeline.state import EngineState
from engine.refdata.builtin import load_builtin_universe
from tests.support.live import InProcessService, LiveTopics

pytestmark = pytest.mark.kafka


def _state(config: ServiceConfig, next_tick: int) -> EngineState:
    universe = load_builtin_universe()
    work = InProcessService(config, universe).service.work
    return work.capture({f"{config.tick_topic}:0": next_tick}, next_tick)


async def _commit(producer: AIOKafkaProducer, config: ServiceConfig, next_tick: int) -> None:
    message = CheckpointStore(config).message(_state(config, next_tick))
    async with producer.transaction():
        await (await producer.send(message.topic, message.value, key=message.key))


async def test_a_checkpoint_behind_a_dead_owner_s_open_transaction_is_restored(
    kafka_bootstrap: str, topics: LiveTopics
) -> None:
    dead_shard, live_shard = (
        topics.config(kafka_bootstrap, delivery="exactly-once", shards=2, shard=f"{k}-of-2")
        for k in range(2)
    )
    await ensure_topics(live_shard)
    (live,) = make_producers(live_shard)
    (dead,) = make_producers(dead_shard)
    (taker,) = make_producers(dead_shard)
    await live.start()
    await dead.start()
    try:
        await _commit(live, live_shard, 100)
        # The dead shard's owner is killed mid-transaction, its checkpoint already on the topic.
        await dead.begin_transaction()
        message = CheckpointStore(dead_shard).message(_state(dead_shard, 150))
        await (await dead.send(message.topic, message.value, key=message.key))
        await _commit(live, live_shard, 200)  # the live shard goes on, then restarts

        restoring = asyncio.create_task(CheckpointStore(live_shard).load({0}))
        await asyncio.sleep(1.0)
        assert not restoring.done(), "restored while a transaction holds the topic back"
        # The dead shard's taker starts: its producer fences the dead one, aborting its
        # transaction, and only then reads its own checkpoint.
        await taker.start()
        state = await asyncio.wait_for(restoring, 30)
        assert state is not None
        assert state.offsets == {f"{live_shard.tick_topic}:0": 200}, "the latest committed one"
        assert await CheckpointStore(dead_shard).load({0}) is None, "the open one was aborted"
    finally:
        await live.stop()
        await taker.stop()
        with contextlib.suppress(Exception):  # fenced
            await dead.stop()
