"""Pair analytics against the pandas reference, restarts, configuration."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import numpy as np
import pytest
from numpy.typing import NDArray

from engine.analytics.pair_buffers import PairBuffers, PairBufferState
from engine.analytics.pairs import (
    DEFAULT_PAIRS,
    PAIR_FIELDS,
    PairAnalytics,
    PairConfig,
    PairFigures,
    PairsConfig,
    PairsState,
)
from engine.calendar.sessions import NS_PER_MINUTE, TradingCalendar
from engine.refdata.builtin import load_builtin_universe
from tests.support.pair_reference import relative_strength, rolling_beta_corr
from tests.support.seed import SEED

CALENDAR = TradingCalendar()
INDEX_IDS = {"HSI": 0, "HSCI_SC": 1, "HSTECH": 2, "HSCEI": 3}
DAYS = ("2026-03-06", "2026-03-09")  # a Friday and the Monday after


@dataclass(frozen=True)
class Stream:
    """Per boundary: its time, the sampled returns and the levels of the four indices."""

    ts: NDArray[np.int64]
    returns: NDArray[np.float64]
    levels: NDArray[np.float64]


def boundaries() -> NDArray[np.int64]:
    """Every minute of the trading phases of ``DAYS`` (09:00 - 16:10, lunch left out)."""
    times = []
    for day in DAYS:
        open_ns = CALENDAR.session_bounds(day)[0]
        close = CALENDAR.closing_auction_end(day)
        minutes = np.arange(open_ns - 30 * NS_PER_MINUTE, close + 1, NS_PER_MINUTE)
        times.append(minutes[CALENDAR.is_trading(minutes) | (minutes == close)])
    return np.concatenate(times)


def random_stream(seed: int, gaps: float = 0.1) -> Stream:
    """A's (HSCI_SC) and HSTECH's returns correlated with HSI's, NaN gaps, bad levels."""
    rng = np.random.default_rng(seed)
    ts = boundaries()
    n = ts.size
    market = rng.normal(0.0, 1e-3, n)
    returns = np.column_stack(
        [
            market,
            0.8 * market + rng.normal(0.0, 6e-4, n),
            1.3 * market + rng.normal(0.0, 1e-3, n),
            -0.5 * market + rng.normal(0.0, 1e-3, n),
        ]
    )
    returns[rng.random(returns.shape) < gaps] = np.nan
    levels = np.array([25800.0, 3020.0, 5650.0, 9150.0]) * np.exp(
        np.cumsum(rng.normal(0.0, 1e-3, returns.shape), axis=0)
    )
    bad = rng.random(levels.shape)
    levels[bad < gaps / 2] = np.nan
    levels[(bad >= gaps / 2) & (bad < gaps)] = 0.0
    return Stream(ts, returns, levels)


def analytics(pairs: tuple[PairConfig, ...] = DEFAULT_PAIRS, **kwargs: object) -> PairAnalytics:
    return PairAnalytics(pairs, INDEX_IDS, CALENDAR, **kwargs)  # type: ignore[arg-type]


def run(
    pa: PairAnalytics, stream: Stream, start: int = 0, stop: int | None = None
) -> list[PairFigures]:
    out = []
    for row in range(start, stream.ts.size if stop is None else stop):
        pa.sample(stream.returns[row])
        out.append(pa.at_boundary(int(stream.ts[row]), stream.levels[row]))
    return out


def column(figures: list[PairFigures], field: str, pair: int) -> NDArray[np.float64]:
    return np.array([getattr(f, field)[pair] for f in figures])


PAIRS = (
    PairConfig("SC", "HSCI_SC", "HSI", window=120),
    PairConfig("TECH", "HSTECH", "HSI", window=30),
    PairConfig("TINY", "HSCEI", "HSI", window=2),
    PairConfig("INV", "HSI", "HSCEI", window=45),
)


