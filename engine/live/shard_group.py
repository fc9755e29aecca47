"""``serve --shards N``: run the shards the group assigns to this instance, hand them back on
a rebalance, take over those of a dead instance.

Each assigned shard ``k`` runs a ``ShardService`` on its universe (``ShardPlan.universe_of``),
with the settings of a one-shard service named ``k-of-N``: its own checkpoint key and
transactional id, so a shard resumes from its last committed checkpoint whichever instance takes
it, and exactly-once the newcomer fences the dead owner's open transaction. Every shard reads
the whole tick and control topics from its own checkpointed offsets.

A revoked shard is stopped (batch finished, flushed, checkpointed, committed) inside the
rebalance callback, before this instance rejoins the group, so no shard ever has two live
owners from one rebalance to the next; a dead owner that is merely slow is fenced by Kafka.
A shard service that fails stops the whole instance (its shards go to the survivors), except
when it was fenced by a newer owner (this instance was paused past the session timeout): that
shard alone is given up, and the rebalance that follows says who runs it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import msgspec
from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from engine.live.config import ServiceConfig
from engine.live.kafka.shard_assignment import assignment_consumer, ensure_shard_topic
from engine.live.shard_metrics import ShardMetrics
from engine.live.shard_service import ShardFencedError, ShardService
from engine.live.shards import ShardPlan, shard_name
from engine.refdata.universe import Universe

log = logging.getLogger(__name__)

POLL_MS = 200


def shard_config(config: ServiceConfig, shard: int) -> ServiceConfig:
    """The settings of one shard's service: its name, its own end-of-day folder."""
    name = shard_name(shard, config.shards)
    eod_dir = None if config.eod_dir is None else str(Path(config.eod_dir) / f"shard-{name}")
    return msgspec.structs.replace(config, shard=name, eod_dir=eod_dir)


class ShardGroup:
    """The shards of this instance, as the group assigns them; ``run()`` until stopped.

    Parameters
    ----------
    config : ServiceConfig
        Settings, ``shards`` > 1.
    universe : Universe
        The whole index family.
    metrics : ShardMetrics
        The process's shard metrics.
    """

    def __init__(self, config: ServiceConfig, universe: Universe, metrics: ShardMetrics) -> None:
        self.config = config
        self.universe = universe
        self.metrics = metrics
        self.plan = ShardPlan.for_universe(universe, config.shards)
        self.services: dict[int, ShardService] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._universes: dict[int, Universe] = {}
        self._stop = asyncio.Event()
        self._failure: BaseException | None = None

    def owned(self) -> list[int]:
        """The shards this instance runs now."""
        return sorted(self._tasks)

    def request_stop(self) -> None:
        """Stop every shard cleanly and leave the group: ``run`` returns."""
        self._stop.set()

    async def run(self) -> None:
        """Join the group and run its assignments until ``request_stop``; raises when a shard
        service fails."""
        await ensure_shard_topic(self.config)
        consumer = assignment_consumer(self.config, _Rebalance(self))
        await consumer.start()
        log.info("joined the group of %d shards (%s)", self.config.shards, self.config.shard_topic)
        try:
            while not self._stop.is_set():
                await consumer.getmany(timeout_ms=POLL_MS)  # keeps the member polling
                self._raise_failure()
        finally:
            try:
                await self.release(self.owned())  # stop the shards before leaving the group
            finally:
                await consumer.stop()
        self._raise_failure()

    def acquire(self, shards: list[int]) -> None:
        """Start the services of ``shards``."""
        for shard in shards:
            if shard in self._tasks or self._stop.is_set():
                continue
            universe = self._universes.get(shard)
            if universe is None:
                universe = self.plan.universe_of(self.universe, shard)
                self._universes[shard] = universe
            service = ShardService(
                shard_config(self.config, shard),
                universe,
                self.metrics.of_shard(shard, universe.index_codes),
                self.plan.scope(shard),
            )
            self.services[shard] = service
            self._tasks[shard] = asyncio.create_task(service.run(), name=f"shard-{shard}")
            self.metrics.set_owned(shard, True)
            log.info(
                "shard %s acquired: %d indices",
                shard_name(shard, self.config.shards),
                len(universe.indices),
            )

    async def release(self, shards: list[int]) -> None:
        """Stop the services of ``shards`` and wait for them (a failure is raised by ``run``)."""
        stopping = [s for s in shards if s in self._tasks]
        for shard in stopping:
            self.services[shard].request_stop()
        tasks = [self._tasks[shard] for shard in stopping]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for shard, result in zip(stopping, results, strict=True):
            self._settle(shard, result if isinstance(result, BaseException) else None)

    def fail(self, failure: BaseException) -> None:
        """Stop the instance with ``failure`` (raised by ``run``), unless one came first."""
        if self._failure is None:
            self._failure = failure

    def _settle(self, shard: int, failure: BaseException | None) -> None:
        """Forget a finished shard service; keep its failure unless it was only fenced."""
        if self._tasks.pop(shard, None) is None:
            return  # settled already (by ``run`` while ``release`` waited, or the reverse)
        del self.services[shard]
        self.metrics.set_owned(shard, False)
        name = shard_name(shard, self.config.shards)
        if isinstance(failure, ShardFencedError):
            log.warning("shard %s given up: %s", name, failure)
        elif failure is not None:
            self.fail(failure)
        log.info("shard %s released", name)

    def _raise_failure(self) -> None:
        for shard, task in list(self._tasks.items()):
            if task.done():
                self._settle(shard, None if task.cancelled() else task.exception())
        if self._failure is not None:
            raise self._failure


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Stops revoked shards before the group rejoins, starts assigned ones after."""

    def __init__(self, group: ShardGroup) -> None:
        self.group = group

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.group.release(sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        try:
            self.group.acquire(sorted(tp.partition for tp in assigned))
        except Exception as exc:  # aiokafka only logs a listener's error: ``run`` raises it
            self.group.fail(exc)
