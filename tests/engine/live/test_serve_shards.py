"""``tickindex serve --shards 3`` on a real broker: three instances share the index shards,
one is killed mid-stream, a survivor takes its shard over from the last checkpoint, and the
read_committed levels equal a single-instance replay for every index (exactly-once)."""

from __future__ import annotations

import asyncio
import re
import signal
import urllib.request
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest

from engine.live.config import ConfigError
from engine.live.kafka.shard_assignment import ensure_shard_topic
from engine.live.shards import ShardPlan
from engine.refdata.builtin import load_builtin_universe
from engine.wire import WireCodec
from tests.support.live import (
    LevelRow,
    LiveTopics,
    TopicReader,
    assert_same_levels,
    delete_topics,
    expand_levels,
    publish_ticks,
    replay_levels,
    send_raw,
    simulate,
    wait_until,
)
from tests.support.seed import SEED
from tests.support.serve_process import ServeProcess

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SHARDS = 3
BAD_TICKS = [b"\xc1 not a tick", b'{"type":"tick","security":"0700"}', b"[1,2"]


def owned_shards(log: str) -> set[int]:
    """The shards an instance runs at the end of its log (acquired, not released since)."""
    owned: set[int] = set()
    for shard, what in re.findall(r"shard (\d+)-of-\d+ (acquired|released)", log):
        (owned.add if what == "acquired" else owned.discard)(int(shard))
    return owned


def metrics_text(log: str) -> str:
    port = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", log)
    assert port is not None, log
    with urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/metrics", timeout=5) as page:
        return str(page.read().decode())


def shard_argv(
    bootstrap: str,
    topics: LiveTopics,
    shard_topic: str,
    shards: int,
    delivery: str = "exactly-once",
) -> list[str]:
    return topics.serve_argv(
        bootstrap,
        shards=shards,
        shard_topic=shard_topic,
        shard_session_timeout_ms=6000,
        delivery=delivery,
        ohlc_topic=f"ohlc-{topics.group}",
        metrics_port=0,
        max_batch_ticks=500,
    )


async def one_shard_each(instances: list[ServeProcess]) -> bool:
    for instance in instances:
        assert instance.proc.poll() is None, instance.output()
    owned = [owned_shards(instance.output()) for instance in instances]
    return sorted(len(o) for o in owned) == [1] * len(instances)


@pytest.fixture
async def shard_topic(kafka_bootstrap: str, topics: LiveTopics) -> AsyncIterator[str]:
    name = f"shards-{topics.group}"
    yield name
    await delete_topics(kafka_bootstrap, [name, f"ohlc-{topics.group}"])


def first_of_each(rows: list[LevelRow]) -> list[LevelRow]:
    """What a subscriber keeps: duplicates dropped by ``(index, seq)``."""
    return list({(row.code, row.seq): row for row in reversed(rows)}.values())[::-1]


@pytest.mark.parametrize("delivery", ["exactly-once", "at-least-once"])
async def test_a_killed_instance_s_shard_resumes_on_a_survivor(
    kafka_bootstrap: str, topics: LiveTopics, shard_topic: str, tmp_path: Path, delivery: str
) -> None:
    """Exactly-once: read_committed levels are replay's, nothing twice. At-least-once: the
    victim's levels since its last checkpoint come again, the same (duplicates, no gaps)."""
    once = delivery == "exactly-once"
    universe = load_builtin_universe()
    plan = ShardPlan.for_universe(universe, SHARDS)
    assert all(plan.codes_of(k) for k in range(SHARDS)), "every shard has indices"
    ticks = simulate(universe, 9_000, SEED + 140)
    expected = replay_levels(universe, ticks, tmp_path / "replay")
    argv = [
        *shard_argv(kafka_bootstrap, topics, shard_topic, SHARDS, delivery),
        "--no-output-process",
    ]
    instances = [ServeProcess(argv, tmp_path / f"serve-{i}.log") for i in range(SHARDS)]
    try:
        await wait_until(partial(one_shard_each, instances), "one shard per instance", 45)
        victim = next(i for i in instances if owned_shards(i.output()) == {0})
        survivors = [i for i in instances if i is not victim]
        victim_codes = set(plan.codes_of(0))
        await send_raw(kafka_bootstrap, topics.tick, [(None, bad) for bad in BAD_TICKS])
        third = len(ticks) // 3
        await publish_ticks(kafka_bootstrap, topics.tick, universe, ticks.slice(0, third))
        async with TopicReader(kafka_bootstrap, topics.level) as levels:

            async def victim_levels() -> bool:
                rows = expand_levels(await levels.read(), WireCodec("json"))
                return any(row.code in victim_codes for row in rows)

            await wait_until(victim_levels, "committed levels of shard 0", 30)
            await publish_ticks(
                kafka_bootstrap, topics.tick, universe, ticks.slice(third, 2 * third)
            )
            victim.proc.send_signal(signal.SIGKILL)  # mid-stream: its shard has ticks to go
            victim.proc.wait(timeout=10)
            await publish_ticks(
                kafka_bootstrap, topics.tick, universe, ticks.slice(2 * third, len(ticks))
            )

            async def all_levels() -> bool:
                for survivor in survivors:
                    assert survivor.proc.poll() is None, survivor.output()
                rows = expand_levels(await levels.read(), WireCodec("json"))
                return len(first_of_each(rows)) >= len(expected)

            await wait_until(all_levels, f"{len(expected)} committed levels", 60)
            await asyncio.sleep(1.0)  # nothing more may come: no duplicates
            got = expand_levels(await levels.read(), WireCodec("json"))
        # Exactly-once, a taker starting anywhere but the victim's last commit would publish
        # some levels twice or skip some: equality says it resumed from that checkpoint.
        kept = got if once else first_of_each(got)
        assert_same_levels(kept, expected, f"three shards, one killed, {delivery}, vs replay")
        taker = next(s for s in survivors if 0 in owned_shards(s.output()))
        scraped = metrics_text(taker.output())
        assert 'tickindex_shard_owned{shard="0"} 1.0' in scraped
        assert re.search(r'tickindex_consumer_lag_messages\{.*shard="0".*\} 0\.0', scraped)
        async with TopicReader(kafka_bootstrap, topics.dead_letter) as dead:
            letters = await dead.read()
        written = sorted(letter.value for letter in letters)
        assert (written if once else sorted(set(written))) == sorted(BAD_TICKS), "once each"
        for survivor in survivors:
            assert await survivor.stop(signal.SIGTERM, timeout=30) == 0, survivor.output()
            assert "stopped cleanly, every shard handed back" in survivor.output()
    finally:
        for instance in instances:
            instance.__exit__()
            print(f"--- {instance.log.name}\n{instance.output()[-6000:]}")  # shown on failure


