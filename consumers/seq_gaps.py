"""Gaps in each index's ``seq``: what a complete level topic must not have.

``tickindex serve --complete-level-topic`` publishes every level there, whatever the level topic's
publication policy, so each index's ``seq`` runs 1, 2, 3, ... without gaps. ``SeqGaps`` watches the
deduplicated batches of a subscriber and lists every run of missing ``seq`` numbers after the first
level it saw of each index.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from consumers.level_batch import NO_SEQ, LevelBatch
from engine.kernel.ordering import run_starts, stable_order


class SeqGap(NamedTuple):
    """Levels ``first`` to ``last`` (inclusive) of index ``code`` never arrived."""

    code: str
    first: int
    last: int

    @property
    def missing(self) -> int:
        """How many levels are missing."""
        return self.last - self.first + 1


class SeqGaps:
    """Every gap in the ``seq`` of each index, over the batches seen (each index in seq order)."""

    def __init__(self) -> None:
        self.last_seq: dict[str, int] = {}
        self.gaps: list[SeqGap] = []

    @property
    def missing(self) -> int:
        """Levels missing in all gaps together."""
        return sum(gap.missing for gap in self.gaps)

    def observe(self, batch: LevelBatch) -> None:
        """Look at one deduplicated batch (per index in ``seq`` order)."""
        if len(batch) == 0:
            return
        order = stable_order(batch.index, len(batch.codes))
        index, seq = batch.index[order], batch.seq[order]
        first = run_starts(index)
        codes = [batch.codes[i] for i in index[first].tolist()]
        previous = np.empty(index.size, dtype=np.int64)
        previous[1:] = seq[:-1]
        previous[first] = [self.last_seq.get(code, NO_SEQ) for code in codes]
        gap = (previous != NO_SEQ) & (seq > previous + 1)
        for row in np.flatnonzero(gap).tolist():
            code = batch.codes[int(index[row])]
            self.gaps.append(SeqGap(code, int(previous[row]) + 1, int(seq[row]) - 1))
        last = np.append(np.flatnonzero(first)[1:] - 1, index.size - 1)
        self.last_seq.update(zip(codes, seq[last].tolist(), strict=True))
