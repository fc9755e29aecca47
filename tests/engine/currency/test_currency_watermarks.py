"""Currency variants with event-time watermarks: whatever the fetch boundaries of the two
streams (FX running ahead of the base levels or behind them), the translator releases only a
prefix of the whole streams' merge, and all of it once both streams are caught up."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from engine.currency.merge import PendingBase
from engine.currency.translator import CurrencyState, CurrencyTranslator, FxColumns
from engine.kernel.columns import LevelColumns
from tests.support.currency import (
    CODES,
    HSI_USD,
    Row,
    base_levels,
    fx_ticks,
    random_streams,
    reference,
    rows_of,
    translator,
)
from tests.support.seed import SEED


def fetch_bounds(rng: np.random.Generator, n: int, fetches: int, lean: float) -> list[int]:
    """Where each of ``fetches`` fetches ends in a stream of ``n`` rows (non-decreasing, last
    ``n``); ``lean`` < 1 takes the stream early (runs ahead), > 1 late (lags behind)."""
    ends = np.sort(rng.random(fetches - 1)) ** lean * n
    return [*np.floor(ends).astype(int).tolist(), n]


def round_trip(t: CurrencyTranslator) -> CurrencyTranslator:
    """A fresh translator restored from ``t``'s checkpoint, through MessagePack."""
    blob = msgspec.msgpack.encode(t.snapshot())
    resumed = translator()
    resumed.restore(msgspec.msgpack.decode(blob, type=CurrencyState))
    assert resumed.snapshot() == t.snapshot() and resumed.pending == t.pending
    return resumed


# FX lean, base lean: FX ahead, base ahead, both anywhere, FX in one fetch, base in one fetch.
LEANS = [(0.3, 2.5), (2.5, 0.3), (1.0, 1.0), (0.01, 1.0), (1.0, 0.01), (0.5, 0.5)]


@pytest.mark.parametrize("case", range(12))
def test_any_fetch_boundaries_give_the_whole_streams_merge(case: int) -> None:
    seed = SEED + 300 + case
    rng = np.random.default_rng(seed)
    fx_lean, base_lean = LEANS[case % len(LEANS)]
    fetches = int(rng.integers(2, 60))
    print(f"watermark seed {seed}: {fetches} fetches, leans fx {fx_lean} base {base_lean}")
    base, fx = random_streams(rng, 700, 260)  # clocks going back, equal times, bad FX ticks
    expected = [row for row in reference(base, fx) if row[1] >= len(CODES)]
    base_ends = fetch_bounds(rng, len(base), fetches, base_lean)
    fx_ends = fetch_bounds(rng, len(fx), fetches, fx_lean)
    t, got, peak = translator(), [], [0, 0]
    b_at = f_at = 0
    for b_end, f_end in zip(base_ends, fx_ends, strict=True):
        out = t.translate(
            base.take(np.arange(b_at, b_end)),
            fx.take(slice(f_at, f_end)),
            base_caught_up=b_end == len(base),  # nothing more to read on that stream
            fx_caught_up=f_end == len(fx),
        )
        b_at, f_at = b_end, f_end
        got += rows_of(out)
        assert got == expected[: len(got)], "released levels are not a prefix of the merge"
        assert min(t.pending) == 0, "only the stream running ahead may wait"
        peak = [max(p, w) for p, w in zip(peak, t.pending, strict=True)]
        if rng.random() < 0.3:
            t = round_trip(t)
    assert t.pending == (0, 0) and not t.releasable(base_caught_up=True, fx_caught_up=True)
    assert got == expected
    print(f"peak pending: {peak[0]} base levels, {peak[1]} FX ticks")
    if fx_lean < 1 < base_lean:
        assert peak[1] > 0, "FX should have run ahead"
    if base_lean < 1 < fx_lean:
        assert peak[0] > 0, "base levels should have run ahead"


