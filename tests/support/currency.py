"""Currency-variant test data: variants, random base and FX streams, a plain reference merge."""

from __future__ import annotations

import math

import numpy as np

from engine.currency.translator import (
    CurrencyTranslator,
    CurrencyVariant,
    FxColumns,
)
from engine.kernel.columns import LevelColumns

HSI_USD = CurrencyVariant("HSI_USD", "HSI", "USD", "HKDUSD", 3315.3, 0.1285)
Row = tuple[int, int, float, int, int]


def rows_of(levels: LevelColumns) -> list[Row]:
    columns = (levels.ts_event, levels.index, levels.level, levels.seq, levels.security)
    return list(zip(*(c.tolist() for c in columns), strict=True))


def base_levels(ts: list[int], index: list[int], level: list[float]) -> LevelColumns:
    """Base levels with seq 1, 2, ... and securities 100, 101, ..."""
    seq, ids = np.arange(1, len(ts) + 1, dtype=np.int64), np.array(index, dtype=np.int32)
    return LevelColumns(np.array(ts, dtype=np.int64), ids, np.array(level), seq, seq + 99)


def fx_ticks(ts: list[int], pair: list[int], rate: list[float]) -> FxColumns:
    return FxColumns(np.array(ts, np.int64), np.array(pair, np.int64), np.array(rate, np.float64))


CODES = ("A", "B", "C", "D")  # D has no variant
PREV = [1000.0, 2500.0, 400.0, 9000.0]
VARIANTS = [
    CurrencyVariant("A_USD", "A", "USD", "HKDUSD", 128.0, 0.128),
    CurrencyVariant("A_CNY", "A", "CNY", "HKDCNY", 930.0, 0.92),
    CurrencyVariant("B_USD", "B", "USD", "HKDUSD", 321.0, 0.128),
    CurrencyVariant("C_EUR", "C", "EUR", "HKDEUR", 47.5, 0.118),
    CurrencyVariant("B_EUR", "B", "EUR", "HKDEUR", 300.0, 0.118),
]


def reference(base: LevelColumns, fx: FxColumns) -> list[Row]:
    """Event by event: two-pointer merge of the running-max clocks, FX first on ties."""
    pairs = list(dict.fromkeys(v.fx_pair for v in VARIANTS))
    base_id = [CODES.index(v.base_index) for v in VARIANTS]
    pair_id = [pairs.index(v.fx_pair) for v in VARIANTS]
    factor = [
        v.prev_close_level / v.fx_prev_close / PREV[b]
        for v, b in zip(VARIANTS, base_id, strict=True)
    ]
    last_fx = {pairs.index(v.fx_pair): v.fx_prev_close for v in VARIANTS}
    last_base, seq, out = list(PREV), [0] * len(VARIANTS), []
    good = [
        (t, p, r)
        for t, p, r in zip(fx.ts_event.tolist(), fx.pair.tolist(), fx.rate.tolist(), strict=True)
        if 0 <= p < len(pairs) and math.isfinite(r) and r > 0
    ]
    b_rows = list(zip(*(c.tolist() for c in (base.ts_event, base.index, base.level)), strict=True))
    b_clock = np.maximum.accumulate(base.ts_event).tolist() if b_rows else []
    f_clock = np.maximum.accumulate([t for t, _, _ in good]).tolist() if good else []
    i = j = 0
    while i < len(b_rows) or j < len(good):
        if j < len(good) and (i == len(b_rows) or f_clock[j] <= b_clock[i]):
            t, p, r = good[j]
            last_fx[p] = r
            movers = [k for k in range(len(VARIANTS)) if pair_id[k] == p]
            security, j = -1 - p, j + 1
        else:
            t, x, level = b_rows[i]
            out.append((t, x, level, int(base.seq[i]), int(base.security[i])))
            last_base[x] = level
            movers = [k for k in range(len(VARIANTS)) if base_id[k] == x]
            security, i = int(base.security[i]), i + 1
        for k in movers:
            seq[k] += 1
            level = last_base[base_id[k]] * last_fx[pair_id[k]] * factor[k]
            out.append((t, len(CODES) + k, level, seq[k], security))
    return out


def random_streams(rng: np.random.Generator, nb: int, nf: int) -> tuple[LevelColumns, FxColumns]:
    """Base levels and FX ticks with equal times, clocks going back and bad FX ticks."""
    b_ts = np.cumsum(rng.integers(0, 3, nb)) - rng.integers(0, 4, nb) * (rng.random(nb) < 0.05)
    f_ts = np.cumsum(rng.integers(0, 3 * nb // max(nf, 1) + 1, nf)) - rng.integers(0, 4, nf)
    rate = np.exp(rng.normal(0.0, 0.01, nf)) * rng.choice([0.128, 0.92, 0.118], nf)
    bad = rng.random(nf) < 0.08
    rate[bad] = rng.choice([np.nan, -1.0, 0.0, np.inf], int(bad.sum()))
    pair = rng.choice([-1, 0, 1, 2, 7], nf, p=[0.03, 0.4, 0.3, 0.24, 0.03])
    index = rng.integers(0, 4, nb)
    level = np.array(PREV)[index] * np.exp(rng.normal(0.0, 0.02, nb))
    base = base_levels(b_ts.tolist(), index.tolist(), level.tolist())
    return base, fx_ticks(f_ts.tolist(), pair.tolist(), rate.tolist())


def translator() -> CurrencyTranslator:
    return CurrencyTranslator(VARIANTS, CODES, PREV)
