"""Plain pandas references for the pair analytics: rolling beta/correlation, relative strength.

Written from the definitions, independently of ``engine.analytics.pairs``: pandas rolling
statistics on the paired return series, and relative strength from a table of boundaries.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from engine.calendar.sessions import HKT_OFFSET_NS, MORNING_OPEN, NS_PER_DAY


def rolling_beta_corr(
    returns_a: NDArray[np.float64], returns_b: NDArray[np.float64], window: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Beta, correlation and paired returns in the window after each sample.

    Samples where either return is NaN are dropped, pandas rolls over the rest
    (``rA.rolling(w).cov(rB) / rB.rolling(w).var()``, ``rA.rolling(w).corr(rB)``, from 2 pairs
    on), and the figures are carried forward over the dropped samples.
    """
    frame = pd.DataFrame({"a": returns_a, "b": returns_b})
    paired = frame.dropna()
    a, b = paired["a"], paired["b"]
    beta = a.rolling(window, min_periods=2).cov(b) / b.rolling(window, min_periods=2).var()
    corr = a.rolling(window, min_periods=2).corr(b)
    count = a.rolling(window, min_periods=1).count()
    out = pd.DataFrame({"beta": beta, "corr": corr, "count": count}).reindex(frame.index)
    out = out.ffill()
    out["count"] = out["count"].fillna(0)
    return (
        out["beta"].to_numpy(dtype=np.float64),
        out["corr"].to_numpy(dtype=np.float64),
        out["count"].to_numpy(dtype=np.int64),
    )


def relative_strength(
    ts: NDArray[np.int64],
    level_a: NDArray[np.float64],
    level_b: NDArray[np.float64],
    base: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """``rs``, ``rs_change`` and ``rs_change_day`` at each boundary (rows in ``ts`` order).

    ``base`` None: rebased at each day's first boundary at or after 09:30 HKT where both levels
    are finite and positive (NaN before it that day); else the fixed base closes of A and B.
    No ``rs`` where a level is not finite and positive.
    ``rs_change_day`` is against the day's first finite ``rs`` at or after 09:30.
    """
    local = ts + HKT_OFFSET_NS
    frame = pd.DataFrame(
        {
            "day": local // NS_PER_DAY,
            "after_open": local % NS_PER_DAY >= MORNING_OPEN,
            "a": level_a,
            "b": level_b,
        }
    )
    position = pd.Series(np.arange(len(frame)), index=frame.index)
    if base is None:
        usable = frame["after_open"] & (frame["a"] > 0) & (frame["b"] > 0)
        usable &= np.isfinite(frame["a"]) & np.isfinite(frame["b"])
        by_day = frame[usable].groupby("day")
        base_a = frame["day"].map(by_day["a"].first())
        base_b = frame["day"].map(by_day["b"].first())
        opened = position >= frame["day"].map(position[usable].groupby(frame["day"]).min())
    else:
        base_a = pd.Series(base[0], index=frame.index)
        base_b = pd.Series(base[1], index=frame.index)
        opened = pd.Series(True, index=frame.index)
    with np.errstate(all="ignore"):
        rs = 100.0 * (frame["a"] / base_a) / (frame["b"] / base_b)
    rs = rs.where(opened & np.isfinite(rs) & (frame["a"] > 0) & (frame["b"] > 0))
    anchor_rows = rs[frame["after_open"] & rs.notna()]
    day_anchor = anchor_rows.groupby(frame["day"]).first()
    anchor_at = position[anchor_rows.index].groupby(frame["day"]).first()
    anchored = position >= frame["day"].map(anchor_at)
    rs_change_day = (rs - frame["day"].map(day_anchor)).where(anchored)
    return pd.DataFrame({"rs": rs, "rs_change": rs.diff(), "rs_change_day": rs_change_day})
