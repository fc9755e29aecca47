"""``run_index`` on one pair (a quiet feed's batches): the level, anchors and guard of many."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.kernel.accumulation import ANCHOR_EVERY, CANCELLATION_GUARD, run_index

EXACT = 123.25


def _one(start: float, peak: float, delta: float, first_seq: int = 5) -> tuple[float, float, float]:
    levels, level, carried_peak = run_index(
        start,
        peak,
        np.array([delta]),
        first_seq=first_seq,
        ticks=np.array([0]),
        exact=lambda _tick: EXACT,
    )
    assert levels.shape == (1,)
    return float(levels[0]), level, carried_peak


def test_a_plain_move_adds_the_change_as_numpy_would() -> None:
    start, delta = 25_801.37, 0.1 + 0.2
    expected = float(np.cumsum([start, delta])[-1])
    assert _one(start, start, delta) == (expected, expected, max(start, expected))


@pytest.mark.parametrize("delta", [math.nan, math.inf, -math.inf])
def test_a_move_that_is_not_finite_is_recomputed_exactly(delta: float) -> None:
    assert _one(100.0, 100.0, delta) == (EXACT, EXACT, EXACT)


def test_a_fall_past_the_cancellation_guard_is_recomputed_exactly() -> None:
    start = 1e6
    delta = -start + start / (CANCELLATION_GUARD * 2)
    assert _one(start, start, delta) == (EXACT, EXACT, EXACT)


def test_an_anchor_sequence_number_is_recomputed_exactly() -> None:
    assert _one(100.0, 100.0, 1.0, first_seq=ANCHOR_EVERY) == (EXACT, EXACT, EXACT)
    assert _one(100.0, 100.0, 1.0, first_seq=ANCHOR_EVERY + 1)[0] == 101.0