@pytest.mark.parametrize("case", range(4))
def test_rolling_beta_and_correlation_match_pandas(case: int) -> None:
    seed = SEED + 1500 + case
    print(f"pair stream seed {seed}")
    stream = random_stream(seed, gaps=[0.0, 0.1, 0.3, 0.6][case])
    figures = run(analytics(PAIRS), stream)
    for row, pair in enumerate(PAIRS):
        a, b = stream.returns[:, INDEX_IDS[pair.a]], stream.returns[:, INDEX_IDS[pair.b]]
        beta, corr, count = rolling_beta_corr(a, b, pair.window)
        np.testing.assert_allclose(column(figures, "beta", row), beta, rtol=1e-9, atol=0)
        np.testing.assert_allclose(column(figures, "corr", row), corr, rtol=1e-9, atol=0)
        assert column(figures, "returns_in_window", row).tolist() == count.tolist()
        assert np.isfinite(beta[-1])


@pytest.mark.parametrize("case", range(3))
def test_relative_strength_matches_pandas(case: int) -> None:
    seed = SEED + 1510 + case
    print(f"pair stream seed {seed}")
    stream = random_stream(seed, gaps=[0.0, 0.05, 0.4][case])
    dated = PairConfig("DATED", "HSTECH", "HSI", base="2026-03-05")
    pairs = (*PAIRS[:2], dated)
    figures = run(analytics(pairs, base_levels={"DATED": (5600.0, 26000.0)}), stream)
    for row, pair in enumerate(pairs):
        a, b = stream.levels[:, INDEX_IDS[pair.a]], stream.levels[:, INDEX_IDS[pair.b]]
        base = (5600.0, 26000.0) if pair is dated else None
        expected = relative_strength(stream.ts, a, b, base)
        for field in ("rs", "rs_change", "rs_change_day"):
            got = column(figures, field, row)
            np.testing.assert_allclose(got, expected[field].to_numpy(), rtol=1e-9, atol=1e-9)
        assert np.isfinite(column(figures, "rs", row)).any()


