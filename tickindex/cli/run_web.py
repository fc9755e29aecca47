"""``tickindex run --web``: the embedded run (simulator -> engine, no broker) behind the live page.

The engine runs as in ``tickindex run`` (in a worker thread, paced in real time); its levels go
to an in-process gateway (``consumers.gateway``) instead of the board, which serves the live
page at ``/`` and the whole REST and stream API beside it. The analytics records, when the run
has them, go to the gateway too (``/v1/analytics``, ``analytics=1`` on the stream).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
from aiohttp import web
from prometheus_client import CollectorRegistry

from consumers.gateway.app import build_app, settle_heap
from consumers.gateway.hub import Gateway, GatewaySettings
from consumers.level_batch import LevelBatch
from engine.analytics.records import AnalyticsRecord
from engine.kernel.columns import LevelColumns
from engine.refdata.universe import Universe
from producers.pacing import StopControl
from tickindex.cli.gateway import bearer_token

Sleep = Callable[[float], None]
Summary = TypeVar("Summary")


def level_batch(levels: LevelColumns, universe: Universe, published_ns: int) -> LevelBatch:
    """The engine's ``levels`` as the gateway's ``LevelBatch`` (index ids are the universe's;
    the arrays copied, as they cross to the gateway's thread)."""
    prev_close = np.array([spec.prev_close_level for spec in universe.indices])
    index = np.array(levels.index, dtype=np.int32)
    level = np.array(levels.level, dtype=np.float64)
    return LevelBatch(
        codes=tuple(universe.index_codes),
        index=index,
        level=level,
        change=level - prev_close[index],
        seq=np.array(levels.seq, dtype=np.int64),
        ts_event=np.array(levels.ts_event, dtype=np.int64),
        ts_published=np.full(len(level), published_ns, dtype=np.int64),
    )


class GatewayFeed:
    """The embedded run's level (and analytics) sink: hands everything to ``gateway`` in its
    event loop, from the engine's thread.

    Parameters
    ----------
    gateway : Gateway
        The in-process gateway (no subscriber: levels come from here).
    loop : asyncio.AbstractEventLoop
        The loop serving ``gateway``.
    """

    def __init__(self, gateway: Gateway, loop: asyncio.AbstractEventLoop) -> None:
        self.gateway = gateway
        self._loop = loop

    def write(self, levels: LevelColumns) -> None:
        """Take one batch of the engine's levels."""
        if len(levels):
            batch = level_batch(levels, self.gateway.universe, time.time_ns())
            self._loop.call_soon_threadsafe(self._publish, batch)

    def _publish(self, batch: LevelBatch) -> None:
        self.gateway.publish(self.gateway.book.apply(batch))

    def write_analytics(self, records: Sequence[AnalyticsRecord]) -> None:
        """Take the analytics records of one cut."""
        if records:
            self._loop.call_soon_threadsafe(self.gateway.publish_analytics, list(records))

    def refresh(self, *, force: bool = False) -> bool:
        """Nothing to draw: the page is the board."""
        return False


def stoppable_sleep(stop: threading.Event) -> Sleep:
    """A sleep that ends the run (``KeyboardInterrupt``, which the run takes as its normal
    end) once ``stop`` is set."""

    def sleep(seconds: float) -> None:
        if stop.wait(seconds):
            raise KeyboardInterrupt

    return sleep


async def serve_web(
    universe: Universe,
    args: argparse.Namespace,
    run: Callable[[GatewayFeed, Sleep], Summary],
) -> Summary:
    """Serve the gateway on ``args.host``/``args.port`` while ``run`` feeds it in a thread;
    prints the page's address; stops when the run ends (``--duration``), on Ctrl-C or SIGTERM.

    Returns
    -------
    Summary
        What ``run`` returned.
    """
    token = bearer_token(argparse.Namespace(host=args.host, token_file=None))
    gateway = Gateway(universe, GatewaySettings(token=token), CollectorRegistry())
    runner = web.AppRunner(build_app(gateway), access_log=None)
    await runner.setup()
    settle_heap()
    stop = StopControl(None)
    stop.install_signal_handlers()
    ended = threading.Event()
    try:
        await web.TCPSite(runner, args.host, args.port).start()
        host, port = runner.addresses[0][:2]
        print(f"live page: http://{host}:{port}/", flush=True)
        feed = GatewayFeed(gateway, asyncio.get_running_loop())
        running = asyncio.ensure_future(asyncio.to_thread(run, feed, stoppable_sleep(ended)))
        while not running.done() and not await stop.sleep(0.2):
            pass
        ended.set()
        return await running
    finally:
        ended.set()
        stop.remove_signal_handlers()
        await runner.cleanup()
        sys.stdout.flush()
