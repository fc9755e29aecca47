"""``tickindex restate``: published levels against a replay with corrected (or hypothetical)
events, index by index."""

from __future__ import annotations

import argparse
import sys

from engine.core.errors import ReferenceDataError, TickInputError
from engine.refdata.builtin import load_universe_or_builtin
from engine.refdata.universe import Universe
from producers.tickfile import TickFileReader
from tickindex.cli.command import Subcommands, add_command
from tickindex.cli.common import (
    BAD_ROWS_HELP,
    add_bad_row_arguments,
    add_universe_arguments,
    int_from_0_to,
    positive_float,
    rejects_file,
    universe_from_args,
)
from tickindex.replaying import load_events
from tickindex.restate_report import (
    read_level_file,
    table_lines,
    weight_lines,
    write_diff,
    write_weight_changes,
)
from tickindex.restating import DEFAULT_TOLERANCE, Original, restate_published
from tickindex.what_if import WeightChange, what_if

MATCHING_HELP = (
    "Rows are matched per index by the tick that moved them (event time, security, n-th such "
    "row), so corrections that change which ticks move an index still line up; two levels "
    "differ when |corrected - published| > TOLERANCE x |published|."
)


def register(subcommands: Subcommands) -> None:
    """Add the ``restate`` sub-command."""
    parser = add_command(
        subcommands,
        "restate",
        summary="compare published levels with a replay under corrected or what-if events",
        description="Replay a day's ticks with corrected maintenance events (or corrected "
        "--indices/--composition) and compare with the published levels: per index the first "
        "tick where they differ, the largest absolute and relative differences, the divisor "
        "before and after, and the close. With --what-if, compare the replay with hypothetical "
        "events added on top of --events against the one without, and show how constituent "
        "weights move (at the day's last prices, with the composition and cap factors at the "
        "end of the replay). " + MATCHING_HELP + " " + BAD_ROWS_HELP + " A missing or bad "
        "file stops with one line and exit code 2.",
        examples=[
            (
                "levels published with a wrong split ratio, against the corrected events",
                "tickindex restate --published levels.csv --ticks ticks.csv "
                "--events corrected.jsonl --original-events published-events.jsonl "
                "--out diff.csv",
            ),
            (
                "what a different cap factor would have done, weight changes to a file",
                "tickindex restate --ticks ticks.csv --events events.jsonl "
                "--what-if cap.jsonl --out diff.json --weights-out weights.csv",
            ),
        ],
        handler=restate_command,
    )
    add_universe_arguments(parser)
    add_bad_row_arguments(parser)
    parser.add_argument(
        "--ticks", required=True, metavar="FILE", help="the day's tick file, as for replay"
    )
    parser.add_argument(
        "--published",
        metavar="FILE",
        help="the published level file (.csv or .jsonl, as replay writes it); needed unless "
        "--what-if",
    )
    parser.add_argument(
        "--events",
        metavar="FILE",
        help="the corrected maintenance events (with --what-if: the events the hypothetical "
        "ones are added to)",
    )
    parser.add_argument(
        "--original-events",
        metavar="FILE",
        help="the events the published levels were computed with: the divisor before is the "
        "end-of-day divisor of their replay (without: the reference data's divisor, before any "
        "event); the replay of the original events and reference data is also checked to "
        "reproduce the published levels",
    )
    parser.add_argument(
        "--original-indices",
        metavar="FILE",
        help="with --original-composition: the reference data the published levels were "
        "computed with, when the correction is in --indices/--composition",
    )
    parser.add_argument(
        "--original-composition",
        metavar="FILE",
        help="see --original-indices",
    )
    parser.add_argument(
        "--what-if",
        action="append",
        metavar="FILE",
        help="hypothetical events (an events file) added on top of --events; may be repeated",
    )
    parser.add_argument(
        "--tolerance",
        type=positive_float,
        default=DEFAULT_TOLERANCE,
        metavar="REL",
        help=f"relative difference above which levels differ (default: {DEFAULT_TOLERANCE:g})",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="write the per-index diff here: .json (with weight changes) or .csv",
    )
    parser.add_argument(
        "--weights-out",
        metavar="FILE",
        help="with --what-if: every constituent weight change as CSV "
        "index,security,weight_before,weight_after,change",
    )
    parser.add_argument(
        "--top",
        type=int_from_0_to(100_000),
        default=5,
        metavar="N",
        help="with --what-if: show the N largest weight changes per index (default: 5)",
    )


