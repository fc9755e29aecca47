"""``tickindex weights``: constituent weights and cap factors at previous closing prices.

Output, CSV on standard output: ``index,security,name,weight,cap_factor``. ``weight`` is the
fraction of the index with ``WEIGHT_DECIMALS`` decimals (0.08000000 is 8%), so rounding noise
of the capping (0.08000000000000002) never shows; ``cap_factor`` is the shortest repr that reads
back as the exact factor. ``name`` comes from a ``securities.csv`` (``security,name,...``) in
the folder of the composition file (the built-in family ships one), empty without it.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from engine.core.errors import ReferenceDataError
from engine.refdata.builtin import builtin_files
from engine.refdata.reference_text import read_reference_text, reference_rows
from engine.refdata.universe import Universe
from tickindex.cli.command import Subcommands, add_command
from tickindex.cli.common import add_universe_arguments, universe_from_args

WEIGHT_DECIMALS = 8
NAMES_FILE = "securities.csv"
HEADER = ("index", "security", "name", "weight", "cap_factor")


def register(subcommands: Subcommands) -> None:
    """Add the ``weights`` sub-command."""
    parser = add_command(
        subcommands,
        "weights",
        summary="print index,security,name,weight,cap_factor as CSV",
        description="Weights and cap factors of every constituent at previous closing prices, "
        f"biggest first within each index. weight is the fraction of the index, "
        f"{WEIGHT_DECIMALS} decimals (0.08000000 is 8%); cap_factor is exact (shortest repr); "
        f"name is from {NAMES_FILE} (security,name) next to the composition file, empty "
        "without one. A bad line of the indices, composition or securities file stops with "
        "FILE:LINE: reason and exit code 2.",
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


def security_names(path: Path) -> dict[str, str]:
    """Name by security code from a ``security,name,...`` CSV file; empty when there is none.

    Raises
    ------
    ReferenceDataError
        When the file exists but is unusable (not UTF-8, not CSV, no ``security`` or ``name``
        column, a row of the wrong width), naming the line.
    """
    if not path.is_file():
        return {}
    rows = reference_rows(path, read_reference_text(path))
    line, header = next(rows, (1, []))
    cells = [cell.strip() for cell in header]
    if "security" not in cells or "name" not in cells:
        raise ReferenceDataError(str(path), line, "header lacks security,name")
    code_at, name_at = cells.index("security"), cells.index("name")
    names: dict[str, str] = {}
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(cells):
            raise ReferenceDataError(
                str(path), line, f"expected {len(cells)} columns, got {len(row)}"
            )
        names[row[code_at].strip()] = row[name_at].strip()
    return names


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
    composition = Path(args.composition) if args.composition else builtin_files()[1]
    names = security_names(composition.parent / NAMES_FILE)
    weights = constituent_weights(universe)
    order = rows[np.lexsort((-weights[rows], m.index[rows]))]
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(HEADER)
    for row in order.tolist():
        code = universe.securities[m.security[row]]
        writer.writerow(
            [
                universe.indices[m.index[row]].code,
                code,
                names.get(code, ""),
                f"{weights[row]:.{WEIGHT_DECIMALS}f}",
                repr(float(m.cap_factor[row])),
            ]
        )
    return 0
