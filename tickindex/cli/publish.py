"""``tickindex publish``: replay a historical tick file into a Kafka tick topic.

Ticks are published in file order, keyed by security (``TickPublisher``), at the original pace
(event-time gaps reproduced), at N x speed or as fast as possible. Pacing is per slice of
about 50 ms of wall time (``ReplayPacer``), never a sleep per tick. Rows that cannot be read,
unknown securities and bad prices are counted and reported, never published.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from engine.core.file_formats import columnar_format
from engine.kernel.screening import RejectReason, count_reasons, screen_ticks
from engine.refdata.universe import Universe
from producers.kafka_publisher import TickPublisher
from producers.pacing import ReplayPacer, StopControl
from producers.reject_log import clip
from producers.tick_readers import open_tick_file
from producers.tickfile import ReadStats, TickFileReader
from tickindex.cli.command import Subcommands, add_command
from tickindex.cli.common import (
    BAD_ROWS_HELP,
    add_bad_row_arguments,
    add_kafka_arguments,
    add_progress_arguments,
    add_tick_message_arguments,
    add_universe_arguments,
    positive_float,
    progress_bar,
    rejects_file,
    universe_from_args,
)
from tickindex.cli.kafka_clients import kafka_producer, send_ticks, tick_publisher
from tickindex.cli.kafka_security import security_from_args

if TYPE_CHECKING:
    from producers.columnar_ticks import ColumnarTickReader

PACED_CHUNK_BYTES = 256 << 10
FAST_CHUNK_BYTES = 4 << 20
LONG_WAIT_S = 10.0


def register(subcommands: Subcommands) -> None:
    """Add the ``publish`` sub-command to the ``tickindex`` parser."""
    parser = add_command(
        subcommands,
        "publish",
        summary="replay a historical tick file into a Kafka tick topic",
        description="Publish a tick file (CSV or JSON Lines, optionally .gz/.zst, with header "
        "ts,security,price; or Parquet/Arrow IPC with those columns) to Kafka keyed by "
        "security, at the original pace, N x faster or as fast as possible. " + BAD_ROWS_HELP,
        examples=[
            (
                "a day of ticks at ten times its original pace",
                "tickindex publish ticks.csv.gz --speed 10",
            ),
            (
                "as fast as possible, in tick_batch messages of up to 1,000 ticks",
                "tickindex publish ticks.csv --as-fast-as-possible --batch-ticks 1000",
            ),
        ],
        handler=publish_command,
    )
    parser.add_argument(
        "file",
        metavar="FILE",
        help="the tick file to publish (.csv/.jsonl, optionally .gz/.zst; .parquet; "
        ".arrow/.feather/.arrows)",
    )
    add_kafka_arguments(parser, topic="ticks", role="Kafka topic to publish the ticks to")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed",
        type=positive_float,
        default=1.0,
        metavar="N",
        help="replay N x faster than the original event-time pace (default: 1, the original)",
    )
    pace.add_argument(
        "--as-fast-as-possible",
        action="store_true",
        help="publish without pacing, in large file chunks",
    )
    add_tick_message_arguments(parser)
    add_universe_arguments(parser)
    add_bad_row_arguments(parser)
    add_progress_arguments(parser)


@dataclass
class PublishReport:
    """What one ``publish`` run did.

    Attributes
    ----------
    read : ReadStats
        Rows read and rows that could not be read, from the tick file reader.
    ticks, messages, bytes : int
        Ticks published, Kafka messages and bytes of message values.
    rejected : Counter of RejectReason
        Readable ticks not published (unknown security, bad price).
    elapsed_s : float
        Wall time, seconds.
    max_late_s : float
        Largest delay of a slice behind its due time (paced runs).
    interrupted : bool
        Stopped by Ctrl-C or SIGTERM before the end of the file.
    """

    read: ReadStats
    ticks: int = 0
    messages: int = 0
    bytes: int = 0
    rejected: Counter[RejectReason] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    max_late_s: float = 0.0
    interrupted: bool = False

    @property
    def skipped(self) -> Counter[RejectReason]:
        """Every row not published, by reason (unreadable rows and rejected ticks)."""
        return self.read.skipped + self.rejected

    def lines(self, topic: str) -> list[str]:
        """Human-readable summary, one fact a line."""
        rate = self.ticks / self.elapsed_s if self.elapsed_s > 0 else 0.0
        out = [
            f"tickindex publish: {self.ticks:,d} ticks in {self.messages:,d} messages "
            f"({self.bytes / 1e6:.1f} MB) to {topic} in {self.elapsed_s:.2f} s "
            f"({rate:,.0f} ticks/s); rows read {self.read.rows:,d}, "
            f"published {self.ticks:,d}, skipped {sum(self.skipped.values()):,d}"
            + (" (interrupted)" if self.interrupted else "")
        ]
        for reason, count in sorted(self.skipped.items()):
            detail = ""
            if reason is RejectReason.UNKNOWN_SECURITY:
                codes = ", ".join(clip(c) for c, _ in self.read.unknown_codes.most_common(5))
                detail = f" (codes: {codes})"
            out.append(f"  skipped {count:,d} {reason.label}{detail}")
        out.extend(f"  {line}" for line in self.read.log.summary())
        if self.max_late_s >= 1.0:
            out.append(f"  publishing fell behind the pace by up to {self.max_late_s:.1f} s")
        return out


async def publish_file(
    reader: TickFileReader | ColumnarTickReader,
    publisher: TickPublisher,
    *,
    pacer: ReplayPacer | None,
    stop: StopControl,
) -> PublishReport:
    """Publish every valid tick of ``reader`` in file order, paced by ``pacer``.

    Parameters
    ----------
    reader : TickFileReader or ColumnarTickReader
        The tick file.
    publisher : TickPublisher
        Where ticks go; flushed after every slice (paced) or file chunk (as fast as possible).
    pacer : ReplayPacer, optional
        Event-time pacing; None publishes as fast as possible.
    stop : StopControl
        Sleeps until a slice is due; a stop request ends the replay after the current slice.

    Returns
    -------
    PublishReport
        Totals, with ``elapsed_s`` left at 0 for the caller to fill in.
    """
    report = PublishReport(read=reader.stats)
    n_securities = len(reader.universe.securities)
    await publisher.ready()
    for chunk in reader:
        reasons = screen_ticks(n_securities, chunk.security, chunk.price)
        report.rejected.update(count_reasons(reasons))
        valid = chunk.take(reasons == RejectReason.ACCEPTED)
        if pacer is None:
            await send_ticks(publisher, valid)
        else:
            for part in pacer.slices(valid.ts_event):
                wait = part.due - pacer.clock()
                if wait >= LONG_WAIT_S:
                    print(f"publish: event-time gap, next ticks in {wait:,.0f} s", file=sys.stderr)
                if wait > 0 and await stop.sleep(wait):
                    break
                report.max_late_s = max(report.max_late_s, -wait)
                await send_ticks(publisher, valid.slice(part.start, part.stop))
        if stop.stopped:
            report.interrupted = stop.interrupted
            break
    await publisher.flush()
    report.ticks = publisher.stats.ticks
    report.messages = publisher.stats.messages
    report.bytes = publisher.stats.bytes
    return report


async def _publish(
    args: argparse.Namespace, universe: Universe, rejects: TextIO | None
) -> PublishReport:
    bar = progress_bar(args, "publish", unit="rows" if columnar_format(args.file) else "bytes")
    paced = not args.as_fast_as_possible
    reader = open_tick_file(
        args.file,
        universe,
        chunk_bytes=PACED_CHUNK_BYTES if paced else FAST_CHUNK_BYTES,
        progress=bar,
        strict=args.strict,
        rejects=rejects,
    )
    stop = StopControl()
    stop.install_signal_handlers()
    started = time.monotonic()
    try:
        async with kafka_producer(args.bootstrap, security_from_args(args)) as producer:
            # Topic metadata first (it may even be auto-created), so the pace starts on time.
            await producer.partitions_for(args.topic)
            publisher = tick_publisher(producer, args, universe)
            pacer = ReplayPacer(args.speed) if paced else None
            report = await publish_file(reader, publisher, pacer=pacer, stop=stop)
    finally:
        stop.remove_signal_handlers()
        if bar is not None:
            bar.finish()
    report.elapsed_s = time.monotonic() - started
    return report


def publish_command(args: argparse.Namespace) -> int:
    """Handler of ``tickindex publish``: 0 when the file was published (rows may have been
    skipped), 130 when interrupted (the summary says what was published), 2 when the file
    cannot be read or, with ``--strict``, has a bad row (ticks before it were published)."""
    universe = universe_from_args(args)
    with rejects_file(args.rejects) as rejects:
        report = asyncio.run(_publish(args, universe, rejects))
    for line in report.lines(args.topic):
        print(line, flush=True)
    return 130 if report.interrupted else 0