async def test_an_instance_with_another_shard_count_is_refused(
    kafka_bootstrap: str, topics: LiveTopics, shard_topic: str
) -> None:
    config = topics.config(kafka_bootstrap, shards=3, shard_topic=shard_topic)
    await ensure_shard_topic(config)
    await ensure_shard_topic(config)  # idempotent
    other = topics.config(kafka_bootstrap, shards=4, shard_topic=shard_topic)
    with pytest.raises(ConfigError, match="has 3 partitions, not shards=4"):
        await ensure_shard_topic(other)


async def test_a_paused_instance_is_fenced_and_gives_its_shard_up(
    kafka_bootstrap: str, topics: LiveTopics, shard_topic: str, tmp_path: Path
) -> None:
    """Paused past the session timeout, an instance's shard moves; resumed, its stale
    transaction is fenced, it gives the shard up and rejoins: nothing is committed twice."""
    universe = load_builtin_universe()
    ticks = simulate(universe, 6_000, SEED + 141)
    expected = replay_levels(universe, ticks, tmp_path / "replay")
    argv = shard_argv(kafka_bootstrap, topics, shard_topic, 2)  # with output processes
    instances = [ServeProcess(argv, tmp_path / f"serve-{i}.log") for i in range(2)]
    try:
        await wait_until(partial(one_shard_each, instances), "one shard per instance", 45)
        paused, other = instances
        plan = ShardPlan.for_universe(universe, 2)
        (shard,) = owned_shards(paused.output())
        third = len(ticks) // 3
        await publish_ticks(kafka_bootstrap, topics.tick, universe, ticks.slice(0, third))
        async with TopicReader(kafka_bootstrap, topics.level) as levels:

            async def paused_shard_levels() -> bool:
                rows = expand_levels(await levels.read(), WireCodec("json"))
                return any(row.code in plan.codes_of(shard) for row in rows)

            await wait_until(paused_shard_levels, "committed levels of its shard", 30)
        feeding = asyncio.create_task(
            publish_ticks(kafka_bootstrap, topics.tick, universe, ticks.slice(third, 2 * third))
        )
        await asyncio.sleep(0.3)
        paused.proc.send_signal(signal.SIGSTOP)  # mid-stream, likely inside a transaction
        await feeding

        async def both_on_the_other() -> bool:
            return owned_shards(other.output()) == {0, 1}

        await wait_until(both_on_the_other, "the other instance to take both shards", 30)
        paused.proc.send_signal(signal.SIGCONT)
        await publish_ticks(
            kafka_bootstrap, topics.tick, universe, ticks.slice(2 * third, len(ticks))
        )
        await wait_until(partial(one_shard_each, instances), "the shards shared again", 45)
        async with TopicReader(kafka_bootstrap, topics.level) as levels:

            async def all_levels() -> bool:
                return len(expand_levels(await levels.read(), WireCodec("json"))) >= len(expected)

            await wait_until(all_levels, f"{len(expected)} committed levels", 60)
            await asyncio.sleep(1.0)  # nothing more may come: no duplicates
            got = expand_levels(await levels.read(), WireCodec("json"))
        assert_same_levels(got, expected, "two shards, one instance paused, vs replay")
        for instance in instances:
            assert await instance.stop(signal.SIGTERM, timeout=30) == 0, instance.output()
    finally:
        for instance in instances:
            if instance.proc.poll() is None:
                instance.proc.send_signal(signal.SIGCONT)
            instance.__exit__()
            print(f"--- {instance.log.name}\n{instance.output()[-6000:]}")  # shown on failure
