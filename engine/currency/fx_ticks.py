"""FX ticks as columns, and their screening: which rates a currency variant may use."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from engine.core.columnar import Columnar

MIN_RATE, MAX_RATE = 1e-9, 1e9
"""FX rates outside this range are rejected (``rate_out_of_range``): no currency pair trades
near them, and they keep variant levels far from float underflow and overflow."""
_Floats = NDArray[np.float64]


class FxRejectReason(enum.IntEnum):
    """Why an FX tick was not used; ``label`` is the public name."""

    ACCEPTED = 0
    UNKNOWN_PAIR = 1
    NON_FINITE_RATE = 2
    NON_POSITIVE_RATE = 3
    UNDECODABLE = 4
    BAD_TIMESTAMP = 5
    RATE_OUT_OF_RANGE = 6

    @property
    def label(self) -> str:
        """Lower-case name used in reports."""
        return self.name.lower()


def normalise_pair(name: str) -> str:
    """Canonical pair name: trimmed, upper case, no slash (``hkd/usd`` -> ``HKDUSD``)."""
    return name.strip().upper().replace("/", "")


@dataclass(frozen=True)
class FxColumns(Columnar):
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


class FxRejectSink(Protocol):
    """Receives the FX ticks the currency step rejects, with an ``FxRejectReason`` code per
    tick (their ``origin`` says where each came from)."""

    def reject(self, fx: FxColumns, reasons: NDArray[np.uint8]) -> None:
        """Take one batch of rejected FX ticks."""


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
    reasons[(rate > 0.0) & ((rate < MIN_RATE) | (rate > MAX_RATE))] = (
        FxRejectReason.RATE_OUT_OF_RANGE
    )
    reasons[~np.isfinite(rate)] = FxRejectReason.NON_FINITE_RATE
    reasons[(pair < 0) | (pair >= n_pairs)] = FxRejectReason.UNKNOWN_PAIR
    return reasons
