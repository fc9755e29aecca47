"""``tickindex serve``: the live Kafka service (flags, env ``TICKINDEX_*`` and a config file)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import typing
from importlib import metadata

from prometheus_client import CollectorRegistry

from engine.live.config import ServiceConfig, load_config
from engine.live.kafka.security import SECRET_FIELDS, kafka_security_options
from engine.live.kafka.topics import ensure_topics
from engine.live.metrics import ServiceMetrics, start_metrics_server
from engine.live.service import IndexService
from engine.refdata.builtin import load_universe_or_builtin
from tickindex.cli.kafka_security import add_password_flag_guards


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` sub-command, one flag per ``ServiceConfig`` field."""
    parser = sub.add_parser(
        "serve",
        help="consume ticks from Kafka, publish index levels",
        description="The live service. Settings come from defaults < --config FILE (TOML/JSON) "
        "< TICKINDEX_<SETTING> environment variables < flags.",
    )
    parser.add_argument("--config", help="TOML or JSON file of settings")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    hints = typing.get_type_hints(ServiceConfig)
    defaults = ServiceConfig()
    for field in ServiceConfig.__struct_fields__:
        if field in SECRET_FIELDS:
            continue  # never a flag: it would show in ps; env, config file or *_file instead
        flag = f"--{field.replace('_', '-')}"
        if hints[field] is bool:
            parser.add_argument(
                flag,
                dest=field,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"default {getattr(defaults, field)!r}",
            )
            continue
        literal = _literal_choices(hints[field])
        parser.add_argument(
            flag,
            dest=field,
            default=None,
            choices=literal,
            help=f"default {getattr(defaults, field)!r}",
        )
    add_password_flag_guards(parser)
    parser.set_defaults(handler=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    """Run the service until SIGTERM/SIGINT; exit 0 after a clean drain."""
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    overrides = {
        field: getattr(args, field)
        for field in ServiceConfig.__struct_fields__
        if field not in SECRET_FIELDS
    }
    config = load_config(args.config, os.environ, overrides)
    kafka_security_options(config)  # bad security settings fail here, before any connection
    return asyncio.run(serve(config))


async def serve(config: ServiceConfig) -> int:
    """Start metrics, topics and the service; stop cleanly on SIGTERM or SIGINT."""
    universe = load_universe_or_builtin(config.indices, config.composition)
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry, universe.index_codes, version=_version())
    server = None
    if config.metrics_port >= 0:
        server = start_metrics_server(registry, config.metrics_host, config.metrics_port)
        logging.getLogger(__name__).info(
            "metrics on http://%s:%d/metrics", config.metrics_host, server.port
        )
    await ensure_topics(config)
    service = IndexService(config, universe, metrics)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, service.request_stop)
    try:
        await service.run()
    finally:
        if server is not None:
            server.stop()
    logging.getLogger(__name__).info(
        "stopped cleanly: %d ticks in, %d levels out",
        service.pipeline.stats.ticks_in,
        service.pipeline.stats.levels_out,
    )
    return 0


def _literal_choices(hint: object) -> tuple[str, ...] | None:
    """The strings of a ``Literal[...]`` (or ``Literal[...] | None``) type, else None."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        choices = args
    else:
        choices = tuple(
            c
            for arg in args
            if typing.get_origin(arg) is typing.Literal
            for c in typing.get_args(arg)
        )
    return choices if choices and all(isinstance(c, str) for c in choices) else None


def _version() -> str:
    try:
        return metadata.version("tickindex")
    except metadata.PackageNotFoundError:
        return "0+unknown"
