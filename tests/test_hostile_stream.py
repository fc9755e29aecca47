"""A hostile upstream against a running ``tickindex serve`` subprocess.

20,000 messages on the tick topic, a few thousand of them malformed in every way the service must
survive (ints beyond int64, 1e308, NaN, inf, 1,000-deep nesting, megabyte blobs, invalid UTF-8,
unknown ids, mismatched batch columns, empty values), plus poisoned maintenance events on the
control topic. The process must never exit, every bad message must be on the dead-letter topic
with a reason, the counters must match the dead letters, and the levels must equal ``replay`` of
the good ticks alone.
"""

from __future__ import annotations

import asyncio
import math
import re
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.builtin import load_builtin_universe
from engine.columns import TickColumns
from engine.live.topics import ensure_topics
from engine.universe import Universe
from engine.wire import Tick, TickBatch, WireCodec
from tests.conftest import SEED
from tests.live_support import (
    LiveTopics,
    TopicReader,
    assert_same_levels,
    delete_topics,
    expand_levels,
    replay_levels,
    send_raw,
    simulate,
    wait_until,
)
from tests.serve_process import ServeProcess

pytestmark = pytest.mark.kafka
JSON = WireCodec("json")
GOOD_TICKS = 17_000
BAD_TICK_MESSAGES = 3_000
START_NS = 1_795_138_200_000_000_000
_CONSUMED = ("tickindex_ticks_consumed_total", ())


def _poison_kinds(universe: Universe, ts: int) -> list[bytes | None]:
    """One value of every kind of malformed tick message (cycled to make thousands)."""
    code = universe.securities[0]

    def raw(**fields: object) -> bytes:
        return msgspec.json.encode({"type": "tick"} | fields)

    deep = b'{"type":"tick","security":' + b"[" * 1000 + b"]" * 1000 + b"}"
    return [
        raw(security=code, price=10.0, ts_event=2**63),
        raw(security=code, price=10.0, ts_event=2**64 + 5),
        raw(security=code, price=10.0, ts_event=ts, seq=2**63),
        raw(security=code, price=10.0, ts_event=-1),
        raw(security=code, price=1e308, ts_event=ts),
        raw(security=code, price=10**400, ts_event=ts),
        f'{{"type":"tick","security":"{code}","price":NaN,"ts_event":{ts}}}'.encode(),
        f'{{"type":"tick","security":"{code}","price":Infinity,"ts_event":{ts}}}'.encode(),
        raw(security=code, price=-5.0, ts_event=ts),
        raw(security=code, price=0.0, ts_event=ts),
        raw(security="NOSUCH", price=10.0, ts_event=ts),
        raw(security=code, price="ten", ts_event=ts),
        b'{"type":"tick","security":"\xff\xfe","price":1.0,"ts_event":1}',
        b"\x00\x01\x02 not json",
        b"",
        None,
        deep,
        b"[" * 5000,
        msgspec.json.encode(TickBatch([code, code], [1.0], [ts, ts])),
        b'{"type":"tick_batch","security":' + b'["x",' * 3 + b"]",
    ]


def _control_poison(universe: Universe) -> list[bytes]:
    """Maintenance events that must be dead-lettered with reason ``invalid_event``."""
    code, when = universe.securities[1], START_NS + 10**9
    events: list[dict[str, object]] = [
        {"type": "stock_split", "effective": when, "security": code, "ratio": 1e308},
        {"type": "stock_split", "effective": when, "security": code, "ratio": -2},
        {"type": "stock_split", "effective": 2**63, "security": code, "ratio": 2},
        {"type": "special_dividend", "effective": when, "security": code, "amount": 1e308},
        {
            "type": "rights_issue",
            "effective": when,
            "security": code,
            "new_shares": 1e308,
            "per_held": 1e-308,
            "subscription_price": 1e308,
        },
        {"type": "delete_constituent", "effective": when, "index": "NOPE", "security": code},
        {"type": "shares_change", "effective": when, "security": "NOSUCH", "issued_shares": 1e9},
        {"type": "faf_change", "effective": when, "security": code, "faf": math.inf},
    ]
    return [msgspec.json.encode(event) for event in events] + [b"[" * 1000, b"\xff junk"]


def _singles(universe: Universe, ticks: TickColumns) -> list[tuple[bytes | None, bytes | None]]:
    assert ticks.seq is not None
    codes = universe.securities
    return [
        (codes[s].encode(), JSON.encode(Tick(codes[s], p, t, q)))
        for s, p, t, q in zip(
            ticks.security.tolist(),
            ticks.price.tolist(),
            ticks.ts_event.tolist(),
            ticks.seq.tolist(),
            strict=True,
        )
    ]


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _by_reason(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str
) -> Counter[str]:
    out: Counter[str] = Counter()
    for (sample, labels), value in samples.items():
        if sample == name and value:
            out[dict(labels)["reason"]] += int(value)
    return out


