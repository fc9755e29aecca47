"""Engine levels -> level-topic messages keyed by index code (and the complete topic's copies)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from engine.kernel.columns import LevelColumns
from engine.kernel.ordering import stable_order
from engine.live.codec import OutgoingMessage
from engine.refdata.universe import Universe
from engine.wire import IndexLevel, IndexLevels, WireCodec

MAX_LEVELS_PER_MESSAGE = 8192
"""Largest ``index_levels`` message: about 360 KB of JSON."""


class LevelEncoder:
    """Turns a batch of levels into level-topic messages keyed by index code.

    Parameters
    ----------
    codes : sequence of str
        Index codes by index id.
    prev_close : ndarray of float64
        Previous close by index id (``change`` is against it).
    codec : WireCodec
        Wire format.
    topic : str
        The level topic.
    batched : bool
        True: one ``index_levels`` message per index per batch; False: one ``index_level``
        message per level.
    complete_topic : str, optional
        Where the levels of ``count`` 0 go: every level, unconflated
        (``engine.kernel.publication``).
    """

    def __init__(
        self,
        codes: Sequence[str],
        prev_close: NDArray[np.float64],
        codec: WireCodec,
        topic: str,
        *,
        batched: bool,
        complete_topic: str | None = None,
    ) -> None:
        self.codes = tuple(codes)
        self.keys = [code.encode() for code in self.codes]
        self.prev_close = np.asarray(prev_close, dtype=np.float64)
        self.codec = codec
        self.topic = topic
        self.batched = batched
        self.complete_topic = complete_topic

    @classmethod
    def for_universe(
        cls,
        universe: Universe,
        codec: WireCodec,
        topic: str,
        *,
        batched: bool,
        extra_indices: Sequence[tuple[str, float]] = (),
        complete_topic: str | None = None,
    ) -> LevelEncoder:
        """The encoder of ``universe``'s indices, then ``extra_indices``.

        ``extra_indices`` are numbered after the universe's (currency variants: id
        ``len(universe.indices) + k``), as (code, previous close).
        """
        codes = (*universe.index_codes, *(code for code, _ in extra_indices))
        closes = [s.prev_close_level for s in universe.indices] + [c for _, c in extra_indices]
        closes_array = np.array(closes, dtype=np.float64)
        return cls(
            codes, closes_array, codec, topic, batched=batched, complete_topic=complete_topic
        )

    def encode(self, levels: LevelColumns, ts_published: int) -> list[OutgoingMessage]:
        """Messages for ``levels`` (in tick order); per-index order is kept within each key.

        Without ``count`` every level goes to the level topic as it is. With it, a level of
        ``count`` 0 goes to the complete topic (without ``count``: it stands for itself) and the
        others to the level topic with their ``count``.
        """
        if len(levels) == 0:
            return []
        if levels.count is None:
            return self._encode(levels, None, self.topic, ts_published)
        complete = levels.count == 0
        out = []
        if self.complete_topic is not None and complete.any():
            out = self._encode(levels.take(complete), None, self.complete_topic, ts_published)
        published = levels.take(~complete)
        if len(published):
            count = published.count
            out.extend(self._encode(published, count, self.topic, ts_published))
        return out

    def _encode(
        self,
        levels: LevelColumns,
        count: NDArray[np.int64] | None,
        topic: str,
        ts_published: int,
    ) -> list[OutgoingMessage]:
        if not self.batched:
            return self._singles(levels, count, topic, ts_published)
        order = stable_order(levels.index, len(self.codes))
        index_of, level, ts_event, seq = (
            levels.index[order],
            levels.level[order],
            levels.ts_event[order],
            levels.seq[order],
        )
        count_of = None if count is None else count[order]
        starts = np.flatnonzero(np.diff(index_of, prepend=-1))
        ends = np.append(starts[1:], len(order))
        out = []
        for first, last in zip(starts.tolist(), ends.tolist(), strict=True):
            index = int(index_of[first])
            # Chunks keep every message well under Kafka's 1 MiB default, whatever the batch size.
            for start in range(first, last, MAX_LEVELS_PER_MESSAGE):
                end = min(start + MAX_LEVELS_PER_MESSAGE, last)
                message = IndexLevels(
                    index=self.codes[index],
                    prev_close=float(self.prev_close[index]),
                    level=level[start:end].tolist(),
                    ts_event=ts_event[start:end].tolist(),
                    seq=seq[start:end].tolist(),
                    ts_published=ts_published,
                    count=None if count_of is None else count_of[start:end].tolist(),
                )
                encoded = self.codec.encode(message)
                out.append(OutgoingMessage(topic, self.keys[index], encoded))
        return out

    def _singles(
        self,
        levels: LevelColumns,
        count: NDArray[np.int64] | None,
        topic: str,
        ts_published: int,
    ) -> list[OutgoingMessage]:
        change = levels.level - self.prev_close[levels.index]
        counts = [1] * len(levels) if count is None else count.tolist()
        encode = self.codec.encode
        return [
            OutgoingMessage(
                topic,
                self.keys[index],
                encode(IndexLevel(self.codes[index], level, delta, ts, ts_published, seq, n)),
            )
            for index, level, delta, ts, seq, n in zip(
                levels.index.tolist(),
                levels.level.tolist(),
                change.tolist(),
                levels.ts_event.tolist(),
                levels.seq.tolist(),
                counts,
                strict=True,
            )
        ]
