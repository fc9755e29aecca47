"""``tickindex run --web``: the embedded run feeding an in-process gateway and its live page."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import threading
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from consumers.gateway.hub import Gateway, GatewaySettings
from engine.kernel.columns import LevelColumns
from engine.refdata.builtin import load_builtin_universe
from tests.support.live import wait_until
from tests.support.serve_process import ServeProcess
from tickindex.cli.run_web import GatewayFeed, level_batch, stoppable_sleep

TICKINDEX = str(Path(sys.executable).with_name("tickindex"))
URL = re.compile(r"^live page: (http://127\.0\.0\.1:(\d+)/)$", re.MULTILINE)


def engine_levels() -> LevelColumns:
    return LevelColumns(
        ts_event=np.array([10, 11, 12], dtype=np.int64),
        index=np.array([2, 0, 2], dtype=np.int32),
        level=np.array([5651.5, 25801.25, 5649.0]),
        seq=np.array([7, 3, 8], dtype=np.int64),
        security=np.array([1, 2, 3], dtype=np.int64),
    )


def test_the_engines_levels_become_a_level_batch_of_the_universes_codes() -> None:
    universe = load_builtin_universe()
    batch = level_batch(engine_levels(), universe, published_ns=99)
    assert batch.index_codes() == ["HSTECH", "HSI", "HSTECH"]
    assert batch.level.tolist() == [5651.5, 25801.25, 5649.0]
    prev_close = {spec.code: spec.prev_close_level for spec in universe.indices}
    assert batch.change.tolist() == [
        5651.5 - prev_close["HSTECH"],
        25801.25 - prev_close["HSI"],
        5649.0 - prev_close["HSTECH"],
    ]
    assert (batch.seq.tolist(), batch.ts_event.tolist()) == ([7, 3, 8], [10, 11, 12])
    assert batch.ts_published.tolist() == [99, 99, 99]


async def test_the_feed_hands_levels_from_the_engines_thread_to_the_gateways_loop() -> None:
    gateway = Gateway(load_builtin_universe(), GatewaySettings(), CollectorRegistry())
    feed = GatewayFeed(gateway, asyncio.get_running_loop())
    await asyncio.to_thread(feed.write, engine_levels())

    async def arrived() -> bool:
        return len(list(gateway.book.latest())) == 2

    await wait_until(arrived, "the levels in the book", timeout=5)
    assert [(lv.index, lv.seq) for lv in gateway.book.latest()] == [("HSI", 3), ("HSTECH", 8)]
    assert gateway.book.day_range.of("HSTECH") == (5651.5, 5649.0)
    assert not feed.refresh(force=True)  # no board to draw


def test_the_run_ends_at_its_next_sleep_once_stopped() -> None:
    stop = threading.Event()
    sleep = stoppable_sleep(stop)
    sleep(0.001)
    stop.set()
    with pytest.raises(KeyboardInterrupt):
        sleep(10.0)


@pytest.mark.slow
async def test_run_web_serves_the_page_and_moving_levels(tmp_path: Path) -> None:
    argv = [TICKINDEX, "run", "--web", "--port", "0", "--duration", "30", "--seed", "7"]
    with ServeProcess(argv, tmp_path / "run-web.log") as process:

        async def printed_url() -> bool:
            if process.proc.poll() is not None:
                raise AssertionError(f"run --web exited:\n{process.output()}")
            return URL.search(process.output()) is not None

        await wait_until(printed_url, "the page's address", timeout=20)
        found = URL.search(process.output())
        assert found is not None and int(found[2]) > 0  # the port really listened on
        url = found[1]
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as page:
                assert page.status == 200
                assert page.content_type == "text/html"
                assert '<table id="indices">' in await page.text()

            async def seqs() -> dict[str, int]:
                async with session.get(url + "v1/levels") as response:
                    assert response.status == 200
                    body = await response.json()
                    return {level["index"]: level["seq"] for level in body["levels"]}

            first: dict[str, int] = {}

            async def some_levels() -> bool:
                first.update(await seqs())
                return bool(first)

            await wait_until(some_levels, "the first levels", timeout=10)

            async def moved() -> bool:
                later = await seqs()
                return any(later[code] > seq for code, seq in first.items())

            await wait_until(moved, "the levels to move", timeout=10)
        assert await process.stop(signal.SIGINT) == 0
        assert "tickindex run: " in process.output()  # the one-line summary at the end