def test_open_base_is_100_at_the_open_and_nan_in_the_pre_opening() -> None:
    stream = random_stream(SEED + 1520, gaps=0.0)
    figures = run(analytics(), stream)
    local_minute = (stream.ts // NS_PER_MINUTE + 8 * 60) % (24 * 60)
    pre_opening = local_minute < 9 * 60 + 30
    rs = column(figures, "rs", 0)
    assert np.isnan(rs[pre_opening]).all() and np.isfinite(rs[~pre_opening]).all()
    opens = np.flatnonzero(local_minute == 9 * 60 + 30)
    assert opens.size == 2 and (rs[opens] == 100.0).all()
    assert (column(figures, "rs_change_day", 0)[opens] == 0.0).all()


def test_dated_base_without_levels_gives_nan_not_an_error() -> None:
    stream = random_stream(SEED + 1521)
    pa = analytics((PairConfig("D", "HSCI_SC", "HSI", base="2026-01-02"),))
    assert np.isnan(column(run(pa, stream), "rs", 0)).all()
    pa.set_base_levels("D", 3000.0, 25000.0)
    assert np.isfinite(column(run(pa, stream), "rs", 0)).any()
    for bad in (np.inf, 0.0, np.nan, -1.0):
        pa.set_base_levels("D", bad, 25000.0)
        assert np.isnan(column(run(pa, stream), "rs", 0)).all()
        assert pa.capture().pairs[0].base_a is None
    with pytest.raises(ValueError, match="rebases at the open"):
        analytics().set_base_levels("SMALLCAP_VS_HSI", 1.0, 1.0)
    with pytest.raises(KeyError):
        pa.set_base_levels("NOPE", 1.0, 1.0)


def bits(figures: list[PairFigures]) -> list[bytes]:
    return [
        b"".join(getattr(f, field).tobytes() for field in (*PAIR_FIELDS, "returns_in_window"))
        for f in figures
    ]


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_restart_midstream_is_bitwise_the_uninterrupted_run(encoding: str) -> None:
    seed = SEED + 1530
    print(f"pair stream seed {seed}")
    stream = random_stream(seed)
    pairs = (*PAIRS, PairConfig("DATED", "HSTECH", "HSI", base="2026-03-05"))
    bases = {"DATED": (5600.0, 26000.0)}
    whole = run(analytics(pairs, base_levels=bases), stream)
    codec = msgspec.json if encoding == "json" else msgspec.msgpack
    rng = np.random.default_rng(seed)
    for cut in sorted(rng.choice(stream.ts.size, 5, replace=False).tolist()):
        first = analytics(pairs, base_levels=bases)
        before = run(first, stream, stop=cut)
        state = first.capture()
        payload = codec.encode(state)
        decoded = codec.decode(payload, type=PairsState)
        assert decoded == state and codec.encode(decoded) == payload
        resumed = analytics(pairs)
        resumed.restore(decoded)
        assert bits(before + run(resumed, stream, start=cut)) == bits(whole)


def test_restore_with_another_window_keeps_the_latest_returns_in_order() -> None:
    buffers = PairBuffers([5])
    for value in range(1, 9):  # 8 returns through a window of 5: 4..8, head at slot 3
        buffers.append(np.array([float(value)]), np.array([float(value) ** 2]))
    state = buffers.capture(0)
    assert state.head == 3 and state.a == [6.0, 7.0, 8.0, 4.0, 5.0]
    smaller = PairBuffers([3])
    smaller.restore(0, state)
    assert smaller.capture(0) == PairBufferState(3, 0, [6.0, 7.0, 8.0], [36.0, 49.0, 64.0])
    larger = PairBuffers([10])
    larger.restore(0, state)
    assert larger.capture(0).a == [4.0, 5.0, 6.0, 7.0, 8.0] and larger.capture(0).head == 5
    np.testing.assert_allclose(larger.beta_corr()[0], buffers.beta_corr()[0], rtol=1e-12)


@pytest.mark.parametrize(
    "state",
    [
        PairBufferState(5, 0, [1.0, 2.0], [1.0]),  # lengths differ
        PairBufferState(5, 1, [1.0, 2.0], [1.0, 2.0]),  # head inconsistent with count
        PairBufferState(2, 0, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]),  # more than the window
        PairBufferState(2, 0, [float("nan"), 2.0], [1.0, 2.0]),  # not finite
    ],
)
def test_inconsistent_buffer_state_restores_empty(state: PairBufferState) -> None:
    buffers = PairBuffers([5])
    buffers.append(np.array([1.0]), np.array([1.0]))
    buffers.restore(0, state)
    assert buffers.capture(0).a == [] and buffers.beta_corr()[2].tolist() == [0]


def test_restore_drops_pairs_whose_definition_changed() -> None:
    stream = random_stream(SEED + 1540)
    first = analytics()
    run(first, stream, stop=200)
    state = first.capture()
    changed = (PairConfig("SMALLCAP_VS_HSI", "HSCI_SC", "HSCEI"), DEFAULT_PAIRS[1])
    resumed = analytics(changed)
    resumed.restore(state)
    counts = resumed.at_boundary(int(stream.ts[200]), stream.levels[200]).returns_in_window
    assert counts.tolist() == [0, len(state.pairs[1].buffer.a)]
    assert len(state.pairs[0].buffer.a) > 100


def test_beta_and_correlation_of_known_returns_and_degenerate_windows() -> None:
    buffers = PairBuffers([4, 4, 4])
    rb = np.array([0.01, -0.02, 0.03, 0.0])
    for k in range(4):  # pair 0: A = 2 B exactly; pair 1: B constant; pair 2: one return
        buffers.append(
            np.array([2 * rb[k], rb[k], 0.5 if k == 0 else np.nan]),
            np.array([rb[k], 0.01, 0.2 if k == 0 else 0.1]),
        )
    beta, corr, count = buffers.beta_corr()
    np.testing.assert_allclose(beta[0], 2.0, rtol=1e-12)
    np.testing.assert_allclose(corr[0], 1.0, rtol=1e-12)
    assert np.isnan(beta[1]) and np.isnan(corr[1]) and np.isnan(beta[2]) and np.isnan(corr[2])
    assert count.tolist() == [4, 4, 1]


