"""A one-line progress bar on stderr for long files (only on a terminal unless forced)."""

from __future__ import annotations

import sys
import time
from typing import Literal, TextIO

ProgressUnit = Literal["bytes", "rows"]


class ProgressBar:
    """Redraws ``[#####.....]  42.0%  12.3/29.3 MB  4.1 MB/s  ETA 0:04`` at most every
    ``interval_s``.

    Parameters
    ----------
    label : str
        Shown before the bar.
    stream : TextIO
        Where to draw (default stderr).
    interval_s : float
        Minimum time between redraws.
    unit : {"bytes", "rows"}
        What ``done`` and ``total`` count (shown as MB, or rows with their rate in rows/s).
    """

    WIDTH = 30

    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        interval_s: float = 0.2,
        *,
        unit: ProgressUnit = "bytes",
    ) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.interval_s = interval_s
        self.unit = unit
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last_draw < self.interval_s and (done < total or not total):
            return
        self._last_draw = now
        fraction = min(1.0, done / total) if total else 1.0
        filled = int(fraction * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        elapsed = max(now - self._started, 1e-9)
        rate = done / elapsed
        eta = f"  ETA {_clock((total - done) / rate)}" if total and rate > 0 else ""
        shown = f"{bar}] {fraction * 100:5.1f}%  " if total else "] "
        self.stream.write(f"\r{self.label} [{shown}{self._amounts(done, total, rate)}{eta}")
        self.stream.flush()
        self._drawn = True

    def _amounts(self, done: int, total: int, rate: float) -> str:
        if self.unit == "rows":
            of = f"/{total:,d}" if total else ""
            return f"{done:,d}{of} rows  {rate:,.0f} rows/s"
        of = f"/{total / 1e6:.1f}" if total else ""
        return f"{done / 1e6:.1f}{of} MB  {rate / 1e6:.1f} MB/s"

    def finish(self) -> None:
        """End the bar's line (if anything was drawn)."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    """``H:MM:SS`` or ``M:SS``."""
    whole = int(max(seconds, 0.0) + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
