"""``bench --gateway-load``: many WebSocket clients, some deliberately slow, on one gateway.

The gateway (``consumers.gateway.app.build_app``) runs in a spawned child process reading a
fresh level topic (stamped ``LogAppendTime``); this process publishes levels to that topic at a
steady pace, each level's ``ts_event`` its wall time at send, and runs the clients: fast ones
read as fast as they can and record receive wall time minus ``ts_event`` (the publisher's
send time: topic, gateway and client in one figure), a few of them level by level, the others
as a bound per message (``gateway_load_clients``); slow ones read one message then sleep. The
slow clients' fate (conflated, disconnected) comes from the gateway's ``/metrics``; its memory
from ``/proc`` (Linux).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from aiohttp import ClientSession, web
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry

from consumers.gateway.app import build_app, settle_heap
from consumers.gateway.hub import Gateway, GatewaySettings
from consumers.level_client import LevelSubscriber
from engine.kernel.columns import LevelColumns
from engine.live.kafka.security import kafka_security_options
from engine.live.level_encoding import LevelEncoder
from engine.live.security_settings import KafkaSecurity
from engine.refdata.builtin import load_builtin_universe
from engine.wire import WireCodec
from tickindex.bench.gateway_load_clients import (
    ClientResult,
    ClientShare,
    run_client_worker,
    weighted_percentile,
)
from tickindex.bench.gateway_load_probes import metric_value, process_cpu_s, process_memory

NS_PER_MS = 1_000_000
PUBLISH_PERIOD_S = 0.002
DRAIN_S = 5.0
"""Longest wait after the publishing for the fast clients to get the last levels."""
_PLAINTEXT = KafkaSecurity()  # the bench's local broker: ``tickindex bench`` has no TLS/SASL flags


@dataclass(frozen=True)
class GatewayLoadSettings:
    """One gateway load run.

    Attributes
    ----------
    bootstrap : str
        The broker.
    clients, slow_clients : int
        WebSocket clients reading as fast as they can, and reading one message per
        ``slow_sleep_s``.
    auditing_clients : int
        How many of the fast clients decode every level (exact delays, seq gaps).
    client_processes : int
        Worker processes the clients are spread over.
    levels_per_s : float
        Levels published per second, spread over the built-in indices.
    seconds : float
        Length of the publishing; the first ``warmup_s`` are left out of the delays.
    gateway : GatewaySettings
        The gateway's limits.
    """

    bootstrap: str
    clients: int = 200
    slow_clients: int = 20
    auditing_clients: int = 4
    client_processes: int = 2
    levels_per_s: float = 20_000.0
    seconds: float = 10.0
    warmup_s: float = 2.0
    slow_sleep_s: float = 0.5
    gateway: GatewaySettings = field(default_factory=GatewaySettings)


@dataclass(frozen=True)
class GatewayLoadFigures:
    """What a gateway load run measured (delays in milliseconds, memory in bytes).

    The ``fast_delay`` figures count every level each fast client received at the delay of
    the oldest level of its message (a bound); the ``audited`` ones are the exact delays of
    every level the auditing clients received, and ``audited_bound_p99_ms`` the bound's p99
    over the same clients, for comparison.
    """

    clients: int
    slow_clients: int
    levels_per_s: float
    seconds: float
    levels_published: int
    publish_seconds: float
    gateway_messages_sent: int
    gateway_frames_sent: int
    fast_levels: int
    fast_delay_p50_ms: float | None
    fast_delay_p99_ms: float | None
    fast_delay_max_ms: float | None
    worst_client_p99_ms: float | None
    auditing_clients: int
    audited_delay_p99_ms: float | None
    audited_bound_p99_ms: float | None
    audited_seqs_skipped: int
    fast_levels_missing: int
    fast_disconnected: int
    slow_levels: int
    levels_conflated: int
    gateway_disconnects_slow: int
    gateway_rss_before: int
    gateway_rss_after: int
    gateway_max_rss: int
    gateway_cpu_s: float
    clients_cpu_s: float


def _serve_gateway(bootstrap: str, topic: str, settings: GatewaySettings, pipe: Connection) -> None:
    """Child process: the gateway on a free loopback port, until ``pipe`` says stop."""

    async def serve() -> None:
        subscriber = LevelSubscriber(bootstrap, topic, from_time_ns=0)
        gateway = Gateway(load_builtin_universe(), settings, CollectorRegistry())
        runner = web.AppRunner(build_app(gateway, subscriber), access_log=None)
        await runner.setup()
        settle_heap()  # as tickindex gateway does
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            pipe.send(runner.addresses[0][1])
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, pipe.recv)
        finally:
            await runner.cleanup()
            await subscriber.close()

    asyncio.run(serve())


async def _create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_security_options(_PLAINTEXT))
    await admin.start()
    try:
        stamped = {"message.timestamp.type": "LogAppendTime"}
        await admin.create_topics([NewTopic(topic, 1, 1, topic_configs=stamped)])
    finally:
        await admin.close()


async def _delete_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_security_options(_PLAINTEXT))
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


async def _publish(
    producer: AIOKafkaProducer, encoder: LevelEncoder, rate: float, seconds: float
) -> int:
    """Levels at ``rate`` for ``seconds``, round robin over the indices; returns how many."""
    indices = len(encoder.codes)
    seqs = np.zeros(indices, dtype=np.int64)
    started, total, sent = time.monotonic(), round(rate * seconds), 0
    while sent < total:
        due = min(total, int(rate * (time.monotonic() - started))) - sent
        if due > 0:
            index = (np.arange(sent, sent + due) % indices).astype(np.int32)
            seq = seqs[index] + _rank_within(index, indices) + 1
            np.add.at(seqs, index, 1)
            now = time.time_ns()
            levels = LevelColumns(
                ts_event=np.full(due, now, dtype=np.int64),
                index=index,
                level=encoder.prev_close[index] + (seq % 100) * 0.01,
                seq=seq,
                security=np.zeros(due, dtype=np.int64),
            )
            for message in encoder.encode(levels, now):
                await producer.send(message.topic, message.value, key=message.key)
            sent += due
        await asyncio.sleep(PUBLISH_PERIOD_S)
    await producer.flush()
    return sent


def _rank_within(index: np.ndarray[Any, Any], groups: int) -> np.ndarray[Any, Any]:
    """For each row, how many earlier rows have the same ``index``."""
    order = np.argsort(index, kind="stable")
    counts = np.bincount(index, minlength=groups)
    starts = np.cumsum(counts) - counts
    rank = np.empty(len(index), dtype=np.int64)
    rank[order] = np.arange(len(index)) - np.repeat(starts, counts)
    return rank


def _client_shares(settings: GatewayLoadSettings, stream_url: str) -> list[ClientShare]:
    """The clients split over ``client_processes`` workers (auditing ones in the first)."""
    workers = max(1, min(settings.client_processes, settings.clients + settings.slow_clients))

    def part(total: int, worker: int) -> int:
        return total // workers + (1 if worker < total % workers else 0)

    start_ns = time.time_ns() + int(settings.warmup_s * 1e9)
    auditing = min(settings.auditing_clients, settings.clients)
    return [
        ClientShare(
            stream_url=stream_url,
            fast=part(settings.clients, worker),
            auditing=min(part(auditing, worker), part(settings.clients, worker)),
            slow=part(settings.slow_clients, worker),
            slow_sleep_s=settings.slow_sleep_s,
            measure_from_ns=start_ns,
            drain_s=DRAIN_S,
        )
        for worker in range(workers)
    ]


async def _run_clients(
    settings: GatewayLoadSettings, port: int, pid: int, topic: str
) -> GatewayLoadFigures:
    url = f"http://127.0.0.1:{port}"
    universe = load_builtin_universe()
    encoder = LevelEncoder.for_universe(universe, WireCodec("json"), topic, batched=True)
    context = multiprocessing.get_context("spawn")
    workers: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
    for share in _client_shares(settings, f"{url}/v1/stream"):
        parent, child = context.Pipe()
        worker = context.Process(target=run_client_worker, args=(share, child))
        worker.start()
        workers.append((worker, parent))
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap, linger_ms=0, **kafka_security_options(_PLAINTEXT)
    )
    try:
        await producer.start()
        async with ClientSession() as session:
            await _wait_for_clients(session, url, settings.clients + settings.slow_clients)
            rss_before, _ = process_memory(pid)
            pids = [pid, *(process.pid or 0 for process, _ in workers)]
            cpu_before = [process_cpu_s(p) for p in pids], time.process_time()
            began = time.monotonic()
            published = await _publish(producer, encoder, settings.levels_per_s, settings.seconds)
            publish_seconds = time.monotonic() - began
            await producer.stop()
            fast: list[ClientResult] = []
            slow: list[ClientResult] = []
            for _, pipe in workers:
                pipe.send(published)
            for _, pipe in workers:
                share_fast, share_slow = await asyncio.to_thread(pipe.recv)
                fast.extend(share_fast)
                slow.extend(share_slow)
            async with session.get(f"{url}/metrics") as response:
                metrics = await response.text()
            rss_after, max_rss = process_memory(pid)
            cpu_after = [process_cpu_s(p) for p in pids]
    finally:
        await producer.stop()
        for process, _ in workers:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()
    gateway_cpu = cpu_after[0] - cpu_before[0][0]
    clients_cpu = sum(cpu_after[1:]) - sum(cpu_before[0][1:])
    return _figures(
        settings,
        published,
        publish_seconds,
        fast=fast,
        slow=slow,
        metrics=metrics,
        memory=(rss_before, rss_after, max_rss),
        cpu=(gateway_cpu, clients_cpu + time.process_time() - cpu_before[1]),
    )


async def _wait_for_clients(session: ClientSession, url: str, wanted: int) -> None:
    """Until the gateway's client gauge shows ``wanted`` WebSocket clients."""
    prefix = 'tickindex_gateway_clients{transport="websocket"} '
    for _ in range(600):
        async with session.get(f"{url}/metrics") as response:
            for line in (await response.text()).splitlines():
                if line.startswith(prefix) and float(line[len(prefix) :]) >= wanted:
                    return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the gateway did not get {wanted} clients within 30 s")


