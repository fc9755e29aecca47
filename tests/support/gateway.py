"""A gateway on a real level topic, served by aiohttp's test server, and stream readers."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from consumers.gateway.app import build_app
from consumers.gateway.hub import Gateway, GatewaySettings
from consumers.level_client import LevelSubscriber
from engine.refdata.builtin import load_builtin_universe


@contextlib.asynccontextmanager
async def running_gateway(
    bootstrap: str | None, topic: str | None, settings: GatewaySettings | None = None
) -> AsyncIterator[tuple[Gateway, TestClient[web.Request, web.Application]]]:
    """A gateway on the built-in universe reading ``topic`` from its start (None: no topic)
    and a client of it."""
    subscriber = (
        None
        if bootstrap is None or topic is None
        else LevelSubscriber(bootstrap, topic, start="earliest", poll_timeout_ms=50)
    )
    gateway = Gateway(load_builtin_universe(), settings or GatewaySettings(), CollectorRegistry())
    try:
        async with TestClient(TestServer(build_app(gateway, subscriber))) as client:
            yield gateway, client
    finally:
        if subscriber is not None:
            await subscriber.close()


def stream_events(message: str | bytes) -> list[dict[str, Any]]:
    """The events of one stream message: a JSON array of events (or one object: a disconnect)."""
    decoded = json.loads(message)
    return decoded if isinstance(decoded, list) else [decoded]


async def sse_messages(response: ClientResponse, count: int) -> list[dict[str, Any]]:
    """The next ``count`` (or more: whole ``data:`` events) stream events of a Server-Sent
    Events response, decoded."""
    found: list[dict[str, Any]] = []
    while len(found) < count:
        line = await response.content.readline()
        if not line:
            break
        if line.startswith(b"data: "):
            found.extend(stream_events(line[len(b"data: ") :]))
    return found


def metric(text: str, name: str) -> float:
    """The value of the sample ``name`` (with its labels, as exposed) in a /metrics body."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} in /metrics")
