"""The futures hedge line: contract arithmetic, signs, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from engine.analytics.hedge import (
    HSI_FUTURES_MULTIPLIER,
    MINI_HSI_FUTURES_MULTIPLIER,
    HedgeLine,
    hedge_line,
    hedge_lines,
)
from tests.support.seed import SEED


def test_contract_multipliers_are_hkex_ones() -> None:
    assert (HSI_FUTURES_MULTIPLIER, MINI_HSI_FUTURES_MULTIPLIER) == (50.0, 10.0)


def test_hand_computed_hedge() -> None:
    # H = 0.85 x 10,000,000 = 8,500,000; one future at 25,000 = 1,250,000 -> 6 whole (7,500,000)
    # rest 1,000,000 / 250,000 per mini = 4 minis; residual 0.
    assert hedge_line(0.85, 10_000_000.0, 25_000.0) == HedgeLine(
        sleeve_notional=10_000_000.0,
        beta=0.85,
        hedge_level=25_000.0,
        hedge_notional=8_500_000.0,
        futures=-6,
        minis=-4,
        residual_notional=0.0,
    )


def test_rest_rounds_to_the_nearest_mini() -> None:
    # H = 1.1 x 20,000,000 = 22,000,000 at 26,000: future 1,300,000 -> 16 (20,800,000), rest
    # 1,200,000 / 260,000 = 4.615 -> 5 minis (1,300,000), residual -100,000 (over-hedged).
    line = hedge_line(1.1, 20_000_000.0, 26_000.0)
    assert line is not None
    assert (line.futures, line.minis) == (-16, -5)
    assert line.residual_notional == pytest.approx(-100_000.0, rel=1e-12)
    # H = 19,688,000: 15 futures (19,500,000), rest 188,000 / 260,000 = 0.72 -> 1 mini.
    low = hedge_line(1.0, 20_000_000.0 - 260_000.0 * 1.2, 26_000.0)
    assert low is not None and (low.futures, low.minis) == (-15, -1)


def test_negative_beta_goes_long() -> None:
    line = hedge_line(-0.85, 10_000_000.0, 25_000.0)
    assert line is not None
    assert (line.futures, line.minis) == (6, 4)
    assert line.hedge_notional == -8_500_000.0 and line.residual_notional == 0.0


def test_small_hedge_needs_only_minis_and_zero_beta_none() -> None:
    line = hedge_line(0.1, 1_000_000.0, 25_000.0)  # 100,000 = 0.4 mini -> 0, residual 100,000
    assert line is not None and (line.futures, line.minis) == (0, 0)
    assert line.residual_notional == pytest.approx(100_000.0, rel=1e-12)
    zero = hedge_line(0.0, 1_000_000.0, 25_000.0)
    assert zero is not None and (zero.futures, zero.minis, zero.residual_notional) == (0, 0, 0.0)


@pytest.mark.parametrize(
    ("beta", "notional", "level"),
    [
        (np.nan, 1e7, 25_000.0),
        (np.inf, 1e7, 25_000.0),
        (0.9, 1e7, 0.0),
        (0.9, 1e7, -25_000.0),
        (0.9, 1e7, np.nan),
        (0.9, 1e7, np.inf),
        (0.9, np.nan, 25_000.0),
        (0.9, 1e7, 1e-300),  # more contracts than any hedge: bad data
    ],
)
def test_no_hedge_without_finite_beta_and_positive_level(
    beta: float, notional: float, level: float
) -> None:
    assert hedge_line(beta, notional, level) is None
    lines = hedge_lines([beta], [notional], [level])
    assert lines.valid.tolist() == [False]
    assert lines.futures.tolist() == [0] and lines.minis.tolist() == [0]
    assert np.isnan(lines.residual_notional).all()


def test_vectorised_lines_keep_their_invariants() -> None:
    seed = SEED + 1600
    print(f"hedge seed {seed}")
    rng = np.random.default_rng(seed)
    n = 10_000
    beta = rng.normal(0.8, 0.6, n)
    notional = rng.uniform(1e5, 1e9, n)
    level = rng.uniform(15_000.0, 35_000.0, n)
    lines = hedge_lines(beta, notional, level)
    assert lines.valid.all() and len(lines) == n
    hedge = beta * notional
    future, mini = 50.0 * level, 10.0 * level
    covered = -(lines.futures * future + lines.minis * mini)
    np.testing.assert_allclose(lines.residual_notional, hedge - covered, rtol=1e-9, atol=1e-6)
    assert (np.abs(lines.residual_notional) <= 5.0 * level * (1 + 1e-12)).all()
    assert (np.abs(lines.futures) == np.floor(np.abs(hedge) / future)).all()
    assert (np.abs(lines.minis) <= 5).all()
    assert (np.sign(lines.futures) * np.sign(beta) <= 0).all()
    assert (lines.minis * np.sign(beta) <= 0).all()
    assert lines.line(0) == hedge_line(beta[0], notional[0], level[0])
