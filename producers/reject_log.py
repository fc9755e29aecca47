"""Where the rows a file reader skips are reported: ``FILE:LINE: reason: detail``.

Every skipped row is written to the optional rejects file; the first ``shown`` are kept for the
command's summary and the rest only counted. In strict mode the first row the reader skips is
fatal. Ticks the engine rejects after the reader (``outside_session``...) are reported through
``LineRejects`` by the file line they came from (``TickColumns.origin``), FX ticks the currency
step rejects (``rate_out_of_range``) through ``FxLineRejects`` (``FxColumns.origin``); they never
stop a strict run, as they are not bad rows of the file. Events that fail to apply are reported
by ``report_failed_events`` (``FailedEvent.origin``).

Order. A log may ``hold`` its lines and ``release`` them in line order once no earlier row can
be reported any more: a tick file's lines go out after each batch the engine has processed
(``in_line_order``), an FX file's once the currency step has taken in their rows
(``producers.fxfile.FxFileFeed``). So each file's lines are in line order, the reader's skips
and the engine's rejects together, and the files' lines interleave as the replay reaches them
(unless ``MAX_HELD`` lines wait at once: they go out then, to bound memory).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from operator import itemgetter
from typing import TextIO, TypeVar

import numpy as np
from numpy.typing import NDArray

from engine.calendar.sessions import HKT_OFFSET_NS
from engine.core.errors import InputFileError
from engine.currency.fx_ticks import FxColumns, FxRejectReason
from engine.kernel.columns import TickColumns
from engine.kernel.screening import RejectReason
from engine.maintenance.adjustments import describe
from engine.maintenance.event_queue import FailedEvent

BatchT = TypeVar("BatchT")

SHOWN_REJECTS = 20
MAX_HELD = 65_536
"""Held report lines (``RejectLog.hold``) that go out at once, in line order, to bound memory
(a file of nothing but bad rows yields no batch to release them after)."""
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
        self.counts: Counter[str] = Counter()
        """Rows reported, by reason label."""
        self._held: list[tuple[int, str]] | None = None

    def note(self, line: int, reason: str, detail: str) -> None:
        """Report one skipped row (or raise, when strict).

        Raises
        ------
        InputFileError
            In strict mode, naming file and line.
        """
        if self.strict:
            raise InputFileError(self.path, line, f"{reason}: {detail}")
        self.report(line, reason, detail)

    def report(self, line: int, reason: str, detail: str) -> None:
        """Report one skipped row, strict or not."""
        self.counts[reason] += 1
        text = f"{self.path}:{line}: {reason}: {detail}"
        if self._held is None:
            self._emit(text)
            return
        self._held.append((line, text))
        if len(self._held) >= MAX_HELD:
            self.release()

    def hold(self) -> None:
        """Keep report lines back until ``release``, which sends them on in line order."""
        if self._held is None:
            self._held = []

    def release(self, through: int | None = None) -> None:
        """Send on the held lines of rows up to line ``through`` (all when None), in line
        order; lines of the same row keep the order they were reported in."""
        if not self._held:
            return
        self._held.sort(key=itemgetter(0))
        cut = len(self._held)
        if through is not None:
            cut = bisect_right(self._held, through, key=itemgetter(0))
        ready, self._held = self._held[:cut], self._held[cut:]
        for _, text in ready:
            self._emit(text)

    def _emit(self, text: str) -> None:
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


def in_line_order(batches: Iterable[BatchT], log: RejectLog) -> Iterator[BatchT]:
    """``batches`` with ``log`` held: after each batch is processed (the consumer asks for the
    next) and at the end, the lines so far go out in line order.

    For a reader that reports a batch's rows before yielding it and a consumer (the engine)
    that reports the batch's rejects before asking for the next: every later line is greater.
    """
    log.hold()
    for batch in batches:
        yield batch
        log.release()
    log.release()


def hong_kong_times(ts_ns: NDArray[np.int64]) -> list[str]:
    """Event times as ISO-8601 Hong Kong time (``+08:00``), to the second when whole."""
    local = (ts_ns + HKT_OFFSET_NS).astype("datetime64[ns]")
    text = np.where(
        ts_ns % 1_000_000_000 == 0,
        np.datetime_as_string(local, unit="s"),
        np.datetime_as_string(local, unit="ns"),
    )
    return [f"{stamp}+08:00" for stamp in text.tolist()]


class LineRejects:
    """A pipeline ``RejectSink`` reporting each rejected tick as ``FILE:LINE: reason: detail``.

    The line is the tick's ``origin`` (the tick file readers set it); ticks without one (in
    memory) are only counted, by the pipeline. The detail is the security code and event time.

    Parameters
    ----------
    log : RejectLog
        The tick file's log (``TickFileReader.rejects``).
    security_codes : sequence of str
        Code per security id of the ticks.
    """

    def __init__(self, log: RejectLog, security_codes: Sequence[str]) -> None:
        self.log = log
        self.codes = np.array([*security_codes, "?"], dtype=object)

    def reject(self, ticks: TickColumns, reasons: NDArray[np.uint8]) -> None:
        """Report one batch of rejected ticks."""
        if ticks.origin is None or len(ticks) == 0:
            return
        ids = np.where(
            (ticks.security >= 0) & (ticks.security < self.codes.size - 1), ticks.security, -1
        )
        codes = self.codes[ids].tolist()
        when = hong_kong_times(ticks.ts_event)
        for line, reason, code, at in zip(
            ticks.origin.tolist(), reasons.tolist(), codes, when, strict=True
        ):
            self.log.report(line, RejectReason(reason).label, f"{clip(code)!r} at {at}")


class FxLineRejects:
    """A currency ``FxRejectSink`` reporting each rejected FX tick as ``FILE:LINE: reason:
    detail``, like ``LineRejects`` for ticks.

    The line is the FX tick's ``origin`` (``FxFileReader`` sets it); FX ticks without one are
    only counted, by the translator. The detail is the pair, the event time and the rate.

    Parameters
    ----------
    log : RejectLog
        The FX file's log (``FxFileReader.rejects``).
    pairs : sequence of str
        Pair name per pair id (``CurrencyTranslator.pairs``).
    """

    def __init__(self, log: RejectLog, pairs: Sequence[str]) -> None:
        self.log = log
        self.pairs = np.array([*pairs, "?"], dtype=object)

    def reject(self, fx: FxColumns, reasons: NDArray[np.uint8]) -> None:
        """Report one batch of rejected FX ticks."""
        if fx.origin is None or len(fx) == 0:
            return
        ids = np.where((fx.pair >= 0) & (fx.pair < self.pairs.size - 1), fx.pair, -1)
        pairs = self.pairs[ids].tolist()
        when = hong_kong_times(fx.ts_event)
        for line, reason, pair, at, rate in zip(
            fx.origin.tolist(), reasons.tolist(), pairs, when, fx.rate.tolist(), strict=True
        ):
            detail = f"{clip(pair)!r} at {at}, rate {rate!r}"
            self.log.report(line, FxRejectReason(reason).label, detail)


def report_failed_events(path: str, failed: Sequence[FailedEvent], sink: TextIO | None) -> None:
    """Report each event of the events file ``path`` that failed to apply as ``FILE:LINE:
    event_failed: event at time: error``, in line order (events without a file line are not).
    """
    log = RejectLog(path, sink=sink)
    log.hold()
    for failure in failed:
        if failure.origin is None:
            continue
        where, _, line = failure.origin.source.rpartition(":")
        if not where or not line.isdigit():
            continue
        effective = np.array([failure.event.effective], dtype=np.int64)
        what = f"{describe(failure.event)} at {hong_kong_times(effective)[0]}"
        log.report(int(line), "event_failed", f"{what}: {failure.error}")
    log.release()
