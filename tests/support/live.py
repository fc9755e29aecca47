"""Helpers of the live-service integration tests against a real Kafka broker.

Every test gets its own topics and consumer group (``LiveTopics.unique``), so tests never see
each other's messages. Levels are compared as ``LevelRow`` tuples; ``assert_same_levels``
compares floats with ``==`` (bitwise for the finite values levels are).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry

from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import TickColumns
from engine.live.config import ServiceConfig
from engine.live.metrics import ServiceMetrics
from engine.live.service import IndexService
from engine.pipeline.chain import IndexPipeline
from engine.refdata.universe import Universe
from engine.testing import TestingSink
from engine.wire import IndexLevel, WireCodec
from producers.kafka_publisher import TickPublisher
from producers.simulator import MarketSimulator
from tickindex.cli.main import main

START_NS = 1_795_138_200_000_000_000


class LevelRow(NamedTuple):
    """One published level."""

    code: str
    seq: int
    ts_event: int
    level: float


@dataclass(frozen=True)
class LiveTopics:
    """Topic names and consumer group of one test."""

    tick: str
    level: str
    dead_letter: str
    state: str
    control: str
    audit: str
    group: str

    @staticmethod
    def unique(name: str) -> LiveTopics:
        tag = f"{re.sub(r'[^A-Za-z0-9]+', '-', name)[:40]}-{uuid.uuid4().hex[:12]}"
        return LiveTopics(
            tick=f"ticks-{tag}",
            level=f"levels-{tag}",
            dead_letter=f"dlq-{tag}",
            state=f"state-{tag}",
            control=f"control-{tag}",
            audit=f"audit-{tag}",
            group=tag,
        )

    @property
    def names(self) -> list[str]:
        return [self.tick, self.level, self.dead_letter, self.state, self.control, self.audit]

    def settings(self, bootstrap: str) -> dict[str, Any]:
        kinds = ("tick", "level", "dead_letter", "state", "control", "audit")
        topics = {f"{kind}_topic": getattr(self, kind) for kind in kinds}
        return {"bootstrap": bootstrap, "group_id": self.group, "metrics_port": -1} | topics

    def config(self, bootstrap: str, **settings: Any) -> ServiceConfig:
        return ServiceConfig(**(self.settings(bootstrap) | settings))

    def serve_argv(self, bootstrap: str, **settings: Any) -> list[str]:
        argv = [sys.executable, "-m", "tickindex.cli.main", "serve"]
        for key, value in (self.settings(bootstrap) | settings).items():
            argv.append(f"--{key.replace('_', '-')}={value}")
        return argv


# -- ticks and reference levels ----------------------------------------------------------------


def simulate(universe: Universe, n: int, seed: int) -> TickColumns:
    """``n`` seeded simulator ticks (with per-security seq); prints the seed."""
    print(f"simulator seed {seed}, {n} ticks")
    return MarketSimulator(universe, seed, start_ns=START_NS).next_batch(n)


def replay_levels(universe: Universe, ticks: TickColumns, folder: Path) -> list[LevelRow]:
    """Levels of ``tickindex replay`` on ``ticks`` (written to a CSV tick file)."""
    folder.mkdir(parents=True, exist_ok=True)
    tick_file, level_file = folder / "ticks.csv", folder / "levels.csv"
    codes = universe.securities
    with tick_file.open("w") as handle:
        handle.write("ts,security,price\n")
        handle.writelines(
            f"{t},{codes[s]},{p!r}\n"
            for t, s, p in zip(
                ticks.ts_event.tolist(), ticks.security.tolist(), ticks.price.tolist(), strict=True
            )
        )
    argv = ["replay", "--ticks", str(tick_file), "--out", str(level_file), "--no-progress"]
    assert main(argv) == 0
    with level_file.open() as handle:
        return [
            LevelRow(r["index"], int(r["seq"]), int(r["ts"]), float(r["level"]))
            for r in csv.DictReader(handle)
        ]


def engine_levels(universe: Universe, batches: Iterable[TickColumns]) -> list[LevelRow]:
    """Levels of a fresh pipeline fed ``batches`` one ``process`` call each."""
    sink = TestingSink(universe.index_codes)
    pipeline = IndexPipeline(IndexCalculator(universe), sink)
    for batch in batches:
        pipeline.process(batch)
    levels, codes = sink.levels, universe.index_codes
    columns = (levels.index, levels.seq, levels.ts_event, levels.level)
    return [
        LevelRow(codes[i], q, t, lv)
        for i, q, t, lv in zip(*(c.tolist() for c in columns), strict=True)
    ]


def by_index(rows: Iterable[LevelRow]) -> dict[str, list[LevelRow]]:
    """Rows grouped per index, order kept."""
    out: dict[str, list[LevelRow]] = {}
    for row in rows:
        out.setdefault(row.code, []).append(row)
    return out


def last_seq(rows: Iterable[LevelRow]) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in rows:
        out[row.code] = max(out.get(row.code, 0), row.seq)
    return out


def assert_same_keys(got: Iterable[LevelRow], expected: Iterable[LevelRow], what: str) -> None:
    """Per index, the same (seq, ts_event) in the same order; level values not compared."""

    def keys(rows: Iterable[LevelRow]) -> dict[str, list[tuple[int, int]]]:
        return {code: [(r.seq, r.ts_event) for r in rs] for code, rs in by_index(rows).items()}

    assert keys(got) == keys(expected), f"{what}: per-index seq/ts_event differ"


def assert_same_levels(got: Sequence[LevelRow], expected: Sequence[LevelRow], what: str) -> None:
    """Per index, the same rows in the same order: keys exactly, then levels bitwise."""
    got = [row for _, rows in sorted(by_index(got).items()) for row in rows]
    expected = [row for _, rows in sorted(by_index(expected).items()) for row in rows]
    assert [r[:3] for r in got] == [r[:3] for r in expected], f"{what}: index/seq/ts differ"
    differ = [(g, e) for g, e in zip(got, expected, strict=True) if g.level != e.level]
    if differ:
        worst = max(abs(g.level - e.level) / abs(e.level) for g, e in differ)
        raise AssertionError(
            f"{what}: {len(differ)} of {len(got)} levels differ in value (max relative "
            f"difference {worst:.3g}); first: got {differ[0][0]}, expected {differ[0][1]}"
        )


# -- Kafka ---------------------------------------------------------------------------------------


async def wait_until(
    condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0
) -> None:
    """Poll ``condition`` every 50 ms until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass
