"""A small trading day for restatement tests: hand-made reference files, seeded ticks, events."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.reference_files import COMPOSITION, INDICES, write
from tests.support.seed import SEED

START_NS = 1_795_138_200_000_000_000  # 2026-11-20 09:30 HKT
DAY_NS = 3_600 * 10**9
PREV_CLOSE = {"0005.HK": 10.0, "0700.HK": 20.0, "0941.HK": 50.0, "A": 10.0, "B": 30.0, "D": 5.0}


@dataclass(frozen=True)
class Day:
    """The files of one day and the ticks in them."""

    indices: Path
    composition: Path
    ticks: Path
    ts: np.ndarray[tuple[int], np.dtype[np.int64]]
    security: np.ndarray[tuple[int], np.dtype[np.str_]]
    price: np.ndarray[tuple[int], np.dtype[np.float64]]

    def universe_args(self) -> list[str]:
        """``--indices I --composition C``."""
        return ["--indices", str(self.indices), "--composition", str(self.composition)]

    def last_prices(self) -> dict[str, float]:
        """Each security's last tick price (its previous close when it did not trade)."""
        last = dict(PREV_CLOSE)
        last.update(zip(self.security.tolist(), self.price.tolist(), strict=True))
        return last


def make_day(
    tmp_path: Path, *, ticks: int = 3_000, split: tuple[str, int, float] | None = None
) -> Day:
    """Seeded random ticks on the reference files of ``tests.support.reference_files``.

    ``split`` = (security, effective ns, ratio): the security's prices from then on are
    divided by ``ratio``, as the market quotes them after a real split.
    """
    indices, composition = write(tmp_path, INDICES, COMPOSITION)
    rng = np.random.default_rng(SEED)
    ts = START_NS + np.sort(rng.integers(0, DAY_NS, ticks)).astype(np.int64)
    codes = np.array(sorted(PREV_CLOSE), dtype=np.str_)
    security = codes[rng.integers(0, codes.size, ticks)]
    base = np.array([PREV_CLOSE[code] for code in security.tolist()])
    price = np.round(base * np.exp(rng.normal(0.0, 0.01, ticks)), 3)
    if split is not None:
        code, effective, ratio = split
        after = (security == code) & (ts >= effective)
        price[after] = np.round(price[after] / ratio, 3)
    path = tmp_path / "ticks.csv"
    rows = zip(ts.tolist(), security.tolist(), price.tolist(), strict=True)
    path.write_text("ts,security,price\n" + "".join(f"{t},{s},{p!r}\n" for t, s, p in rows))
    return Day(indices, composition, path, ts, security, price)


def write_events(path: Path, *events: dict[str, Any]) -> Path:
    """An events file (JSON Lines) holding ``events``."""
    path.write_text("".join(json.dumps(event) + "\n" for event in events), encoding="utf-8")
    return path