@pytest.fixture
async def topics(kafka_bootstrap: str, request: pytest.FixtureRequest) -> AsyncIterator[LiveTopics]:
    names = LiveTopics.unique(request.node.name)
    yield names
    await delete_topics(kafka_bootstrap, names.names)


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
async def test_serve_survives_a_hostile_stream(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path, delivery: str
) -> None:
    universe = load_builtin_universe()
    ticks = simulate(universe, GOOD_TICKS, SEED + 11)
    good = _singles(universe, ticks)
    kinds = _poison_kinds(universe, int(ticks.ts_event[0]))
    blob = b'{"type":"tick","security":"' + b"A" * 1_040_000 + b'"}'
    bad = [kinds[k % len(kinds)] for k in range(BAD_TICK_MESSAGES - 3)] + [blob, blob, blob]
    rng = np.random.default_rng(SEED + 12)
    print(f"hostile stream seed {SEED + 12}: {len(good)} good, {len(bad)} bad tick messages")
    slots = np.sort(rng.choice(len(good) + len(bad), size=len(bad), replace=False))
    good_iter, bad_iter = iter(good), iter(bad)
    bad_slots = set(slots.tolist())
    stream = [
        (b"hostile", next(bad_iter)) if position in bad_slots else next(good_iter)
        for position in range(len(good) + len(bad))
    ]
    control = _control_poison(universe)

    config = topics.config(kafka_bootstrap, delivery=delivery)
    await ensure_topics(config)
    control_offsets = await send_raw(kafka_bootstrap, topics.control, [(None, v) for v in control])
    offsets = await send_raw(kafka_bootstrap, topics.tick, stream)
    bad_sources = {f"{topics.tick}[0]@{offsets[s]}" for s in slots.tolist()}
    bad_sources |= {f"{topics.control}[0]@{o}" for o in control_offsets}

    argv = topics.serve_argv(kafka_bootstrap, delivery=delivery, metrics_port=0)
    with ServeProcess(argv, tmp_path / "serve.log") as serve:
        await serve.wait_serving(30)
        found = re.search(r"metrics on http://[\d.]+:(\d+)/metrics", serve.output())
        assert found, serve.output()
        port = int(found.group(1))

        async def scrape() -> Samples | None:
            try:
                return await asyncio.to_thread(_scrape, port)
            except OSError:
                assert serve.proc.poll() is None, f"serve exited:\n{serve.output()[-5000:]}"
                return None

        async def consumed_all() -> bool:
            samples = await scrape()
            consumed = 0.0 if samples is None else samples.get(_CONSUMED, 0.0)
            return consumed >= len(stream)

        await wait_until(consumed_all, "every tick message consumed", 120)
        expected = replay_levels(universe, ticks, tmp_path / "replay")

        async with TopicReader(kafka_bootstrap, topics.level) as reader:

            async def all_levels() -> bool:
                assert serve.proc.poll() is None, f"serve exited:\n{serve.output()[-5000:]}"
                return len(expand_levels(await reader.read(), JSON)) >= len(expected)

            await wait_until(all_levels, "every level published", 60)
            got = expand_levels(reader.records, JSON)
        async with TopicReader(kafka_bootstrap, topics.dead_letter) as reader:

            async def all_letters() -> bool:
                return len(await reader.read()) >= len(bad_sources)

            await wait_until(all_letters, "every dead letter", 60)
            letters = reader.records
        samples = await scrape()
        assert samples is not None
        assert serve.proc.poll() is None, "serve must never exit on bad input"
        assert "Traceback" not in serve.output()

    reasons: Counter[str] = Counter()
    sources = set()
    for letter in letters:
        headers = dict(letter.headers)
        assert headers.get("tickindex.reason"), f"dead letter without a reason: {headers}"
        assert len(letter.value or b"") + len(letter.key or b"") < 1 << 20
        sources.add(headers["tickindex.source"].decode())
        reasons[headers["tickindex.reason"].decode()] += 1
    assert sources == bad_sources, "every bad message, and only those, is dead-lettered"
    assert len(letters) == len(bad_sources)
    assert _by_reason(samples, "tickindex_dead_letters_total") == reasons
    control_letters = reasons["invalid_event"]
    assert control_letters == len(control)
    assert sum(_by_reason(samples, "tickindex_ticks_rejected_total").values()) == len(bad)
    assert all(math.isfinite(row.level) for row in got)
    assert_same_levels(got, expected, "serve on a hostile stream vs replay of the good ticks")
