"""The live page's routes: ``/`` and ``/static/...`` with their content types, the vendored chart
library (or its absence), and no file outside the static folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from consumers.gateway.page import STATIC_DIR, add_page_routes
from tests.support.browser import require_chart_library
from tests.support.gateway import running_gateway

PAGE_MODULES = ("app.js", "chart.js", "format.js", "table.js")
OUTSIDE = STATIC_DIR.parents[2] / "web" / "package.json"
"""A file of a served type outside the static folder."""


async def test_the_page_and_its_files_are_served_with_their_types() -> None:
    async with running_gateway(None, None) as (_, client):
        page = await client.get("/")
        assert page.status == 200
        assert page.content_type == "text/html"
        assert page.charset == "utf-8"
        html = await page.text()
        assert '<table id="indices">' in html
        assert '<script type="module" src="/static/app.js">' in html
        for module in PAGE_MODULES:
            response = await client.get(f"/static/{module}")
            assert response.status == 200, module
            assert response.content_type == "text/javascript", module
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        style = await client.get("/static/style.css")
        assert (style.status, style.content_type) == (200, "text/css")


async def test_the_vendored_chart_library_is_served_as_a_module_when_built() -> None:
    require_chart_library(STATIC_DIR / "vendor" / "lightweight-charts.mjs")
    async with running_gateway(None, None) as (_, client):
        response = await client.get("/static/vendor/lightweight-charts.mjs")
        assert (response.status, response.content_type) == (200, "text/javascript")
        assert "createChart" in await response.text()
        licence = await client.get("/static/vendor/lightweight-charts.LICENSE.txt")
        assert (licence.status, licence.content_type) == (200, "text/plain")


async def test_a_missing_chart_library_is_a_json_404_and_the_page_says_how_to_build_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>page</title>")
    app = web.Application()
    add_page_routes(app, tmp_path)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/")).status == 200
        missing = await client.get("/static/vendor/lightweight-charts.mjs")
        assert missing.status == 404
        assert await missing.json() == {"error": "no such file"}
    chart = (STATIC_DIR / "chart.js").read_text()
    assert "await import(VENDOR_PATH)" in chart  # a failed import leaves the table running
    assert "make vendor" in chart


@pytest.mark.parametrize(
    "path",
    [
        "/static/../page.py",
        "/static/%2e%2e/page.py",
        "/static/..%2Fpage.py",
        "/static/vendor/../../rest.py",
        "/static/%2Fetc%2Fpasswd",
        "/static//etc/passwd",
        "/static/",
        "/static/.",
        "/static/..%2F..%2F..%2Fweb%2Fpackage.json",
        "/static/" + str(OUTSIDE).replace("/", "%2F"),
    ],
)
async def test_nothing_outside_the_static_folder_is_served(path: str) -> None:
    assert OUTSIDE.is_file()
    async with running_gateway(None, None) as (_, client):
        response = await client.get(URL(path, encoded=True), allow_redirects=False)
        assert response.status == 404, path
        assert response.content_type == "application/json"
        assert "error" in await response.json()


async def test_an_unknown_type_or_a_link_out_of_the_folder_is_not_served(tmp_path: Path) -> None:
    root, outside = tmp_path / "static", tmp_path / "outside.js"
    root.mkdir()
    (root / "index.html").write_text("page")
    (root / "secret.key").write_text("key")
    outside.write_text("export const secret = 1;")
    (root / "link.js").symlink_to(outside)
    app = web.Application()
    add_page_routes(app, root)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/static/secret.key")).status == 404
        assert (await client.get("/static/link.js")).status == 404
