"""Every kind of poison tick message, between good ticks, to a running service (both deliveries).

The service must go on: each poison message is on the dead-letter topic with its reason (cut to
the dead-letter bound when huge), the counters match, no level is NaN or infinite and the levels
are exactly ``replay``'s of the good ticks. Good ticks after the poison come partly as
``tick_batch`` messages larger than ``max_batch_ticks``, which bounds the engine batches.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from engine.kernel.columns import TickColumns
from engine.live.codec import DecodedFetch, Record
from engine.live.kafka.topics import ensure_topics
from engine.live.metrics import REASON_LABELS
from engine.refdata.builtin import load_builtin_universe
from engine.wire import WireCodec
from tests.support.live import (
    InProcessService,
    LiveTopics,
    TopicReader,
    assert_same_levels,
    read_levels,
    replay_levels,
    send_raw,
    simulate,
)
from tests.support.poison import batches, check_dead_letters, poison, singles
from tests.support.seed import SEED

pytestmark = pytest.mark.kafka

MAX_BATCH_TICKS = 40
BATCH_MESSAGE_TICKS = 2  # 200 messages: fetched 40 at a time (80 ticks) without sizing


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
async def test_every_poison_is_dead_lettered_and_levels_equal_replay(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path, delivery: str
) -> None:
    universe = load_builtin_universe()
    codec = WireCodec("json")
    ticks = simulate(universe, 800, SEED + 11)
    before, after = ticks.slice(0, 400), ticks.slice(400, 800)
    bad = poison(universe, int(before.ts_event[-1]))
    # Poison between good single ticks, then good tick_batch messages.
    head = singles(universe, before, codec)
    stream = head[:200] + [(k, v) for k, v, _, _ in bad[:9]] + head[200:]
    stream += [(k, v) for k, v, _, _ in bad[9:]] + batches(
        universe, after, codec, BATCH_MESSAGE_TICKS
    )
    bad_offsets = [*range(200, 209), *range(409, 409 + len(bad) - 9)]
    config = topics.config(kafka_bootstrap, delivery=delivery, max_batch_ticks=MAX_BATCH_TICKS)
    await ensure_topics(config)
    offsets = await send_raw(kafka_bootstrap, topics.tick, stream)
    assert [offsets[i] for i in bad_offsets] == bad_offsets

    live = InProcessService(config, universe)
    engine_batches: list[int] = []
    process = live.service.pipeline.process

    def recording(batch: TickColumns) -> None:
        engine_batches.append(len(batch))
        process(batch)

    live.service.pipeline.process = recording  # type: ignore[method-assign,assignment]
    fetched_ticks: list[int] = []
    decode = live.service.decoder.decode

    def recording_decode(records: Sequence[Record]) -> DecodedFetch:
        fetch = decode(records)
        fetched_ticks.append(len(fetch.ticks))
        return fetch

    live.service.decoder.decode = recording_decode  # type: ignore[method-assign]
    async with live.running():
        await live.wait_consumed(len(ticks) + len(bad), timeout=60)
        assert live.sample("tickindex_service_phase", phase="running") == 1
    async with TopicReader(kafka_bootstrap, topics.dead_letter) as reader:
        letters = await reader.read()
    got = await read_levels(kafka_bootstrap, topics.level, codec)

    # Every poison message once on the dead-letter topic, with its reason, cut to the bound.
    check_dead_letters(letters, topics.tick, dict(zip(bad_offsets, bad, strict=True)))
    assert sum("tickindex.truncated" in dict(letter.headers) for letter in letters) == 1

    # Counters match, the good ticks all applied, engine batches bounded in ticks.
    expected = Counter(reason for _, _, reason, _ in bad)
    for label in REASON_LABELS:
        assert live.sample("tickindex_ticks_rejected_total", reason=label) == expected[label]
        assert live.sample("tickindex_dead_letters_total", reason=label) == expected[label]
    assert live.sample("tickindex_ticks_applied_total") == len(ticks)
    assert max(engine_batches) <= MAX_BATCH_TICKS
    assert sum(engine_batches) == sum(fetched_ticks) >= len(ticks)
    # Fetches are sized by the ticks per message seen: only the first one or two fetches with
    # tick_batch messages (the estimate follows one fetch behind) hold more.
    assert sum(n > MAX_BATCH_TICKS for n in fetched_ticks) <= 2, str(fetched_ticks)

    # No level is NaN or infinite, and they are exactly replay's of the good ticks.
    assert got and all(math.isfinite(row.level) for row in got)
    assert_same_levels(got, replay_levels(universe, ticks, tmp_path), "service vs replay")
