"""The analytics panel of the live board: breadth, movers, volatility, pairs, hedges, signals.

``AnalyticsPanel`` is an ``AnalyticsSink``: it keeps the latest ``IndexAnalytics`` per index,
the latest ``PairAnalytics`` per pair and the last few ``SignalEvent``s, and turns them into
lines only when the board is drawn (``lines``), so records cost a dictionary update each and
ticks nothing. Every line fits in ``WIDTH`` columns whatever the codes, names, sentences and
numbers (a line that would not is cut, and then drawn without colour); times are HKT.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime

from engine.analytics.records import (
    AnalyticsRecord,
    HedgeLine,
    IndexAnalytics,
    Mover,
    PairAnalytics,
    SignalEvent,
)
from engine.calendar.sessions import HKT_OFFSET_NS

WIDTH = 80
KEY_INDICES = ("HSI", "HSCEI", "HSTECH", "HSCI_SC")
"""Indices shown when present (else the first ones received)."""
MAX_INDICES = 4
SIGNALS_SHOWN = 3
GREEN = "\x1b[32m"
RED = "\x1b[31m"
RESET = "\x1b[0m"

_CODE = 9
_SECURITY = 9
_PAIR = 16
_LEGS = 15
_NONE = "-"
_KIND_LABEL = {"confirmation": "CONFIRM", "invalidation": "INVALID", "info": "INFO"}

Segment = tuple[str, float]
"""Text and the sign of what it shows: green when positive, red when negative, else plain."""


def hkt_clock(ts_ns: int) -> str:
    """``ts_ns`` as HH:MM:SS Hong Kong time."""
    moment = datetime.fromtimestamp((ts_ns + HKT_OFFSET_NS) // 1_000_000_000, tz=UTC)
    return moment.strftime("%H:%M:%S")


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending in ``~`` when cut."""
    return text if len(text) <= width else text[: width - 1] + "~"


def hk_dollars(amount: float) -> str:
    """A signed amount of HK$ in a few characters: ``+41k``, ``-1.2m``, ``+50m``, ``+3.4bn``."""
    size = abs(amount)
    for scale, unit in ((1e9, "bn"), (1e6, "m"), (1e3, "k")):
        if size >= scale:
            return f"{amount / scale:+.{1 if size < 10 * scale else 0}f}{unit}"
    return f"{amount:+.0f}"


class AnalyticsPanel:
    """The latest analytics records, drawn as lines under the level table.

    Parameters
    ----------
    key_indices : sequence of str
        Index codes shown when their records arrive, in this order.
    max_indices : int
        Most indices shown; when no key index has records, the first received are shown.
    signals : int
        Last signal events shown, newest first.
    """

    def __init__(
        self,
        key_indices: Sequence[str] = KEY_INDICES,
        *,
        max_indices: int = MAX_INDICES,
        signals: int = SIGNALS_SHOWN,
    ) -> None:
        self.key_indices = tuple(key_indices)
        self.max_indices = max_indices
        self.indices: dict[str, IndexAnalytics] = {}
        self.pairs: dict[str, PairAnalytics] = {}
        self.signals: deque[SignalEvent] = deque(maxlen=signals)
        self.records = 0
        self.last_ts: int | None = None

    def write_analytics(self, records: Sequence[AnalyticsRecord]) -> None:
        """Keep the latest of each index and pair and the last signals (``AnalyticsSink``)."""
        for record in records:
            if isinstance(record, IndexAnalytics):
                self.indices[record.index] = record
            elif isinstance(record, PairAnalytics):
                self.pairs[record.pair] = record
            else:
                self.signals.append(record)
            self.last_ts = max(record.ts_event, self.last_ts or record.ts_event)
        self.records += len(records)

    def shown_indices(self) -> list[IndexAnalytics]:
        """The key indices with records, else the first received, at most ``max_indices``."""
        codes = [code for code in self.key_indices if code in self.indices]
        if not codes:
            codes = list(self.indices)
        return [self.indices[code] for code in codes[: self.max_indices]]

    def lines(self, *, colour: bool = False, width: int = WIDTH) -> list[str]:
        """The panel, one string per line, each at most ``width`` columns of text (the board's).

        The panel's lines are laid out for ``WIDTH``; a narrower width cuts them.
        """
        when = "no records yet" if self.last_ts is None else f"at {hkt_clock(self.last_ts)} HKT"
        rows: list[list[Segment]] = [[(f"ANALYTICS {when}", 0.0)]]
        if self.indices:
            header = (
                f"{'INDEX':<{_CODE}} {'UP%':>5} {'UP/DOWN':>9} {'VOL':>6}  "
                f"{'TOP MOVER':<{_SECURITY}} {'PTS':>8}  {'BOTTOM':<{_SECURITY}} {'PTS':>8}"
            )
            rows.append([(header, 0.0)])
            rows.extend(_index_row(record) for record in self.shown_indices())
        for pair in self.pairs.values():
            rows.append(_pair_row(pair))
            rows.append([(_hedge_text(pair.hedge, pair.returns_in_window), 0.0)])
        if self.signals:
            rows.append([("SIGNALS (newest first)", 0.0)])
            rows.extend(_signal_row(event) for event in reversed(self.signals))
        return [_draw(row, colour, min(width, WIDTH)) for row in rows]


