"""``tickindex bench --gateway-load``: its options and handler."""

from __future__ import annotations

import argparse
import dataclasses
import json

from consumers.gateway.hub import GatewaySettings
from engine.live.config import ConfigError
from tickindex.bench.gateway_load import GatewayLoadSettings, run_gateway_load
from tickindex.bench.gateway_load_report import format_gateway_load
from tickindex.cli.gateway import add_frame_interval_argument


def add_gateway_load_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--gateway-load`` group (``--bootstrap`` and ``--json`` are the bench's own)."""
    defaults = GatewayLoadSettings(bootstrap="")
    group = parser.add_argument_group(
        "gateway load",
        "--gateway-load runs the gateway (in a child process) on a fresh level topic of the "
        "broker (--bootstrap) with many WebSocket clients, some deliberately slow",
    )
    group.add_argument(
        "--gateway-load", action="store_true", help="run the gateway load benchmark instead"
    )
    for flag, kind, default, text in (
        ("--clients", int, defaults.clients, "WebSocket clients reading as fast as they can"),
        ("--slow-clients", int, defaults.slow_clients, "clients reading one level, then sleeping"),
        ("--levels-per-s", float, defaults.levels_per_s, "levels published per second"),
        ("--seconds", float, defaults.seconds, "length of the publishing"),
        ("--warmup-s", float, defaults.warmup_s, "start left out of the delays"),
        ("--slow-sleep-s", float, defaults.slow_sleep_s, "a slow client's sleep per level"),
        (
            "--max-behind-s",
            float,
            GatewaySettings.max_behind_s,
            "the gateway disconnects a client behind for longer",
        ),
    ):
        group.add_argument(flag, type=kind, default=default, help=f"{text} (default: %(default)s)")
    add_frame_interval_argument(group)


def gateway_load_command(args: argparse.Namespace) -> int:
    """Run ``bench --gateway-load`` and print its figures."""
    if min(args.clients, args.levels_per_s, args.seconds) <= 0 or args.slow_clients < 0:
        raise ConfigError("--clients, --levels-per-s and --seconds must be positive")
    settings = GatewayLoadSettings(
        bootstrap=args.bootstrap,
        clients=args.clients,
        slow_clients=args.slow_clients,
        levels_per_s=args.levels_per_s,
        seconds=args.seconds,
        warmup_s=args.warmup_s,
        slow_sleep_s=args.slow_sleep_s,
        gateway=GatewaySettings(
            max_behind_s=args.max_behind_s, frame_interval_s=args.frame_interval_ms / 1000
        ),
    )
    figures = run_gateway_load(settings)
    print(json.dumps(dataclasses.asdict(figures)) if args.json else format_gateway_load(figures))
    return 0
