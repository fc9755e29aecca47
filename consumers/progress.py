"""A one-line progress bar on stderr for long files (only on a terminal unless forced)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Redraws ``[#####.....]  42.0%  12.3 MB/29.3 MB`` at most every ``interval_s``.

    Parameters
    ----------
    label : str
        Shown before the bar.
    stream : TextIO
        Where to draw (default stderr).
    interval_s : float
        Minimum time between redraws.
    """

    WIDTH = 30

    def __init__(self, label: str, stream: TextIO | None = None, interval_s: float = 0.2) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.interval_s = interval_s
        self._last_draw = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last_draw < self.interval_s and done < total:
            return
        self._last_draw = now
        fraction = min(1.0, done / total) if total else 1.0
        filled = int(fraction * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(
            f"\r{self.label} [{bar}] {fraction * 100:5.1f}%  {done / 1e6:.1f}/{total / 1e6:.1f} MB"
        )
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        """End the bar's line (if anything was drawn)."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
