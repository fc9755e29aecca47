"""Per-security tick sequence screening and engine checkpoints."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from engine.builtin import load_builtin_universe
from engine.calculator import IndexCalculator
from engine.screening import RejectReason
from engine.sequencing import NO_SEQ, SequenceGuard
from engine.state import EngineState, StateMismatchError, capture_state, restore_state
from tests.conftest import SEED, random_rows, universe_from_rows

DUP, OOO = RejectReason.DUPLICATE_SEQ, RejectReason.OUT_OF_ORDER_SEQ


def _brute_force(stream: list[tuple[int, int]], last: dict[int, int]) -> list[int]:
    out = []
    for security, seq in stream:
        if seq == NO_SEQ:
            out.append(0)
        elif seq == last.get(security, NO_SEQ):
            out.append(DUP)
        elif seq < last.get(security, NO_SEQ):
            out.append(OOO)
        else:
            out.append(0)
            last[security] = seq
    return out


def test_duplicates_and_out_of_order_within_and_across_batches() -> None:
    guard = SequenceGuard(3)
    first = guard.screen(np.array([0, 0, 0, 1, 0, 2]), np.array([5, 3, 5, 1, 6, NO_SEQ]))
    assert first.tolist() == [0, OOO, DUP, 0, 0, 0]
    second = guard.screen(np.array([0, 1, 1]), np.array([6, 1, 2]))
    assert second.tolist() == [DUP, DUP, 0]
    assert guard.last_seq.tolist() == [6, 2, NO_SEQ]


def test_matches_brute_force_on_random_streams() -> None:
    rng = np.random.default_rng(SEED)
    print(f"seed {SEED}")
    for _ in range(200):
        guard, last = SequenceGuard(5), dict[int, int]()
        for _ in range(4):
            n = int(rng.integers(1, 40))
            security = rng.integers(0, 5, n)
            seq = rng.integers(-1, 12, n)
            expected = _brute_force(list(zip(security.tolist(), seq.tolist(), strict=True)), last)
            assert guard.screen(security, seq).tolist() == expected
            assert guard.last_seq.tolist() == [last.get(s, NO_SEQ) for s in range(5)]


def test_checkpoint_round_trip_resumes_identically() -> None:
    rng = np.random.default_rng(SEED)
    universe = universe_from_rows(*random_rows(rng, 30, 4))
    n = len(universe.securities)
    security = rng.integers(0, n, 2000)
    price = universe.prev_close[security] * np.exp(rng.normal(0, 0.01, 2000))
    straight = IndexCalculator(universe)
    straight_levels = straight.apply(security, price)

    first, guard = IndexCalculator(universe), SequenceGuard(n)
    head = first.apply(security[:1000], price[:1000])
    guard.screen(security[:3], np.array([1, 2, 3]))
    payload = msgspec.msgpack.encode(capture_state(first, guard, {"ticks:0": 1000}, 7))
    state = msgspec.msgpack.decode(payload, type=EngineState)
    assert state.offsets == {"ticks:0": 1000} and state.ts_checkpoint == 7

    resumed, resumed_guard = IndexCalculator(universe), SequenceGuard(n)
    restore_state(resumed, resumed_guard, state)
    tail = resumed.apply(security[1000:], price[1000:])
    assert np.array_equal(resumed_guard.last_seq, guard.last_seq)
    combined_level = np.concatenate([head.level, tail.level])
    combined_seq = np.concatenate([head.seq, tail.seq])
    np.testing.assert_allclose(combined_level, straight_levels.level, rtol=1e-13)
    assert np.array_equal(combined_seq, straight_levels.seq)


def test_checkpoint_of_other_reference_data_is_refused() -> None:
    rng = np.random.default_rng(SEED)
    other = universe_from_rows(*random_rows(rng, 10, 2))
    state = capture_state(IndexCalculator(other), SequenceGuard(len(other.securities)))
    builtin = load_builtin_universe()
    with pytest.raises(StateMismatchError, match="checkpoint belongs to reference data"):
        restore_state(IndexCalculator(builtin), SequenceGuard(len(builtin.securities)), state)
