"""``tickindex record``: the level topic written to files rolled per trading day.

Levels come from ``LevelSubscriber`` (read_committed, duplicates dropped by ``(index, seq)``)
and go to ``DIR/levels-YYYY-MM-DD.csv`` (or ``.jsonl``) by the Hong Kong date of their event
time, with the columns of a replay level file (``ts,index,level,seq,security``, security
empty); see ``consumers.recorder``. Every batch is flushed as it is written. With
``--group-id`` the consumer offsets are committed after each batch, so a restarted recorder
continues where it stopped.

With ``--format parquet`` a day is written as parts ``levels-YYYY-MM-DD.parquet``,
``levels-YYYY-MM-DD.1.parquet``..., each under a temporary ``.partial`` name until it is finished
(at least every ``--part-seconds``, and when the recorder stops) and renamed into place
(``consumers.daily_parquet``). With ``--group-id`` offsets are committed only once the levels
read are in finished parts, so a recorder killed outright loses no level: the restart re-reads
those of its unfinished parts (and removes the ``.partial`` files left). A level can then be in
two parts (killed between a rename and the commit): readers drop a level seen twice by
``(index, seq)``, as the gateway's ``--history-dir`` does.

With ``--complete`` the topic is the service's complete level topic (``serve
--complete-level-topic``: every level, whatever the level topic's publication policy), and every
gap in an index's ``seq`` is reported (``consumers.seq_gaps``); the exit status is then 1.

With ``--analytics`` the topic is the analytics topic (default ``index-analytics``), read with
``AnalyticsSubscriber`` (read_committed, republished records dropped), and each record goes to
``DIR/YYYY-MM-DD/analytics.jsonl`` by the Hong Kong date of its event time, one JSON v1 line as
the topic carries it (``consumers.analyticsfile.DailyAnalyticsFiles``). A message that is not an
analytics record is skipped, logged and counted, like a malformed level.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from consumers.analyticsfile import DailyAnalyticsFiles
from consumers.day_files import PART_SECONDS
from consumers.level_client import AnalyticsSubscriber, LevelSubscriber, StartFrom
from consumers.recorder import DailyLevelRecorder, RecordFormat
from consumers.seq_gaps import SeqGap, SeqGaps
from consumers.topic_subscriber import ConnectionOptions
from engine.core.errors import TickIndexError
from engine.core.timestamps import parse_timestamp
from producers.pacing import StopControl
from tickindex.cli.command import Subcommands, add_command
from tickindex.cli.common import add_duration_argument, add_kafka_arguments, positive_float
from tickindex.cli.kafka_clients import POLL_S, next_levels
from tickindex.cli.kafka_security import security_from_args

LEVEL_TOPIC = "index-levels"
ANALYTICS_TOPIC = "index-analytics"


def register(subcommands: Subcommands) -> None:
    """Add the ``record`` sub-command to the ``tickindex`` parser."""
    parser = add_command(
        subcommands,
        "record",
        summary="write the level (or analytics) topic to files rolled per trading day",
        description="Record every index level published on Kafka (duplicates dropped) to "
        "DIR/levels-YYYY-MM-DD.csv, .jsonl or Parquet parts (see --format) by the Hong Kong "
        "date of its event time, columns ts,index,level,seq,security (security empty). Stops "
        "after --duration, Ctrl-C or SIGTERM. Messages that are not valid level messages "
        "(undecodable, a level that is not finite, a time or seq outside int64) are skipped, "
        "each logged with its topic[partition]@offset, and counted in the summary. With "
        "--complete (the --topic being serve's --complete-level-topic) every gap in an index's "
        "seq is reported. With --analytics the analytics topic is recorded instead: each record to "
        "DIR/YYYY-MM-DD/analytics.jsonl by the Hong Kong date of its event time, one JSON line "
        "as the topic carries it.",
        examples=[
            ("every level from now on, one CSV file a day", "tickindex record --out-dir levels"),
            (
                "the analytics topic, one folder a day, resuming where group rec stopped",
                "tickindex record --analytics --out-dir analytics --group-id rec",
            ),
        ],
        handler=record_command,
    )
    add_kafka_arguments(
        parser,
        topic=LEVEL_TOPIC,
        role=f"Kafka topic to read the levels from (with --analytics: the analytics, default "
        f"{ANALYTICS_TOPIC})",
    )
    parser.set_defaults(topic=None)  # resolved by --analytics
    parser.add_argument(
        "--out-dir",
        required=True,
        metavar="DIR",
        help="folder of the daily files levels-YYYY-MM-DD.csv/.jsonl/.parquet, or with "
        "--analytics of the day folders YYYY-MM-DD/analytics.jsonl (created if missing)",
    )
    parser.add_argument(
        "--format",
        choices=("csv", "jsonl", "parquet"),
        help="format of the level files, CSV, JSON Lines or Parquet (default: csv; --analytics: "
        "always jsonl). Parquet: each day as parts levels-DAY.parquet, levels-DAY.1.parquet..., "
        "each written as NAME.partial and renamed into place once finished (at least every "
        "--part-seconds and when the recorder stops); with --group-id offsets are committed "
        "only for levels in finished parts, so a killed recorder loses none (a level may then "
        "be in two parts: readers drop a level seen twice by index and seq)",
    )
    parser.add_argument(
        "--part-seconds",
        type=positive_float,
        default=PART_SECONDS,
        metavar="S",
        help=f"--format parquet: finish the open parts at least every S seconds (default "
        f"{PART_SECONDS:g}): recorded history is at most that old",
    )
    parser.add_argument(
        "--analytics",
        action="store_true",
        help="record the analytics topic (serve's index/pair analytics and signals) instead of "
        "the levels",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--from-beginning",
        action="store_true",
        help="start at the first message of the topic (default: only new ones; with "
        "--group-id, only where the group has no committed offset)",
    )
    where.add_argument(
        "--from-time",
        metavar="TIME",
        help="start at the first message published at or after TIME (ns since the epoch or "
        "ISO-8601 with offset)",
    )
    parser.add_argument(
        "--group-id",
        metavar="GROUP",
        help="commit offsets under this consumer group and resume from them",
    )
    parser.add_argument(
        "--complete",
        action="store_true",
        help="the topic is the service's complete level topic (serve --complete-level-topic): "
        "report every gap in an index's seq after its first level read, exit 1 when there is one",
    )
    add_duration_argument(parser)


MAX_GAPS_LISTED = 20


@dataclass(frozen=True)
class RecordSummary:
    """Totals of one ``record`` run.

    Attributes
    ----------
    levels : int
        Levels written.
    duplicates : int
        Levels dropped as already seen.
    undecodable : int
        Messages skipped: not level messages, or with a level that is not finite or a time
        or ``seq`` outside int64 (each is logged with its ``topic[partition]@offset``).
    files : dict of date to Path
        The file of every day written to.
    messages : int
        Level messages read (not counting the skipped ones).
    gaps : list of SeqGap, optional
        ``--complete``: the gaps found in each index's ``seq``; None: not checked.
    """

    levels: int
    duplicates: int
    undecodable: int
    files: dict[date, Path] = field(default_factory=dict)
    messages: int = 0
    gaps: list[SeqGap] | None = None

    def lines(self) -> list[str]:
        """Human-readable summary: totals, then one line per file."""
        out = [
            f"tickindex record: {self.levels:,d} levels written to {len(self.files)} file(s), "
            f"{self.duplicates:,d} duplicates dropped; messages read "
            f"{self.messages + self.undecodable:,d}, skipped {self.undecodable:,d} malformed "
            "(logged with topic[partition]@offset)"
        ]
        out.extend(f"  {path}" for _, path in sorted(self.files.items()))
        if self.gaps is not None:
            missing = sum(gap.missing for gap in self.gaps)
            out.append(
                f"complete: {len(self.gaps):,d} seq gap(s), {missing:,d} level(s) missing"
                if self.gaps
                else "complete: no seq gap"
            )
            listed = self.gaps[:MAX_GAPS_LISTED]
            out.extend(f"  gap {g.code} seq {g.first}-{g.last}" for g in listed)
            if len(self.gaps) > MAX_GAPS_LISTED:
                out.append(f"  ... and {len(self.gaps) - MAX_GAPS_LISTED:,d} more")
        return out


async def record_levels(
    subscriber: LevelSubscriber,
    recorder: DailyLevelRecorder,
    stop: StopControl,
    gaps: SeqGaps | None = None,
) -> RecordSummary:
    """Write every new level to its day's file until ``stop`` says so; commit the offsets of
    what was written whenever ``recorder`` says it is durable.

    Parameters
    ----------
    subscriber : LevelSubscriber
        The level topic (started by its first poll if need be; not closed here), committing
        only when told (``commit_each_fetch=False``) if it has a group.
    recorder : DailyLevelRecorder
        The files (not closed here: commit once more after closing it).
    stop : StopControl
        Signal and ``--duration`` budget.
    gaps : SeqGaps, optional
        Watches every batch for gaps in the indices' ``seq`` (``--complete``).

    Returns
    -------
    RecordSummary
        Totals.
    """
    while not stop.stopped:
        batch = await next_levels(subscriber, stop)
        recorder.write(batch)
        if recorder.durable:
            await subscriber.commit()
        if gaps is not None:
            gaps.observe(batch)
    stats = subscriber.stats
    return RecordSummary(
        recorder.rows_written,
        stats.duplicates,
        stats.undecodable,
        dict(recorder.files),
        stats.messages,
        None if gaps is None else list(gaps.gaps),
    )


@dataclass(frozen=True)
class AnalyticsRecordSummary:
    """Totals of one ``record --analytics`` run.

    Attributes
    ----------
    records : int
        Analytics records written.
    duplicates : int
        Records dropped as republished.
    undecodable : int
        Messages skipped: not analytics records (each is logged with its
        ``topic[partition]@offset``).
    files : dict of date to Path
        The file of every day written to.
    messages : int
        Analytics records read (not counting the skipped messages).
    """

    records: int
    duplicates: int
    undecodable: int
    files: dict[date, Path] = field(default_factory=dict)
    messages: int = 0

    def lines(self) -> list[str]:
        """Human-readable summary: totals, then one line per file."""
        return [
            f"tickindex record: {self.records:,d} analytics records written to "
            f"{len(self.files)} file(s), {self.duplicates:,d} duplicates dropped; messages read "
            f"{self.messages + self.undecodable:,d}, skipped {self.undecodable:,d} malformed "
            "(logged with topic[partition]@offset)",
            *(f"  {path}" for _, path in sorted(self.files.items())),
        ]


async def record_analytics(
    subscriber: AnalyticsSubscriber, files: DailyAnalyticsFiles, stop: StopControl
) -> AnalyticsRecordSummary:
    """Write every new analytics record to its day's file until ``stop`` says so.

    Parameters
    ----------
    subscriber : AnalyticsSubscriber
        The analytics topic (started by its first poll if need be; not closed here).
    files : DailyAnalyticsFiles
        The files (not closed here).
    stop : StopControl
        Signal and ``--duration`` budget.

    Returns
    -------
    AnalyticsRecordSummary
        Totals.
    """
    while not stop.stopped:
        left = stop.remaining()
        timeout_s = POLL_S if left is None else min(POLL_S, left)
        files.write_analytics(await subscriber.poll(max(1, round(timeout_s * 1000))))
    stats = subscriber.stats
    return AnalyticsRecordSummary(
        files.records, stats.duplicates, stats.undecodable, dict(files.files), stats.messages
    )


def _from_time_ns(args: argparse.Namespace) -> int | None:
    if args.from_time is None:
        return None
    try:
        return parse_timestamp(args.from_time)
    except ValueError as exc:
        raise TickIndexError(f"--from-time: {exc}") from exc


def _connection(args: argparse.Namespace) -> ConnectionOptions:
    """The subscriber's options from the flags (wire format, where to start, group, TLS/SASL)."""
    start: StartFrom = "earliest" if args.from_beginning else "latest"
    return {
        "wire_format": args.wire_format,
        "from_time_ns": _from_time_ns(args),
        "group_id": args.group_id,
        "start": start,
        "security": security_from_args(args),
    }


