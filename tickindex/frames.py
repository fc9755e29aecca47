"""Replay outputs as Arrow tables, and through Arrow as pandas or polars DataFrames.

Arrow is the one conversion: ``to_pandas`` and ``to_polars`` go through ``to_arrow``, so both
libraries see the same types (``tickindex.arrow_tables``). pyarrow is imported with the first
conversion, pandas and polars only when asked for (neither is a dependency of tickindex).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import pandas
    import polars
    import pyarrow as pa

__all__ = ["AnalyticsKind", "ArrowFrame", "Bars"]

AnalyticsKind = Literal["index", "pair", "signal"]


class ArrowFrame:
    """Something that is a table: ``to_arrow``, and from it ``to_pandas`` and ``to_polars``."""

    def to_arrow(self) -> pa.Table:
        """The rows as an Arrow table."""
        raise NotImplementedError

    def to_pandas(self) -> pandas.DataFrame:
        """The rows as a pandas DataFrame (needs pandas).

        Returns
        -------
        pandas.DataFrame
            The columns of ``to_arrow``: times as ``datetime64[ns, UTC]``, codes categorical.
        """
        frame: pandas.DataFrame = self.to_arrow().to_pandas()
        return frame

    def to_polars(self) -> polars.DataFrame:
        """The rows as a polars DataFrame (needs polars).

        Returns
        -------
        polars.DataFrame
            The columns of ``to_arrow``: times as ``Datetime("ns", "UTC")``, codes categorical.
        """
        try:
            polars_module = importlib.import_module("polars")
        except ImportError as exc:
            raise ImportError("to_polars needs polars: pip install polars") from exc
        frame: polars.DataFrame = polars_module.from_arrow(self.to_arrow())
        return frame


@dataclass(frozen=True)
class Bars(ArrowFrame):
    """Daily OHLC bars per index, as ``tickindex replay --ohlc`` writes them.

    Attributes
    ----------
    date : ndarray of str
        Trading day, ``YYYY-MM-DD`` (Hong Kong).
    index : ndarray of str
        Index code.
    open, high, low, close : ndarray of float64
        The day's prices; NaN where the file has an empty cell (an index that did not trade:
        ``count`` 0, its previous close carried as ``close``).
    count : ndarray of int64
        Levels in the day's trading phases.
    """

    date: NDArray[np.str_]
    index: NDArray[np.str_]
    open: NDArray[np.float64]
    high: NDArray[np.float64]
    low: NDArray[np.float64]
    close: NDArray[np.float64]
    count: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.count.size)

    def to_arrow(self) -> pa.Table:
        """The bars as an Arrow table (``date`` a ``date32``; no price: null)."""
        from tickindex.arrow_tables import bars_table  # noqa: PLC0415

        prices = {"open": self.open, "high": self.high, "low": self.low, "close": self.close}
        return bars_table(self.date, self.index, prices, self.count)
