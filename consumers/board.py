"""A live terminal board of every index: level, change vs previous close, tick rate, updates.

With an ``AnalyticsPanel`` the analytics records are drawn under the level table.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

import numpy as np

from consumers.analytics_panel import AnalyticsPanel
from engine.calendar.sessions import HKT_OFFSET_NS
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

_NAME_WIDTH = 40
_WIDTH = 80  # a terminal's width: the board fits it (index codes of up to 9 characters)
_FIXED_COLUMNS = 2 + 2 + 12 + 2 + 9 + 1 + 7 + 2 + 7 + 2 + 9  # every column but code and name


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
        Green/red changes and in-place redraws; by default when ``stream`` is a terminal and
        ``NO_COLOR`` is not set.
    clock : callable, optional
        Monotonic wall clock in seconds (``time.monotonic``); injectable for tests.
    panel : AnalyticsPanel, optional
        Analytics drawn under the table (the panel is the pipeline's analytics sink).
    simulated_time : bool
        The ticks carry simulated event times: the title gives them in HKT, said simulated.
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
    ) -> None:
        self.universe = universe
        self.stream = sys.stdout if stream is None else stream
        self.refresh_s = refresh_s
        if colour is None:
            colour = self.stream.isatty() and "NO_COLOR" not in os.environ
        self.colour = colour
        self._clock = clock
        self.panel = panel
        self.simulated_time = simulated_time
        n = len(universe.indices)
        self.prev_close = np.array([s.prev_close_level for s in universe.indices], dtype=np.float64)
        self.levels = self.prev_close.copy()
        self.updates = np.zeros(n, dtype=np.int64)
        self.last_event_ns: int | None = None
        self.draws = 0
        self._window_updates = np.zeros(n, dtype=np.int64)
        self._window_start = clock()
        self._ticks_per_s = np.zeros(n, dtype=np.float64)

    def write(self, levels: LevelColumns) -> None:
        """Take one batch of levels (``LevelSink``): the last level of each index wins."""
        if len(levels) == 0:
            return
        index = levels.index.astype(np.intp)
        # np.unique on the reversed ids finds the last occurrence of each id in the batch.
        touched, from_end = np.unique(index[::-1], return_index=True)
        last_row = len(levels) - 1 - from_end
        self.levels[touched] = levels.level[last_row]
        counts = np.bincount(index, minlength=self.levels.size)
        self.updates += counts
        self._window_updates += counts
        self.last_event_ns = int(levels.ts_event.max())
        self.refresh()

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
        if window >= self.refresh_s / 2 and window > 0:
            self._ticks_per_s = self._window_updates / window
            self._window_updates[:] = 0
            self._window_start = now
        if self.colour:
            screen = (self.render() + "\n").replace("\n", ERASE_LINE_END + "\n")
            self.stream.write(CURSOR_HOME + screen + ERASE_BELOW)
        else:
            self.stream.write(self.render() + "\n\n")
        self.stream.flush()
        self.draws += 1
        return True

    def render(self) -> str:
        """The board as text: a title line, a header, one line per index, then the panel.

        Ticks/s is the number of ticks that moved each index over the last refresh window,
        divided by the window length.
        """
        specs = self.universe.indices
        # Rounded to what is shown so a level a hair below its close reads +0.00, not -0.00,
        # and the percentage carries the sign of the change shown next to it.
        change = np.round(self.levels - self.prev_close, 2) + 0.0
        change_pct = 100.0 * change / self.prev_close
        code_width = max([5, *(len(s.code) for s in specs)])
        # Names take what the other columns leave of 80 (cut to fit), at least 4 characters.
        fitting = _WIDTH - code_width - _FIXED_COLUMNS
        name_width = max(4, min(_NAME_WIDTH, fitting, max([4, *(len(s.name) for s in specs)])))
        header = (
            f"{'INDEX':<{code_width}}  {'NAME':<{name_width}}  {'LEVEL':>12}  {'CHANGE':>9} "
            f"{'CHG %':>7}  {'TICKS/S':>7}  {'UPDATES':>9}"
        )
        lines = [self._title(), header]
        for i, spec in enumerate(specs):
            moves = f"{change[i]:>+9.2f} {change_pct[i]:>+6.2f}%"
            if self.colour and change[i] != 0:
                moves = (GREEN if change[i] > 0 else RED) + moves + RESET
            name = spec.name[:name_width]
            lines.append(
                f"{spec.code:<{code_width}}  {name:<{name_width}}  {self.levels[i]:>12,.2f}  "
                f"{moves}  {self._ticks_per_s[i]:>7.1f}  {self.updates[i]:>9,d}"
            )
        if self.panel is not None:
            lines.append("")
            lines.extend(self.panel.lines(colour=self.colour))
        return "\n".join(lines)

    def _title(self) -> str:
        if self.last_event_ns is None:
            when = "no ticks yet" + (" (simulated time)" if self.simulated_time else "")
        elif self.simulated_time:
            stamp = datetime.fromtimestamp((self.last_event_ns + HKT_OFFSET_NS) / 1e9, tz=UTC)
            when = "SIMULATED " + stamp.strftime("%Y-%m-%d %H:%M:%S") + " HKT"
        else:
            stamp = datetime.fromtimestamp(self.last_event_ns / 1e9, tz=UTC)
            when = "last tick " + stamp.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
        total = int(self.updates.sum())
        return f"tickindex  {len(self.universe.indices)} indices  {total:,d} updates  {when}"
