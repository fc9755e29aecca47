"""How a ``tickindex`` sub-command is declared: its parser, help layout and examples."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import TypeAlias

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Handler: TypeAlias = Callable[[argparse.Namespace], int]

EXAMPLES_HEADING = "examples:"


class CommandHelpFormatter(argparse.HelpFormatter):
    """Help that wraps a one-paragraph description as usual and keeps text with its own line
    breaks (the examples) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" not in text:
            return super()._fill_text(text, width, indent)
        return "".join(indent + line for line in text.splitlines(keepends=True))


def add_command(
    subcommands: Subcommands,
    name: str,
    *,
    summary: str,
    description: str,
    examples: Sequence[tuple[str, str]],
    handler: Handler,
) -> argparse.ArgumentParser:
    """Add one sub-command whose ``--help`` ends with its examples.

    Parameters
    ----------
    subcommands : argparse._SubParsersAction
        The ``tickindex`` parser's sub-commands.
    name : str
        The sub-command, e.g. ``"replay"``.
    summary : str
        One line for the ``tickindex --help`` list.
    description : str
        What the command does, shown at the top of its ``--help``.
    examples : sequence of (str, str)
        ``(what it does, command line)`` pairs, shown at the end of its ``--help``.
    handler : callable
        Runs the parsed command and returns its exit code.

    Returns
    -------
    argparse.ArgumentParser
        The sub-command's parser, for its own arguments.
    """
    lines = [EXAMPLES_HEADING]
    for what, command_line in examples:
        lines.extend((f"  # {what}", f"  {command_line}"))
    parser = subcommands.add_parser(
        name,
        help=summary,
        description=description,
        epilog="\n".join(lines),
        formatter_class=CommandHelpFormatter,
    )
    parser.set_defaults(handler=handler)
    return parser


def installed_version() -> str:
    """The installed ``tickindex`` distribution's version (``0+unknown`` when not installed)."""
    try:
        return metadata.version("tickindex")
    except metadata.PackageNotFoundError:
        return "0+unknown"
