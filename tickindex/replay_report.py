"""What one replay did, as figures and as the summary ``tickindex replay`` prints."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from engine.currency.translator import CurrencyStats, FxRejectReason
from engine.kernel.screening import RejectReason
from engine.pipeline.chain import PipelineStats
from producers.fxfile import FxReadStats
from producers.reject_log import clip
from producers.tickfile import ReadStats

__all__ = ["ReplayReport"]


@dataclass(frozen=True)
class ReplayReport:
    """What one replay did.

    Attributes
    ----------
    read : ReadStats
        Tick rows read and skipped (by reason) by the tick source.
    pipeline : PipelineStats
        Ticks applied and rejected, levels out, events applied and failed.
    elapsed_s : float
        Wall time of the replay.
    fx : FxReadStats, optional
        FX rows read and skipped (by reason) by the FX file reader, when there were currency
        variants.
    rolled : tuple of Path
        Folders that received the next day's reference files (``eod_dir``).
    currency : CurrencyStats, optional
        Variant levels out, FX ticks applied and rejected (by reason) by the currency step,
        when there were currency variants.
    events_read, events_pending : int
        Events in the events file, and those not reached: effective after the last tick, so
        neither applied nor failed.
    """

    read: ReadStats
    pipeline: PipelineStats
    elapsed_s: float
    fx: FxReadStats | None = None
    rolled: tuple[Path, ...] = ()
    currency: CurrencyStats | None = None
    events_read: int = 0
    events_pending: int = 0

    @property
    def skipped(self) -> dict[str, int]:
        """Ticks not applied, by reason label, whether the source or the engine left them out."""
        counts = self.read.skipped + self.pipeline.rejected
        return {reason.label: count for reason, count in sorted(counts.items())}

    @property
    def rows_skipped(self) -> int:
        """Rows of every input file left out: ticks, FX ticks and events that failed."""
        fx = sum(self.fx.skipped.values()) if self.fx is not None else 0
        currency = sum(self.currency.fx_rejected.values()) if self.currency is not None else 0
        ticks = sum(self.read.skipped.values()) + self.pipeline.ticks_rejected
        return ticks + fx + currency + len(self.pipeline.events_failed)

    def notes(self) -> list[str]:
        """Lines about the day files written and the currency variants made, if any."""
        out = [f"next day's files: {folder}" for folder in self.rolled]
        if self.currency is not None:
            fx = self.currency
            out.append(f"currency variants: {fx.levels_out} levels from {fx.fx_applied} FX ticks")
        return out

    def lines(self) -> list[str]:
        """Human-readable summary, one fact a line: read = applied + skipped."""
        p = self.pipeline
        rate = p.ticks_in / self.elapsed_s if self.elapsed_s > 0 else 0.0
        out = [
            f"ticks read {self.read.rows}, applied {p.ticks_applied}, "
            f"skipped {sum(self.read.skipped.values()) + p.ticks_rejected}; "
            f"levels written {p.levels_out}; {self.elapsed_s:.2f} s ({rate:,.0f} ticks/s)"
        ]
        skipped = self.read.skipped + p.rejected
        for reason, count in sorted(skipped.items()):
            detail = ""
            if reason is RejectReason.UNKNOWN_SECURITY:
                top = ", ".join(clip(c) for c, _ in self.read.unknown_codes.most_common(5))
                detail = f" (codes: {top})"
            out.append(f"  skipped {count} {reason.label}{detail}")
        if self.read.bad_volumes:
            out.append(
                f"  {self.read.bad_volumes} ticks with an unusable volume: kept, without volume"
            )
        out.extend(f"  {line}" for line in self.read.log.summary())
        if self.fx is not None:
            out.extend(self._fx_lines(self.fx))
        if self.events_read or p.events_applied or p.events_failed:
            later = " (effective after the last tick)" if self.events_pending else ""
            out.append(
                f"events read {self.events_read}, applied {p.events_applied}, failed "
                f"{len(p.events_failed)}, not reached {self.events_pending}{later}"
            )
            out.extend(f"  failed: {failure}" for failure in p.events_failed)
        return out

    def _fx_lines(self, fx: FxReadStats) -> list[str]:
        """The FX part of the summary: read = applied + skipped, the reader's skips and the
        currency step's rejects counted by reason alike."""
        skipped = fx.skipped + (self.currency.fx_rejected if self.currency else Counter())
        applied = self.currency.fx_applied if self.currency else fx.used
        out = [f"FX rows read {fx.rows}, applied {applied}, skipped {sum(skipped.values())}"]
        for reason, count in sorted(skipped.items()):
            detail = ""
            if reason is FxRejectReason.UNKNOWN_PAIR:
                top = ", ".join(clip(c) for c, _ in fx.unknown_pairs.most_common(5))
                detail = f" (pairs: {top})"
            out.append(f"  skipped {count} {reason.label}{detail}")
        out.extend(f"  {line}" for line in fx.log.summary())
        return out
