"""Per-index publication policy of the live service: every level, or conflated per index group.

A policy (``ServiceConfig.publication``) is a comma-separated list of ``PATTERN=POLICY``:
``PATTERN`` an ``fnmatch`` glob over index codes (an index group: ``HSI``, ``HSTECH*``, ``*``),
``POLICY`` ``all`` (every level, the default) or ``<N>ms`` (at most one level of each index per
N ms of event time: the last one, with the count of levels it stands for). The first rule that
matches an index decides; an index no rule matches gets every level. A lone ``POLICY`` means
``*=POLICY``. Currency variants are matched by their own code (``HSI*`` covers ``HSI.USD``, ``HSI``
does not).

Conflation is ``engine.kernel.conflation.Conflator`` with one interval per index, in event time,
so it does not depend on how the stream is batched; every published level is a real level at a
real tick. Wall-clock time only enters when the feed goes quiet: once no level has come for an
index's interval, its held level is released (``release_idle``), so the latest level of every
index is always published soon.

With a complete level topic configured, every level also goes there, unconflated: the batch
the output stage receives then holds those rows with ``count`` 0 (the complete topic only) beside
the level topic's rows (``count`` >= 1, see ``engine.live.level_encoding.LevelEncoder``).
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from engine.kernel.columns import LevelColumns
from engine.kernel.conflation import Conflator, HeldRows

MAX_INTERVAL_MS = 366 * 86_400_000
"""Longest conflation interval: a year of event time."""

_INTERVAL = re.compile(r"([0-9]+)ms")


class PublicationRule(NamedTuple):
    """One ``PATTERN=POLICY`` of a policy: an index-code glob and its interval (0: every level)."""

    pattern: str
    interval_ms: int


def parse_publication(spec: str) -> tuple[PublicationRule, ...]:
    """The rules of a policy such as ``"HSI=all,HSTECH*=50ms,*=2000ms"``.

    Raises
    ------
    ValueError
        Naming the part that is not ``PATTERN=all`` or ``PATTERN=<N>ms`` (N from 1 to a year).
    """
    parts = [part.strip() for part in spec.split(",")]
    if len(parts) == 1 and "=" not in parts[0]:
        parts = [f"*={parts[0]}"]
    rules = []
    for part in parts:
        pattern, equals, policy = (side.strip() for side in part.partition("="))
        if not (equals and pattern):
            raise ValueError(f"publication: {part!r} is not PATTERN=POLICY (in {spec!r})")
        rules.append(PublicationRule(pattern, _interval_ms(policy, part, spec)))
    return tuple(rules)


def _interval_ms(policy: str, part: str, spec: str) -> int:
    if policy == "all":
        return 0
    match = _INTERVAL.fullmatch(policy)
    if match is None or not 0 < int(match.group(1)) <= MAX_INTERVAL_MS:
        raise ValueError(
            f"publication: policy {policy!r} of {part!r} is neither 'all' nor '<N>ms' with N "
            f"from 1 to {MAX_INTERVAL_MS} (in {spec!r})"
        )
    return int(match.group(1))


def interval_vector(rules: Sequence[PublicationRule], codes: Sequence[str]) -> NDArray[np.int64]:
    """Conflation interval per index (ns, 0: every level), by index id; first match wins."""
    intervals = np.zeros(len(codes), dtype=np.int64)
    decided = np.zeros(len(codes), dtype=bool)
    for rule in rules:
        matched = np.array([fnmatch.fnmatchcase(code, rule.pattern) for code in codes], bool)
        chosen = matched & ~decided if matched.size else matched
        intervals[chosen] = rule.interval_ms * 1_000_000
        decided |= chosen
    return intervals


class Publication:
    """What the service publishes of each batch's levels, under a policy.

    Parameters
    ----------
    spec : str
        The policy (``ServiceConfig.publication``).
    codes : sequence of str
        Index codes by index id, currency variants included.
    complete : bool
        Every level also goes to the complete level topic (rows with ``count`` 0).
    clock : callable
        Monotonic wall clock in seconds (the quiet-feed release).
    """

    def __init__(
        self,
        spec: str,
        codes: Sequence[str],
        *,
        complete: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.intervals_ns = interval_vector(parse_publication(spec), codes)
        self.conflator = Conflator(self.intervals_ns) if self.intervals_ns.any() else None
        self.complete = complete
        self._clock = clock
        self._last_levels = clock()

    @property
    def passes_everything(self) -> bool:
        """Levels go out as they come: no conflation and no complete topic."""
        return self.conflator is None and not self.complete

    def publish(self, levels: LevelColumns) -> tuple[LevelColumns, int]:
        """The rows to send for one batch's levels (tick order), and the levels conflated away.

        Returns
        -------
        rows : LevelColumns
            Unchanged when ``passes_everything``; else the level topic's rows (``count`` >= 1)
            and, with a complete topic, every level of the batch with ``count`` 0.
        conflated : int
            Levels that now will never be published on the level topic: each released row
            stands for ``count`` levels, ``count - 1`` of them left out.
        """
        if len(levels):
            self._last_levels = self._clock()
        if self.passes_everything:
            return levels, 0
        released = _counted(levels, 1) if self.conflator is None else self.conflator.push(levels)
        assert released.count is not None  # the conflator counts
        conflated = int(released.count.sum()) - len(released)
        self._drop_spent_conflator()
        if not self.complete:
            return released, conflated
        return LevelColumns.concat([_counted(levels, 0), released]), conflated

    def idle_release_due(self) -> bool:
        """Held levels whose index's interval has passed without any level."""
        if self.conflator is None or len(self.conflator) == 0:
            return False
        held = self.conflator.held().levels.index
        return bool((self.intervals_ns[held] <= self._quiet_ns()).any())

    def release_idle(self) -> tuple[LevelColumns, int]:
        """Release the held levels of the indices quiet for their interval (see ``publish``)."""
        if not self.idle_release_due():
            return LevelColumns.empty(), 0
        assert self.conflator is not None
        quiet = self.intervals_ns <= self._quiet_ns()
        released = self.conflator.release(quiet)
        assert released.count is not None
        self._drop_spent_conflator()
        return released, int(released.count.sum()) - len(released)

    def held(self) -> HeldRows | None:
        """The held levels to checkpoint; None without conflation."""
        return None if self.conflator is None else self.conflator.held()

    def restore(self, held: HeldRows | None) -> None:
        """Continue from a checkpoint's held levels (none: nothing held)."""
        if self.conflator is not None and held is not None:
            self.conflator.restore(held)
        elif held is not None and len(held.levels):
            # The policy is "all" now: what was held goes out with the next batch.
            self.conflator = Conflator(np.zeros(len(self.intervals_ns), dtype=np.int64))
            self.conflator.restore(held)

    def _drop_spent_conflator(self) -> None:
        """Under "all", the conflator ``restore`` made goes once what it held is out.

        Levels then pass as they come again (``passes_everything``), at no cost per batch.
        """
        if self.conflator is not None and len(self.conflator) == 0 and not self.intervals_ns.any():
            self.conflator = None

    def _quiet_ns(self) -> int:
        return int((self._clock() - self._last_levels) * 1e9)


def _counted(levels: LevelColumns, count: int) -> LevelColumns:
    return replace(levels, count=np.full(len(levels), count, dtype=np.int64))
