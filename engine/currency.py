"""Currency variants: an index also published in another currency (HSI in USD as ``HSI_USD``).

Hang Seng style, prices converted at the current FX rate: level_ccy(t) = FX(t) x
sum(P x IS x FAF x CF) / divisor_ccy, divisor_ccy set so that the level at the previous close is
the variant's previous close. FX is units of the variant currency per unit of the index
currency (``HKDUSD`` ~ 0.1285); every level is computed afresh from the two latest inputs as

    level_ccy(t) = level_base(t) x FX(t) x prev_close_ccy / (prev_close_base x FX_prev_close)

Ordering. A batch's base levels (tick order) and FX ticks are merged by event time with
``np.searchsorted``: a variant level follows every base level of its index (at the latest rate
at or before that time) and every FX tick of its pair (with the latest base level strictly
before it; at equal times FX ticks come first). Each stream's clock is the running maximum of
its timestamps, carried across batches, so no stream is ever reordered. Batches must be cut
consistently in time (``producers.fxfile.CurrencySink`` cuts files so; a live fetch is one
time slice); a late FX tick applies from then on, rewriting nothing.

Ids. Variant k is index id ``len(index_codes) + k`` with its own sequence numbers 1, 2, 3, ...
``security`` is the ticked security of a level its base moved, ``-1 - pair id`` if FX moved it.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
from numpy.typing import NDArray

from engine.columns import LevelColumns

_NEVER = int(np.iinfo(np.int64).min)
_Ints = NDArray[np.intp]
_Floats = NDArray[np.float64]


class FxRejectReason(enum.IntEnum):
    """Why an FX tick was not used; ``label`` is the public name."""

    ACCEPTED = 0
    UNKNOWN_PAIR = 1
    NON_FINITE_RATE = 2
    NON_POSITIVE_RATE = 3
    UNDECODABLE = 4
    BAD_TIMESTAMP = 5

    @property
    def label(self) -> str:
        """Lower-case name used in reports."""
        return self.name.lower()


def normalise_pair(name: str) -> str:
    """Canonical pair name: trimmed, upper case, no slash (``hkd/usd`` -> ``HKDUSD``)."""
    return name.strip().upper().replace("/", "")


@dataclass(frozen=True)
class FxColumns:
    """A batch of FX ticks in event order.

    Attributes
    ----------
    ts_event : ndarray of int64
        Event time, integer nanoseconds since the Unix epoch.
    pair : ndarray of int64
        Pair id (position in ``CurrencyTranslator.pairs``), -1 when unknown.
    rate : ndarray of float64
        Units of the variant currency per unit of the index currency.
    origin : ndarray of int64, optional
        Where each tick came from (file line, position in a fetch), opaque to the engine.
    """

    ts_event: NDArray[np.int64]
    pair: NDArray[np.int64]
    rate: NDArray[np.float64]
    origin: NDArray[np.int64] | None = None

    def __len__(self) -> int:
        return int(self.ts_event.size)

    def take(self, rows: NDArray[np.intp] | NDArray[np.bool_] | slice) -> FxColumns:
        """The ticks selected by an index array, boolean mask or slice, order kept."""
        origin = None if self.origin is None else self.origin[rows]
        return FxColumns(self.ts_event[rows], self.pair[rows], self.rate[rows], origin)

    @staticmethod
    def empty() -> FxColumns:
        """No FX ticks."""
        ints = np.empty(0, dtype=np.int64)
        return FxColumns(ints, ints.copy(), np.empty(0, dtype=np.float64))


def screen_fx(n_pairs: int, pair: NDArray[np.int64], rate: _Floats) -> NDArray[np.uint8]:
    """``FxRejectReason`` per FX tick (0 = accepted); the first failing check wins.

    Parameters
    ----------
    n_pairs : int
        Number of known pairs; valid ids are 0..n_pairs-1.
    pair, rate : ndarray of int64, ndarray of float64
        Pair id and rate per tick.

    Returns
    -------
    ndarray of uint8
    """
    reasons = np.zeros(pair.size, dtype=np.uint8)
    reasons[rate <= 0.0] = FxRejectReason.NON_POSITIVE_RATE
    reasons[~np.isfinite(rate)] = FxRejectReason.NON_FINITE_RATE
    reasons[(pair < 0) | (pair >= n_pairs)] = FxRejectReason.UNKNOWN_PAIR
    return reasons


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
    """A ``CurrencyTranslator`` checkpoint; ``last_base`` moves only for indices with variants."""

    variants: list[str]
    last_fx: list[float]
    last_base: list[float]
    seq: list[int]
    base_clock: int
    fx_clock: int


@dataclass
class CurrencyStats:
    """Running totals: FX ticks in, applied, rejected by reason; variant levels out."""

    fx_in: int = 0
    fx_applied: int = 0
    fx_rejected: Counter[FxRejectReason] = field(default_factory=Counter)
    levels_out: int = 0


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

    Raises
    ------
    ValueError
        A duplicate code, an unknown base index, a bad close, a pair with two ``fx_prev_close``.
    """

    def __init__(
        self,
        variants: Sequence[CurrencyVariant],
        index_codes: Sequence[str],
        prev_close_levels: Sequence[float] | NDArray[np.float64],
    ) -> None:
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
        self._base = np.array([index_ids[v.base_index] for v in variants], dtype=np.intp)
        self._pair = np.array([self._pair_ids[pair] for pair in pairs], dtype=np.intp)
        ratio = [v.prev_close_level / v.fx_prev_close for v in self.variants]
        self._factor = np.array(ratio, dtype=np.float64) / base_prev[self._base]
        self._by_base = _Csr(self._base, len(self.base_codes))
        self._by_pair = _Csr(self._pair, len(self.pairs))
        self._last_fx = np.array(list(fx_prev.values()), dtype=np.float64)
        self._last_base = base_prev.copy()
        self._seq = np.zeros(len(self.variants), dtype=np.int64)
        self._base_clock = self._fx_clock = _NEVER
        self.stats = CurrencyStats()

    @property
    def index_codes(self) -> tuple[str, ...]:
        """Every index code by id: the universe's, then the variants'."""
        return (*self.base_codes, *(v.code for v in self.variants))

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

    def translate(self, base: LevelColumns, fx: FxColumns) -> LevelColumns:
        """Variant levels of one batch, in event-time order.

        Parameters
        ----------
        base : LevelColumns
            The (unconflated) base levels the pipeline published for the batch, tick order.
        fx : FxColumns
            The FX ticks of the same time span; bad ones are counted in ``stats`` and ignored.

        Returns
        -------
        LevelColumns
            Ids ``len(index_codes) + k``; ``security`` as the module docstring describes.
        """
        return self._translate(base, fx)[0]

    def translate_merged(self, base: LevelColumns, fx: FxColumns) -> LevelColumns:
        """``base`` and its variant levels (see ``translate``) as one stream in event-time order.

        A level moved by a base level follows it; one moved by an FX tick precedes the base
        levels at or after the tick's time.
        """
        variants, before = self._translate(base, fx)
        n = len(base) + len(variants)
        at_v = before + np.arange(len(variants))
        at_b = np.arange(len(base)) + np.searchsorted(before, np.arange(len(base)), "right")
        names = ("ts_event", "index", "level", "seq", "security")
        return LevelColumns(
            *(_scatter(n, at_b, getattr(base, c), at_v, getattr(variants, c)) for c in names)
        )

    def _translate(self, base: LevelColumns, fx: FxColumns) -> tuple[LevelColumns, _Ints]:
        """Variant levels and, per level, the number of base rows before it in the merge."""
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
            fx = fx.take(accepted)
        all_clock = np.maximum.accumulate(np.maximum(base.ts_event, self._base_clock))
        f_clock = np.maximum.accumulate(np.maximum(fx.ts_event, self._fx_clock))
        rows = np.flatnonzero(self._by_base.count[base.index] > 0)
        b_index, b_level = base.index[rows].astype(np.intp), base.level[rows]
        b_clock = all_clock[rows]
        f_pair = fx.pair.astype(np.intp)
        fx_before = np.searchsorted(f_clock, b_clock, "right")  # FX ticks at or before a level
        base_before = np.searchsorted(b_clock, f_clock, "left")  # levels strictly before a tick
        b_slot, f_slot = np.arange(rows.size) + fx_before, np.arange(len(fx)) + base_before
        b_count, f_count = self._by_base.count[b_index], self._by_pair.count[f_pair]
        counts = _scatter(rows.size + len(fx), b_slot, b_count, f_slot, f_count)
        first = np.cumsum(counts) - counts
        fx_by_pair, base_by_index = _Latest(f_pair, fx.rate), _Latest(b_index, b_level)
        be, bv, b_at = self._by_base.expand(b_index, first[b_slot])
        b_rate = fx_by_pair.before(self._pair[bv], fx_before[be], self._last_fx)
        fe, fv, f_at = self._by_pair.expand(f_pair, first[f_slot])
        f_base = base_by_index.before(self._base[fv], base_before[fe], self._last_base)
        n = be.size + fe.size
        variant = _scatter(n, b_at, bv, f_at, fv)
        b_value = b_level[be] * b_rate * self._factor[bv]
        level = _scatter(n, b_at, b_value, f_at, f_base * fx.rate[fe] * self._factor[fv])
        ts = _scatter(n, b_at, base.ts_event[rows][be], f_at, fx.ts_event[fe])
        security = _scatter(n, b_at, base.security[rows][be], f_at, -1 - f_pair[fe])
        before = _scatter(n, b_at, rows[be] + 1, f_at, np.searchsorted(all_clock, f_clock)[fe])
        seq = self._next_seq(variant)
        fx_by_pair.commit(self._last_fx)
        base_by_index.commit(self._last_base)
        self._base_clock = int(all_clock[-1]) if all_clock.size else self._base_clock
        self._fx_clock = int(f_clock[-1]) if f_clock.size else self._fx_clock
        self.stats.levels_out += n
        index = (variant + n_index).astype(np.int32)
        return LevelColumns(ts, index, level, seq, security), before

    def _next_seq(self, variant: NDArray[np.intp]) -> NDArray[np.int64]:
        counts = np.bincount(variant, minlength=len(self.variants))
        order = _stable_order(variant)
        starts = np.cumsum(counts) - counts
        seq = np.empty(variant.size, dtype=np.int64)
        seq[order] = np.arange(variant.size) + np.repeat(self._seq + 1 - starts, counts)
        self._seq += counts
        return seq

    def snapshot(self) -> CurrencyState:
        """The state to checkpoint: last rate per pair, last level per index, seq, clocks."""
        codes = [v.code for v in self.variants]
        fx, base, seq = self._last_fx.tolist(), self._last_base.tolist(), self._seq.tolist()
        return CurrencyState(codes, fx, base, seq, self._base_clock, self._fx_clock)

    def restore(self, state: CurrencyState) -> None:
        """Resume from ``snapshot()`` output; raises ValueError when it is another setup's."""
        sizes = (len(state.last_fx), len(state.last_base), len(state.seq))
        expected = (self._last_fx.size, self._last_base.size, self._seq.size)
        if state.variants != [v.code for v in self.variants] or sizes != expected:
            raise ValueError("currency checkpoint does not fit these variants and indices")
        self._last_fx = np.array(state.last_fx, dtype=np.float64)
        self._last_base = np.array(state.last_base, dtype=np.float64)
        self._seq = np.array(state.seq, dtype=np.int64)
        self._base_clock, self._fx_clock = state.base_clock, state.fx_clock


