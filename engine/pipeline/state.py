"""Engine state checkpoints: everything needed to resume exactly where a run stopped."""

from __future__ import annotations

from collections.abc import Sized

import msgspec
import numpy as np

from engine.analytics.state import AnalyticsState
from engine.core.errors import TickIndexError
from engine.currency.translator import CurrencyState, CurrencyTranslator
from engine.kernel.columns import LevelColumns
from engine.kernel.conflation import HeldRows
from engine.maintenance.event_queue import PendingEvent
from engine.maintenance.events import IndexEvent
from engine.pipeline.chain import IndexPipeline
from engine.refdata.universe import Membership, build_universe

STATE_VERSION = 7


class StateMismatchError(TickIndexError):
    """A checkpoint was taken on other reference data than the one loaded now."""


class DeclaredRows(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The declared composition (price indices) after maintenance events, as columns."""

    index: list[int]
    security: list[int]
    issued_shares: list[float]
    faf: list[float]
    cap_factor: list[float]


class HeldLevels(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Levels the live service's publication policy holds back (conflation), as columns.

    Each row is a level with the count of levels it stands for; ``clock`` is the conflation's
    event-time clock.
    """

    ts_event: list[int]
    index: list[int]
    level: list[float]
    seq: list[int]
    security: list[int]
    count: list[int]
    clock: int

    @classmethod
    def of(cls, held: HeldRows) -> HeldLevels:
        """The checkpoint form of a conflator's held rows."""
        rows = held.levels
        count = rows.count if rows.count is not None else np.ones(len(rows), dtype=np.int64)
        return cls(
            rows.ts_event.tolist(),
            rows.index.tolist(),
            rows.level.tolist(),
            rows.seq.tolist(),
            rows.security.tolist(),
            count.tolist(),
            held.clock,
        )

    def rows(self, n_indices: int) -> HeldRows:
        """The held rows again, for ``Conflator.restore``.

        Raises
        ------
        StateMismatchError
            When the columns differ in length or name an index beyond ``n_indices``.
        """
        columns = (self.ts_event, self.index, self.level, self.seq, self.security, self.count)
        if len({len(column) for column in columns}) > 1 or not all(
            0 <= i < n_indices for i in self.index
        ):
            raise StateMismatchError(
                f"corrupt checkpoint: held levels do not fit {n_indices} published indices"
            )
        levels = LevelColumns(
            np.array(self.ts_event, dtype=np.int64),
            np.array(self.index, dtype=np.int32),
            np.array(self.level, dtype=np.float64),
            np.array(self.seq, dtype=np.int64),
            np.array(self.security, dtype=np.int64),
            np.array(self.count, dtype=np.int64),
        )
        return HeldRows(levels, self.clock)


class EngineState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A checkpoint of the engine, serialisable with msgspec (MessagePack keeps floats exact).

    Attributes
    ----------
    universe_fingerprint : str
        Which reference files the run started from (``Universe.fingerprint()`` of them).
    prices : list of float
        Last price per security id (NaN: not priced yet).
    divisors : list of float
        Divisor per index id.
    index_seq : list of int
        Last published sequence number per index id.
    last_tick_seq : list of int
        Highest tick sequence number seen per security id (-1 for none).
    offsets : dict of str to int
        Next input offset per ``topic:partition`` (filled by the live service).
    ts_checkpoint : int
        Wall-clock nanoseconds when the checkpoint was taken.
    securities : list of str
        Every security code by id, including those events appended.
    declared : DeclaredRows or None
        The composition after maintenance events; None while it is the files' one.
    pending_events : list of IndexEvent
        Events received but not effective yet, as version 3 stored them (restored, never
        written now).
    levels, peaks : list of float
        Running level per index and its peak since the last exact recompute; restoring them
        makes the resumed run publish bitwise the levels an uninterrupted run would.
    computed : list of int
        Levels computed per index, withheld ones included: the exact recomputes follow it
        (empty in checkpoints before version 5: ``index_seq``).
    last_good : list of float
        Last finite level per index, published while levels are withheld (empty before
        version 5: the restored levels).
    currency : CurrencyState or None
        The currency variants' translator (last rates and base levels, variant seq, clocks,
        inputs waiting for the other stream's watermark); None when the run has no variants.
    pending : list of PendingEvent
        Events received but not effective yet with their origins, each an array (no field
        names); their number and size are bounded by the service (``EventLimits``).
    clock_ns : int or None
        Event time of the last tick applied (the reference of the late-event tolerance).
    publication : HeldLevels or None
        The levels the live service's publication policy holds back (version 6); None
        without conflation.
    analytics : AnalyticsState or None
        The analytics' trackers and schedule (version 7, ``AnalyticsEngine.capture``); None
        without analytics.
    version : int
        Format version of this structure.
    """

    universe_fingerprint: str
    prices: list[float]
    divisors: list[float]
    index_seq: list[int]
    last_tick_seq: list[int]
    offsets: dict[str, int] = {}
    ts_checkpoint: int = 0
    securities: list[str] = []
    declared: DeclaredRows | None = None
    pending_events: list[IndexEvent] = []
    levels: list[float] = []
    peaks: list[float] = []
    computed: list[int] = []
    last_good: list[float] = []
    currency: CurrencyState | None = None
    pending: list[PendingEvent] = []
    clock_ns: int | None = None
    publication: HeldLevels | None = None
    analytics: AnalyticsState | None = None
    version: int = STATE_VERSION


def capture_state(
    pipeline: IndexPipeline,
    base_fingerprint: str,
    offsets: dict[str, int] | None = None,
    ts_checkpoint: int = 0,
    currency: CurrencyTranslator | None = None,
    *,
    held: HeldRows | None = None,
    analytics: AnalyticsState | None = None,
) -> EngineState:
    """Snapshot of a pipeline: calculator state, sequence guard, composition, pending events.

    Parameters
    ----------
    pipeline : IndexPipeline
        The running pipeline.
    base_fingerprint : str
        Fingerprint of the universe loaded from the reference files at start.
    offsets : dict, optional
        Next input offsets to store with the state.
    ts_checkpoint : int
        Wall-clock time of the snapshot, ns.
    currency : CurrencyTranslator, optional
        The currency variants' translator, snapshotted along.
    held : HeldRows, optional
        The levels the publication policy holds back.
    analytics : AnalyticsState, optional
        The analytics' captured state, stored as it is.
    """
    calculator = pipeline.calculator
    universe = calculator.universe
    computed, last_good = calculator.resume_state()
    declared = None
    if universe.fingerprint() != base_fingerprint:
        m = universe.declared
        declared = DeclaredRows(
            m.index.tolist(),
            m.security.tolist(),
            m.issued_shares.tolist(),
            m.faf.tolist(),
            m.cap_factor.tolist(),
        )
    return EngineState(
        universe_fingerprint=base_fingerprint,
        prices=calculator.prices.tolist(),
        divisors=calculator.divisors.tolist(),
        index_seq=calculator.seq.tolist(),
        last_tick_seq=pipeline.sequence_guard.last_seq.tolist(),
        offsets=dict(offsets or {}),
        ts_checkpoint=ts_checkpoint,
        securities=list(universe.securities),
        declared=declared,
        pending=list(pipeline.pending),
        clock_ns=pipeline.clock_ns,
        levels=calculator.levels.tolist(),
        peaks=calculator.peaks.tolist(),
        computed=computed.tolist(),
        last_good=last_good.tolist(),
        currency=None if currency is None else currency.snapshot(),
        publication=None if held is None else HeldLevels.of(held),
        analytics=analytics,
    )


def restore_state(pipeline: IndexPipeline, state: EngineState) -> None:
    """Put a snapshot back into a pipeline freshly built on the same reference files.

    Raises
    ------
    StateMismatchError
        When the snapshot was taken on different reference files, or its sizes do not fit
        them (a corrupt checkpoint); nothing is changed then.
    """
    calculator = pipeline.calculator
    universe = calculator.universe
    expected = universe.fingerprint()
    if state.universe_fingerprint != expected:
        raise StateMismatchError(
            f"checkpoint belongs to reference data {state.universe_fingerprint[:12]}, "
            f"loaded reference data is {expected[:12]}"
        )
    _check_sizes(state, universe.securities, len(universe.indices))
    prices = np.array(state.prices, dtype=np.float64)
    divisors = np.array(state.divisors, dtype=np.float64)
    grown = universe.with_securities(state.securities[universe.n_securities :])
    if state.declared is not None:
        d = state.declared
        declared = Membership(
            np.array(d.index, dtype=np.int32),
            np.array(d.security, dtype=np.int32),
            np.array(d.issued_shares),
            np.array(d.faf),
            np.array(d.cap_factor),
        )
        grown = build_universe(grown.indices, grown.securities, prices.copy(), declared)
    calculator.rebase(grown, prices, divisors)
    calculator.restore(
        prices=prices,
        divisors=divisors,
        seq=np.array(state.index_seq),
        levels=np.array(state.levels) if state.levels else None,
        peaks=np.array(state.peaks) if state.peaks else None,
        computed=np.array(state.computed, dtype=np.int64) if state.computed else None,
        last_good=np.array(state.last_good) if state.last_good else None,
    )
    guard = pipeline.sequence_guard
    guard.last_seq = np.array(state.last_tick_seq, dtype=np.int64)
    pipeline.schedule(state.pending_events)
    pipeline.schedule(state.pending)
    pipeline.clock_ns = state.clock_ns


def _check_sizes(state: EngineState, securities: tuple[str, ...], n_indices: int) -> None:
    """Refuse a checkpoint whose arrays do not fit the universe, before anything changes."""
    codes = tuple(state.securities) or securities
    problems = [] if codes[: len(securities)] == securities else ["securities"]
    required: dict[str, tuple[Sized, int]] = {
        "prices": (state.prices, len(codes)),
        "last_tick_seq": (state.last_tick_seq, len(codes)),
        "divisors": (state.divisors, n_indices),
        "index_seq": (state.index_seq, n_indices),
    }
    problems += [name for name, (values, n) in required.items() if len(values) != n]
    # Empty in checkpoints of earlier versions: restored from defaults.
    optional: dict[str, Sized] = {
        "levels": state.levels,
        "peaks": state.peaks,
        "computed": state.computed,
        "last_good": state.last_good,
    }
    problems += [name for name, values in optional.items() if len(values) not in {0, n_indices}]
    if problems:
        raise StateMismatchError(
            f"corrupt checkpoint: {', '.join(problems)} do not fit {len(securities)} "
            f"securities of the reference data ({len(codes)} in the checkpoint) and "
            f"{n_indices} indices"
        )


def restore_currency(translator: CurrencyTranslator, state: EngineState) -> bool:
    """Put a snapshot's currency state back into a translator freshly built on the same variants.

    Parameters
    ----------
    translator : CurrencyTranslator
        Built from the variants file and the universe, as when the snapshot was taken.
    state : EngineState
        The snapshot.

    Returns
    -------
    bool
        False when the snapshot has no currency state (the variants start from their previous
        closes), True when it was restored.

    Raises
    ------
    StateMismatchError
        When the snapshot's variants are not the translator's (codes or sizes differ).
    """
    if state.currency is None:
        return False
    try:
        translator.restore(state.currency)
    except ValueError as exc:
        raise StateMismatchError(
            f"{exc}: checkpoint has variants {state.currency.variants}, "
            f"configured are {[v.code for v in translator.variants]}"
        ) from exc
    return True
