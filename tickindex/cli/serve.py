"""``tickindex serve``: the live Kafka service (flags, env ``TICKINDEX_*`` and a config file)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import typing

from prometheus_client import CollectorRegistry

from engine.live.config import ServiceConfig, load_config
from engine.live.kafka.security import SECRET_FIELDS, kafka_security_options
from engine.live.kafka.topics import ensure_topics
from engine.live.metrics import ServiceMetrics, start_metrics_server
from engine.live.service import IndexService
from engine.live.shard_group import ShardGroup
from engine.live.shard_metrics import ShardMetrics
from engine.refdata.builtin import load_universe_or_builtin
from tickindex.cli.command import Subcommands, add_command, installed_version
from tickindex.cli.kafka_security import SECURITY_HELP, add_password_flag_guards, flag

SERVICE_HELP = {
    "bootstrap": "Kafka broker(s) to connect to, HOST:PORT[,HOST:PORT...]",
    "tick_topic": "topic the ticks are read from",
    "level_topic": "topic the levels are published to, keyed by index code",
    "dead_letter_topic": "topic rejected ticks and events go to, with the reason",
    "state_topic": "compacted topic of the engine checkpoints",
    "control_topic": "topic the maintenance events (corporate actions, reviews) are read from",
    "audit_topic": "topic every divisor change is published to",
    "ohlc_topic": "topic the daily open/high/low/close bars are published to at each day's roll",
    "fx_topic": "topic the FX ticks are read from (only with --variants)",
    "variants": "currency variants CSV, as replay --variants: each variant is published on the "
    "level topic next to its base index",
    "sessions": "HKEX trading sessions: reject ticks outside them, keep daily bars, roll each day",
    "calendar": "holidays and half days, CSV date,kind (implies --sessions)",
    "eod_dir": "folder for each next trading day's indices.csv and composition.csv (implies "
    "--sessions)",
    "group_id": "consumer group whose offsets are committed",
    "shard": "name of this instance in its transactional id and checkpoint key",
    "delivery": "commit protocol: at-least-once, or exactly-once with Kafka transactions",
    "wire_format": "encoding of the tick and level messages",
    "level_messages": "batch: one index_levels message per index per batch; single: one "
    "index_level message per level",
    "max_batch_ticks": "most ticks per engine batch; a larger fetch is applied in several calls",
    "dead_letter_max_bytes": "most bytes of one dead-letter record (at least 4096; a longer "
    "original value is cut)",
    "poll_timeout_ms": "how long a fetch waits for the first message, milliseconds",
    "max_in_flight_batches": "at-least-once: batches whose levels may await acknowledgement "
    "before fetching pauses",
    "checkpoint_interval_ms": "at-least-once: time between checkpoints, milliseconds",
    "start_from": "where to start reading the ticks when there is no checkpoint",
    "tick_partitions": "partitions of the tick topic when the service creates it",
    "metrics_host": "address the Prometheus endpoint listens on",
    "metrics_port": "port of the Prometheus endpoint; 0 picks a free port, -1 disables it",
    "indices": "indices CSV, with --composition; unset: the built-in Hang Seng family",
    "composition": "composition CSV, with --indices; unset: the built-in Hang Seng family",
    "linger_ms": "how long a level producer waits to fill a batch, milliseconds",
    "output_process": "encode and produce levels in a child process, on a second core",
    "adaptive_output": "with output_process, at-least-once: small batches are produced in the "
    "service's own loop while the child has nothing in flight",
    "level_producers": "at-least-once: producer connections publishing levels",
    "fetched_records": "decode fetched messages from aiokafka's raw record batches, without a "
    "ConsumerRecord per message (off: aiokafka's own records)",
    "max_pending_events": "most maintenance events waiting for their effective time; more are "
    "dead-lettered",
    "max_pending_event_bytes": "most encoded bytes of the waiting maintenance events; more are "
    "dead-lettered",
    "event_late_tolerance_ms": "how far before the last tick time an event's effective time may "
    "be, milliseconds; earlier ones are dead-lettered",
    "event_horizon_days": "how far after the wall clock an event's effective time may be, days",
    "publication": "levels on the level topic per index group: PATTERN=POLICY,... (PATTERN a "
    "glob over index codes, POLICY all or <N>ms: the last level per N ms of event time, with "
    "the count it stands for; first match wins, unmatched: all), e.g. 'HSI=all,*=100ms'",
    "complete_level_topic": "topic every level also goes to, unconflated (read by record "
    "--complete); unset: none",
    "shards": "index shards shared by the instances of the group: N > 1 runs the shards Kafka "
    "assigns to this instance, each with its own checkpoint (1: the whole family here)",
    "shard_topic": "topic whose N partitions stand for the shards, balanced by the group "
    "<group_id>-shards",
    "shard_session_timeout_ms": "how long a silent instance keeps its shards before the group "
    "hands them to another, milliseconds",
    "analytics": "per-index and pair analytics and signals on the analytics topic, keyed by "
    "index, pair or signal name (implies --sessions; exactly-once covers them too)",
    "analytics_topic": "topic the analytics records go to (with --analytics)",
    "analytics_config": "analytics settings, TOML or JSON (as replay --analytics-config); unset: "
    "the defaults (every index, the default pairs, no signal rules)",
    "analytics_idle_ms": "a live feed quiet this long lets analytics boundaries up to the wall "
    "clock minus this pass without a tick, so the session close goes out; 0: only ticks pass them",
}
"""What each ``ServiceConfig`` setting does (security settings: ``SECURITY_HELP``)."""


def setting_help(setting: str, default: object) -> str:
    """The help of a setting's flag: what it does, then its default."""
    what = (SECURITY_HELP | SERVICE_HELP).get(setting, f"the {setting} setting (ServiceConfig)")
    return f"{what} (default: {'unset' if default is None else repr(default)})"


