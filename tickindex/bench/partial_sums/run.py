"""``tickindex bench --partial-sums``: W partial-sum workers and a reducer over the real broker.

One run, on fresh topics: the seeded world and its two events (``world``) are
written; the events go on the control topic; W worker processes (one tick partition each) and
a reducer are spawned; once the reducer has published its first levels, a spawned publisher
sends the ticks (``rate`` ticks/s, 0 = as fast as it can) and closes each partition. When every
process is done, the topics are read back: per tick, its latency to the first partial and the
first reduced level that include it (the partition-offset watermarks they carry; broker append
times, whole ms); the final reduced levels are checked against the single-process engine's.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import tempfile
import time
import uuid
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from tickindex.bench.partial_sums.figures import (
    PartialSumFigures,
    ReadBack,
    figures_of_run,
)
from tickindex.bench.partial_sums.processes import (
    PartialTopics,
    ReducerStats,
    WorkerStats,
    create_topics,
    delete_topics,
    publish_events,
    publisher_process,
    read_all,
    reducer_process,
    worker_process,
)
from tickindex.bench.partial_sums.settings import PartialSumSettings
from tickindex.bench.partial_sums.world import build_world, reference_levels
from tickindex.bench.scale_world import WorldShape


def run_partial_sums(settings: PartialSumSettings) -> PartialSumFigures:
    """Run the simulation once and return its figures (the level check included)."""
    with tempfile.TemporaryDirectory(prefix="tickindex-partial-") as name:
        return asyncio.run(_run(settings, Path(name)))


async def _run(settings: PartialSumSettings, folder: Path) -> PartialSumFigures:
    shape = WorldShape(securities=settings.securities, indices=settings.indices, seed=settings.seed)
    world = build_world(shape, settings.ticks, settings.workers, folder)
    t = world.ticks
    np.savez(folder / "ticks.npz", security=t.security, price=t.price, ts_event=t.ts_event)
    topics = PartialTopics(settings.bootstrap, f"partial-{uuid.uuid4().hex[:12]}", settings.workers)
    await create_topics(topics)
    try:
        await publish_events(topics, world.events)
        workers, reducer, seconds = await _spawn_and_publish(settings, topics, folder)
        read = ReadBack(
            ticks=[await read_all(topics, topics.ticks, p) for p in range(topics.workers)],
            partials=await read_all(topics, topics.partials),
            reduced=await read_all(topics, topics.reduced),
        )
    finally:
        if not settings.keep_topics:
            await delete_topics(topics)
    reference = reference_levels(world)
    return figures_of_run(
        settings,
        world,
        read,
        reference=reference,
        workers=workers,
        reducer=reducer,
        wall_seconds=seconds,
    )


async def _spawn_and_publish(
    settings: PartialSumSettings, topics: PartialTopics, folder: Path
) -> tuple[list[WorkerStats], ReducerStats, float]:
    """Workers and reducer, then the publisher once the reducer is up; their stats."""
    deadline = time.monotonic() + settings.timeout_s
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(settings.workers + 2, mp_context=context) as pool:
        workers = [
            pool.submit(worker_process, topics, folder, w, w == settings.deaf_worker)
            for w in range(settings.workers)
        ]
        reducer = pool.submit(reducer_process, topics, folder, settings.hold_events)
        while not await read_all(topics, topics.reduced):
            _check_running([*workers, reducer], deadline)
            await asyncio.sleep(0.2)
        started = time.perf_counter()
        publisher = pool.submit(
            publisher_process, topics, folder, settings.rate, settings.chunk_ticks
        )
        remaining = max(deadline - time.monotonic(), 1.0)
        await asyncio.wait_for(asyncio.wrap_future(publisher), remaining)
        stats = await asyncio.wait_for(
            asyncio.gather(*map(asyncio.wrap_future, workers)), remaining
        )
        reduced = await asyncio.wait_for(asyncio.wrap_future(reducer), remaining)
        return list(stats), reduced, time.perf_counter() - started


def _check_running(futures: list[Future[Any]], deadline: float) -> None:
    for future in futures:
        if future.done():
            future.result()
            raise RuntimeError("a partial-sum process stopped before the ticks were published")
    if time.monotonic() > deadline:
        raise TimeoutError("the partial-sum reducer did not start in time")
