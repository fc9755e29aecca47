"""Replay outputs as Arrow tables, and through Arrow as pandas or polars DataFrames.

Arrow is the one conversion: ``to_pandas`` and ``to_polars`` go through ``to_arrow``, so both
libraries see the same types. Times are ``timestamp[ns, UTC]`` (the engine's integer
nanoseconds, exactly), codes are dictionary-encoded strings, levels float64 as computed.
pandas and polars are imported only when asked for (neither is a dependency of tickindex).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import msgspec
import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from engine.analytics.records import AnalyticsRecord, IndexAnalytics, PairAnalytics, SignalEvent

if TYPE_CHECKING:
    import pandas
    import polars

__all__ = ["AnalyticsKind", "ArrowFrame", "Bars", "analytics_table", "codes_array", "time_array"]

TIME_TYPE = pa.timestamp("ns", tz="UTC")
AnalyticsKind = Literal["index", "pair", "signal"]
_RECORD_TYPES: dict[str, type[AnalyticsRecord]] = {
    "index": IndexAnalytics,
    "pair": PairAnalytics,
    "signal": SignalEvent,
}


def time_array(ns: NDArray[np.int64]) -> pa.Array:
    """Integer nanoseconds since the epoch as ``timestamp[ns, UTC]`` (no copy, exact)."""
    return pa.array(ns, type=pa.int64()).cast(TIME_TYPE)


def codes_array(codes: NDArray[np.str_]) -> pa.DictionaryArray:
    """Codes as a dictionary-encoded string column (each distinct code stored once)."""
    distinct, position = np.unique(codes, return_inverse=True)
    return pa.DictionaryArray.from_arrays(
        pa.array(position.astype(np.int32)), pa.array(distinct.tolist(), type=pa.string())
    )


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
        prices = {
            name: pa.array(values, mask=np.isnan(values))
            for name, values in (
                ("open", self.open),
                ("high", self.high),
                ("low", self.low),
                ("close", self.close),
            )
        }
        return pa.table(
            {
                "date": pa.array(self.date.astype("datetime64[D]")),
                "index": codes_array(self.index),
                **prices,
                "count": pa.array(self.count),
            }
        )


def analytics_table(records: Sequence[AnalyticsRecord], kind: AnalyticsKind) -> pa.Table:
    """The records of one kind as an Arrow table, one column per field (absent figures: null).

    Parameters
    ----------
    records : sequence of analytics records
        Records of any kinds (the others are left out).
    kind : {"index", "pair", "signal"}
        ``IndexAnalytics``, ``PairAnalytics`` or ``SignalEvent``.

    Returns
    -------
    pyarrow.Table
        ``ts_event`` as ``timestamp[ns, UTC]``; a pair's hedge line and a signal's values
        as nested structs and maps.
    """
    if kind not in get_args(AnalyticsKind):
        raise ValueError(f"kind must be one of {get_args(AnalyticsKind)}, got {kind!r}")
    record_type = _RECORD_TYPES[kind]
    rows: list[dict[str, Any]] = [
        msgspec.to_builtins(record) for record in records if isinstance(record, record_type)
    ]
    fields = [field.name for field in msgspec.structs.fields(record_type)]
    columns = {name: [row.get(name) for row in rows] for name in fields}
    if kind == "signal":
        columns["values"] = [list((values or {}).items()) for values in columns["values"]]
        table = pa.table(
            {**columns, "values": pa.array(columns["values"], pa.map_(pa.string(), pa.float64()))}
        )
    else:
        table = pa.table(columns)
    stamps = np.array(columns["ts_event"], dtype=np.int64)
    return table.set_column(fields.index("ts_event"), "ts_event", time_array(stamps))