def test_hedge_line_and_signal_series_from_the_figures() -> None:
    pairs = (PairConfig("SC", "HSCI_SC", "HSI", window=10, sleeve_notional=10_000_000.0),)
    pa = analytics(pairs)
    rng = np.random.default_rng(SEED + 1550)
    open_ns = CALENDAR.session_bounds(DAYS[0])[0]
    for _ in range(12):
        market = rng.normal(0, 1e-3)
        pa.sample(np.array([market, 0.9 * market + rng.normal(0, 1e-4), np.nan, np.nan]))
    figures = pa.at_boundary(open_ns, np.array([25000.0, 3000.0, 5000.0, 9000.0]))
    hedge = figures.hedge()
    beta = float(figures.beta[0])
    assert hedge.valid.tolist() == [True] and 0.5 < beta < 1.3
    expected = beta * 10_000_000.0
    assert hedge.futures[0] == -int(expected // (50 * 25000.0))
    covered = -(hedge.futures[0] * 50 + hedge.minis[0] * 10) * 25000.0
    np.testing.assert_allclose(hedge.residual_notional[0], expected - covered, rtol=1e-12)
    series = figures.series()
    assert sorted(series) == sorted(f"SC.{field}" for field in PAIR_FIELDS)
    assert series["SC.rs"] == 100.0 and series["SC.beta"] == beta


def test_nan_and_zero_levels_never_raise() -> None:
    pa = analytics()
    open_ns = CALENDAR.session_bounds(DAYS[0])[0]
    for k, levels in enumerate([np.full(4, np.nan), np.zeros(4), np.full(4, np.inf)]):
        pa.sample(np.array([np.nan, np.inf, -np.inf, 0.0]))
        figures = pa.at_boundary(open_ns + k, levels)
        assert np.isnan(figures.rs).all() and np.isnan(figures.beta).all()
        assert not figures.hedge().valid.any()


def test_default_pairs_name_built_in_indices() -> None:
    codes = load_builtin_universe().index_codes
    assert [(p.name, p.a, p.b) for p in DEFAULT_PAIRS] == [
        ("SMALLCAP_VS_HSI", "HSCI_SC", "HSI"),
        ("HSTECH_VS_HSI", "HSTECH", "HSI"),
    ]
    assert all({p.a, p.b, p.hedge_with} <= set(codes) for p in DEFAULT_PAIRS)
    assert msgspec.convert({}, PairsConfig).pairs == DEFAULT_PAIRS


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ({"name": "X", "a": "HSI", "b": "HSI"}, "same index"),
        ({"name": "X", "a": "HSTECH", "b": "HSI", "window": 1}, "window must be at least 2"),
        ({"name": "X", "a": "HSTECH", "b": "HSI", "base": "yesterday"}, "YYYY-MM-DD"),
        ({"name": "X", "a": "HSTECH", "b": "HSI", "sleeve_notional": -1.0}, "positive"),
        ({"name": "X.Y", "a": "HSTECH", "b": "HSI"}, "without '.'"),
        ({"name": "X", "a": "HSTECH", "b": "HSI", "colour": "red"}, "unknown field"),
    ],
)
def test_invalid_pair_configuration_is_refused(pair: dict[str, object], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.convert({"pairs": [pair]}, PairsConfig)


def test_duplicate_pair_names_are_refused() -> None:
    pair = {"name": "X", "a": "HSTECH", "b": "HSI"}
    with pytest.raises(msgspec.ValidationError, match="unique: X"):
        msgspec.convert({"pairs": [pair, pair]}, PairsConfig)
