"""Every kind of poison tick message, between good ticks, to a running service (both deliveries).

The service must go on: each poison message is on the dead-letter topic with its reason (cut to
the dead-letter bound when huge), the counters match, no level is NaN or infinite and the levels
are exactly ``replay``'s of the good ticks. Good ticks after the poison come partly as
``tick_batch`` messages larger than ``max_batch_ticks``, which bounds the engine batches.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from engine.builtin import load_builtin_universe
from engine.columns import LevelColumns, TickColumns
from engine.live.codec import DecodedFetch, Record
from engine.live.dead_letters import DEAD_LETTER_MAX_BYTES, MAX_KEY_BYTES
from engine.live.metrics import REASON_LABELS
from engine.live.topics import ensure_topics
from engine.universe import Universe
from engine.wire import Tick, TickBatch, WireCodec
from tests.conftest import SEED
from tests.live_support import (
    InProcessService,
    LiveTopics,
    TopicReader,
    assert_same_levels,
    delete_topics,
    read_levels,
    replay_levels,
    send_raw,
    simulate,
)

pytestmark = pytest.mark.kafka

MAX_BATCH_TICKS = 40
BATCH_MESSAGE_TICKS = 2  # 200 messages: fetched 40 at a time (80 ticks) without sizing

Message = tuple[bytes | None, bytes]


@pytest.fixture
async def topics(kafka_bootstrap: str, request: pytest.FixtureRequest) -> AsyncIterator[LiveTopics]:
    names = LiveTopics.unique(request.node.name)
    yield names
    await delete_topics(kafka_bootstrap, names.names)


def poison(universe: Universe, ts: int) -> list[tuple[bytes | None, bytes, str, int | None]]:
    """(key, value, reason, batch position) of each poison message."""
    code = universe.securities[3]
    key = code.encode()

    def tick(**fields: object) -> bytes:
        body = {"type": "tick", "security": code, "price": 50.0, "ts_event": ts} | fields
        return json.dumps(body).encode()

    def raw_price(text: str) -> bytes:
        return tick().replace(b"50.0", text.encode())

    nested = b'{"type":"tick","security":"%s","price":1.0,"ts_event":1,"x":' % key
    nested += b"[" * 1000 + b"]" * 1000 + b"}"
    huge = b"\xc1" + bytes(range(256)) * 3906  # ~1 MB, not JSON
    mismatched = WireCodec("json").encode(TickBatch([code, code], [50.0], [ts, ts]))
    return [
        (key, tick(ts_event=2**63), "bad_timestamp", None),
        (key, tick(ts_event=2**64 + 1), "bad_timestamp", None),
        (key, tick(ts_event=-1), "bad_timestamp", None),
        (key, tick(seq=2**63), "bad_seq", None),
        (None, nested, "undecodable", None),
        (None, huge, "undecodable", None),
        (b"k" * 5000, b"{", "undecodable", None),
        (key, tick(price=1e308), "price_out_of_range", None),
        (key, raw_price("1e400"), "price_out_of_range", None),
        (key, raw_price("-1e400"), "price_out_of_range", None),
        (key, raw_price("NaN"), "undecodable", None),
        (key, tick(price=-5.0), "non_positive_price", None),
        (key, tick(price=0.0), "non_positive_price", None),
        (None, tick().replace(key, b"\xff\xfe\xfd\xfc"), "undecodable", None),
        (None, tick(security="X" * 1_000), "undecodable", None),
        (None, mismatched, "undecodable", None),
        (
            None,
            json.dumps(
                {
                    "type": "tick_batch",
                    "security": [code] * 3,
                    "price": [1.0] * 3,
                    "ts_event": [ts, 2**63, ts],
                }
            ).encode(),
            "bad_timestamp",
            1,
        ),
        (b"ZZZZ", tick(security="ZZZZ"), "unknown_security", None),
    ]


def singles(universe: Universe, ticks: TickColumns, codec: WireCodec) -> list[Message]:
    assert ticks.seq is not None
    columns = (ticks.security, ticks.price, ticks.ts_event, ticks.seq)
    return [
        (universe.securities[s].encode(), codec.encode(Tick(universe.securities[s], p, t, q)))
        for s, p, t, q in zip(*(c.tolist() for c in columns), strict=True)
    ]


def batches(universe: Universe, ticks: TickColumns, codec: WireCodec) -> list[Message]:
    out: list[Message] = []
    for start in range(0, len(ticks), BATCH_MESSAGE_TICKS):
        part = ticks.slice(start, start + BATCH_MESSAGE_TICKS)
        assert part.seq is not None
        message = TickBatch(
            [universe.securities[s] for s in part.security.tolist()],
            part.price.tolist(),
            part.ts_event.tolist(),
            part.seq.tolist(),
        )
        out.append((None, codec.encode(message)))
    return out


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
    stream += [(k, v) for k, v, _, _ in bad[9:]] + batches(universe, after, codec)
    bad_offsets = [*range(200, 209), *range(409, 409 + len(bad) - 9)]
    config = topics.config(kafka_bootstrap, delivery=delivery, max_batch_ticks=MAX_BATCH_TICKS)
    await ensure_topics(config)
    offsets = await send_raw(kafka_bootstrap, topics.tick, stream)
    assert [offsets[i] for i in bad_offsets] == bad_offsets

    live = InProcessService(config, universe)
    engine_batches: list[int] = []
    process = live.service.pipeline.process

    def recording(batch: TickColumns) -> LevelColumns:
        engine_batches.append(len(batch))
        return process(batch)

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
    assert len(letters) == len(bad)
    by_source = {dict(letter.headers)["tickindex.source"].decode(): letter for letter in letters}
    for offset, (key, value, reason, position) in zip(bad_offsets, bad, strict=True):
        letter = by_source[f"{topics.tick}[0]@{offset}"]
        headers = {name: data.decode() for name, data in letter.headers}
        assert headers["tickindex.reason"] == reason, (offset, headers)
        assert headers.get("tickindex.batch_position") == (
            None if position is None else str(position)
        )
        assert headers["tickindex.original_size"] == str(len(value))
        size = (
            len(letter.value)
            + len(letter.key or b"")
            + sum(len(n) + len(d) for n, d in letter.headers)
        )
        assert size <= DEAD_LETTER_MAX_BYTES
        assert value.startswith(letter.value)
        assert (letter.value == value) == ("tickindex.truncated" not in headers)
        assert letter.key == (None if key is None else key[:MAX_KEY_BYTES])
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