class _Csr:
    """Members (variant ids) per owner (base index or pair), for expanding events into rows."""

    def __init__(self, owner: NDArray[np.intp], n_owners: int) -> None:
        self.members = np.argsort(owner, kind="stable").astype(np.intp)
        self.count = np.bincount(owner, minlength=n_owners).astype(np.int64)
        self.start = np.cumsum(self.count) - self.count

    def expand(self, owner: _Ints, first_row: _Ints) -> tuple[_Ints, _Ints, _Ints]:
        """Per output row: its event, its member and its row (event's first row + rank)."""
        count = self.count[owner]
        event = np.repeat(np.arange(owner.size), count)
        rank = np.arange(event.size) - np.repeat(np.cumsum(count) - count, count)
        member = self.members[np.repeat(self.start[owner], count) + rank]
        return event, member, np.repeat(first_row, count) + rank


def _scatter(n: int, at_a: _Ints, a: NDArray[Any], at_b: _Ints, b: NDArray[Any]) -> NDArray[Any]:
    """An array of ``n`` values: ``a`` at positions ``at_a``, ``b`` at ``at_b``."""
    out = np.empty(n, dtype=np.result_type(a, b))
    out[at_a] = a
    out[at_b] = b
    return out


class _Latest:
    """One stream's events sorted (stably) by group: the latest value of a group at a point."""

    def __init__(self, group: _Ints, value: _Floats) -> None:
        self.group, self.value, self.n = group, value, group.size
        self.order = _stable_order(group)
        self.keys = group[self.order].astype(np.int64) * (self.n + 1) + self.order

    def before(self, query: _Ints, limit: _Ints, carried: _Floats) -> _Floats:
        """Per query: the last value of group ``query`` at a position below ``limit``."""
        at = np.searchsorted(self.keys, query.astype(np.int64) * (self.n + 1) + limit) - 1
        found = at >= 0
        found[found] = self.group[self.order[at[found]]] == query[found]
        out = carried[query]
        out[found] = self.value[self.order[at[found]]]
        return out

    def commit(self, target: _Floats) -> None:
        """``target[g]`` = the last value of group g, for every group of the batch."""
        ordered = self.group[self.order]
        last = np.flatnonzero(np.append(ordered[1:] != ordered[:-1], self.n > 0))
        target[ordered[last]] = self.value[self.order[last]]


def _stable_order(ids: _Ints) -> _Ints:
    """``argsort(ids, kind="stable")``, as a radix sort when the ids fit 16 bits."""
    small = ids.size == 0 or int(ids.max()) < 1 << 16
    return np.argsort(ids.astype(np.uint16) if small else ids, kind="stable")
