"""The analytics state of the daily files, the close history and pairs based on a date."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import msgspec
import numpy as np
import pytest

from engine.analytics.close_history import CloseHistory
from engine.analytics.config import AnalyticsConfig
from engine.analytics.daily_state import (
    ANALYTICS_STATE_FILE,
    read_analytics_state,
    write_analytics_state,
)
from engine.analytics.engine import AnalyticsEngine
from engine.analytics.errors import AnalyticsStateError
from engine.analytics.pairs import PairConfig
from engine.analytics.records import IndexAnalytics, PairAnalytics
from engine.analytics.state import AnalyticsState
from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import TickColumns
from tests.support.analytics_pipeline import CONFIG, Run, stream
from tests.support.analytics_stream import CALENDAR, FRIDAY, MONDAY, hkt

pytestmark = pytest.mark.slow

DATED = PairConfig("SMALLCAP_SINCE_FRIDAY", "HSCI_SC", "HSI", base="2026-11-20")
"""Based on Friday's close (``FRIDAY``)."""
LATER = PairConfig("HSTECH_SINCE_MONDAY", "HSTECH", "HSI", base="2026-11-23")
DAILY = msgspec.structs.replace(
    CONFIG,
    turnover_days=2,
    pairs=(PairConfig("SMALLCAP_VS_HSI", "HSCI_SC", "HSI", window=200), DATED, LATER),
)


@functools.cache
def continuous() -> Run:
    universe, ticks = stream()
    run = Run(universe, DAILY)
    run.feed([ticks])
    run.finish()
    return run


def _swap_engine(run: Run, restarted: AnalyticsEngine) -> None:
    pipeline, engine = run.pipeline, run.engine
    pipeline.observers[pipeline.observers.index(engine.observe_levels)] = restarted.observe_levels
    ticks = pipeline.tick_observers
    ticks[ticks.index(engine.observe_ticks)] = restarted.observe_ticks
    events = pipeline.event_observers
    events[events.index(engine.observe_event)] = restarted.observe_event
    run.driver.analytics = run.engine = restarted


def _friday() -> tuple[Run, TickColumns]:
    """A run through Friday's close, and Monday's ticks."""
    universe, ticks = stream()
    monday = ticks.ts_event >= hkt(MONDAY, 0.0)
    run = Run(universe, DAILY)
    run.feed([ticks.take(~monday)])
    run.driver.advance_to(CALENDAR.closing_auction_end(FRIDAY))
    return run, ticks.take(monday)


def test_monday_from_fridays_state_file_is_bitwise_monday_of_one_run(tmp_path: Path) -> None:
    run, monday = _friday()
    universe = run.universe
    assert run.engine.closing_state is not None
    day, state = run.engine.closing_state
    assert day == FRIDAY
    path = write_analytics_state(tmp_path / "2026-11-23", universe, day, state)
    assert path.name == ANALYTICS_STATE_FILE
    assert not list(path.parent.glob(".*"))  # the temporary name is renamed away
    restarted = AnalyticsEngine(run.pipeline.calculator, CALENDAR, DAILY)
    restarted.restore(read_analytics_state(path, universe))
    _swap_engine(run, restarted)
    friday_records = len(run.records)
    run.feed([monday])
    run.finish()
    whole = continuous().records
    assert run.records[friday_records:] == [r for r in whole if r.ts_event >= hkt(MONDAY, 0.0)]
    assert run.records == whole


def test_without_the_state_monday_starts_empty() -> None:
    """The comparison above would fail without the carried state (it is not vacuous)."""
    run, monday = _friday()
    _swap_engine(run, AnalyticsEngine(run.pipeline.calculator, CALENDAR, DAILY))
    start = len(run.records)
    run.feed([monday])
    first = next(r for r in run.records[start:] if isinstance(r, IndexAnalytics))
    carried = next(
        r
        for r in continuous().records
        if isinstance(r, IndexAnalytics) and r.ts_event >= hkt(MONDAY, 0.0)
    )
    assert first.returns_in_window < carried.returns_in_window == CONFIG.window


