"""Which columns of the index board fit a terminal width, and where each one goes.

The board's columns, left to right: index code, name, level, change, % change, previous close,
day high and low, ticks/s, updates and the stale flag. The code, level, change and % change are
always shown; the others are taken by priority while they fit (the stale flag, then day high/low,
ticks/s, updates and previous close), and the name takes what is left (up to its longest value),
so a narrow terminal drops the name first, then previous close, updates, ticks/s, high/low, and a
wide one shows every column and the whole names.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_WIDTH = 80
MIN_WIDTH = 40
"""The narrowest board drawn: the code, level, change and % change of codes up to 12 characters."""
MIN_NAME_WIDTH = 8
MAX_NAME_WIDTH = 60


@dataclass(frozen=True)
class Column:
    """One column of the board.

    Attributes
    ----------
    key : str
        What the column shows (``code``, ``name``, ``level``, ...).
    header : str
        Its title in the header line.
    width : int
        Characters of its cells.
    left : bool
        Left-aligned (text) rather than right-aligned (numbers).
    gap : int
        Spaces before it (none before the first column).
    """

    key: str
    header: str
    width: int
    left: bool = False
    gap: int = 1

    def cell(self, text: str) -> str:
        """``text`` aligned in the column (cut to its width)."""
        text = text[: self.width]
        return f"{text:<{self.width}}" if self.left else f"{text:>{self.width}}"


# Screen order; the code and name widths are set per universe and terminal.
_COLUMNS = (
    Column("code", "INDEX", 0, left=True, gap=0),
    Column("name", "NAME", 0, left=True, gap=2),
    Column("level", "LEVEL", 10, gap=2),
    Column("change", "CHANGE", 9),
    Column("change_pct", "CHG %", 7),
    Column("prev_close", "PREV CLOSE", 10, gap=2),
    Column("high", "HIGH", 10, gap=2),
    Column("low", "LOW", 10),
    Column("ticks_per_s", "TICKS/S", 7, gap=2),
    Column("updates", "UPDATES", 9),
    Column("stale", "STALE", 5, left=True, gap=2),
)
_ALWAYS = ("code", "level", "change", "change_pct")
# Optional columns in the order they are kept (a group is kept or dropped as a whole).
_PRIORITY = (("stale",), ("high", "low"), ("ticks_per_s",), ("updates",), ("prev_close",))


@dataclass(frozen=True)
class Layout:
    """The columns a board of ``width`` characters shows, in screen order."""

    width: int
    columns: tuple[Column, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys of the columns shown."""
        return tuple(column.key for column in self.columns)

    def line(self, cells: dict[str, str]) -> str:
        """One line of the board: every shown column's cell, aligned (missing cells blank)."""
        parts = [" " * c.gap + c.cell(cells.get(c.key, "")) for c in self.columns]
        return "".join(parts).rstrip()

    def spans(self) -> dict[str, tuple[int, int]]:
        """Where each shown column's cell lies in a line: key -> (start, end), gaps excluded."""
        spans = {}
        offset = 0
        for column in self.columns:
            offset += column.gap
            spans[column.key] = (offset, offset + column.width)
            offset += column.width
        return spans

    def span(self, first: str, last: str) -> tuple[int, int] | None:
        """Where the cells of ``first`` to ``last`` lie in a line; None unless both are shown."""
        spans = self.spans()
        if first not in spans or last not in spans:
            return None
        return spans[first][0], spans[last][1]

    def header(self) -> str:
        """The header line."""
        return self.line({column.key: column.header for column in self.columns})


def _cost(column: Column) -> int:
    return column.gap + column.width


def choose_layout(width: int, code_width: int, name_width: int) -> Layout:
    """The columns that fit ``width``, by priority, and the name in what is left.

    Parameters
    ----------
    width : int
        Characters per line (the terminal's width).
    code_width : int
        The longest index code (at least the header's 5 characters are used).
    name_width : int
        The longest index name; the name is shown when at least ``MIN_NAME_WIDTH`` characters
        of it (or the whole of shorter names) fit, at most ``MAX_NAME_WIDTH``.

    Returns
    -------
    Layout
        The columns in screen order.
    """
    by_key = {column.key: column for column in _COLUMNS}
    by_key["code"] = Column("code", "INDEX", max(5, code_width), left=True, gap=0)
    chosen = set(_ALWAYS)
    used = sum(_cost(by_key[key]) for key in _ALWAYS)
    for group in _PRIORITY:
        cost = sum(_cost(by_key[key]) for key in group)
        if used + cost <= width:
            chosen.update(group)
            used += cost
    name = by_key["name"]
    room = min(width - used - name.gap, max(4, name_width), MAX_NAME_WIDTH)
    if room >= min(MIN_NAME_WIDTH, max(4, name_width)):
        by_key["name"] = Column("name", "NAME", room, left=True, gap=name.gap)
        chosen.add("name")
    columns = tuple(by_key[column.key] for column in _COLUMNS if column.key in chosen)
    return Layout(width, columns)