def restate_command(args: argparse.Namespace) -> int:
    """Run the comparison; print the table, write the files asked for. Exit code 0 whether
    or not levels differ (2 for an unusable file or arguments that do not go together)."""
    if args.what_if and args.published:
        raise TickInputError(
            "--what-if compares with the replay of --events, not with --published: give one"
        )
    if not args.what_if and not args.published:
        raise TickInputError("give --published (a restatement) or --what-if (a hypothesis)")
    if args.weights_out and not args.what_if:
        raise TickInputError("--weights-out needs --what-if")
    universe = universe_from_args(args)
    events = load_events(args.events) if args.events else []
    readers: list[TickFileReader] = []

    def open_ticks(final: Universe) -> TickFileReader:
        # Every replay reads the same ticks: the first reports the rows it skips.
        sink = rejects if not readers else None
        readers.append(TickFileReader(args.ticks, final, strict=args.strict, rejects=sink))
        return readers[-1]

    weights: list[WeightChange] | None = None
    with rejects_file(args.rejects) as rejects:
        if args.what_if:
            hypothetical = [pending for path in args.what_if for pending in load_events(path)]
            outcome = what_if(universe, open_ticks, events, hypothetical, tolerance=args.tolerance)
            restatement, weights = outcome.restatement, outcome.weights
        else:
            restatement = restate_published(
                read_level_file(args.published),
                universe,
                open_ticks,
                events,
                original=_original(args, universe),
                tolerance=args.tolerance,
                published_name=args.published,
            )
    for line in _skipped_rows(readers[0]) if readers else []:
        print(line, file=sys.stderr)
    for failure in restatement.events_failed:
        print(f"tickindex restate: event not applied: {failure}", file=sys.stderr)
    print("\n".join(table_lines(restatement)))
    if weights is not None:
        print()
        print("\n".join(weight_lines(weights, args.top)))
        if args.weights_out:
            write_weight_changes(args.weights_out, weights)
    if args.out:
        write_diff(args.out, restatement, weights)
    return 0


def _skipped_rows(reader: TickFileReader) -> list[str]:
    """What the first replay left out of the tick file (each replay leaves out the same rows),
    when anything: read = applied + skipped, each reason, the first rows by line."""
    log = reader.stats.log
    skipped = sum(log.counts.values())
    if not skipped:
        return []
    rows = reader.stats.rows
    return [
        f"tickindex restate: ticks read {rows}, applied {rows - skipped}, skipped {skipped}",
        *(f"  skipped {count} {reason}" for reason, count in sorted(log.counts.items())),
        *(f"  {line}" for line in log.summary()),
    ]


def _original(args: argparse.Namespace, universe: Universe) -> Original | None:
    """The published run's reference data and events, when any of them is given."""
    if not (args.original_events or args.original_indices or args.original_composition):
        return None
    events = load_events(args.original_events) if args.original_events else []
    if not (args.original_indices or args.original_composition):
        return Original(universe, events)
    if not (args.original_indices and args.original_composition):
        raise TickInputError("--original-indices and --original-composition go together")
    try:
        data = load_universe_or_builtin(args.original_indices, args.original_composition)
    except ValueError as exc:
        where = "--original-indices/--original-composition"
        raise ReferenceDataError(where, None, str(exc)) from exc
    return Original(data, events)
