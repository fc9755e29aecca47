"""A live terminal board of every index, for a trader to read at a glance.

The title gives Hong Kong time and the session phase with the ticks/s and levels/s seen; a line
per index its level, change and % change vs the previous close, the previous close, the day's
high and low (levels seen since the HKT day began), ticks/s, updates and a stale flag (no move
for ``stale_after_s`` of wall time during continuous trading). Columns are chosen to fit the
width (``consumers.board_layout``); an ``AnalyticsPanel`` is drawn under the table, as wide.

Three styles: ``screen`` redraws in place (a terminal), ``frames`` appends whole boards (one
``--once`` frame), ``lines`` prints one summary line per refresh (standard output that is not a
terminal: logs and pipes never get frames).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal, TextIO

import numpy as np
from numpy.typing import NDArray

from consumers.analytics_panel import KEY_INDICES, AnalyticsPanel
from consumers.board_layout import DEFAULT_WIDTH, Layout, choose_layout
from consumers.day_range import DayRange, MoveClock
from engine.calendar.sessions import CONTINUOUS_PHASES, HKT_OFFSET_NS, Phase, TradingCalendar
from engine.kernel.columns import LevelColumns
from engine.refdata.universe import Universe

GREEN = "\x1b[32m"
RED = "\x1b[31m"
RESET = "\x1b[0m"
# Cursor home, then per line erase-to-end and finally erase-below: the screen is overwritten in
# place instead of cleared first, so it does not flicker.
CURSOR_HOME = "\x1b[H"
ERASE_LINE_END = "\x1b[K"
ERASE_BELOW = "\x1b[J"

Style = Literal["screen", "frames", "lines"]
STYLES: tuple[Style, ...] = ("screen", "frames", "lines")
DEFAULT_STALE_AFTER_S = 30.0
PHASE_LABELS = {
    Phase.CLOSED: "closed",
    Phase.PRE_OPENING: "pre-open",
    Phase.MORNING: "morning",
    Phase.LUNCH: "lunch",
    Phase.AFTERNOON: "afternoon",
    Phase.CLOSING_AUCTION: "closing auction",
}
LINE_INDICES = 4
"""Indices on a summary line: the panel's key indices present, else the first ones."""
# Title parts dropped first when the title is wider than the board.
_TITLE_DROP_ORDER = ("updates", "name", "levels", "ticks", "phase")