def register(subcommands: Subcommands) -> None:
    """Add the ``serve`` sub-command, one flag per ``ServiceConfig`` field."""
    parser = add_command(
        subcommands,
        "serve",
        summary="consume ticks from Kafka, publish index levels",
        description="The live service. Settings come from defaults < --config FILE (TOML/JSON) "
        "< TICKINDEX_<SETTING> environment variables < flags.",
        examples=[
            ("the service on a local broker, metrics on port 9464", "tickindex serve"),
            (
                "settings from a file, exactly-once delivery whatever the file says",
                "tickindex serve --config serve.toml --delivery exactly-once",
            ),
        ],
        handler=serve_command,
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML or JSON file of settings, keyed by setting name (e.g. tick_topic)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        help="least severe log messages shown: DEBUG, INFO, WARNING or ERROR (default: INFO)",
    )
    hints = typing.get_type_hints(ServiceConfig)
    defaults = ServiceConfig()
    for field in ServiceConfig.__struct_fields__:
        if field in SECRET_FIELDS:
            continue  # never a flag: it would show in ps; env, config file or *_file instead
        help_text = setting_help(field, getattr(defaults, field))
        if hints[field] is bool:
            parser.add_argument(
                flag(field),
                dest=field,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
            continue
        parser.add_argument(
            flag(field),
            dest=field,
            default=None,
            choices=_literal_choices(hints[field]),
            help=help_text,
        )
    add_password_flag_guards(parser)


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
    """Start metrics, topics and the service (or shards); stop cleanly on SIGTERM or SIGINT."""
    universe = load_universe_or_builtin(config.indices, config.composition)
    registry = CollectorRegistry()
    server = None
    if config.metrics_port >= 0:
        server = start_metrics_server(registry, config.metrics_host, config.metrics_port)
        logging.getLogger(__name__).info(
            "metrics on http://%s:%d/metrics", config.metrics_host, server.port
        )
    try:
        await ensure_topics(config)
        if config.shards > 1:
            metrics = ShardMetrics(registry, config.shards, version=installed_version())
            await _until_signal(ShardGroup(config, universe, metrics))
            logging.getLogger(__name__).info("stopped cleanly, every shard handed back")
            return 0
        service_metrics = ServiceMetrics(
            registry, universe.index_codes, version=installed_version()
        )
        service = IndexService(config, universe, service_metrics)
        await _until_signal(service)
    finally:
        if server is not None:
            server.stop()
    logging.getLogger(__name__).info(
        "stopped cleanly: %d ticks in, %d levels out",
        service.pipeline.stats.ticks_in,
        service.pipeline.stats.levels_out,
    )
    return 0


async def _until_signal(runner: IndexService | ShardGroup) -> None:
    """``runner.run()``, with SIGTERM and SIGINT asking it to stop."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, runner.request_stop)
    await runner.run()


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
