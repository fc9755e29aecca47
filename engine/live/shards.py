"""Index shards: which shard computes each index, and what a shard's instance sees of events.

The shard of an index is a stable function of its root code, the code at the end of its
``underlying`` chain (``zlib.crc32(root) % n_shards``): it does not move when other indices are
added or removed, and a total return index or a currency variant always lands with the index
it is computed from. A shard's universe keeps every security (ticks of other shards' securities
screen and apply the same, they move none of its levels) and only its indices
(``engine.refdata.subset.restrict_universe``), so its levels are bitwise those of one instance
running the whole family.

Every shard reads every tick and control event. ``ShardEventScope`` says what one shard does
with an event: an event naming indices of other shards only is ignored (its owner applies it),
a review keeps the rows of the shard's own indices, and the dead letters of input every shard
sees alike (bad ticks, events of no shard, security-wide events) are written by shard 0 only,
so a bad message is dead-lettered once however many shards there are.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

from engine.maintenance.events import IndexEvent, Review, indices_named
from engine.refdata.subset import restrict_universe
from engine.refdata.universe import Universe

LETTER_WRITER = 0
"""The shard that dead-letters the input every shard sees alike."""


def shard_of_code(code: str, n_shards: int) -> int:
    """The shard of a root index code: stable across processes and universe changes."""
    return zlib.crc32(code.encode()) % n_shards


def shard_name(shard: int, n_shards: int) -> str:
    """``k-of-N``: names a shard's transactional id and checkpoint key."""
    return f"{shard}-of-{n_shards}"


@dataclass(frozen=True)
class ShardPlan:
    """The shard of every index of a universe (and of its currency variants).

    Attributes
    ----------
    n_shards : int
        Number of shards.
    shard_of : mapping of str to int
        Shard per index code, in the universe's order, variants after.
    """

    n_shards: int
    shard_of: Mapping[str, int]

    @classmethod
    def for_universe(
        cls, universe: Universe, n_shards: int, variants: Mapping[str, str] | None = None
    ) -> ShardPlan:
        """The plan of ``universe``; ``variants`` maps a currency variant to its base index."""
        if n_shards < 1:
            raise ValueError(f"n_shards must be positive, not {n_shards}")
        underlying = {spec.code: spec.underlying for spec in universe.indices}
        shard_of = {code: shard_of_code(_root(code, underlying), n_shards) for code in underlying}
        for variant, base in (variants or {}).items():
            shard_of[variant] = shard_of[base]
        return cls(n_shards, shard_of)

    def codes_of(self, shard: int) -> tuple[str, ...]:
        """Index codes of ``shard``, in the plan's order."""
        return tuple(code for code, k in self.shard_of.items() if k == shard)

    def universe_of(self, universe: Universe, shard: int) -> Universe:
        """``universe`` restricted to the indices of ``shard``."""
        known = set(universe.index_codes)
        return restrict_universe(universe, [c for c in self.codes_of(shard) if c in known])

    def scope(self, shard: int) -> ShardEventScope:
        """What ``shard`` does with control events."""
        return ShardEventScope(shard, self.shard_of)


def _root(code: str, underlying: Mapping[str, str | None]) -> str:
    seen = {code}
    while (parent := underlying.get(code)) is not None and parent not in seen:
        seen.add(parent)
        code = parent
    return code


class ShardEventScope:
    """Which control events one shard applies, and which refusals it dead-letters.

    Parameters
    ----------
    shard : int
        This shard.
    shard_of : mapping of str to int
        Shard of every index code of the family.
    """

    def __init__(self, shard: int, shard_of: Mapping[str, int]) -> None:
        self.shard = shard
        self.shard_of = shard_of
        self.writes_shared_letters = shard == LETTER_WRITER

    def restrict(self, event: IndexEvent) -> IndexEvent | None:
        """The part of ``event`` this shard applies, None when it is for other shards only.

        An event naming an index no shard knows is kept whole: admitting it fails (``unknown
        index``) as it would on one instance, and ``letters_for`` tells who writes that letter.
        """
        named = indices_named(event)
        if not named or any(code not in self.shard_of for code in named):
            return event
        if isinstance(event, Review):
            rows = [row for row in event.rows if self.shard_of[row.index] == self.shard]
            if not rows:
                return None
            whole = len(rows) == len(event.rows)
            return event if whole else msgspec.structs.replace(event, rows=rows)
        return event if self.shard_of[named[0]] == self.shard else None

    def letters_for(self, event: IndexEvent | None) -> bool:
        """Whether this shard dead-letters a refusal or failure of ``event`` (None: undecodable).

        An event on this shard's indices: this shard (no other applies it). Any other (an
        undecodable message, a security-wide event, an index of no shard): the letter writer.
        """
        named = [] if event is None else indices_named(event)
        if named and all(self.shard_of.get(code) == self.shard for code in named):
            return True
        return self.writes_shared_letters