class IndexBoard:
    """A ``LevelSink`` that keeps the latest level of every index and draws them as a table.

    ``write`` only updates numpy state; drawing happens in ``refresh``, at most once per
    ``refresh_s`` (``write`` calls it, so a pipeline alone keeps the screen fresh).

    Parameters
    ----------
    universe : Universe
        Index codes, names and previous closing levels; every index starts at its previous close.
    stream : TextIO, optional
        Where the board is drawn; standard output by default.
    refresh_s : float
        Minimum wall time between two draws, in seconds.
    colour : bool, optional
        Green/red changes; by default on a ``screen`` when ``NO_COLOR`` is not set.
    clock : callable, optional
        Monotonic wall clock in seconds (``time.monotonic``); injectable for tests.
    panel : AnalyticsPanel, optional
        Analytics drawn under the table (the panel is the pipeline's analytics sink).
    simulated_time : bool
        The ticks carry simulated event times: the title says so.
    style : {"screen", "frames", "lines"}, optional
        How a refresh is drawn; by default ``screen`` when ``stream`` is a terminal, else
        ``lines``.
    width : int, optional
        Columns of the board; by default the terminal's (``shutil.get_terminal_size``, read at
        every draw) on a ``screen``, else 80.
    stale_after_s : float
        An index that has not moved for this much wall time during continuous trading (morning
        or afternoon session) is flagged stale.
    calendar : TradingCalendar, optional
        HKEX sessions, for the phase; the default calendar (no holidays) when not given.
    wall_ns : callable, optional
        Wall clock in ns since the epoch (``time.time_ns``): the board's time before any level.
    """

    def __init__(
        self,
        universe: Universe,
        stream: TextIO | None = None,
        *,
        refresh_s: float = 0.5,
        colour: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        panel: AnalyticsPanel | None = None,
        simulated_time: bool = False,
        style: Style | None = None,
        width: int | None = None,
        stale_after_s: float = DEFAULT_STALE_AFTER_S,
        calendar: TradingCalendar | None = None,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.universe = universe
        self.stream = sys.stdout if stream is None else stream
        self.refresh_s = refresh_s
        if style is None:
            style = "screen" if self.stream.isatty() else "lines"
        self.style: Style = style
        if colour is None:
            colour = style == "screen" and "NO_COLOR" not in os.environ
        self.colour = colour
        self.fixed_width = width
        self.stale_after_s = stale_after_s
        self.calendar = TradingCalendar() if calendar is None else calendar
        self._clock = clock
        self._wall_ns = wall_ns
        self.panel = panel
        self.simulated_time = simulated_time
        n = len(universe.indices)
        self.prev_close = np.array([s.prev_close_level for s in universe.indices], dtype=np.float64)
        self.levels = self.prev_close.copy()
        self.updates = np.zeros(n, dtype=np.int64)
        self.ticks = 0
        self.last_event_ns: int | None = None
        self.draws = 0
        self.day_range = DayRange(n)
        self.move_clock = MoveClock(n, clock())
        self._last_tick: tuple[int, int] | None = None
        self._window_updates = np.zeros(n, dtype=np.int64)
        self._window_ticks = 0
        self._window_start = clock()
        self._ticks_per_s = np.zeros(n, dtype=np.float64)
        self.rates = (0.0, 0.0)
        """Ticks/s and levels/s over the last refresh window."""

    def write(self, levels: LevelColumns) -> None:
        """Take one batch of levels (``LevelSink``): the last level of each index wins."""
        if len(levels) == 0:
            return
        index = levels.index.astype(np.intp)
        # np.unique on the reversed ids finds the last occurrence of each id in the batch.
        touched, from_end = np.unique(index[::-1], return_index=True)
        last_row = len(levels) - 1 - from_end
        self.move_clock.moved(self._moved(index, levels.level), self._clock())
        self.levels[touched] = levels.level[last_row]
        self.day_range.write(levels)
        counts = np.bincount(index, minlength=self.levels.size)
        self.updates += counts
        self._window_updates += counts
        ticks = self._count_ticks(levels)
        self.ticks += ticks
        self._window_ticks += ticks
        self.last_event_ns = int(levels.ts_event.max())
        self.refresh()

    def _moved(self, index: NDArray[np.intp], level: NDArray[np.float64]) -> NDArray[np.intp]:
        """The indices whose level changed at some point of the batch (before it is kept)."""
        order = np.argsort(index, kind="stable")
        ids, values = index[order], level[order]
        previous = np.empty_like(values)
        previous[1:] = values[:-1]
        first = np.ones(ids.size, dtype=bool)
        first[1:] = ids[1:] != ids[:-1]
        previous[first] = self.levels[ids[first]]
        return np.unique(ids[values != previous])

    def _count_ticks(self, levels: LevelColumns) -> int:
        """Ticks behind the levels: each tick's levels share its event time and security."""
        ts, security = levels.ts_event, levels.security
        new = np.ones(len(levels), dtype=bool)
        new[1:] = (ts[1:] != ts[:-1]) | (security[1:] != security[:-1])
        if self._last_tick == (int(ts[0]), int(security[0])):
            new[0] = False
        self._last_tick = (int(ts[-1]), int(security[-1]))
        return int(np.count_nonzero(new))

    def refresh(self, *, force: bool = False) -> bool:
        """Draw the board if ``refresh_s`` has passed since the last draw (or when forced).

        Returns
        -------
        bool
            Whether the board was drawn.
        """
        now = self._clock()
        window = now - self._window_start
        if not force and window < self.refresh_s:
            return False
        # A forced draw right after a regular one would divide a handful of ticks by a sliver of
        # time; the window then keeps running and the last full window's rates stay on screen.
        # The first draw (the only one of ``--once``) takes the rates since the start.
        if window > 0 and (window >= self.refresh_s / 2 or self.draws == 0):
            self._ticks_per_s = self._window_updates / window
            self.rates = (self._window_ticks / window, int(self._window_updates.sum()) / window)
            self._window_updates[:] = 0
            self._window_ticks = 0
            self._window_start = now
        if self.style == "screen":
            screen = (self.render() + "\n").replace("\n", ERASE_LINE_END + "\n")
            self.stream.write(CURSOR_HOME + screen + ERASE_BELOW)
        elif self.style == "frames":
            self.stream.write(self.render() + "\n\n")
        else:
            self.stream.write(self.summary_line() + "\n")
        self.stream.flush()
        self.draws += 1
        return True

    @property
    def width(self) -> int:
        """Columns of the board: ``width`` if given, else the terminal's on a screen, else 80."""
        if self.fixed_width is not None:
            return self.fixed_width
        if self.style == "screen":
            return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
        return DEFAULT_WIDTH

    def layout(self) -> Layout:
        """The columns shown at the board's width."""
        specs = self.universe.indices
        return choose_layout(
            self.width,
            max(len(spec.code) for spec in specs),
            max(len(spec.name) for spec in specs),
        )

    def board_time_ns(self) -> int:
        """The board's time: the last level's event time, else the wall clock."""
        return self._wall_ns() if self.last_event_ns is None else self.last_event_ns

    def phase(self) -> Phase:
        """The HKEX session phase at the board's time."""
        return Phase(int(self.calendar.phase(np.array([self.board_time_ns()]))[0]))

    def stale(self) -> NDArray[np.bool_]:
        """Indices flagged stale: not moved for ``stale_after_s`` during continuous trading."""
        if self.phase() not in CONTINUOUS_PHASES:
            return np.zeros(self.levels.size, dtype=bool)
        return self.move_clock.stale(self._clock(), self.stale_after_s)

    def render(self) -> str:
        """The board as text: a title line, a header, one line per index, then the panel.

        Every line is at most ``width`` characters (colour codes aside). Ticks/s is the number
        of levels of each index over the last refresh window, divided by the window length.
        """
        layout = self.layout()
        width = layout.width
        # Rounded to what is shown so a level a hair below its close reads +0.00, not -0.00,
        # and the percentage carries the sign of the change shown next to it.
        change = np.round(self.levels - self.prev_close, 2) + 0.0
        change_pct = 100.0 * change / self.prev_close
        high, low = self.day_range.high, self.day_range.low
        stale = self.stale()
        lines = [self._title(width), layout.header()[:width]]
        moves = layout.span("change", "change_pct")
        for i, spec in enumerate(self.universe.indices):
            cells = {
                "code": spec.code,
                "name": spec.name,
                "level": f"{self.levels[i]:,.2f}",
                "change": f"{change[i]:+.2f}",
                "change_pct": f"{change_pct[i]:+.2f}%",
                "prev_close": f"{self.prev_close[i]:,.2f}",
                "high": "-" if np.isnan(high[i]) else f"{high[i]:,.2f}",
                "low": "-" if np.isnan(low[i]) else f"{low[i]:,.2f}",
                "ticks_per_s": f"{self._ticks_per_s[i]:.1f}",
                "updates": f"{self.updates[i]:,d}",
                "stale": "STALE" if stale[i] else "",
            }
            line = layout.line(cells)[:width]
            if self.colour and change[i] != 0 and moves is not None and moves[1] <= len(line):
                start, end = moves
                tint = GREEN if change[i] > 0 else RED
                line = line[:start] + tint + line[start:end] + RESET + line[end:]
            lines.append(line)
        if self.panel is not None:
            lines.append("")
            lines.extend(self.panel.lines(colour=self.colour, width=width))
        return "\n".join(lines)

    def _when(self) -> str:
        if self.last_event_ns is None:
            if self.simulated_time:
                return "no ticks yet (simulated time)"
            return f"{_hkt(self._wall_ns())} HKT, no ticks yet"
        prefix = "SIMULATED " if self.simulated_time else ""
        return f"{prefix}{_hkt(self.last_event_ns)} HKT"

    def _title(self, width: int) -> str:
        parts = {
            "name": "tickindex",
            "when": self._when(),
            "phase": "" if self._phase_unknown() else PHASE_LABELS[self.phase()],
            "ticks": f"{self.rates[0]:,.0f} ticks/s",
            "levels": f"{self.rates[1]:,.0f} levels/s",
            "updates": f"{int(self.updates.sum()):,d} updates",
        }
        for drop in (None, *_TITLE_DROP_ORDER):
            if drop is not None:
                del parts[drop]
            title = "  ".join(part for part in parts.values() if part)
            if len(title) <= width:
                return title
        return title[:width]

    def _phase_unknown(self) -> bool:
        # Before its first tick a simulated run's time is not known yet.
        return self.simulated_time and self.last_event_ns is None

    def summary_line(self) -> str:
        """One plain line: HKT time, phase, rates, and the key indices' level and % change."""
        codes = self.universe.index_codes
        shown = [code for code in KEY_INDICES if code in codes] or list(codes)
        stale = self.stale()
        parts = [f"tickindex {self._when()}"]
        if not self._phase_unknown():
            parts.append(PHASE_LABELS[self.phase()])
        parts.append(f"{self.rates[0]:,.0f} ticks/s")
        for code in shown[:LINE_INDICES]:
            i = codes.index(code)
            pct = 100.0 * (np.round(self.levels[i] - self.prev_close[i], 2) + 0.0)
            flag = " STALE" if stale[i] else ""
            parts.append(f"{code} {self.levels[i]:,.2f} {pct / self.prev_close[i]:+.2f}%{flag}")
        return "  ".join(parts)


def _hkt(ts_ns: int) -> str:
    moment = datetime.fromtimestamp((ts_ns + HKT_OFFSET_NS) // 1_000_000_000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")
