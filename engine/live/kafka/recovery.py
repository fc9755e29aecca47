"""Exactly-once recovery in process: after an aborted transaction, go on from the last commit.

A transaction that Kafka did not commit (a record refused, the broker gone while committing, the
output process dead) leaves nothing visible to ``read_committed`` readers, but the engine has
already applied the batch and the consumer has moved past it. The service then puts back the
engine state of the last committed checkpoint (kept in memory as ``CommittedPoint``) into a fresh
``FetchWork`` (``engine.live.fetch_work``: nothing of the aborted batches survives), seeks the
inputs to its offsets, replaces the output stage (a producer with a failed send cannot be
reused) and fetches again: nothing is published twice and nothing is skipped.

``AbortPolicy`` says when to stop instead: a retriable failure is retried with a growing, capped
delay for as long as it lasts; a failure that is not retriable (a record larger than the topic's
``max.message.bytes``) is retried ``attempts`` times in a row from the same commit, then the
service stops with a ``DeliveryError`` naming the record's topic and Kafka's reason (``serve``
exits 2): the input stays uncommitted, so a restart after the fix publishes it. A dead letter (or
audit, bars record) that Kafka refused is never fatal: the retried batch goes without it, and it
is logged and counted (``tickindex_dead_letter_write_failures_total``); levels stay strict.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from engine.core.errors import DeliveryError, TickIndexError
from engine.live.codec import OutgoingMessage
from engine.live.kafka.output import OutputStage
from engine.live.kafka.records import record_identity
from engine.live.log_limits import RateLimitedLog

log = logging.getLogger(__name__)
_CLOSE_SECONDS = 30.0


class CommittedPoint(NamedTuple):
    """The last committed checkpoint (its message value) and the input offsets stored in it."""

    checkpoint: bytes
    offsets: dict[TopicPartition, int]


@dataclass
class AbortPolicy:
    """Retry or stop after aborted transactions; counts aborts since the last commit.

    Parameters
    ----------
    attempts : int
        Transactions in a row that may fail with a non-retriable error, since the last commit or
        the last refused record dropped from the retried batch, before the service stops.
    first_delay_s, max_delay_s : float
        Wait before the first retry, doubled per attempt up to ``max_delay_s``.
    """

    attempts: int = 5
    first_delay_s: float = 0.5
    max_delay_s: float = 10.0
    in_a_row: int = 0
    refused_in_a_row: int = 0
    alone: frozenset[bytes] = frozenset()
    refused_alone: frozenset[bytes] = frozenset()
    _log: RateLimitedLog = field(default_factory=lambda: RateLimitedLog(log, interval_s=10.0))

    def committed(self) -> None:
        """A transaction committed: the count starts again."""
        self.in_a_row = self.refused_in_a_row = 0
        self.alone = self.refused_alone = frozenset()

    def without_refused(
        self, messages: list[OutgoingMessage]
    ) -> tuple[list[OutgoingMessage], list[OutgoingMessage]]:
        """A retried batch's other messages: (those to send, those Kafka refused on their own).

        A record refused in a shared record batch is sent alone next (``alone``); refused again
        on its own, it is dropped.
        """
        if not self.refused_alone:
            return messages, []
        kept: list[OutgoingMessage] = []
        dropped: list[OutgoingMessage] = []
        for message in messages:
            refused = record_identity(message) in self.refused_alone
            (dropped if refused else kept).append(message)
        for message in dropped:
            log.error(
                "exactly-once: record to %s (%d bytes) refused by Kafka, dropped from the "
                "retried batch",
                message.topic,
                len(message.value),
            )
        if dropped:  # progress: the refusals so far are dealt with
            self.refused_in_a_row = 0
        return kept, dropped

    def retry_delay(self, error: TickIndexError) -> float:
        """Seconds to wait before retrying after ``error``; raises when it is time to stop.

        Raises
        ------
        DeliveryError
            After ``attempts`` non-retriable failures in a row (retriable ones, a broker outage,
            only delay), with the last one's reason.
        """
        self.in_a_row += 1
        if not error.retriable:
            refused: frozenset[bytes] = getattr(error, "refused", frozenset())
            # Only refusals count; a dropped side record restarts the count (``without_refused``),
            # not a newly refused one: a refused level is new each retry (ts_published changes).
            self.refused_in_a_row += 1
            self.refused_alone |= refused & self.alone
            self.alone |= refused
            if self.refused_in_a_row >= self.attempts:
                raise DeliveryError(
                    f"exactly-once: {self.refused_in_a_row} transactions in a row from the same "
                    f"committed offsets were refused by Kafka, nothing of them is committed; "
                    f"stopping. Last: {error}"
                ) from error
        delay = min(self.max_delay_s, self.first_delay_s * 2.0 ** (self.in_a_row - 1))
        self._log.log(
            "aborted",
            logging.WARNING,
            "transaction aborted (attempt %d, nothing of it committed): %s; retrying from the "
            "last commit in %.1f s",
            self.in_a_row,
            error,
            delay,
        )
        return delay


async def close_quietly(output: OutputStage | None) -> None:
    """Close a failed output stage; its own failure, already handled, is only logged."""
    if output is None:
        return
    try:
        await asyncio.wait_for(output.close(), _CLOSE_SECONDS)
    except Exception as exc:  # the stage failed before: what it says on close changes nothing
        log.info("closing the failed output stage: %s: %s", type(exc).__name__, exc)


async def start_output(
    make: Callable[[], OutputStage],
    delay_s: float,
    policy: AbortPolicy,
    stopping: Callable[[], bool],
) -> OutputStage | None:
    """A new started output stage after ``delay_s``; retries while the broker is unreachable.

    Returns None when the service is asked to stop meanwhile.
    """
    while True:
        await asyncio.sleep(delay_s)
        if stopping():
            return None
        output = make()
        try:
            await output.start()
        except (TickIndexError, KafkaError, OSError) as exc:
            await close_quietly(output)
            error = exc if isinstance(exc, TickIndexError) else DeliveryError(str(exc), True)
            delay_s = policy.retry_delay(error)
            continue
        return output
