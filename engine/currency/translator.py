"""Currency variants: an index also published in another currency (HSI in USD as ``HSI_USD``).

Hang Seng style, prices converted at the current FX rate: level_ccy(t) = FX(t) x
sum(P x IS x FAF x CF) / divisor_ccy, divisor_ccy set so that the level at the previous close is
the variant's previous close. FX is units of the variant currency per unit of the index
currency (``HKDUSD`` ~ 0.1285); every level is computed afresh from the two latest inputs as

    level_ccy(t) = level_base(t) x FX(t) x prev_close_ccy / (prev_close_base x FX_prev_close)

Ordering. Base levels (tick order) and FX ticks are merged by event time with
``np.searchsorted`` (``engine.currency.merge``): a variant level follows every base level of its
index (at the latest rate at or before that time) and every FX tick of its pair (with the latest
base level strictly before it; at equal times FX ticks come first). Each stream's clock is the
running maximum of its timestamps, carried across batches, so no stream is ever reordered.

Watermarks. A stream's watermark is its clock, or +infinity once the caller says the stream is
caught up (nothing more to read for now; offline, always). Only the part of the merge that no
later input can change is released: FX ticks with clocks at or before the base watermark, base
levels with clocks strictly before the FX watermark (a later FX tick at the same time would
come first), i.e. event times up to W = min(both watermarks). The rest waits in the translator
(and its checkpoints) for a later batch, so any cutting of the two streams into batches gives
the merge of the whole streams. At most one stream has rows waiting (the one running ahead).
With both streams caught up, as offline, nothing waits; a late FX tick arriving after that
applies from then on, rewriting nothing.

Ids. Variant k is index id ``len(index_codes) + k`` with its own sequence numbers 1, 2, 3, ...
``security`` is the ticked security of a level its base moved, ``-1 - pair id`` if FX moved it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec
import numpy as np
from numpy.typing import NDArray

from engine.currency.fx_ticks import (
    MAX_RATE,
    MIN_RATE,
    FxColumns,
    FxRejectReason,
    FxRejectSink,
    normalise_pair,
    screen_fx,
)
from engine.currency.merge import (
    BaseRows,
    FxRows,
    PendingBase,
    PendingFx,
    VariantMerger,
    scatter,
)
from engine.kernel.columns import LevelColumns

__all__ = [
    "MAX_RATE",
    "MIN_RATE",
    "CurrencyState",
    "CurrencyStats",
    "CurrencyTranslator",
    "CurrencyVariant",
    "FxColumns",
    "FxRejectReason",
    "FxRejectSink",
    "normalise_pair",
    "screen_fx",
]

_NEVER = int(np.iinfo(np.int64).min)


@dataclass(frozen=True)
class CurrencyVariant:
    """One index published in another currency.

    Attributes
    ----------
    code, base_index, currency : str
        The variant's code (``HSI_USD``), the index it converts (``HSI``), its currency.
    fx_pair : str
        Pair quoting the variant currency per unit of the index currency (``HKDUSD``).
    prev_close_level, fx_prev_close : float
        The variant's previous close and the rate it was fixed with.
    """

    code: str
    base_index: str
    currency: str
    fx_pair: str
    prev_close_level: float
    fx_prev_close: float


class CurrencyState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A ``CurrencyTranslator`` checkpoint; ``last_base`` moves only for indices with variants.

    ``base_clock`` and ``fx_clock`` are the streams' watermarks; ``pending_base`` and
    ``pending_fx`` the rows waiting for the other stream (None when none wait).
    """

    variants: list[str]
    last_fx: list[float]
    last_base: list[float]
    seq: list[int]
    base_clock: int
    fx_clock: int
    pending_base: PendingBase | None = None
    pending_fx: PendingFx | None = None


@dataclass
class CurrencyStats:
    """Running totals: FX ticks in, applied, rejected by reason; variant levels out, and those
    withheld as NaN or infinite by variant code."""

    fx_in: int = 0
    fx_applied: int = 0
    fx_rejected: Counter[FxRejectReason] = field(default_factory=Counter)
    levels_out: int = 0
    nonfinite_levels: Counter[str] = field(default_factory=Counter)


