"""Debian's chromium driven by Playwright for Python (never a downloaded browser)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.support.paths import REPO

REQUIRE_BROWSER = os.environ.get("TICKINDEX_REQUIRE_BROWSER") == "1"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
"""Headless, and no connection of its own to the outside (refused on a closed network)."""
ARTIFACTS = REPO / "build" / "test-artifacts"


def require_chromium() -> str:
    """Path of Debian's chromium; fails when TICKINDEX_REQUIRE_BROWSER=1 and it is missing,
    else skips."""
    path = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if path is None:
        what = "chromium is not installed (deploy/install-system-deps.sh installs it)"
        if REQUIRE_BROWSER:
            pytest.fail(f"{what} (TICKINDEX_REQUIRE_BROWSER=1: the browser is required)")
        pytest.skip(what)
    return path


def require_chart_library(path: Path) -> None:
    """The vendored chart library (``make vendor``): fails like a missing browser when required."""
    if not path.is_file():
        what = f"{path} is missing: build it with `make vendor` (npm ci in web/)"
        if REQUIRE_BROWSER:
            pytest.fail(f"{what} (TICKINDEX_REQUIRE_BROWSER=1)")
        pytest.skip(what)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Debian chromium (``--no-sandbox`` when running as root)."""
    path = require_chromium()
    args = [*CHROMIUM_ARGS, *(["--no-sandbox"] if os.geteuid() == 0 else [])]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=path, args=args)
        try:
            yield browser
        finally:
            await browser.close()


def page_level(level: float) -> str:
    """``level`` as the live page shows it: JavaScript's ``toFixed(2)`` (the exact binary value
    rounded half up) with thousands separators."""
    rounded = Decimal(level).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{rounded:,}"
