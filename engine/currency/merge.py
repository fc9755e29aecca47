"""The event-time merge behind ``engine.currency.translator.CurrencyTranslator``, vectorised.

Every row carries its stream's clock, the running maximum of the stream's timestamps. A base
row follows every FX tick whose clock is at or before its own, an FX tick follows every base row
whose clock is strictly before its own (at equal clocks FX comes first); within a stream the
order is kept. ``VariantMerger.merge`` places both streams with ``np.searchsorted`` and expands
each event into the variant levels it moves. Rows the translator holds back until the other
stream has caught up wait as ``BaseRows`` / ``FxRows``, in checkpoints as ``PendingBase`` /
``PendingFx``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

import msgspec
import numpy as np
from numpy.typing import NDArray

from engine.kernel.columns import LevelColumns
from engine.kernel.ordering import stable_order

_Ints = NDArray[np.intp]
_Floats = NDArray[np.float64]
_Times = NDArray[np.int64]


class PendingBase(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Checkpointed ``BaseRows``: base levels (of indices with variants) not merged yet."""

    clock: list[int]
    ts_event: list[int]
    index: list[int]
    level: list[float]
    security: list[int]


class PendingFx(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Checkpointed ``FxRows``: accepted FX ticks not merged yet."""

    clock: list[int]
    ts_event: list[int]
    pair: list[int]
    rate: list[float]


class _Rows:
    """Parallel columns of one stream, in stream order; the first two are clock and ts_event."""

    dtypes: ClassVar[tuple[type[np.generic], ...]]

    def __init__(self, *columns: NDArray[Any]) -> None:
        if len(columns) != len(self.dtypes) or len({c.size for c in columns}) > 1:
            raise ValueError(f"{type(self).__name__} needs {len(self.dtypes)} equal columns")
        self.columns = columns

    @classmethod
    def empty(cls) -> Self:
        """No rows."""
        return cls(*(np.empty(0, dtype=d) for d in cls.dtypes))

    @classmethod
    def from_state(cls, state: PendingBase | PendingFx | None, n_ids: int) -> Self:
        """Rows from a checkpoint (None: none); ValueError when they do not fit ``n_ids``.

        ``n_ids`` is the number of base indices (``BaseRows``) or pairs (``FxRows``).
        """
        if state is None:
            return cls.empty()
        columns = msgspec.structs.astuple(state)
        rows = cls(*(np.array(c, dtype=d) for c, d in zip(columns, cls.dtypes, strict=True)))
        ids = rows.columns[2]
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= n_ids):
            raise ValueError(f"{cls.__name__} of a checkpoint refer to unknown ids")
        return rows

    def lists(self) -> list[list[Any]]:
        """The columns as lists, for a checkpoint."""
        return [column.tolist() for column in self.columns]

    def __len__(self) -> int:
        return int(self.columns[0].size)

    @property
    def clock(self) -> _Times:
        """The stream's clock at each row (non-decreasing)."""
        return self.columns[0]

    @property
    def ts_event(self) -> _Times:
        """Event time of each row, ns."""
        return self.columns[1]

    def then(self, later: Self) -> Self:
        """These rows followed by ``later``."""
        if not len(later) or not len(self):
            return self if len(self) else later
        return type(self)(
            *(np.concatenate(p) for p in zip(self.columns, later.columns, strict=True))
        )

    def split(self, until: int | None, side: Literal["left", "right"]) -> tuple[Self, Self]:
        """Rows with clocks before ``until`` (``np.searchsorted`` side; None: all), the rest."""
        at = len(self) if until is None else int(np.searchsorted(self.clock, until, side))
        cls = type(self)
        return cls(*(c[:at] for c in self.columns)), cls(*(c[at:] for c in self.columns))


class BaseRows(_Rows):
    """Base levels of indices with variants: clock, ts_event, index, level, security."""

    dtypes = (np.int64, np.int64, np.intp, np.float64, np.int64)

    @property
    def index(self) -> _Ints:
        """Base index id."""
        return self.columns[2]

    @property
    def level(self) -> _Floats:
        """Base level."""
        return self.columns[3]

    @property
    def security(self) -> _Times:
        """Security id of the tick that moved the level."""
        return self.columns[4]


class FxRows(_Rows):
    """Accepted FX ticks: clock, ts_event, pair, rate."""

    dtypes = (np.int64, np.int64, np.intp, np.float64)

    @property
    def pair(self) -> _Ints:
        """Pair id."""
        return self.columns[2]

    @property
    def rate(self) -> _Floats:
        """Units of the variant currency per unit of the index currency."""
        return self.columns[3]


class VariantMerger:
    """Variant levels of merged base rows and FX ticks; carries last values and seq.

    A variant level that comes out NaN or infinite is withheld (counted in
    ``nonfinite_levels`` per variant, no sequence number used).

    Parameters
    ----------
    base, pair : ndarray of intp
        Base index id and pair id per variant.
    factor : ndarray of float64
        ``prev_close_ccy / (fx_prev_close x prev_close_base)`` per variant.
    last_fx, last_base : ndarray of float64
        Rate per pair and level per base index before the first merge (updated in place);
        variant k gets index id ``last_base.size + k``.
    """

    def __init__(
        self, base: _Ints, pair: _Ints, factor: _Floats, last_fx: _Floats, last_base: _Floats
    ) -> None:
        self.base, self.pair, self.factor = base, pair, factor
        self.by_base = _Csr(base, last_base.size)
        self.by_pair = _Csr(pair, last_fx.size)
        self.last_fx, self.last_base = last_fx, last_base
        self.seq = np.zeros(base.size, dtype=np.int64)
        self.id_offset = last_base.size
        self.nonfinite_levels = np.zeros(base.size, dtype=np.int64)

    def merge(self, b: BaseRows, f: FxRows) -> tuple[LevelColumns, _Ints]:
        """Variant levels of ``b`` and ``f`` merged, and per level its event.

        Returns
        -------
        levels : LevelColumns
            In merge order, ids ``id_offset + variant``.
        source : ndarray of intp
            Per level its event: k for base row k, ``len(b) + k`` for FX tick k.
        """
        fx_before = np.searchsorted(f.clock, b.clock, "right")  # FX ticks at or before a level
        base_before = np.searchsorted(b.clock, f.clock, "left")  # levels strictly before a tick
        b_slot, f_slot = np.arange(len(b)) + fx_before, np.arange(len(f)) + base_before
        b_count, f_count = self.by_base.count[b.index], self.by_pair.count[f.pair]
        counts = scatter(len(b) + len(f), b_slot, b_count, f_slot, f_count)
        first = np.cumsum(counts) - counts
        fx_by_pair, base_by_index = _Latest(f.pair, f.rate), _Latest(b.index, b.level)
        be, bv, b_at = self.by_base.expand(b.index, first[b_slot])
        b_rate = fx_by_pair.before(self.pair[bv], fx_before[be], self.last_fx)
        fe, fv, f_at = self.by_pair.expand(f.pair, first[f_slot])
        f_base = base_by_index.before(self.base[fv], base_before[fe], self.last_base)
        n = be.size + fe.size
        variant = scatter(n, b_at, bv, f_at, fv)
        b_value = b.level[be] * b_rate * self.factor[bv]
        level = scatter(n, b_at, b_value, f_at, f_base * f.rate[fe] * self.factor[fv])
        ts = scatter(n, b_at, b.ts_event[be], f_at, f.ts_event[fe])
        security = scatter(n, b_at, b.security[be], f_at, -1 - f.pair[fe])
        source = scatter(n, b_at, be, f_at, fe + len(b))
        finite = np.isfinite(level)
        if not finite.all():  # withheld: no level of any index is ever NaN or infinite
            self.nonfinite_levels += np.bincount(variant[~finite], minlength=self.seq.size)
            variant, level, ts, security, source = (
                column[finite] for column in (variant, level, ts, security, source)
            )
        seq = self._next_seq(variant)
        fx_by_pair.commit(self.last_fx)
        base_by_index.commit(self.last_base)
        index = (variant + self.id_offset).astype(np.int32)
        return LevelColumns(ts, index, level, seq, security), source

    def _next_seq(self, variant: _Ints) -> _Times:
        counts = np.bincount(variant, minlength=self.seq.size)
        order = stable_order(variant)
        starts = np.cumsum(counts) - counts
        seq = np.empty(variant.size, dtype=np.int64)
        seq[order] = np.arange(variant.size) + np.repeat(self.seq + 1 - starts, counts)
        self.seq += counts
        return seq


class _Csr:
    """Members (variant ids) per owner (base index or pair), for expanding events into rows."""

    def __init__(self, owner: _Ints, n_owners: int) -> None:
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


def scatter(n: int, at_a: _Ints, a: NDArray[Any], at_b: _Ints, b: NDArray[Any]) -> NDArray[Any]:
    """An array of ``n`` values: ``a`` at positions ``at_a``, ``b`` at ``at_b``."""
    out = np.empty(n, dtype=np.result_type(a, b))
    out[at_a] = a
    out[at_b] = b
    return out


class _Latest:
    """One stream's events sorted (stably) by group: the latest value of a group at a point."""

    def __init__(self, group: _Ints, value: _Floats) -> None:
        self.group, self.value, self.n = group, value, group.size
        self.order = stable_order(group)
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