class InProcessService:
    """``IndexService`` in this event loop, on a fresh metrics registry."""

    config: ServiceConfig
    universe: Universe
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        metrics = ServiceMetrics(self.registry, self.universe.index_codes, version="test")
        self.service = IndexService(self.config, self.universe, metrics)
        self.codec = WireCodec(self.config.wire_format)

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        assert value is not None, f"no sample {name}{labels}"
        return value

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[IndexService]:
        """Run the service in a task; stop it (drain, checkpoint) on exit."""
        task = asyncio.create_task(self.service.run())
        try:

            async def started() -> bool:
                if task.done():
                    task.result()  # raises what stopped the service
                return self.service.ready.is_set()

            await wait_until(started, "the service to start", 20)
            yield self.service
        finally:
            self.service.request_stop()
            try:
                await asyncio.wait_for(task, timeout=20)
            finally:
                task.cancel()

    async def wait_consumed(self, count: int, timeout: float = 30.0) -> None:
        """Until ``tickindex_ticks_consumed_total`` reaches ``count``."""

        async def consumed() -> bool:
            return self.sample("tickindex_ticks_consumed_total") >= count

        await wait_until(consumed, f"{count} ticks consumed", timeout)


@contextlib.asynccontextmanager
async def tick_publisher(
    bootstrap: str, topic: str, universe: Universe, *, batch_ticks: int = 0
) -> AsyncIterator[TickPublisher]:
    """JSON ticks, one ``tick`` message each or ``tick_batch`` messages of ``batch_ticks``."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        codec = WireCodec("json")
        yield TickPublisher(producer, topic, universe, codec, batch_ticks=batch_ticks)
    finally:
        await producer.stop()


async def publish_ticks(bootstrap: str, topic: str, universe: Universe, ticks: TickColumns) -> None:
    async with tick_publisher(bootstrap, topic, universe) as publisher:
        await publisher.publish(ticks)
        await publisher.flush()


async def send_raw(
    bootstrap: str, topic: str, messages: Sequence[tuple[bytes | None, bytes | None]]
) -> list[int]:
    """Send (key, value) messages in order to partition 0; returns their offsets."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        futures = [await producer.send(topic, v, key=k, partition=0) for k, v in messages]
        return [meta.offset for meta in await asyncio.gather(*futures)]
    finally:
        await producer.stop()


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    """Partition ids of an existing topic (never auto-creates it)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert described["error_code"] == 0, f"topic {topic}: error {described['error_code']}"
    return sorted(p["partition"] for p in described["partitions"])


class TopicReader:
    """Reads a whole topic from the beginning, then whatever arrived since (``read``)."""

    def __init__(self, bootstrap: str, topic: str, *, committed: bool = True) -> None:
        self.topic = topic
        self.records: list[Any] = []
        self._bootstrap = bootstrap
        self._isolation = "read_committed" if committed else "read_uncommitted"
        self._consumer: Any = None
        self._partitions: list[Any] = []

    async def __aenter__(self) -> TopicReader:
        parts = await partitions_of(self._bootstrap, self.topic)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            isolation_level=self._isolation,
        )
        await self._consumer.start()
        self._partitions = [TopicPartition(self.topic, p) for p in parts]
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_beginning(*self._partitions)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def end_offsets(self) -> dict[int, int]:
        ends = await self._consumer.end_offsets(self._partitions)
        return {tp.partition: offset for tp, offset in ends.items()}

    async def read(self) -> list[Any]:
        """Every record up to the current end offsets (read_committed: the stable offset)."""
        ends = await self._consumer.end_offsets(self._partitions)
        while [tp for tp in self._partitions if await self._consumer.position(tp) < ends[tp]]:
            fetched = await self._consumer.getmany(*self._partitions, timeout_ms=500)
            for tp in sorted(fetched):
                self.records.extend(fetched[tp])
        return self.records


def expand_levels(records: Iterable[Any], codec: WireCodec) -> list[LevelRow]:
    """``IndexLevels``/``IndexLevel`` messages as rows; checks each message's key."""
    rows: list[LevelRow] = []
    for record in records:
        message = codec.decode_level(record.value)
        assert record.key == message.index.encode(), "level message keyed by another index"
        if isinstance(message, IndexLevel):
            rows.append(LevelRow(message.index, message.seq, message.ts_event, message.level))
            continue
        assert len(message.level) == len(message.seq) == len(message.ts_event)
        rows.extend(
            LevelRow(message.index, q, t, lv)
            for q, t, lv in zip(message.seq, message.ts_event, message.level, strict=True)
        )
    return rows


