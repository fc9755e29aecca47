"""The analytics' checkpoint: every tracker's captured state in one msgspec Struct.

It travels inside ``engine.pipeline.state.EngineState`` (MessagePack, so NaN and every float
bit survive), restored together with the calculator it was taken with. Fields added later
have defaults, so a state written before them still decodes.
"""

from __future__ import annotations

import msgspec

from engine.analytics.close_history import CloseHistoryState
from engine.analytics.constituents import BaselineState
from engine.analytics.day_figure_types import DayFiguresState
from engine.analytics.pairs import PairsState
from engine.analytics.returns import ReturnsState
from engine.analytics.schedule import ScheduleState
from engine.analytics.signals import SignalsState
from engine.analytics.turnover import TurnoverState


class AnalyticsState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the analytics carry from one boundary to the next (``AnalyticsEngine.capture``)."""

    schedule: ScheduleState
    returns: ReturnsState
    day: DayFiguresState
    baseline: BaselineState
    turnover: TurnoverState
    volume_seen: bool
    pairs: PairsState
    signals: SignalsState
    closes: CloseHistoryState | None = None
