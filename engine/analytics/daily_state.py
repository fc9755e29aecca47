"""The analytics state in the daily files: what a replay of the next day starts from.

At each end-of-day roll the folder of the next trading day (``indices.csv``,
``composition.csv``, ``engine.calendar.eod``) also receives ``analytics-state.msgpack``: the
analytics state just after the day's close (``AnalyticsEngine.closing_state``), with the index
and security codes it was taken for. Restoring it before the next day's first tick carries
the rolling windows (volatility, beta and correlation), turnover averages, signal states,
previous closes and the close history (dated pair bases) over the restart. MessagePack keeps
every float bit; the file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from engine.analytics.errors import AnalyticsStateError
from engine.analytics.state import AnalyticsState
from engine.refdata.universe import Universe

ANALYTICS_STATE_FILE = "analytics-state.msgpack"
DAILY_STATE_VERSION = 1


class DailyAnalyticsState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The file's content: the state, the trading day whose close it follows, and the codes
    (by id) of the universe it was taken for."""

    version: int
    day: int
    index_codes: tuple[str, ...]
    securities: tuple[str, ...]
    analytics: AnalyticsState


def write_analytics_state(
    folder: str | Path, universe: Universe, day: int, state: AnalyticsState
) -> Path:
    """Write ``state`` (taken after day ``day``'s close) as ``folder/analytics-state.msgpack``.

    Returns
    -------
    Path
        The file written (created with its folder if missing, replaced if present).
    """
    content = DailyAnalyticsState(
        DAILY_STATE_VERSION, day, universe.index_codes, tuple(universe.securities), state
    )
    directory = Path(folder)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ANALYTICS_STATE_FILE
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(msgspec.msgpack.encode(content))
    os.replace(temporary, path)
    return path


def read_analytics_state(path: str | Path, universe: Universe) -> AnalyticsState:
    """The analytics state of ``write_analytics_state``'s file, for ``universe``.

    Raises
    ------
    AnalyticsStateError
        When the file cannot be read or decoded, or was written for another universe (other
        index or security codes, or another order).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AnalyticsStateError(f"{path}: cannot read the analytics state: {exc}") from None
    try:
        content = msgspec.msgpack.decode(data, type=DailyAnalyticsState)
    except msgspec.DecodeError as exc:
        raise AnalyticsStateError(f"{path}: not an analytics state file: {exc}") from None
    if content.version != DAILY_STATE_VERSION:
        raise AnalyticsStateError(f"{path}: analytics state version {content.version} unknown")
    if content.index_codes != universe.index_codes:
        raise AnalyticsStateError(f"{path}: analytics state of other indices than the universe's")
    if content.securities != tuple(universe.securities):
        raise AnalyticsStateError(
            f"{path}: analytics state of other securities than the universe's"
        )
    return content.analytics