def test_nothing_seen_on_a_stream_holds_the_other_until_it_is_caught_up() -> None:
    t = translator()
    a = base_levels([10, 20], [0, 1], [1010.0, 2490.0])
    assert len(t.translate(a, FxColumns.empty(), fx_caught_up=False)) == 0
    assert t.pending == (2, 0)
    assert not t.releasable(base_caught_up=True, fx_caught_up=False)
    assert t.releasable(base_caught_up=False, fx_caught_up=True)
    out = t.translate(LevelColumns.empty(), FxColumns.empty(), base_caught_up=False)
    assert rows_of(out) == rows_of(translator().translate(a, FxColumns.empty()))
    assert t.pending == (0, 0)


def test_a_base_level_at_the_fx_watermark_waits_for_fx_ticks_at_the_same_time() -> None:
    t = CurrencyTranslator([HSI_USD], ["HSI"], [25800.0])
    flags = {"base_caught_up": False, "fx_caught_up": False}
    first = t.translate(base_levels([5], [0], [25900.0]), fx_ticks([5], [0], [0.128]), **flags)
    assert [(ts, sec) for ts, _, _, _, sec in rows_of(first)] == [(5, -1)]  # the FX tick only
    assert t.pending == (1, 0)  # the level at 5 waits: another FX tick at 5 would come first
    second = t.translate(LevelColumns.empty(), fx_ticks([5, 6], [0, 0], [0.127, 0.126]), **flags)
    # FX at 5 before the base level at 5; FX at 6 waits for the base watermark (5)
    assert [(ts, sec) for ts, _, _, _, sec in rows_of(second)] == [(5, -1), (5, 100)]
    assert second.level[-1] == 25900.0 * 0.127 * (3315.3 / 0.1285 / 25800.0)
    assert t.pending == (0, 1)
    third = t.translate(base_levels([6], [0], [26000.0]), FxColumns.empty(), **flags)
    assert [(ts, sec) for ts, _, _, _, sec in rows_of(third)] == [(6, -1)]
    assert [row[3] for row in rows_of(first) + rows_of(second) + rows_of(third)] == [1, 2, 3, 4]
    assert t.pending == (1, 0)


def test_merged_stream_puts_held_variant_levels_first() -> None:
    t = translator()
    early = base_levels([1], [0], [1001.0])
    held: list[Row] = rows_of(t.translate(early, FxColumns.empty(), fx_caught_up=False))
    assert held == [] and t.pending == (1, 0)
    late, fx = base_levels([3], [1], [2510.0]), fx_ticks([2], [0], [0.12])
    merged = rows_of(t.translate_merged(late, fx))
    whole = rows_of(translator().translate_merged(early, FxColumns.empty()))[1:]
    assert merged[: len(whole)] == whole  # A_USD, A_CNY of the level at 1 (base already out)
    rest = [(ts, ix) for ts, ix, *_ in merged[len(whole) :]]
    assert rest == [(2, 4), (2, 6), (3, 1), (3, 6), (3, 8)]


def test_checkpoint_with_pending_rows_of_unknown_ids_is_refused() -> None:
    t = translator()
    t.translate(base_levels([1], [0], [1001.0]), FxColumns.empty(), fx_caught_up=False)
    state = t.snapshot()
    assert state.pending_base == PendingBase([1], [1], [0], [1001.0], [100])
    bad = msgspec.structs.replace(state, pending_base=PendingBase([1], [1], [9], [1.0], [1]))
    with pytest.raises(ValueError, match="unknown ids"):
        translator().restore(bad)
    uneven = msgspec.structs.replace(state, pending_base=PendingBase([1], [], [0], [1.0], [1]))
    with pytest.raises(ValueError, match="equal columns"):
        translator().restore(uneven)


def test_checkpoints_from_before_watermarks_still_restore() -> None:
    t = translator()
    t.translate(base_levels([1], [0], [1001.0]), fx_ticks([2], [1], [0.93]))
    state = t.snapshot()
    assert state.pending_base is None and state.pending_fx is None
    old = {k: v for k, v in msgspec.structs.asdict(state).items() if not k.startswith("pending")}
    resumed = translator()
    resumed.restore(msgspec.msgpack.decode(msgspec.msgpack.encode(old), type=CurrencyState))
    assert resumed.snapshot() == state and resumed.pending == (0, 0)
