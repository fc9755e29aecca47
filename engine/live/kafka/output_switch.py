"""At-least-once output that follows the feed: small batches on the loop, large ones in the child.

The output process (``engine.live.kafka.output_process``) buys throughput with a hop: every
batch crosses a socket to the child and its acknowledgement crosses back, two process wake-ups
that a quiet feed's one-tick batch pays in latency. ``AdaptiveOutput`` holds both stages and
sends each batch through one of them:

- a batch of at most ``loop_levels`` levels goes through the producers on the service's own
  loop (``KafkaOutput``), once the child has nothing in flight;
- a larger batch goes to the child, after every batch sent on the loop is acknowledged.

A stage is only left once everything sent through it is acknowledged, so the levels of an
index reach the topic in the order they were computed, as with one stage; a checkpoint waits
for both stages. Measured on the broker's clocks (``tickindex bench --kafka``, p99 in ms at
1,000 / 10,000 / 50,000 ticks/s, 2 cores): the child alone 10, 8, 11 / 14, 11 / 18, 18; the loop
alone 5, 7, 8 / 10, 12 / 15, 11; this stage 4, 4, 4 / 8, 8, 6 / 13, 10, 17 (quiet machine, raw
echo 2-3 / 3 / 2-4). The loop alone loses a quarter of the saturated throughput (the output
process's docstring); a saturated feed's batches are large and go to the child. Exactly-once
keeps one stage: two transactional producers with one id would fence each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from aiokafka import TopicPartition

from engine.kernel.columns import LevelColumns
from engine.live.codec import OutgoingMessage
from engine.live.kafka.output import SMALL_BATCH_LEVELS, KafkaOutput, OutputStage
from engine.live.kafka.output_process import ProcessOutput

LOOP_LEVELS = SMALL_BATCH_LEVELS
"""Largest batch (levels) produced on the loop: a quiet or moderate feed's batch."""


class AdaptiveOutput:
    """``OutputStage`` choosing, per batch, the loop's producers or the output process.

    Parameters
    ----------
    loop : KafkaOutput
        Producers on the service's event loop, for small batches.
    child : ProcessOutput
        The output process, for large batches. Its failure (it died) is raised by the next
        ``submit`` even while every batch goes on the loop.
    loop_levels : int
        Largest batch sent through ``loop``.
    """

    def __init__(
        self, loop: KafkaOutput, child: ProcessOutput, loop_levels: int = LOOP_LEVELS
    ) -> None:
        self.loop = loop
        self.child = child
        self.loop_levels = loop_levels
        self._current: OutputStage = loop
        # Unacknowledged batches per stage (by id): with several producers they may complete
        # out of order, so "drained" is all of them, not the latest.
        self._pending: dict[int, list[asyncio.Future[int]]] = {id(loop): [], id(child): []}
        self.batches_on_loop = 0
        self.batches_in_child = 0

    async def start(self) -> None:
        """Connect the loop's producers and start the child."""
        await self.loop.start()
        try:
            await self.child.start()
        except BaseException:
            await self.loop.close()
            raise

    async def close(self) -> None:
        """Close both stages (each sends what it holds first)."""
        try:
            await self.child.close()
        finally:
            await self.loop.close()

    async def submit(
        self, levels: LevelColumns, messages: Sequence[OutgoingMessage]
    ) -> asyncio.Future[int]:
        """Send one batch through the stage its size and the stages' backlogs choose."""
        if self.child.failure is not None:
            raise self.child.failure
        stage = self._stage_for(len(levels))
        if stage is not self._current:
            await self._drained(self._current)
            self._current = stage
        batch = await stage.submit(levels, messages)
        pending = self._pending[id(stage)]
        pending[:] = [b for b in pending if not b.done()]
        pending.append(batch)
        if stage is self.loop:
            self.batches_on_loop += 1
        else:
            self.batches_in_child += 1
        return batch

    async def checkpoint(self, message: OutgoingMessage) -> None:
        """Wait for every batch of the other stage, then checkpoint through the current one."""
        other = self.child if self._current is self.loop else self.loop
        await self._drained(other)
        await self._current.checkpoint(message)

    async def transaction(
        self,
        levels: LevelColumns,
        messages: Sequence[OutgoingMessage],
        offsets: Mapping[TopicPartition, int],
        group_id: str,
        alone: frozenset[bytes] = frozenset(),
    ) -> int:
        """Not for exactly-once: the service gives that mode a single stage."""
        raise TypeError("AdaptiveOutput is at-least-once only")

    def _stage_for(self, size: int) -> OutputStage:
        if size > self.loop_levels:
            return self.child
        if self._current is self.child and not self._idle(self.child):
            return self.child  # going back now would wait for the child: stay until it is idle
        return self.loop

    def _idle(self, stage: OutputStage) -> bool:
        return all(batch.done() for batch in self._pending[id(stage)])

    async def _drained(self, stage: OutputStage) -> None:
        """Every batch sent through ``stage`` acknowledged; raises the first failure."""
        pending = self._pending[id(stage)]
        if pending:
            await asyncio.wait(pending)  # unlike gather, never cancels the service's futures
            for batch in pending:
                error = None if batch.cancelled() else batch.exception()
                if error is not None:
                    raise error
            pending.clear()
