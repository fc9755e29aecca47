"""Arguments shared by several sub-commands."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TextIO

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from engine.core.errors import InputFileError, ReferenceDataError
from engine.live.kafka.metadata_backoff import backoff_metadata_updates
from engine.live.kafka.security import KafkaSecurity, connection_error, kafka_security_options
from engine.live.log_limits import limit_kafka_client_logs
from engine.refdata.builtin import load_universe_or_builtin
from engine.refdata.universe import Universe
from tickindex.cli.kafka_security import add_security_arguments


def add_universe_arguments(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """``--indices`` and ``--composition``; without them the built-in Hang Seng set is used."""
    suffix = "" if required else " (default: the built-in Hang Seng family)"
    parser.add_argument("--indices", required=required, help="indices CSV file" + suffix)
    parser.add_argument("--composition", required=required, help="composition CSV file" + suffix)


def universe_from_args(args: argparse.Namespace) -> Universe:
    """Load the universe named by ``--indices``/``--composition`` (or the built-in one)."""
    try:
        return load_universe_or_builtin(args.indices, args.composition)
    except ValueError as exc:
        raise ReferenceDataError("--indices/--composition", None, str(exc)) from exc


DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
MAX_BATCH_TICKS = 10_000


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def batch_ticks(text: str) -> int:
    """argparse type: 0 (one message per tick) to ``MAX_BATCH_TICKS``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= MAX_BATCH_TICKS:
        raise argparse.ArgumentTypeError(f"must be 0 to {MAX_BATCH_TICKS:,d}, got {text}")
    return value


def add_kafka_arguments(parser: argparse.ArgumentParser, *, topic: str, what: str) -> None:
    """``--bootstrap``, ``--topic``, ``--wire-format`` and the TLS/SASL settings."""
    parser.add_argument(
        "--bootstrap",
        default=DEFAULT_BOOTSTRAP,
        metavar="HOST:PORT",
        help=f"Kafka bootstrap servers (default: {DEFAULT_BOOTSTRAP})",
    )
    parser.add_argument("--topic", default=topic, help=f"{what} topic (default: {topic})")
    parser.add_argument(
        "--wire-format",
        choices=("json", "msgpack"),
        default="json",
        help="message encoding (default: json)",
    )
    add_security_arguments(parser)


def add_tick_message_arguments(parser: argparse.ArgumentParser) -> None:
    """``--batch-ticks``: single ``tick`` messages or ``tick_batch`` messages."""
    parser.add_argument(
        "--batch-ticks",
        type=batch_ticks,
        default=0,
        metavar="N",
        help="0: one tick message per tick (keyed by security, the default); N: tick_batch "
        "messages of up to N ticks of one partition",
    )


@contextlib.asynccontextmanager
async def kafka_producer(
    bootstrap: str, security: KafkaSecurity | None = None
) -> AsyncIterator[AIOKafkaProducer]:
    """A started idempotent producer (acks=all), stopped on exit.

    ``security`` (from ``security_from_args``) says how to connect; None: plaintext.

    Raises
    ------
    BrokerError
        When the broker cannot be reached or refuses the credentials.
    ConfigError
        When the security settings are inconsistent or name an unreadable file.
    """
    limit_kafka_client_logs()  # a broker outage would log a reconnect line every few ms
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=512 << 10,
        **kafka_security_options(security or KafkaSecurity()),
    )
    backoff_metadata_updates(producer)
    try:
        await producer.start()
    except KafkaError as exc:
        await producer.stop()
        raise connection_error(exc, bootstrap, security) from exc
    try:
        yield producer
    finally:
        await producer.stop()


BAD_ROWS_HELP = (
    "Rows of a tick or FX file that cannot be used (malformed, bad timestamp, unknown "
    "security or pair, bad price or rate) are skipped by default: each is reported as "
    "FILE:LINE: reason (the first 20 on standard error, all with --rejects) and counted in the "
    "summary. Reference files (indices, composition, calendar, variants, events) are always "
    "strict: the first bad line stops the command with FILE:LINE: reason, exit code 2."
)


def add_bad_row_arguments(parser: argparse.ArgumentParser) -> None:
    """``--strict``/``--lenient`` and ``--rejects FILE`` for commands reading tick files."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first bad row of a tick or FX file (FILE:LINE: reason, exit code 2)",
    )
    mode.add_argument(
        "--lenient",
        dest="strict",
        action="store_false",
        help="skip bad rows, report and count them (the default)",
    )
    parser.add_argument(
        "--rejects",
        metavar="FILE",
        help="write every skipped row as FILE:LINE: reason: detail to this file",
    )


@contextlib.contextmanager
def rejects_file(path: str | None) -> Iterator[TextIO | None]:
    """The ``--rejects`` file opened for writing, or None without one.

    Raises
    ------
    InputFileError
        When the file cannot be written.
    """
    if path is None:
        yield None
        return
    try:
        handle = open(path, "w", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
    except OSError as exc:
        raise InputFileError(path, None, f"cannot write: {exc.strerror}") from exc
    with handle:
        yield handle
