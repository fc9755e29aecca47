"""The live page: ``GET /`` and its static files under ``GET /static/...``.

Plain files (HTML, ES modules, CSS) served as they are: no build step. The chart library is
vendored at build time into ``static/vendor/`` (``make vendor``); without it the page still
shows its table and says how to build the chart.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from consumers.gateway.query import json_error

STATIC_DIR = Path(__file__).with_name("static")
"""The page's files (``vendor/``: the chart library, built by ``make vendor``)."""
PAGE_PATHS = frozenset({"/", "/static/{path}"})
"""The page's routes: not REST, so not in the OpenAPI document."""

CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain",
    ".json": "application/json",
}
_TEXT = frozenset({"text/html", "text/javascript", "text/css", "text/plain", "image/svg+xml"})


def _file_response(path: Path) -> web.Response:
    content_type = CONTENT_TYPES.get(path.suffix)
    if content_type is None or not path.is_file():
        raise json_error(web.HTTPNotFound, "no such file")
    return web.Response(
        body=path.read_bytes(),
        content_type=content_type,
        charset="utf-8" if content_type in _TEXT else None,
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


def static_file(root: Path, relative: str) -> Path:
    """The file ``relative`` under ``root``; 404 when it would lie outside ``root`` (``..``,
    an absolute path, a symbolic link out) or has no known type."""
    base = root.resolve()
    try:
        found = (base / relative).resolve()
    except (OSError, RuntimeError, ValueError):
        raise json_error(web.HTTPNotFound, "no such file") from None
    if not relative or base not in found.parents:
        raise json_error(web.HTTPNotFound, "no such file")
    return found


def add_page_routes(app: web.Application, root: Path = STATIC_DIR) -> None:
    """Route ``GET /`` (the page) and ``GET /static/{path}`` (its files, from ``root``)."""

    async def page(request: web.Request) -> web.Response:
        return _file_response(root / "index.html")

    async def static(request: web.Request) -> web.Response:
        return _file_response(static_file(root, request.match_info["path"]))

    app.router.add_get("/", page)
    app.router.add_get("/static/{path:.+}", static)