async def read_levels(bootstrap: str, topic: str, codec: WireCodec | None = None) -> list[LevelRow]:
    async with TopicReader(bootstrap, topic) as reader:
        return expand_levels(await reader.read(), codec or WireCodec("json"))


async def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    """Best-effort clean-up of a test's topics."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        doomed = [name for name in names if name in existing]
        if doomed:
            await admin.delete_topics(doomed)
    except Exception as exc:  # clean-up must never hide the test's own outcome
        print(f"could not delete topics {names}: {exc!r}")
    finally:
        await admin.close()


def final_state(universe: Universe, ticks: TickColumns) -> tuple[list[float], list[int]]:
    """Last price and last tick seq per security id after ``ticks`` (prev close / -1 if none)."""
    prices: list[float] = universe.prev_close.astype(np.float64).tolist()
    seqs = [-1] * len(prices)
    assert ticks.seq is not None
    for security, price, seq in zip(
        ticks.security.tolist(), ticks.price.tolist(), ticks.seq.tolist(), strict=True
    ):
        prices[security], seqs[security] = price, seq
    return prices, seqs


def dead_letters_by_source(
    letters: Iterable[Any],
) -> dict[str, tuple[str, bytes | None, bytes | None, int | None]]:
    """Dead letters keyed by ``tickindex.source``: (reason, key, value, batch position)."""
    out = {}
    for letter in letters:
        headers = {name: value.decode() for name, value in letter.headers}
        position = headers.get("tickindex.batch_position")
        out[headers["tickindex.source"]] = (
            headers["tickindex.reason"],
            letter.key,
            letter.value,
            None if position is None else int(position),
        )
    return out
