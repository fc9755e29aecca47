"""``tickindex weights``: constituent weights and cap factors at previous closing prices."""

from __future__ import annotations

import argparse
import csv
import sys

import numpy as np

from engine.core.errors import ReferenceDataError
from engine.refdata.universe import Universe
from tickindex.cli.command import Subcommands, add_command
from tickindex.cli.common import add_universe_arguments, universe_from_args


def register(subcommands: Subcommands) -> None:
    """Add the ``weights`` sub-command."""
    parser = add_command(
        subcommands,
        "weights",
        summary="print index,security,weight,cap_factor as CSV",
        description="Weights (fraction of the index) and cap factors of every constituent at "
        "previous closing prices, biggest first within each index. A bad line of the indices or "
        "composition file stops with FILE:LINE: reason and exit code 2.",
        examples=[
            ("every index of the built-in Hang Seng family", "tickindex weights"),
            (
                "one index of your own reference files",
                "tickindex weights --indices indices.csv --composition composition.csv --index HSI",
            ),
        ],
        handler=weights_command,
    )
    add_universe_arguments(parser)
    parser.add_argument(
        "--index", metavar="CODE", help="print only this index's constituents (default: all)"
    )


def constituent_weights(universe: Universe) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
    """Weight of each membership row within its index at previous closing prices."""
    m = universe.membership
    capitalisation = universe.prev_close[m.security] * universe.weights()
    totals = np.bincount(m.index, weights=capitalisation, minlength=len(universe.indices))
    weights: np.ndarray[tuple[int], np.dtype[np.float64]] = capitalisation / totals[m.index]
    return weights


def weights_command(args: argparse.Namespace) -> int:
    """Print the weights CSV to stdout."""
    universe = universe_from_args(args)
    m = universe.membership
    rows = np.arange(m.index.size)
    if args.index is not None:
        if args.index not in universe.index_codes:
            known = ", ".join(universe.index_codes)
            raise ReferenceDataError("--index", None, f"unknown index {args.index!r} ({known})")
        rows = np.flatnonzero(m.index == universe.index_id(args.index))
    weights = constituent_weights(universe)
    order = rows[np.lexsort((-weights[rows], m.index[rows]))]
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["index", "security", "weight", "cap_factor"])
    writer.writerows(
        [
            universe.indices[m.index[row]].code,
            universe.securities[m.security[row]],
            repr(float(weights[row])),
            repr(float(m.cap_factor[row])),
        ]
        for row in order
    )
    return 0