def _percentile_ms(values: list[int], weights: list[int] | None, q: float) -> float | None:
    counted = np.ones(len(values), dtype=np.int64) if weights is None else np.array(weights)
    found = weighted_percentile(np.array(values, dtype=np.int64), counted, q)
    return None if found is None else found / NS_PER_MS


def _figures(
    settings: GatewayLoadSettings,
    published: int,
    publish_seconds: float,
    *,
    fast: list[ClientResult],
    slow: list[ClientResult],
    metrics: str,
    memory: tuple[int, int, int],
    cpu: tuple[float, float],
) -> GatewayLoadFigures:
    bounds = [d for r in fast for d in r.bound_ns]
    weights = [w for r in fast for w in r.bound_levels]
    per_client = [_percentile_ms(r.bound_ns, r.bound_levels, 99) for r in fast]
    audited = [r for r in fast if r.audited]

    def sent(name: str) -> int:
        return metric_value(metrics, name, "websocket", label="transport")

    return GatewayLoadFigures(
        clients=settings.clients,
        slow_clients=settings.slow_clients,
        levels_per_s=settings.levels_per_s,
        seconds=settings.seconds,
        levels_published=published,
        publish_seconds=publish_seconds,
        gateway_messages_sent=sent("tickindex_gateway_messages_sent_total"),
        gateway_frames_sent=sent("tickindex_gateway_frames_sent_total"),
        fast_levels=sum(r.levels for r in fast),
        fast_delay_p50_ms=_percentile_ms(bounds, weights, 50),
        fast_delay_p99_ms=_percentile_ms(bounds, weights, 99),
        fast_delay_max_ms=max(bounds) / NS_PER_MS if bounds else None,
        worst_client_p99_ms=max((p for p in per_client if p is not None), default=None),
        auditing_clients=len(audited),
        audited_delay_p99_ms=_percentile_ms([d for r in audited for d in r.exact_ns], None, 99),
        audited_bound_p99_ms=_percentile_ms(
            [d for r in audited for d in r.bound_ns],
            [w for r in audited for w in r.bound_levels],
            99,
        ),
        audited_seqs_skipped=sum(r.skipped for r in audited),
        fast_levels_missing=settings.clients * published - sum(r.levels for r in fast),
        fast_disconnected=sum(r.disconnected for r in fast),
        slow_levels=sum(r.levels for r in slow),
        levels_conflated=metric_value(
            metrics, "tickindex_gateway_levels_dropped_total", "queue_full"
        ),
        gateway_disconnects_slow=metric_value(
            metrics, "tickindex_gateway_disconnects_total", "slow"
        ),
        gateway_rss_before=memory[0],
        gateway_rss_after=memory[1],
        gateway_max_rss=memory[2],
        gateway_cpu_s=cpu[0],
        clients_cpu_s=cpu[1],
    )


def run_gateway_load(settings: GatewayLoadSettings) -> GatewayLoadFigures:
    """Run the gateway load benchmark on a fresh level topic (deleted afterwards)."""
    topic = f"bench-gateway-levels-{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_topic(settings.bootstrap, topic))
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(
        target=_serve_gateway, args=(settings.bootstrap, topic, settings.gateway, child)
    )
    process.start()
    try:
        if not parent.poll(60):
            raise RuntimeError("the gateway did not start within 60 s")
        port = parent.recv()
        assert process.pid is not None
        return asyncio.run(_run_clients(settings, port, process.pid, topic))
    finally:
        with contextlib.suppress(OSError):
            parent.send("stop")
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()
        asyncio.run(_delete_topic(settings.bootstrap, topic))
