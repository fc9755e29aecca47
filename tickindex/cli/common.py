"""Arguments shared by several sub-commands."""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sys
from collections.abc import Callable, Iterator
from typing import TextIO

from consumers.progress import ProgressBar, ProgressUnit
from engine.core.errors import InputFileError, ReferenceDataError
from engine.refdata.builtin import load_universe_or_builtin
from engine.refdata.universe import Universe
from producers.simulator import DEFAULT_RATE
from tickindex.cli.kafka_security import add_security_arguments


def add_universe_arguments(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """``--indices`` and ``--composition``; without them the built-in Hang Seng set is used."""
    suffix = "" if required else "; without both: the built-in Hang Seng family"
    parser.add_argument(
        "--indices",
        required=required,
        metavar="FILE",
        help="the indices, CSV index,name,prev_close_level,weight_cap,... (with --composition)"
        + suffix,
    )
    parser.add_argument(
        "--composition",
        required=required,
        metavar="FILE",
        help="the constituents of every index, CSV index,security,issued_shares,faf,cap_factor,"
        "prev_close (with --indices)" + suffix,
    )


def universe_from_args(args: argparse.Namespace) -> Universe:
    """Load the universe named by ``--indices``/``--composition`` (or the built-in one)."""
    try:
        return load_universe_or_builtin(args.indices, args.composition)
    except ValueError as exc:
        raise ReferenceDataError("--indices/--composition", None, str(exc)) from exc


def add_simulator_arguments(parser: argparse.ArgumentParser) -> None:
    """``--rate`` and ``--seed`` of the commands running the market simulator."""
    parser.add_argument(
        "--rate",
        type=positive_float,
        default=DEFAULT_RATE,
        metavar="TICKS_PER_S",
        help=f"ticks per second over all securities (default: {DEFAULT_RATE:,.0f})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="simulator seed: the same seed gives the same market (default: random, printed in "
        "the summary)",
    )


def seed_from_args(args: argparse.Namespace) -> int:
    """``--seed``, or a random seed without it."""
    return int(args.seed) if args.seed is not None else secrets.randbelow(2**31)


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


def int_from_0_to(most: int) -> Callable[[str], int]:
    """argparse type: an integer from 0 to ``most``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not 0 <= value <= most:
            raise argparse.ArgumentTypeError(f"must be 0 to {most:,d}, got {text}")
        return value

    return parse


batch_ticks = int_from_0_to(MAX_BATCH_TICKS)
"""argparse type: 0 (one message per tick) to ``MAX_BATCH_TICKS``."""


def add_kafka_arguments(parser: argparse.ArgumentParser, *, topic: str, role: str) -> None:
    """``--bootstrap``, ``--topic`` (``role`` says what the command does with it), ``--wire-format``
    and the TLS/SASL settings."""
    parser.add_argument(
        "--bootstrap",
        default=DEFAULT_BOOTSTRAP,
        metavar="HOST:PORT",
        help=f"Kafka broker(s) to connect to, HOST:PORT[,HOST:PORT...] (default: "
        f"{DEFAULT_BOOTSTRAP})",
    )
    parser.add_argument("--topic", default=topic, help=f"{role} (default: {topic})")
    parser.add_argument(
        "--wire-format",
        choices=("json", "msgpack"),
        default="json",
        help="encoding of the messages, the service's wire_format (default: json)",
    )
    add_security_arguments(parser)


def add_duration_argument(
    parser: argparse.ArgumentParser, *, until: str = "Ctrl-C or SIGTERM"
) -> None:
    """``--duration``: a wall-time budget; without it the command runs ``until`` a signal."""
    parser.add_argument(
        "--duration",
        type=positive_float,
        metavar="SECONDS",
        help=f"stop after this many seconds of wall time (default: run until {until})",
    )


DEFAULT_REFRESH_S = 0.5


def add_refresh_argument(parser: argparse.ArgumentParser) -> None:
    """``--refresh``: how often a live board is redrawn."""
    parser.add_argument(
        "--refresh",
        type=positive_float,
        default=DEFAULT_REFRESH_S,
        metavar="SECONDS",
        help=f"redraw the board at most this often (default: every {DEFAULT_REFRESH_S} s)",
    )


def add_progress_arguments(parser: argparse.ArgumentParser) -> None:
    """``--progress``/``--no-progress``; neither: a bar when standard error is a terminal."""
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="show a progress bar on standard error (default: when it is a terminal)",
    )
    progress.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="never show the progress bar, even on a terminal",
    )


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


def progress_bar(
    args: argparse.Namespace, name: str, *, unit: ProgressUnit = "bytes"
) -> ProgressBar | None:
    """The bar of ``--progress``/``--no-progress`` (neither: when standard error is a terminal)."""
    show = sys.stderr.isatty() if args.progress is None else args.progress
    return ProgressBar(name, unit=unit) if show else None


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
