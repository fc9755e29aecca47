"""Entry point of the ``tickindex`` command: one sub-command per module in this package."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from engine.core.errors import TickIndexError
from tickindex.cli import (
    bench,
    gateway,
    publish,
    record,
    replay,
    restate,
    run,
    serve,
    simulate,
    watch,
    weights,
)
from tickindex.cli.command import installed_version

COMMANDS: tuple[ModuleType, ...] = (
    run,
    serve,
    simulate,
    publish,
    watch,
    record,
    replay,
    restate,
    weights,
    bench,
    gateway,
)


OFFLINE_COMMANDS = frozenset({"replay", "restate", "weights", "publish", "record"})
"""Commands that report any failure in one line, never with a traceback (see ``main``)."""
DEBUG_ENV = "TICKINDEX_DEBUG"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="tickindex",
        description="Real-time stock index engine. Each command has its own --help, with examples.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"tickindex {installed_version()}",
        help="print the installed tickindex version and exit",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except TickIndexError as exc:
        print(f"tickindex {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, without a traceback at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:
        if args.command not in OFFLINE_COMMANDS or os.environ.get(DEBUG_ENV):
            raise
        print(f"tickindex {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, OSError) else 3
    return code


def _one_line(exc: Exception) -> str:
    """An unexpected error in one line: an OS error names its file, anything else is a bug."""
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    text = str(exc)
    text = text if len(text) <= 200 else text[:200] + "..."
    return f"internal error {type(exc).__name__}: {text} (set {DEBUG_ENV}=1 for the traceback)"


if __name__ == "__main__":
    sys.exit(main())
