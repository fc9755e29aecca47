"""Rate-limited logging: a failure that repeats (a broker outage) logs a line per interval.

During a broker outage aiokafka logs a reconnect or metadata error on every attempt, many per
second, and the service would log each failed record alike. ``RateLimitedLog`` (our own lines)
and ``RateLimitFilter`` (installed on aiokafka's loggers) let one line per kind through every
``interval_s`` seconds and add how many similar lines were suppressed since the last one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

#: aiokafka's loggers whose repeated lines ``limit_kafka_client_logs`` rate-limits.
KAFKA_CLIENT_LOGGERS: tuple[str, ...] = (
    "aiokafka",
    "aiokafka.conn",
    "aiokafka.client",
    "aiokafka.cluster",
    "aiokafka.producer.sender",
    "aiokafka.producer.producer",
    "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator",
)


class _Window:
    """When each kind last passed and how many were held back since."""

    def __init__(self, interval_s: float, clock: Callable[[], float]) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[object, float] = {}
        self._suppressed: dict[object, int] = {}

    def admit(self, kind: object) -> int | None:
        """None to suppress this line, else how many of its kind were suppressed before it."""
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval_s:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return None
        self._last[kind] = now
        return self._suppressed.pop(kind, 0)


def _suffix(suppressed: int, interval_s: float) -> str:
    if not suppressed:
        return ""
    return f" ({suppressed} similar lines suppressed in the last {interval_s:g} s)"


class RateLimitedLog:
    """At most one line per kind every ``interval_s`` seconds on ``logger``.

    Parameters
    ----------
    logger : logging.Logger
        Where admitted lines go.
    interval_s : float
        Minimum time between two lines of one kind.
    clock : callable, optional
        Monotonic seconds (tests pass a fake one).
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self._window = _Window(interval_s, clock)

    def log(self, kind: object, level: int, msg: str, *args: object) -> bool:
        """Log ``msg % args`` unless a line of ``kind`` was logged less than an interval ago.

        Returns
        -------
        bool
            Whether the line was logged.
        """
        suppressed = self._window.admit(kind)
        if suppressed is None:
            return False
        text = msg % args if args else msg
        suffix = _suffix(suppressed, self._window.interval_s)
        self.logger.log(level, "%s%s", text, suffix, stacklevel=2)
        return True


class RateLimitFilter(logging.Filter):
    """A logging filter letting one record per (logger, message template) through per interval.

    Parameters
    ----------
    interval_s : float
        Minimum time between two records of one template.
    clock : callable, optional
        Monotonic seconds.
    """

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._window = _Window(interval_s, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        suppressed = self._window.admit((record.name, str(record.msg)))
        if suppressed is None:
            return False
        if suppressed:
            record.msg = f"{record.getMessage()}{_suffix(suppressed, self._window.interval_s)}"
            record.args = None
        return True


def limit_kafka_client_logs(
    interval_s: float = 10.0, loggers: Iterable[str] = KAFKA_CLIENT_LOGGERS
) -> RateLimitFilter:
    """Rate-limit the repeated lines of aiokafka's loggers (installed once per process).

    Parameters
    ----------
    interval_s : float
        Minimum time between two lines of one message template.
    loggers : iterable of str
        Logger names to filter.

    Returns
    -------
    RateLimitFilter
        The filter installed (the same one on later calls).
    """
    for name in loggers:
        for existing in logging.getLogger(name).filters:
            if isinstance(existing, RateLimitFilter):
                return existing
    installed = RateLimitFilter(interval_s)
    for name in loggers:
        logging.getLogger(name).addFilter(installed)
    return installed
