"""``LevelSubscriber``'s decoding of fetched records, against a plain level-by-level reference
on seeded random streams: singles and batched messages, republished, overlapping and
out-of-order seqs, conflated counts, empty batches and undecodable records."""

from __future__ import annotations

import numpy as np

from consumers.level_batch import NO_SEQ
from consumers.level_client import LevelSubscriber
from engine.wire import IndexLevel, IndexLevels, WireCodec
from tests.support.records import records
from tests.support.seed import SEED

CODES = ["HSI", "HSCEI", "HSTECH", "HSCI"]
CODEC = WireCodec("json")


def random_message(rng: np.random.Generator, top: dict[str, int]) -> IndexLevel | IndexLevels:
    code = CODES[int(rng.integers(len(CODES)))]
    start = max(0, top.get(code, 0) + int(rng.integers(-3, 3)))  # republished or overlapping
    if rng.random() < 0.4:
        seq = start + 1
        top[code] = max(top.get(code, 0), seq)
        level = 1000.0 + float(rng.normal())
        count = int(rng.integers(1, 3))
        return IndexLevel(code, level, level - 1000.0, 10 * seq, 10 * seq + 1, seq, count)
    size = int(rng.integers(0, 6))
    seqs = (start + 1 + np.arange(size)).tolist()
    if size > 2 and rng.random() < 0.2:
        seqs[1], seqs[2] = seqs[2], seqs[1]  # out of order within the message
    top[code] = max([top.get(code, 0), *seqs])
    counts = rng.integers(1, 4, size).tolist() if rng.random() < 0.3 else None
    return IndexLevels(
        code,
        999.5,
        (1000.0 + rng.normal(size=size)).tolist(),
        [10 * s for s in seqs],
        seqs,
        77,
        counts,
    )


def reference_rows(
    messages: list[IndexLevel | IndexLevels], last: dict[str, int], codes: dict[str, int]
) -> tuple[list[tuple[object, ...]], int]:
    """Level by level: a level is kept when its seq is above every seq of its index before."""
    rows: list[tuple[object, ...]] = []
    duplicates = 0
    for message in messages:
        if isinstance(message, IndexLevels):
            codes.setdefault(message.index, len(codes))
            counts = message.count or [1] * len(message.seq)
            levels = [
                (lv, lv - message.prev_close, s, ts, message.ts_published, c)
                for lv, s, ts, c in zip(
                    message.level, message.seq, message.ts_event, counts, strict=True
                )
            ]
        else:
            m = message
            levels = [(m.level, m.change, m.seq, m.ts_event, m.ts_published, m.count)]
        for level in levels:
            seq = int(level[2])
            if seq <= last.get(message.index, NO_SEQ):
                duplicates += 1
                continue
            last[message.index] = seq
            rows.append((codes.setdefault(message.index, len(codes)), *level))
    return rows, duplicates


def test_decoding_equals_the_level_by_level_reference() -> None:
    rng = np.random.default_rng(SEED)
    print(f"seed {SEED}")
    subscriber = LevelSubscriber("127.0.0.1:1", "levels")
    top: dict[str, int] = {}
    last: dict[str, int] = {}
    codes: dict[str, int] = {}
    undecodable = kept = 0
    for _ in range(200):
        messages = [random_message(rng, top) for _ in range(int(rng.integers(0, 12)))]
        values: list[bytes | None] = [CODEC.encode(m) for m in messages]
        if rng.random() < 0.2:
            values.insert(int(rng.integers(len(values) + 1)), b'{"type":"index_lev')
            undecodable += 1
        batch = subscriber._decode(records(values))
        rows, duplicates = reference_rows(messages, last, codes)
        got = list(
            zip(
                batch.index.tolist(),
                batch.level.tolist(),
                batch.change.tolist(),
                batch.seq.tolist(),
                batch.ts_event.tolist(),
                batch.ts_published.tolist(),
                [] if batch.count is None else batch.count.tolist(),
                strict=True,
            )
        )
        assert got == rows
        kept += len(rows)
        assert batch.duplicates == duplicates
        assert batch.codes == tuple(codes)
        assert batch.index.dtype == np.int32 and batch.seq.dtype == np.int64
    assert subscriber.stats.undecodable == undecodable
    assert subscriber.stats.levels == kept > 0
