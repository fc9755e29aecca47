"""One shard's service: an ``IndexService`` on the shard's indices, scoped to its events.

It differs from a whole-family service in what it writes, never in how it computes: control
events for other shards' indices are left to them (``engine.live.shards.ShardEventScope``), and
the dead letters of input every shard sees alike (bad ticks, FX ticks) are written by one shard
only, the others count them (``engine.live.dead_letters.is_shared_input_letter``). Fenced by a
newer owner of its shard (this instance was paused past the group's session timeout), it stops
with ``ShardFencedError`` instead of retrying the transaction.
"""

from __future__ import annotations

from aiokafka.errors import InvalidProducerEpoch, ProducerFenced

from engine.core.errors import DeliveryError, TickIndexError
from engine.kernel.columns import LevelColumns
from engine.live.codec import OutgoingMessage, Record
from engine.live.config import ServiceConfig
from engine.live.dead_letters import is_shared_input_letter
from engine.live.fetch_work import FetchWork
from engine.live.metrics import ServiceMetrics
from engine.live.service import IndexService
from engine.live.shards import ShardEventScope
from engine.refdata.universe import Universe


class ShardFencedError(DeliveryError):
    """A newer owner of the shard fenced this one's transactions: the shard has moved on."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retriable=False)


def is_fenced(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is Kafka fencing this transactional id.

    The output process reports its failures as text, hence the name check as well.
    """
    chain: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    fencing = (ProducerFenced, InvalidProducerEpoch)
    names = tuple(kind.__name__ for kind in fencing)
    return any(isinstance(e, fencing) or any(n in str(e) for n in names) for e in chain)


class ShardService(IndexService):
    """``IndexService`` of one shard.

    Parameters
    ----------
    config : ServiceConfig
        Settings of the shard (its own ``shard`` name: checkpoint key, transactional id).
    universe : Universe
        Every security, the shard's indices only (``ShardPlan.universe_of``).
    metrics : ServiceMetrics
        The shard's metrics.
    scope : ShardEventScope
        What the shard does with control events and shared dead letters.
    """

    def __init__(
        self,
        config: ServiceConfig,
        universe: Universe,
        metrics: ServiceMetrics,
        scope: ShardEventScope,
    ) -> None:
        self.scope = scope
        super().__init__(config, universe, metrics)

    def _new_work(self, *, hold_counts: bool) -> FetchWork:
        work = super()._new_work(hold_counts=hold_counts)
        work.control.scope = self.scope
        return work

    async def _recover_transaction(self, error: TickIndexError) -> None:
        """As a single service, except when fenced: then the shard stops, never retried.

        Retrying would start a new transactional producer, which would fence the newer owner in
        turn and could commit again from this instance's older checkpoint.
        """
        if is_fenced(error):
            raise ShardFencedError(
                f"shard {self.config.shard} fenced by a newer owner: stopping it here"
            ) from error
        await super()._recover_transaction(error)

    def _process(
        self, by_topic: dict[str, list[Record]]
    ) -> tuple[LevelColumns, list[OutgoingMessage]]:
        levels, messages = super()._process(by_topic)
        if not self.scope.writes_shared_letters:
            topic = self.config.dead_letter_topic
            messages = [m for m in messages if not is_shared_input_letter(m, topic)]
        return levels, messages
