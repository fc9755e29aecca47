"""A pause between failed metadata updates of an aiokafka producer or consumer.

When the broker is down, aiokafka's producer sender (and a consumer's fetcher) asks for a
metadata update, the update fails at once (connection refused), and it asks again: thousands of
attempts a second, a core burnt and a log line each (measured: 5,500 a second in the output
process, and as many in the service's consumer, during an outage).
``backoff_metadata_updates`` makes a client wait ``backoff_s`` after a failed update
before the next one, as Kafka's own clients do with ``retry.backoff.ms``; successful updates are
never delayed. It wraps ``AIOKafkaClient.force_metadata_update`` (checked when installed; left
alone, with a warning, when this aiokafka has none).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: Wait after a failed metadata update before the next one (Kafka's ``retry.backoff.ms``).
METADATA_BACKOFF_S = 0.1


class _MetadataBackoff:
    def __init__(
        self, force: Callable[[], Any], backoff_s: float, clock: Callable[[], float]
    ) -> None:
        self._force = force
        self._backoff_s = backoff_s
        self._clock = clock
        self._failed_at = -math.inf
        self._delayed: asyncio.Future[bool] | None = None

    def __call__(self) -> asyncio.Future[bool]:
        wait = self._failed_at + self._backoff_s - self._clock()
        if wait <= 0:
            return self._update()
        if self._delayed is None or self._delayed.done():
            self._delayed = asyncio.ensure_future(self._update_after(wait))
        return asyncio.shield(self._delayed)

    def _update(self) -> asyncio.Future[bool]:
        update: asyncio.Future[bool] = self._force()
        if update.done():  # a refused connection fails at once: the next call must know
            self._note(update)
        else:
            update.add_done_callback(self._note)
        return update

    async def _update_after(self, wait: float) -> bool:
        await asyncio.sleep(wait)
        return bool(await self._update())

    def _note(self, update: asyncio.Future[bool]) -> None:
        if not update.cancelled() and update.exception() is None and update.result() is False:
            self._failed_at = self._clock()


def backoff_metadata_updates(
    owner: Any,
    backoff_s: float = METADATA_BACKOFF_S,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Make ``owner`` wait ``backoff_s`` after a failed metadata update before the next.

    Parameters
    ----------
    owner : AIOKafkaProducer or AIOKafkaConsumer
        Started or not: the wrapper applies from the next update on.
    backoff_s : float
        Seconds between a failed update and the next attempt.
    clock : callable, optional
        Monotonic seconds.

    Returns
    -------
    bool
        True when installed; False (logged) when this aiokafka's client has no
        ``force_metadata_update``.
    """
    client: Any = getattr(owner, "client", None) or getattr(owner, "_client", None)
    force = getattr(client, "force_metadata_update", None)
    if client is None or not callable(force):
        log.warning("metadata updates not backed off: the Kafka client has no such method")
        return False
    client.force_metadata_update = _MetadataBackoff(force, backoff_s, clock)
    return True
