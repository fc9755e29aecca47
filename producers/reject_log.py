"""Where the rows a file reader skips are reported: ``FILE:LINE: reason: detail``.

Every skipped row is written to the optional rejects file; the first ``shown`` are kept for the
command's summary and the rest only counted. In strict mode the first skipped row is fatal.
"""

from __future__ import annotations

from typing import TextIO

from engine.core.errors import InputFileError

SHOWN_REJECTS = 20
MAX_DETAIL_CHARS = 80


def short(value: object) -> str:
    """``repr`` of a cell, cut to ``MAX_DETAIL_CHARS`` (a hostile cell can be megabytes)."""
    text = repr(value)
    if len(text) <= MAX_DETAIL_CHARS:
        return text
    return f"{text[:MAX_DETAIL_CHARS]}... ({len(text):,d} chars)"


def clip(text: str) -> str:
    """``text`` cut to ``MAX_DETAIL_CHARS`` (for codes shown as they are)."""
    return text if len(text) <= MAX_DETAIL_CHARS else f"{text[:MAX_DETAIL_CHARS]}..."


class RejectLog:
    """Collects the skipped rows of one file.

    Parameters
    ----------
    path : str
        The file, as the user named it (prefix of every report line).
    strict : bool
        Raise ``InputFileError`` at the first skipped row instead of skipping it.
    sink : text stream, optional
        Receives every report line (``--rejects FILE``).
    shown : int
        How many report lines ``summary`` keeps.
    """

    def __init__(
        self,
        path: str,
        *,
        strict: bool = False,
        sink: TextIO | None = None,
        shown: int = SHOWN_REJECTS,
    ) -> None:
        self.path = path
        self.strict = strict
        self.sink = sink
        self.shown = shown
        self.first: list[str] = []
        self.hidden = 0

    def note(self, line: int, reason: str, detail: str) -> None:
        """Report one skipped row (or raise, when strict).

        Raises
        ------
        InputFileError
            In strict mode, naming file and line.
        """
        if self.strict:
            raise InputFileError(self.path, line, f"{reason}: {detail}")
        text = f"{self.path}:{line}: {reason}: {detail}"
        if self.sink is not None:
            self.sink.write(text + "\n")
        if len(self.first) < self.shown:
            self.first.append(text)
        else:
            self.hidden += 1

    def summary(self) -> list[str]:
        """The first report lines and how many more there were."""
        if not self.hidden:
            return list(self.first)
        where = " (all in the --rejects file)" if self.sink is not None else ""
        return [*self.first, f"... and {self.hidden:,d} more skipped rows{where}"]
