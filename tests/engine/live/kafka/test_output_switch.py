"""AdaptiveOutput: small batches on the loop, large ones in the child, never out of order."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from engine.core.errors import DeliveryError
from engine.kernel.columns import LevelColumns
from engine.live.codec import OutgoingMessage
from engine.live.kafka.output import KafkaOutput
from engine.live.kafka.output_process import ProcessOutput
from engine.live.kafka.output_switch import AdaptiveOutput
from engine.live.kafka.topics import ensure_topics
from engine.refdata.builtin import load_builtin_universe
from tests.support.live import (
    InProcessService,
    LiveTopics,
    assert_same_levels,
    read_levels,
    replay_levels,
    simulate,
    tick_publisher,
)


class FakeStage:
    """Records what it is sent; each batch is acknowledged when the test says so."""

    def __init__(self, name: str, log: list[tuple[str, Any]]) -> None:
        self.name = name
        self.log = log
        self.batches: list[asyncio.Future[int]] = []
        self.started = self.closed = False
        self.fail_start = False
        self.failure: DeliveryError | None = None

    async def start(self) -> None:
        if self.fail_start:
            raise DeliveryError("no broker", retriable=True)
        self.started = True

    async def close(self) -> None:
        self.closed = True

    async def submit(
        self, levels: LevelColumns, messages: Sequence[OutgoingMessage]
    ) -> asyncio.Future[int]:
        self.log.append((self.name, len(levels)))
        batch: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.batches.append(batch)
        return batch

    async def checkpoint(self, message: OutgoingMessage) -> None:
        self.log.append((self.name, "checkpoint"))

    async def transaction(
        self,
        levels: LevelColumns,
        messages: Sequence[OutgoingMessage],
        offsets: Mapping[Any, int],
        group_id: str,
        alone: frozenset[bytes] = frozenset(),
    ) -> int:
        raise AssertionError("not used")

    def ack_all(self) -> None:
        for batch in self.batches:
            if not batch.done():
                batch.set_result(1)


def levels(n: int) -> LevelColumns:
    return LevelColumns(
        ts_event=np.arange(n, dtype=np.int64),
        index=np.zeros(n, dtype=np.int32),
        level=np.full(n, 100.0),
        seq=np.arange(n, dtype=np.int64),
        security=np.zeros(n, dtype=np.int64),
    )


def make() -> tuple[AdaptiveOutput, FakeStage, FakeStage, list[tuple[str, Any]]]:
    log: list[tuple[str, Any]] = []
    loop, child = FakeStage("loop", log), FakeStage("child", log)
    output = AdaptiveOutput(cast(KafkaOutput, loop), cast(ProcessOutput, child), loop_levels=10)
    return output, loop, child, log


async def test_small_batches_go_on_the_loop_and_large_ones_to_the_child() -> None:
    output, loop, _, log = make()
    await output.submit(levels(3), [])
    await output.submit(levels(10), [])
    loop.ack_all()
    await output.submit(levels(11), [])
    assert log == [("loop", 3), ("loop", 10), ("child", 11)]
    assert (output.batches_on_loop, output.batches_in_child) == (2, 1)


async def test_the_child_waits_until_every_loop_batch_is_acknowledged() -> None:
    output, loop, _, log = make()
    await output.submit(levels(1), [])
    await output.submit(levels(2), [])
    large = asyncio.create_task(output.submit(levels(50), []))
    await asyncio.sleep(0.01)
    assert not large.done() and log == [("loop", 1), ("loop", 2)]
    loop.batches[1].set_result(1)
    await asyncio.sleep(0.01)
    assert not large.done()  # the first is still in flight: with two producers order is not given
    loop.batches[0].set_result(1)
    await large
    assert log[-1] == ("child", 50)


async def test_back_on_the_loop_only_once_the_child_is_idle() -> None:
    output, _, child, log = make()
    await output.submit(levels(50), [])
    await output.submit(levels(1), [])  # the child holds a batch: stay there, no wait
    child.ack_all()
    await output.submit(levels(1), [])
    assert log == [("child", 50), ("child", 1), ("loop", 1)]


async def test_a_checkpoint_waits_for_the_other_stage_then_goes_through_the_current() -> None:
    output, loop, child, log = make()
    await output.submit(levels(50), [])
    child.ack_all()
    await output.submit(levels(1), [])
    saving = asyncio.create_task(output.checkpoint(OutgoingMessage("state", b"k", b"v")))
    await asyncio.sleep(0.01)
    assert log[-1] == ("loop", "checkpoint")  # the child is drained already

    await output.submit(levels(1), [])
    await saving
    big = asyncio.create_task(output.submit(levels(60), []))
    await asyncio.sleep(0.01)
    assert not big.done()
    loop.ack_all()
    await big
    saving = asyncio.create_task(output.checkpoint(OutgoingMessage("state", b"k", b"v")))
    await asyncio.sleep(0.01)
    assert log[-1] == ("child", "checkpoint")  # the loop has nothing in flight
    await saving
    assert not child.batches[-1].done()  # the child's own checkpoint waits for its batches


async def test_a_failed_batch_of_the_stage_left_is_raised() -> None:
    output, loop, _, _ = make()
    await output.submit(levels(1), [])
    loop.batches[0].set_exception(DeliveryError("refused", retriable=False))
    with pytest.raises(DeliveryError, match="refused"):
        await output.submit(levels(50), [])


async def test_a_dead_child_is_raised_even_while_batches_go_on_the_loop() -> None:
    output, _, child, log = make()
    await output.submit(levels(1), [])
    child.failure = DeliveryError("the output process exited unexpectedly", retriable=False)
    with pytest.raises(DeliveryError, match="exited"):
        await output.submit(levels(1), [])
    assert log == [("loop", 1)]


async def test_a_child_that_cannot_start_closes_the_loop_producers() -> None:
    output, loop, child, _ = make()
    child.fail_start = True
    with pytest.raises(DeliveryError):
        await output.start()
    assert loop.started and loop.closed


async def test_exactly_once_is_refused() -> None:
    output, _, _, _ = make()
    with pytest.raises(TypeError, match="at-least-once"):
        await output.transaction(levels(1), [], {}, "group")


@pytest.mark.kafka
async def test_levels_keep_their_order_across_switches_between_loop_and_child(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path, rng: np.random.Generator
) -> None:
    seed = int(rng.integers(1 << 31))
    print(f"seed {seed}")
    universe = load_builtin_universe()
    ticks = simulate(universe, 2400, seed)
    config = topics.config(kafka_bootstrap, max_batch_ticks=300)
    await ensure_topics(config)
    live = InProcessService(config, universe)
    async with live.running() as service:
        async with tick_publisher(kafka_bootstrap, topics.tick, universe) as publisher:
            await publisher.publish(ticks.slice(0, 1000))  # fetches of 300 ticks: the child
            await publisher.flush()
            for tick in range(1000, 1200):  # one tick a fetch: the loop
                await publisher.publish(ticks.slice(tick, tick + 1))
                await publisher.flush()
                await asyncio.sleep(0.002)
            await publisher.publish(ticks.slice(1200, len(ticks)))
            await publisher.flush()
        await live.wait_consumed(len(ticks))
        output = service._output
        assert isinstance(output, AdaptiveOutput)
        on_loop, in_child = output.batches_on_loop, output.batches_in_child
    assert on_loop >= 50 and in_child >= 4, (on_loop, in_child)
    got = await read_levels(kafka_bootstrap, topics.level)
    assert_same_levels(got, replay_levels(universe, ticks, tmp_path), "service vs replay")