class CurrencyTranslator:
    """Turns base levels and FX ticks into currency variant levels, batch by batch.

    Parameters
    ----------
    variants : sequence of CurrencyVariant
        The variants; variant k gets index id ``len(index_codes) + k``.
    index_codes : sequence of str
        The universe's index codes in id order (``Universe.index_codes``).
    prev_close_levels : sequence of float
        The base indices' previous closes by id: the base levels until levels arrive (rates
        likewise start at ``fx_prev_close``).
    rejects : FxRejectSink, optional
        Receives the FX ticks it rejects with their reasons; they are always counted in
        ``stats``.

    Raises
    ------
    ValueError
        A duplicate code, an unknown base index, a bad close, a pair with two ``fx_prev_close``.

    Notes
    -----
    Rows waiting for the other stream (module docstring) take 40 bytes each (a base level of
    an index with variants, or an accepted FX tick) and about 30 in a MessagePack checkpoint;
    ``pending`` counts them so a caller can stop reading the stream that runs ahead.
    """

    def __init__(
        self,
        variants: Sequence[CurrencyVariant],
        index_codes: Sequence[str],
        prev_close_levels: Sequence[float] | NDArray[np.float64],
        *,
        rejects: FxRejectSink | None = None,
    ) -> None:
        self.rejects = rejects
        self.base_codes = tuple(index_codes)
        self.variants = tuple(variants)
        base_prev = np.asarray(prev_close_levels, dtype=np.float64)
        if base_prev.shape != (len(self.base_codes),):
            raise ValueError("one previous close per index code is needed")
        index_ids = {code: i for i, code in enumerate(self.base_codes)}
        codes = set(index_ids)
        fx_prev: dict[str, float] = {}
        pairs = [normalise_pair(v.fx_pair) for v in self.variants]
        for v, pair in zip(self.variants, pairs, strict=True):
            if v.code in codes:
                raise ValueError(f"variant code {v.code} is already used")
            codes.add(v.code)
            if v.base_index not in index_ids:
                raise ValueError(f"variant {v.code}: unknown base index {v.base_index}")
            if not all(math.isfinite(x) and x > 0 for x in (v.prev_close_level, v.fx_prev_close)):
                raise ValueError(f"variant {v.code}: closes must be finite and positive")
            if fx_prev.setdefault(pair, v.fx_prev_close) != v.fx_prev_close:
                raise ValueError(f"variants disagree on fx_prev_close of {pair}")
        self.pairs = tuple(fx_prev)
        self._pair_ids = {pair: i for i, pair in enumerate(self.pairs)}
        base = np.array([index_ids[v.base_index] for v in variants], dtype=np.intp)
        ratio = [v.prev_close_level / v.fx_prev_close for v in self.variants]
        self._merger = VariantMerger(
            base,
            np.array([self._pair_ids[pair] for pair in pairs], dtype=np.intp),
            np.array(ratio, dtype=np.float64) / base_prev[base],
            np.array(list(fx_prev.values()), dtype=np.float64),
            base_prev.copy(),
        )
        self._base_clock = self._fx_clock = _NEVER
        self._pending_base, self._pending_fx = BaseRows.empty(), FxRows.empty()
        self.stats = CurrencyStats()
        self._reported = np.zeros(len(self.variants), dtype=np.int64)

    @property
    def index_codes(self) -> tuple[str, ...]:
        """Every index code by id: the universe's, then the variants'."""
        return (*self.base_codes, *(v.code for v in self.variants))

    @property
    def pending(self) -> tuple[int, int]:
        """(base levels, FX ticks) waiting for the other stream's watermark."""
        return len(self._pending_base), len(self._pending_fx)

    def pair_ids(self, names: Sequence[str]) -> NDArray[np.int64]:
        """Pair id per name (``normalise_pair`` applied), -1 for pairs no variant uses."""
        distinct, inverse = np.unique(np.asarray(names, dtype=str), return_inverse=True)
        ids = [self._pair_ids.get(normalise_pair(str(n)), -1) for n in distinct]
        return np.array(ids, dtype=np.int64)[inverse.reshape(-1)]

    def level_security_codes(self, securities: Sequence[str]) -> tuple[str, ...]:
        """Codes to index ``LevelColumns.security`` of base and variant levels with.

        The universe's ``securities`` then the pair names reversed: ``-1 - pair`` finds a pair.
        """
        return (*securities, *reversed(self.pairs))

    def translate(
        self,
        base: LevelColumns,
        fx: FxColumns,
        *,
        base_caught_up: bool = True,
        fx_caught_up: bool = True,
    ) -> LevelColumns:
        """Variant levels released by one batch, in event-time order.

        Parameters
        ----------
        base : LevelColumns
            The (unconflated) base levels the pipeline published for the batch, tick order.
        fx : FxColumns
            The batch's FX ticks; bad ones are counted in ``stats`` and ignored.
        base_caught_up, fx_caught_up : bool
            Whether the stream has nothing more to read for now: its watermark is then
            +infinity instead of its clock. Both true (offline) releases everything.

        Returns
        -------
        LevelColumns
            Ids ``len(index_codes) + k``; ``security`` as the module docstring describes. Levels
            of inputs held back by a previous call come first.
        """
        self._take_in(base, fx)
        return self._release(base_caught_up, fx_caught_up)[0]

    def take_nonfinite(self) -> Counter[str]:
        """Variant levels withheld as NaN or infinite since the last call, by variant code."""
        withheld = self._withheld_since(self._reported)
        self._reported = self._merger.nonfinite_levels.copy()
        return withheld

    def _withheld_since(self, before: NDArray[np.int64]) -> Counter[str]:
        counts = (self._merger.nonfinite_levels - before).tolist()
        return Counter({v.code: n for v, n in zip(self.variants, counts, strict=True) if n})

    def releasable(self, *, base_caught_up: bool, fx_caught_up: bool) -> bool:
        """Whether ``translate`` of nothing would release levels under these flags now."""
        base, fx = self.pending
        return bool((base_caught_up and fx) or (fx_caught_up and base))

    def translate_merged(self, base: LevelColumns, fx: FxColumns) -> LevelColumns:
        """``base`` and its variant levels (``translate``, both streams caught up) merged.

        A level moved by a base level follows it; one moved by an FX tick precedes the base
        levels at or after the tick's time; levels of inputs held back before come first.
        """
        held = len(self._pending_base)
        rows, clock = self._take_in(base, fx)
        variants, source, released_fx = self._release(True, True)
        position = np.concatenate([np.full(held, -1, np.intp), rows]) if held else rows
        fx_before = np.searchsorted(clock, released_fx.clock, "left")  # batch levels before
        before = np.concatenate([position + 1, fx_before])[source]
        n = len(base) + len(variants)
        at_v = before + np.arange(len(variants))
        at_b = np.arange(len(base)) + np.searchsorted(before, np.arange(len(base)), "right")
        names = ("ts_event", "index", "level", "seq", "security")
        return LevelColumns(
            *(scatter(n, at_b, getattr(base, c), at_v, getattr(variants, c)) for c in names)
        )

    def _take_in(
        self, base: LevelColumns, fx: FxColumns
    ) -> tuple[NDArray[np.intp], NDArray[np.int64]]:
        """Queue a batch behind the pending rows; its rows with variants and its base clock."""
        n_index = len(self.base_codes)
        if len(base) and (int(base.index.min()) < 0 or int(base.index.max()) >= n_index):
            raise ValueError("base levels must belong to the universe's indices")
        reasons = screen_fx(len(self.pairs), fx.pair, fx.rate)
        accepted = reasons == FxRejectReason.ACCEPTED
        self.stats.fx_in += len(fx)
        self.stats.fx_applied += int(accepted.sum())
        if not accepted.all():
            counts = np.bincount(reasons, minlength=len(FxRejectReason)).tolist()
            self.stats.fx_rejected.update(
                {FxRejectReason(r): c for r, c in enumerate(counts) if r and c}
            )
            if self.rejects is not None:
                self.rejects.reject(fx.take(~accepted), reasons[~accepted])
            fx = fx.take(accepted)
        clock = np.maximum.accumulate(np.maximum(base.ts_event, self._base_clock))
        f_clock = np.maximum.accumulate(np.maximum(fx.ts_event, self._fx_clock))
        rows = np.flatnonzero(self._merger.by_base.count[base.index] > 0)
        at = base.index[rows].astype(np.intp)
        new_base = BaseRows(
            clock[rows], base.ts_event[rows], at, base.level[rows], base.security[rows]
        )
        new_fx = FxRows(f_clock, fx.ts_event, fx.pair.astype(np.intp), fx.rate)
        self._pending_base = self._pending_base.then(new_base)
        self._pending_fx = self._pending_fx.then(new_fx)
        self._base_clock = int(clock[-1]) if clock.size else self._base_clock
        self._fx_clock = int(f_clock[-1]) if f_clock.size else self._fx_clock
        return rows, clock

    def _release(
        self, base_caught_up: bool, fx_caught_up: bool
    ) -> tuple[LevelColumns, NDArray[np.intp], FxRows]:
        """Merge what the watermarks allow: variant levels, their sources, the FX ticks used."""
        fx_mark = None if fx_caught_up else self._fx_clock  # base levels wait at or after it
        base_mark = None if base_caught_up else self._base_clock  # FX ticks wait after it
        b, self._pending_base = self._pending_base.split(fx_mark, "left")
        f, self._pending_fx = self._pending_fx.split(base_mark, "right")
        levels, source = self._merger.merge(b, f)
        self.stats.levels_out += len(levels)
        if self._merger.nonfinite_levels.any():
            self.stats.nonfinite_levels = self._withheld_since(np.zeros_like(self._reported))
        return levels, source, f

    def snapshot(self) -> CurrencyState:
        """The state to checkpoint: rates, levels, seq, watermarks and the pending rows."""
        m, b, f = self._merger, self._pending_base, self._pending_fx
        return CurrencyState(
            [v.code for v in self.variants],
            m.last_fx.tolist(),
            m.last_base.tolist(),
            m.seq.tolist(),
            self._base_clock,
            self._fx_clock,
            PendingBase(*b.lists()) if len(b) else None,
            PendingFx(*f.lists()) if len(f) else None,
        )

    def restore(self, state: CurrencyState) -> None:
        """Resume from ``snapshot()`` output; raises ValueError when it is another setup's."""
        m = self._merger
        sizes = (len(state.last_fx), len(state.last_base), len(state.seq))
        expected = (m.last_fx.size, m.last_base.size, m.seq.size)
        if state.variants != [v.code for v in self.variants] or sizes != expected:
            raise ValueError("currency checkpoint does not fit these variants and indices")
        base = BaseRows.from_state(state.pending_base, m.last_base.size)
        fx = FxRows.from_state(state.pending_fx, m.last_fx.size)
        m.last_fx[:] = state.last_fx
        m.last_base[:] = state.last_base
        m.seq[:] = state.seq
        self._base_clock, self._fx_clock = state.base_clock, state.fx_clock
        self._pending_base, self._pending_fx = base, fx