def test_a_pair_based_on_a_date_has_rs_from_that_dates_close() -> None:
    records = continuous().records
    indices = [r for r in records if isinstance(r, IndexAnalytics)]
    friday_close = {r.index: r.level for r in indices if r.final and r.ts_event < hkt(MONDAY, 0)}
    level = {(r.ts_event, r.index): r.level for r in indices}
    dated = [r for r in records if isinstance(r, PairAnalytics) and r.pair == DATED.name]
    friday = [r for r in dated if r.ts_event < hkt(MONDAY, 0.0)]
    monday = [r for r in dated if r.ts_event >= hkt(MONDAY, 0.0)]
    assert friday and all(r.rs is None for r in friday)  # Friday has not closed yet
    assert monday and all(r.rs is not None for r in monday)
    for record in monday:
        a = level[record.ts_event, "HSCI_SC"] / friday_close["HSCI_SC"]
        b = level[record.ts_event, "HSI"] / friday_close["HSI"]
        assert record.rs == 100.0 * a / b
    later = [r for r in records if isinstance(r, PairAnalytics) and r.pair == LATER.name]
    assert later and all(r.rs is None for r in later)  # Monday's close: after the stream


def test_the_close_history_holds_each_days_closes() -> None:
    engine = continuous().engine
    assert engine.closes.days == (FRIDAY, MONDAY)
    friday = engine.closes.closes_of(FRIDAY)
    assert friday is not None
    hsi = engine.calculator.universe.index_codes.index("HSI")
    finals = [r for r in continuous().records if isinstance(r, IndexAnalytics) and r.final]
    assert friday[hsi] == next(r.level for r in finals if r.index == "HSI")
    assert engine.closes.closes_of(FRIDAY + 1) is None


def test_the_close_history_is_bounded_and_round_trips_bitwise() -> None:
    history = CloseHistory(2, limit=3)
    for day in (10, 12, 11, 13):
        history.record(day, np.array([float(day), np.nan]))
    assert history.days == (11, 12, 13)
    state = msgspec.msgpack.decode(
        msgspec.msgpack.encode(history.capture()), type=type(history.capture())
    )
    restored = CloseHistory(2, limit=2)
    restored.restore(state)
    assert restored.days == (12, 13)
    closes = restored.closes_of(13)
    assert closes is not None and closes[0] == 13.0 and np.isnan(closes[1])
    with pytest.raises(AnalyticsStateError, match="closes of 2 indices do not fit 3"):
        CloseHistory(3).restore(state)
    with pytest.raises(ValueError, match="3 elements"):
        CloseHistory(3).record(1, np.zeros(2))


def test_a_state_without_the_close_history_still_decodes_and_restores() -> None:
    """Checkpoints written before the close history (serve's ``EngineState`` carries them)."""
    state = continuous().engine.capture()
    old = msgspec.to_builtins(state, builtin_types=(bytes,))
    del old["closes"]
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(old), type=AnalyticsState)
    assert decoded.closes is None
    universe, _ = stream()
    engine = AnalyticsEngine(IndexCalculator(universe), CALENDAR, DAILY)
    engine.restore(decoded)
    assert engine.closes.days == ()
    assert engine.capture().pairs == state.pairs  # the dated bases came with the pairs


def test_a_state_file_of_another_universe_or_corrupt_is_refused(tmp_path: Path) -> None:
    universe, _ = stream()
    state = AnalyticsEngine(IndexCalculator(universe), CALENDAR, AnalyticsConfig()).capture()
    path = write_analytics_state(tmp_path, universe, FRIDAY, state)
    encode = msgspec.msgpack.encode
    assert encode(read_analytics_state(path, universe)) == encode(state)
    reordered = dataclasses.replace(universe, securities=universe.securities[::-1])
    with pytest.raises(AnalyticsStateError, match="other securities"):
        read_analytics_state(path, reordered)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(AnalyticsStateError, match="not an analytics state file"):
        read_analytics_state(path, universe)
    with pytest.raises(AnalyticsStateError, match="cannot read"):
        read_analytics_state(tmp_path / "missing.msgpack", universe)
