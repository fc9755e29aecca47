"""``tickindex gateway``: the level topic served over HTTP, WebSocket and Server-Sent Events.

An aiohttp server (asyncio-native like the rest of the live code, with its own WebSocket
support and test client) in front of a ``LevelSubscriber``; the application itself is
``consumers.gateway.app.build_app``.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import sys
import time
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from consumers.gateway.app import ANALYTICS_CONSUMER, CONSUMER, build_app, settle_heap
from consumers.gateway.day_history import DayHistory
from consumers.gateway.hub import Gateway, GatewaySettings
from consumers.level_client import AnalyticsSubscriber, LevelSubscriber
from engine.live.config import ConfigError
from engine.refdata.universe import Universe
from producers.pacing import StopControl
from tickindex.cli.command import Subcommands, add_command
from tickindex.cli.common import (
    DEFAULT_BOOTSTRAP,
    add_duration_argument,
    add_universe_arguments,
    int_from_0_to,
    positive_float,
    universe_from_args,
)
from tickindex.cli.kafka_security import add_security_arguments, security_from_args

TOKEN_ENV = "TICKINDEX_GATEWAY_TOKEN"
NS_PER_S = 1_000_000_000


def register(subcommands: Subcommands) -> None:
    """Add the ``gateway`` sub-command."""
    parser = add_command(
        subcommands,
        "gateway",
        summary="serve the index levels over HTTP, WebSocket and SSE",
        description="Read the level topic and serve /v1/indices, /v1/levels, "
        "/v1/levels/{code}/history, /v1/weights/{code}, /v1/analytics (with --analytics-topic), "
        "/v1/openapi.json, /v1/stream (WebSocket, or SSE with "
        "Accept: text/event-stream, or /v1/stream/sse) and /metrics. Listens on 127.0.0.1 by "
        f"default; bound to any other address it requires a bearer token (${TOKEN_ENV} or "
        "--token-file). Stops after --duration, Ctrl-C or SIGTERM.",
        examples=[
            ("serve the local broker's levels on port 8080", "tickindex gateway"),
            (
                "every interface of this host, clients showing the token of the file",
                "tickindex gateway --host 0.0.0.0 --token-file gateway.token --bootstrap b:9092",
            ),
        ],
        handler=gateway_command,
    )
    parser.add_argument(
        "--bootstrap",
        default=DEFAULT_BOOTSTRAP,
        metavar="HOST:PORT",
        help=f"Kafka broker(s) to read the levels from (default: {DEFAULT_BOOTSTRAP})",
    )
    parser.add_argument(
        "--level-topic", default="index-levels", help="the level topic (default: index-levels)"
    )
    parser.add_argument(
        "--wire-format",
        choices=("json", "msgpack"),
        default="json",
        help="encoding of the messages, the service's wire_format (default: json)",
    )
    parser.add_argument(
        "--analytics-topic",
        metavar="TOPIC",
        help="also read this analytics topic (e.g. index-analytics): /v1/analytics and "
        "analytics=1 on the stream (default: none)",
    )
    parser.add_argument(
        "--history-dir",
        metavar="DIR",
        help="the folder of `tickindex record --out-dir`: /v1/levels/{code}/history also "
        "serves its day files, for the times the in-memory history does not cover",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (8080; 0: any)")
    parser.add_argument(
        "--token-file", metavar="FILE", help=f"file holding the bearer token (else ${TOKEN_ENV})"
    )
    parser.add_argument(
        "--history-s",
        type=positive_float,
        default=900.0,
        metavar="SECONDS",
        help="start reading the topic this far back, to fill the snapshot and history (900)",
    )
    parser.add_argument(
        "--history-levels",
        type=int,
        default=GatewaySettings.history_levels,
        metavar="N",
        help=f"levels kept per index for history and replays ({GatewaySettings.history_levels})",
    )
    parser.add_argument(
        "--max-behind-s",
        type=positive_float,
        default=GatewaySettings.max_behind_s,
        metavar="SECONDS",
        help=f"disconnect a stream client behind for longer ({GatewaySettings.max_behind_s:g})",
    )
    add_frame_interval_argument(parser)
    add_duration_argument(parser)
    add_universe_arguments(parser)
    add_security_arguments(parser)


MAX_FRAME_INTERVAL_MS = 1000


def add_frame_interval_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--frame-interval-ms``: how often the gateway hands levels out to stream clients."""
    default_ms = round(GatewaySettings.frame_interval_s * 1000)
    parser.add_argument(
        "--frame-interval-ms",
        type=int_from_0_to(MAX_FRAME_INTERVAL_MS),
        default=default_ms,
        metavar="MS",
        help="hand levels to the stream clients at most this often, several per message under "
        f"load: fewer, larger messages for a little delay (default: {default_ms}; 0: at once)",
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bearer_token(args: argparse.Namespace) -> str | None:
    """The token of ``--token-file`` or the environment; required off loopback."""
    token = os.environ.get(TOKEN_ENV) or None
    if args.token_file is not None:
        try:
            token = Path(args.token_file).read_text().strip() or None
        except OSError as exc:
            raise ConfigError(f"--token-file {args.token_file}: {exc.strerror}") from exc
    if token is None and not is_loopback(args.host):
        raise ConfigError(
            f"--host {args.host} is not a loopback address: set ${TOKEN_ENV} or --token-file"
        )
    return token


async def _serve(args: argparse.Namespace, universe: Universe, settings: GatewaySettings) -> None:
    stop = StopControl(args.duration)
    stop.install_signal_handlers()
    from_time_ns = time.time_ns() - int(args.history_s * NS_PER_S)
    subscriber = LevelSubscriber(
        args.bootstrap,
        args.level_topic,
        wire_format=args.wire_format,
        from_time_ns=from_time_ns,
        security=security_from_args(args),
    )
    analytics = (
        None
        if args.analytics_topic is None
        else AnalyticsSubscriber(
            args.bootstrap,
            args.analytics_topic,
            wire_format=args.wire_format,
            from_time_ns=from_time_ns,
            security=security_from_args(args),
        )
    )
    day_history = None if args.history_dir is None else DayHistory(args.history_dir)
    gateway = Gateway(universe, settings, CollectorRegistry(), day_history)
    app = build_app(gateway, subscriber, analytics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    settle_heap()
    try:
        await web.TCPSite(runner, args.host, args.port).start()
        host, port = runner.addresses[0][:2]
        print(f"tickindex gateway: serving http://{host}:{port}/v1/", file=sys.stderr, flush=True)
        consumers = [app[key] for key in (CONSUMER, ANALYTICS_CONSUMER) if key in app]
        while not any(task.done() for task in consumers) and not await stop.sleep(0.2):
            pass
        for task in consumers:
            if task.done():
                task.result()  # a topic failed: the gateway fails with it
    finally:
        await runner.cleanup()
        await subscriber.close()
        if analytics is not None:
            await analytics.close()
        stop.remove_signal_handlers()


def gateway_command(args: argparse.Namespace) -> int:
    """Handler of ``tickindex gateway``; 0 also after Ctrl-C or SIGTERM."""
    settings = GatewaySettings(
        history_levels=args.history_levels,
        max_behind_s=args.max_behind_s,
        frame_interval_s=args.frame_interval_ms / 1000,
        token=bearer_token(args),
    )
    asyncio.run(_serve(args, universe_from_args(args), settings))
    return 0
