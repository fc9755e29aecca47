"""``tickindex serve`` (a subprocess) on 20,000 messages, 3,000 of them poison of every kind,
and poisoned maintenance events on the control topic.

The process must never exit: every poison message is on the dead-letter topic with its reason,
the Prometheus counters match them, and the levels are exactly ``replay``'s of the good ticks.
"""

from __future__ import annotations

import asyncio
import random
import signal
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.live.kafka.topics import ensure_topics
from engine.live.metrics import REASON_LABELS
from engine.refdata.builtin import load_builtin_universe
from engine.wire import WireCodec
from tests.support.live import (
    LiveTopics,
    TopicReader,
    assert_same_levels,
    read_levels,
    replay_levels,
    send_raw,
    simulate,
    wait_until,
)
from tests.support.poison import check_dead_letters, control_poison, poison, singles
from tests.support.secure_kafka import free_ports
from tests.support.seed import SEED
from tests.support.serve_process import ServeProcess

pytestmark = pytest.mark.kafka

GOOD_TICKS = 17_000
SMALL_POISON = 3_000
HUGE_POISON = 2  # ~1 MB each


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _source_topic(letter: Any) -> str:
    return str(dict(letter.headers)["tickindex.source_topic"].decode())


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
async def test_serve_survives_a_mixed_stream_and_levels_equal_replay(
    kafka_bootstrap: str, topics: LiveTopics, tmp_path: Path, delivery: str
) -> None:
    universe = load_builtin_universe()
    good = simulate(universe, GOOD_TICKS, SEED + 12)
    kinds = poison(universe, int(good.ts_event[GOOD_TICKS // 2]))
    small = [p for p in kinds if len(p.value) < 100_000]
    huge = [p for p in kinds if len(p.value) >= 100_000]
    bad = [small[i % len(small)] for i in range(SMALL_POISON)] + huge * HUGE_POISON
    rng = random.Random(SEED)
    rng.shuffle(bad)
    total = GOOD_TICKS + len(bad)
    bad_at = dict(zip(sorted(rng.sample(range(total), len(bad))), bad, strict=True))
    good_messages = iter(singles(universe, good, WireCodec("json")))
    stream = [
        (p.key, p.value) if (p := bad_at.get(i)) else next(good_messages) for i in range(total)
    ]
    (port,) = free_ports(1)
    settings = {"delivery": delivery, "metrics_port": port, "checkpoint_interval_ms": 500}
    await ensure_topics(topics.config(kafka_bootstrap, **settings))
    control = control_poison(universe, int(good.ts_event[GOOD_TICKS // 3]))
    await send_raw(kafka_bootstrap, topics.control, [(None, value) for value in control])
    offsets = await send_raw(kafka_bootstrap, topics.tick, stream)
    assert offsets == list(range(total))

    with ServeProcess(topics.serve_argv(kafka_bootstrap, **settings), tmp_path / "s.log") as serve:
        await serve.wait_serving()
        name = "tickindex_ticks_consumed_total"

        async def consumed_all() -> bool:
            assert serve.proc.poll() is None, serve.output()
            metrics = await asyncio.to_thread(scrape, port)
            return metrics.get((name, ()), 0) >= total

        await wait_until(consumed_all, f"{total} messages consumed", timeout=120)
        metrics = await asyncio.to_thread(scrape, port)
        assert await serve.stop(signal.SIGTERM, timeout=30) == 0, serve.output()
    assert serve.output().count(" serving ") == 1, "the service restarted"

    async with TopicReader(kafka_bootstrap, topics.dead_letter) as reader:
        letters = await reader.read()
    from_control = [m for m in letters if _source_topic(m) == topics.control]
    tick_letters = [m for m in letters if _source_topic(m) == topics.tick]
    assert len(from_control) + len(tick_letters) == len(letters)
    check_dead_letters(tick_letters, topics.tick, bad_at)
    assert sorted(int(dict(m.headers)["tickindex.source_offset"]) for m in from_control) == list(
        range(len(control))
    )
    assert {dict(m.headers)["tickindex.reason"] for m in from_control} == {b"invalid_event"}
    expected: Counter[str] = Counter(p.reason for p in bad)
    invalid_events = metrics[("tickindex_dead_letters_total", (("reason", "invalid_event"),))]
    assert invalid_events == len(control)
    for label in REASON_LABELS:
        counters = ["tickindex_ticks_rejected_total"]
        if label != "invalid_event":
            counters.append("tickindex_dead_letters_total")
        for counter in counters:
            got = metrics[(counter, (("reason", label),))]
            assert got == expected[label], (counter, label)
    assert metrics[("tickindex_ticks_applied_total", ())] == GOOD_TICKS

    levels = await read_levels(kafka_bootstrap, topics.level)
    assert_same_levels(levels, replay_levels(universe, good, tmp_path), "serve vs replay")