def _draw(row: list[Segment], colour: bool, width: int) -> str:
    plain = "".join(text for text, _ in row)
    if not colour or len(plain) > width:
        return fit(plain, width)
    return "".join(
        text if sign == 0 else (GREEN if sign > 0 else RED) + text + RESET for text, sign in row
    )


def _number(value: float | None, spec: str, width: int) -> str:
    return f"{value:{spec}}" if value is not None else f"{_NONE:>{width}}"


def _index_row(record: IndexAnalytics) -> list[Segment]:
    vol = record.vol_session if record.vol_session is not None else record.vol_rolling
    vol_text = f"{100 * vol:>5.1f}%" if vol is not None else f"{_NONE:>6}"
    counts = f"{record.up}/{record.down}"
    return [
        (f"{record.index[:_CODE]:<{_CODE}}", record.change),
        (f" {_number(record.pct_up, '>5.1f', 5)} {counts:>9} {vol_text}  ", 0.0),
        *_mover(record.top),
        ("  ", 0.0),
        *_mover(record.bottom),
    ]


def _mover(movers: list[Mover]) -> list[Segment]:
    if not movers:
        return [(f"{_NONE:<{_SECURITY}} {_NONE:>8}", 0.0)]
    mover = movers[0]
    return [
        (f"{mover.security[:_SECURITY]:<{_SECURITY}} ", 0.0),
        (f"{mover.contribution:>+8.2f}", mover.contribution),
    ]


def _pair_row(pair: PairAnalytics) -> list[Segment]:
    legs = fit(f"{pair.a}/{pair.b}", _LEGS)
    change = pair.rs_change_day
    return [
        (f"{fit(pair.pair, _PAIR):<{_PAIR}} {legs:<{_LEGS}} RS {_number(pair.rs, '>7.2f', 7)} ", 0),
        (_number(change, ">+6.2f", 6), change or 0.0),
        (f"  beta {_number(pair.beta, '>5.2f', 5)}  corr {_number(pair.corr, '>5.2f', 5)}", 0),
    ]


def _hedge_text(hedge: HedgeLine | None, returns: int) -> str:
    if hedge is None:
        return f"  hedge: none (no sleeve notional, or beta from {returns} paired returns)"
    mini = "MHI" if hedge.hedge_index == "HSI" else "mini"
    text = (
        f"  hedge HK$ {hk_dollars(hedge.sleeve_notional)[1:]} sleeve: {hedge.futures:+d} "
        f"{fit(hedge.hedge_index, 10)} {hedge.minis:+d} {mini}  "
        f"resid HK$ {hk_dollars(hedge.residual_notional)}"
    )
    if len(text) > WIDTH:  # absurd contract counts: keep the counts, drop the words
        text = f"  hedge {hedge.futures:+d} fut {hedge.minis:+d} mini"
    return text


def _signal_row(event: SignalEvent) -> list[Segment]:
    kind = _KIND_LABEL.get(event.kind, event.kind[:7].upper())
    head = f"{hkt_clock(event.ts_event)} {kind:<7} {'on ' if event.active else 'off'} "
    sign = 0.0
    if event.active and event.kind != "info":
        sign = 1.0 if event.kind == "confirmation" else -1.0
    sentence = " ".join(event.sentence.split())
    return [(head, sign), (fit(sentence, WIDTH - len(head)), 0.0)]
