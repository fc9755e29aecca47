"""Plain pandas references for breadth, contributions, movers and turnover (tests only).

Everything works on a DataFrame of membership rows (one per index and constituent) with the
prices looked up, grouped by index with ``groupby``: no code shared with ``engine.analytics``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray


def member_frame(
    index: NDArray[np.integer],
    security: NDArray[np.integer],
    weight: NDArray[np.float64],
    *,
    prices: NDArray[np.float64],
    divisors: NDArray[np.float64],
    prev_close: NDArray[np.float64],
) -> pd.DataFrame:
    """Membership rows with price, previous close, contribution and change in % per row."""
    frame = pd.DataFrame({"index": index, "security": security, "weight": weight})
    frame["price"] = prices[security]
    frame["prev_close"] = prev_close[security]
    frame["divisor"] = divisors[index]
    price, prev = frame["price"], frame["prev_close"]
    frame["priced"] = np.isfinite(price) & (price > 0) & np.isfinite(prev) & (prev > 0)
    priced = frame["priced"]
    frame["contribution"] = ((price - prev) * frame["weight"] / frame["divisor"]).where(priced, 0.0)
    frame["change_pct"] = ((price / prev - 1.0) * 100.0).where(priced, np.nan)
    base = prev.where(priced, price)
    frame["base"] = base * frame["weight"] / frame["divisor"]
    return frame


def breadth_reference(frame: pd.DataFrame, index_ids: list[int]) -> pd.DataFrame:
    """Up, down, unchanged, unpriced and % up per index, in the order of ``index_ids``."""
    priced = frame["priced"]
    flags = pd.DataFrame(
        {
            "index": frame["index"],
            "up": priced & (frame["price"] > frame["prev_close"]),
            "down": priced & (frame["price"] < frame["prev_close"]),
            "unchanged": priced & (frame["price"] == frame["prev_close"]),
            "unpriced": ~priced,
        }
    )
    counts = flags.groupby("index").sum().reindex(index_ids, fill_value=0).astype(np.int64)
    total = counts["up"] + counts["down"] + counts["unchanged"]
    counts["pct_up"] = (counts["up"] / total * 100.0).where(total > 0, np.nan)
    return counts


def points_reference(frame: pd.DataFrame, index_ids: list[int]) -> pd.DataFrame:
    """Sum of contributions and adjusted previous close per index."""
    sums = frame.groupby("index")[["contribution", "base"]].sum().reindex(index_ids)
    return sums.rename(columns={"contribution": "points", "base": "adjusted_prev_close"})


def movers_reference(frame: pd.DataFrame, index_ids: list[int], n: int) -> pd.DataFrame:
    """Top and bottom ``n`` priced rows per index: sort_values, then groupby.head."""
    priced = frame[frame["priced"] & frame["index"].isin(index_ids)]
    sides = []
    for side, descending in ((0, True), (1, False)):
        ordered = priced.sort_values(
            ["index", "contribution", "security"], ascending=[True, not descending, True]
        )
        head = ordered.groupby("index").head(n).copy()
        head["rank"] = head.groupby("index").cumcount() + 1
        head["side"] = side
        sides.append(head)
    movers = pd.concat(sides)
    movers["position"] = movers["index"].map({k: p for p, k in enumerate(index_ids)})
    return movers.sort_values(["position", "side", "rank"]).reset_index(drop=True)


def turnover_reference(ticks: pd.DataFrame, n_securities: int) -> tuple[NDArray[np.float64], int]:
    """Turnover per security id of the ticks (security, price, volume), and how many were
    ignored (a volume, but a product not finite and >= 0, or an unknown security)."""
    value = ticks["price"] * ticks["volume"]
    has_volume = ticks["volume"].notna()
    known = (ticks["security"] >= 0) & (ticks["security"] < n_securities)
    good = has_volume & known & np.isfinite(value) & (value >= 0)
    sums = (
        pd.DataFrame({"security": ticks["security"][good], "value": value[good]})
        .groupby("security")["value"]
        .sum()
        .reindex(range(n_securities), fill_value=0.0)
    )
    return sums.to_numpy(dtype=np.float64), int((has_volume & ~good).sum())


def index_turnover_reference(
    members: pd.DataFrame, turnover: NDArray[np.float64], index_ids: list[int]
) -> NDArray[np.float64]:
    """Per index: the sum of its constituents' turnover (``members``: index, security)."""
    frame = members.assign(turnover=turnover[members["security"].to_numpy()])
    sums = frame.groupby("index")["turnover"].sum().reindex(index_ids, fill_value=0.0)
    return sums.to_numpy(dtype=np.float64)


def random_walk_ticks(
    rng: np.random.Generator, prices: NDArray[np.float64], n: int
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """``n`` ticks (security id, price) of securities with a finite price, each price a
    random step of at most 2% from the security's previous one (some exactly unchanged)."""
    securities = np.flatnonzero(np.isfinite(prices) & (prices > 0))
    security = rng.choice(securities, size=n).astype(np.int64)
    step = np.exp(rng.normal(0.0, 0.005, n).clip(-0.02, 0.02))
    step[rng.random(n) < 0.1] = 1.0
    price = np.empty(n)
    last = prices.copy()
    for k in range(n):  # a reference helper: plain and slow on purpose
        last[security[k]] = round(float(last[security[k]] * step[k]), 3)
        price[k] = last[security[k]]
    return security, price
