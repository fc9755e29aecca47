"""The gateway's aiohttp application: routes, middlewares and its background tasks."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from consumers.gateway.hub import Gateway
from consumers.gateway.openapi import OPENAPI_PATH, openapi
from consumers.gateway.page import add_page_routes
from consumers.gateway.rest import (
    GATEWAY,
    analytics,
    bearer_token,
    history,
    indices,
    json_errors,
    levels,
    weights,
)
from consumers.gateway.stream import sse_stream, stream
from consumers.level_client import AnalyticsSubscriber, LevelSubscriber

log = logging.getLogger(__name__)

CONSUMER = web.AppKey("consumer", asyncio.Task[None])
"""The task reading the level topic (its failure is the gateway's)."""
ANALYTICS_CONSUMER = web.AppKey("analytics_consumer", asyncio.Task[None])
"""The task reading the analytics topic, when there is one (its failure is the gateway's)."""


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: the gateway's registry in the Prometheus text format."""
    body = generate_latest(request.app[GATEWAY].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _background(
    gateway: Gateway,
    subscriber: LevelSubscriber | None,
    analytics_subscriber: AnalyticsSubscriber | None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def run(app: web.Application) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(gateway.watchdog())]
        if subscriber is not None:
            app[CONSUMER] = asyncio.create_task(gateway.consume(subscriber))
            tasks.append(app[CONSUMER])
        if analytics_subscriber is not None:
            app[ANALYTICS_CONSUMER] = asyncio.create_task(
                gateway.consume_analytics(analytics_subscriber)
            )
            tasks.append(app[ANALYTICS_CONSUMER])
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return run


def settle_heap() -> None:
    """Collect, then keep everything alive now (modules, the universe, the application) out of
    the garbage collector's passes: call once the gateway is set up. On a loaded gateway each
    full pass over those objects paused every stream for tens of milliseconds."""
    gc.collect()
    gc.freeze()


def build_app(
    gateway: Gateway,
    subscriber: LevelSubscriber | None = None,
    analytics_subscriber: AnalyticsSubscriber | None = None,
) -> web.Application:
    """The gateway's application.

    Parameters
    ----------
    gateway : Gateway
        The book, clients, settings and metrics.
    subscriber : LevelSubscriber, optional
        The level topic, consumed while the application runs (not closed here); None: levels
        are handed in with ``gateway.publish``.
    analytics_subscriber : AnalyticsSubscriber, optional
        The analytics topic, consumed while the application runs (not closed here); None:
        records are handed in with ``gateway.publish_analytics`` (or there are none).

    Returns
    -------
    aiohttp.web.Application
        Routes ``/v1/indices``, ``/v1/levels``, ``/v1/levels/{code}/history``,
        ``/v1/weights/{code}``, ``/v1/analytics``, ``/v1/openapi.json`` (the OpenAPI 3
        document of these), ``/v1/stream`` (WebSocket or SSE), ``/v1/stream/sse`` and
        ``/metrics``; the live page at ``/`` and its files at ``/static/...``; every error
        a JSON ``{"error": ...}``; a bearer token required when ``gateway.settings.token``
        is set. No CORS headers are sent.
    """
    token = gateway.settings.token
    app = web.Application(middlewares=[json_errors, *([bearer_token(token)] if token else [])])
    app[GATEWAY] = gateway
    app.router.add_get("/v1/indices", indices)
    app.router.add_get("/v1/levels", levels)
    app.router.add_get("/v1/levels/{code}/history", history)
    app.router.add_get("/v1/weights/{code}", weights)
    app.router.add_get("/v1/analytics", analytics)
    app.router.add_get(OPENAPI_PATH, openapi)
    app.router.add_get("/v1/stream", stream)
    app.router.add_get("/v1/stream/sse", sse_stream)
    app.router.add_get("/metrics", metrics)
    add_page_routes(app)
    app.cleanup_ctx.append(_background(gateway, subscriber, analytics_subscriber))
    return app
