"""Arguments shared by several sub-commands."""

from __future__ import annotations

import argparse

from engine.builtin import load_universe_or_builtin
from engine.errors import ReferenceDataError
from engine.universe import Universe


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
