"""The live page in a real browser (Debian's chromium through Playwright) on a real level topic:
every index shown, numbers that move as levels are produced and equal the topic's at the seq
shown, the chart fed, a reconnect that resumes from the last seqs; a screenshot kept."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pytest
from playwright.async_api import Page

from consumers.gateway.page import STATIC_DIR
from consumers.level_batch import LevelBatch
from consumers.level_client import LevelSubscriber
from engine.refdata.builtin import load_builtin_universe
from engine.wire import IndexLevels
from tests.support.browser import ARTIFACTS, chromium, page_level, require_chart_library
from tests.support.gateway import running_gateway
from tests.support.level_topic import produce, unique
from tests.support.live import wait_until

pytestmark = pytest.mark.browser

NS_PER_S = 1_000_000_000
WAVE = 4
"""Levels per index per wave, one second of event time apart (a chart point each)."""

ROWS = """rows => rows.map(row => ({
    index: row.dataset.index,
    seq: row.dataset.seq === undefined ? null : Number(row.dataset.seq),
    level: row.dataset.level === undefined ? null : Number(row.dataset.level),
    shown: row.querySelector('td[data-field="level"]').textContent,
}))"""


def wave(code: str, prev_close: float, first_seq: int, start_ns: int) -> IndexLevels:
    """``WAVE`` levels of ``code`` after ``first_seq - 1``, with many decimals each."""
    seqs = list(range(first_seq, first_seq + WAVE))
    return IndexLevels(
        index=code,
        prev_close=prev_close,
        level=[prev_close * (1 + 0.003 * math.sin(seq * 1.7 + len(code))) for seq in seqs],
        ts_event=[start_ns + seq * NS_PER_S for seq in seqs],
        seq=seqs,
        ts_published=start_ns,
    )


async def topic_levels(bootstrap: str, topic: str, count: int) -> dict[tuple[str, int], float]:
    """Every level of the topic by (index, seq), read back by a client of its own."""
    subscriber = LevelSubscriber(bootstrap, topic, start="earliest", poll_timeout_ms=100)
    found: dict[tuple[str, int], float] = {}
    try:
        deadline = time.monotonic() + 30
        while len(found) < count and time.monotonic() < deadline:
            batch = await subscriber.poll()
            for code, seq, level in zip(
                batch.index_codes(), batch.seq.tolist(), batch.level.tolist(), strict=True
            ):
                found[code, seq] = level
    finally:
        await subscriber.close()
    assert len(found) == count
    return found


async def rows(page: Page) -> list[dict[str, Any]]:
    """Index, seq, raw level and the level shown of every row, read at one moment."""
    found: list[dict[str, Any]] = await page.eval_on_selector_all("#indices tbody tr", ROWS)
    return found


async def until_every_row_at(page: Page, seq: int) -> None:
    await page.wait_for_function(
        """seq => [...document.querySelectorAll('#indices tbody tr')]
            .every(row => Number(row.dataset.seq) >= seq)""",
        arg=seq,
        timeout=20_000,
    )


async def chart_points(page: Page) -> int:
    return int(await page.get_attribute("#chart", "data-points") or 0)


@pytest.mark.kafka
async def test_live_page_shows_the_topic_live(kafka_bootstrap: str) -> None:
    require_chart_library(STATIC_DIR / "vendor" / "lightweight-charts.mjs")
    universe = load_builtin_universe()
    codes = list(universe.index_codes)
    prev_close = {spec.code: spec.prev_close_level for spec in universe.indices}
    topic = unique("gw-page")
    start_ns = (time.time_ns() // NS_PER_S - 60) * NS_PER_S

    async def produce_wave(first_seq: int) -> None:
        messages = [wave(code, prev_close[code], first_seq, start_ns) for code in codes]
        await produce(kafka_bootstrap, topic, messages)

    await produce_wave(1)
    async with (
        running_gateway(kafka_bootstrap, topic) as (gateway, client),
        chromium() as browser,
    ):

        async def first_wave_read() -> bool:
            return [lv.seq for lv in gateway.book.latest()] == [WAVE] * len(codes)

        await wait_until(first_wave_read, "the first wave in the gateway")
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(str(client.make_url("/")))
        await until_every_row_at(page, WAVE)
        await page.wait_for_selector('#status[data-state="live"]')
        first = await rows(page)
        assert [row["index"] for row in first] == codes  # a row for every index, in order

        assert await page.locator("#chart canvas").count() > 0
        await page.wait_for_function("document.querySelector('#chart').dataset.points > 0")
        points_before = await chart_points(page)

        await produce_wave(WAVE + 1)  # while the page is open
        await until_every_row_at(page, 2 * WAVE)
        second = await rows(page)
        for before, after in zip(first, second, strict=True):
            assert after["seq"] > before["seq"]
            assert after["shown"] != before["shown"], after["index"]
        await page.wait_for_function(
            "n => document.querySelector('#chart').dataset.points > n", arg=points_before
        )

        sockets: list[str] = []
        page.on("websocket", lambda socket: sockets.append(socket.url))
        await page.evaluate(  # a dropped connection; the next wave comes while it is down
            "page => { page.reconnectMs = 2000; page.socket.close(); }",
            await page.evaluate_handle("window.tickindexPage"),
        )
        await page.wait_for_selector('#status[data-state="reconnecting"]')
        await produce_wave(2 * WAVE + 1)
        await until_every_row_at(page, 3 * WAVE)
        assert len(sockets) == 1
        assert f"HSI%3A{2 * WAVE}" in sockets[0]  # resumed from the last seqs: since=HSI:8,...
        await page.click('#indices tbody tr[data-index="HSCEI"]')  # a second line on the chart
        await page.wait_for_selector('tr[data-index="HSCEI"][aria-selected="true"]')
        await page.wait_for_function("document.querySelector('#chart-indices').textContent")
        assert await page.text_content("#chart-indices") == "HSI, HSCEI"

        topic_held = await topic_levels(kafka_bootstrap, topic, 3 * WAVE * len(codes))
        for row in await rows(page):
            level = topic_held[row["index"], row["seq"]]
            assert row["level"] == level, row  # the raw value exactly
            assert row["shown"] == page_level(level), row  # and as shown
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        screenshot = ARTIFACTS / "live-page.png"
        await page.screenshot(path=str(screenshot), full_page=True)
        print(f"live page screenshot: {screenshot}")
        assert not errors


async def test_the_page_shows_the_table_without_the_chart_library() -> None:
    universe = load_builtin_universe()
    async with running_gateway(None, None) as (_, client), chromium() as browser:
        page = await browser.new_page()
        await page.route("**/static/vendor/**", lambda route: route.fulfill(status=404))
        await page.goto(str(client.make_url("/")))
        await page.wait_for_selector("#chart-note:not([hidden])")
        assert "make vendor" in (await page.text_content("#chart-note") or "")
        indices = await page.eval_on_selector_all(
            "#indices tbody tr", "rows => rows.map(row => row.dataset.index)"
        )
        assert indices == list(universe.index_codes)
        await page.wait_for_selector('#status[data-state="live"]')


def one_level(code_id: int, level: float, seq: int, ts_event: int) -> LevelBatch:
    return LevelBatch(
        tuple(load_builtin_universe().index_codes),
        np.array([code_id], dtype=np.int32),
        np.array([level]),
        np.zeros(1),
        np.array([seq], dtype=np.int64),
        np.array([ts_event], dtype=np.int64),
        np.array([ts_event], dtype=np.int64),
    )


async def test_hkt_time_change_and_the_stale_marker() -> None:
    hsi = load_builtin_universe().indices[0]
    ts_event = 1_795_152_225_123_456_789  # 2026-11-20T13:23:45.123456789+08:00
    async with running_gateway(None, None) as (gateway, client), chromium() as browser:
        gateway.publish(gateway.book.apply(one_level(0, hsi.prev_close_level - 12.5, 1, ts_event)))
        page = await browser.new_page()
        await page.clock.install()
        await page.goto(str(client.make_url("/")))
        row = page.locator('tr[data-index="HSI"][data-seq="1"]')
        await row.wait_for()
        assert await row.locator('[data-field="time"]').text_content() == "13:23:45.123 HKT"
        assert await row.locator('[data-field="change"]').text_content() == "-12.50"
        assert await row.locator('[data-field="change"]').get_attribute("class") == "num down"
        assert await row.locator('[data-field="state"]').text_content() == ""
        await page.clock.fast_forward(31_000)  # 30 s and more without an update
        await page.wait_for_selector('tr[data-index="HSI"].stale')
        assert await row.locator('[data-field="state"]').text_content() == "stale"
        assert await page.locator("tr.stale").count() == 13  # as the board: none moved

        gateway.publish(gateway.book.apply(one_level(0, hsi.prev_close_level + 1, 2, ts_event)))
        await page.wait_for_selector('tr[data-index="HSI"][data-seq="2"]')
        await page.clock.fast_forward(1_000)
        await page.wait_for_selector('tr[data-index="HSI"]:not(.stale)')
        change = page.locator('tr[data-index="HSI"] [data-field="change"]')
        assert await change.get_attribute("class") == "num up"
        assert await page.locator("tr.stale").count() == 12
