"""Plain pandas references for the per-index analytics (sampled returns, volatility, day figures).

Computed from the full recorded level stream in one go, with none of the engine's incremental
state: levels at a boundary by ``Series.asof`` (last level strictly before it), volatility as
``Series.std()`` of log returns, the rolling one by ``Series.rolling(window).std()``, the day
range by ``groupby`` over the levels of the day in trading phases.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from engine.calendar.sessions import TradingCalendar, is_continuous_phase, is_trading_phase
from engine.kernel.columns import LevelColumns


def levels_frame(levels: LevelColumns, calendar: TradingCalendar) -> pd.DataFrame:
    """The recorded levels (finite ones) with their day and phase, in publication order."""
    frame = pd.DataFrame(
        {
            "ts": levels.ts_event,
            "index": levels.index.astype(np.int64),
            "level": levels.level,
            "day": calendar.trading_day(levels.ts_event),
            "phase": calendar.phase(levels.ts_event),
        }
    )
    finite: pd.DataFrame = frame[np.isfinite(frame["level"].to_numpy())]
    return finite.reset_index(drop=True)


def levels_before(
    frame: pd.DataFrame, times: Sequence[int], initial: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Level of every index just before each time (rows: times), ``initial`` where none yet."""
    out = np.tile(initial, (len(times), 1))
    wanted = pd.Index(np.asarray(times, dtype=np.int64) - 1)
    for index in range(initial.size):
        group = frame[frame["index"] == index]
        series = pd.Series(group["level"].to_numpy(), index=group["ts"].to_numpy())
        found = np.asarray(series.asof(wanted), dtype=np.float64)
        out[:, index] = np.where(np.isnan(found), out[:, index], found)
    return out


def sampled_log_returns(samples: NDArray[np.float64]) -> list[pd.Series]:
    """Per index: log returns between consecutive good samples, indexed by sample number."""
    out = []
    for column in samples.T:
        series = pd.Series(column)
        good = series[np.isfinite(series) & (series > 0)]
        logs = pd.Series(np.log(good.to_numpy()), index=good.index)
        out.append(logs.diff().dropna())
    return out


def volatility_at(
    returns: list[pd.Series],
    *,
    sample_session: NDArray[np.int64],
    last_sample: int,
    session: int,
    window: int,
    ppy: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Session and rolling realised volatility of each index after sample ``last_sample``.

    ``sample_session`` gives the session number of each sample; the session figure uses the
    returns of samples in ``session`` up to ``last_sample``, the rolling one the last
    ``window`` returns up to it (``rolling(window, min_periods=2).std()``).
    """
    scale = np.sqrt(ppy)
    session_vol, rolling_vol = [], []
    for series in returns:
        upto = series[series.index <= last_sample]
        today = upto[sample_session[upto.index.to_numpy()] == session]
        session_vol.append(today.std() * scale)
        rolling = upto.rolling(window, min_periods=2).std()
        rolling_vol.append(rolling.iloc[-1] * scale if len(rolling) else np.nan)
    return np.array(session_vol, dtype=np.float64), np.array(rolling_vol, dtype=np.float64)


def day_figures_at(
    frame: pd.DataFrame,
    t: int,
    day: int,
    prev_close: NDArray[np.float64],
    reference_highs: NDArray[np.float64],
) -> dict[str, NDArray[np.float64]]:
    """Day figures of every index at boundary ``t`` of trading day ``day``.

    ``prev_close`` is the previous close per index (``closes_through``); ``reference_highs`` is
    NaN where none is configured.
    """
    n = prev_close.size
    before = frame[frame["ts"] < t]
    level = prev_close.copy()
    last = before.groupby("index")["level"].last()
    level[last.index.to_numpy()] = last.to_numpy()
    counted = before[is_trading_phase(before["phase"].to_numpy(np.uint8))]
    today = counted[counted["day"] == day]
    high, low, open_ = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    by_index = today.groupby("index")["level"]
    high[by_index.max().index.to_numpy()] = by_index.max().to_numpy()
    low[by_index.min().index.to_numpy()] = by_index.min().to_numpy()
    continuous = today[is_continuous_phase(today["phase"].to_numpy(np.uint8))]
    first = continuous.groupby("index")["level"].first()
    open_[first.index.to_numpy()] = first.to_numpy()
    ever = counted.groupby("index")["level"].max()
    ref_high = reference_highs.copy()
    seen = ever.reindex(range(n)).to_numpy()
    ref_high = np.where(np.isnan(ref_high), np.nan, np.fmax(ref_high, seen))
    return {
        "level": level,
        "prev_close": prev_close,
        "change": level - prev_close,
        "change_pct": (level - prev_close) / prev_close * 100.0,
        "open": open_,
        "high": high,
        "low": low,
        "drawdown_day": np.minimum(level / high - 1.0, 0.0),
        "ref_high": ref_high,
        "drawdown_ref": np.minimum(level / ref_high - 1.0, 0.0),
    }


def closes_through(
    frame: pd.DataFrame, days: Sequence[int], initial: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The close after rolling ``days`` in order: each day's last level in a trading phase."""
    close = initial.copy()
    counted = frame[is_trading_phase(frame["phase"].to_numpy(np.uint8))]
    for day in days:
        last = counted[counted["day"] == day].groupby("index")["level"].last()
        close[last.index.to_numpy()] = last.to_numpy()
    return close