async def _record(args: argparse.Namespace) -> RecordSummary:
    stop = StopControl(args.duration)
    stop.install_signal_handlers()
    # Offsets are committed only once the recorder says what it was handed is durable.
    options = _connection(args)
    options["commit_each_fetch"] = False
    subscriber = LevelSubscriber(args.bootstrap, args.topic, **options)
    fmt: RecordFormat = args.format or "csv"
    try:
        with DailyLevelRecorder(args.out_dir, fmt, part_seconds=args.part_seconds) as recorder:
            await stop.guard(subscriber.start())
            gaps = SeqGaps() if args.complete else None
            summary = await record_levels(subscriber, recorder, stop, gaps)
        await subscriber.commit()  # closed: every level written is in a finished file
        return summary
    finally:
        await subscriber.close()
        stop.remove_signal_handlers()


async def _record_analytics(args: argparse.Namespace) -> AnalyticsRecordSummary:
    stop = StopControl(args.duration)
    stop.install_signal_handlers()
    subscriber = AnalyticsSubscriber(args.bootstrap, args.topic, **_connection(args))
    try:
        with DailyAnalyticsFiles(args.out_dir) as files:
            await stop.guard(subscriber.start())
            return await record_analytics(subscriber, files, stop)
    finally:
        await subscriber.close()
        stop.remove_signal_handlers()


def record_command(args: argparse.Namespace) -> int:
    """Handler of ``tickindex record``; 0 also after Ctrl-C or SIGTERM; 1: a ``--complete`` gap."""
    if args.analytics:
        if args.complete or args.format in ("csv", "parquet"):
            raise TickIndexError(
                "--analytics records JSON Lines: no --complete or --format csv/parquet"
            )
        args.topic = args.topic or ANALYTICS_TOPIC
        analytics = asyncio.run(_record_analytics(args))
        for line in analytics.lines():
            print(line, file=sys.stderr, flush=True)
        return 0
    args.topic = args.topic or LEVEL_TOPIC
    summary = asyncio.run(_record(args))
    for line in summary.lines():
        print(line, file=sys.stderr, flush=True)
    return 1 if summary.gaps else 0
