"""Per-security tick sequence screening and engine checkpoints."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import LevelColumns, TickColumns
from engine.kernel.screening import RejectReason
from engine.kernel.sequencing import NO_SEQ, SequenceGuard
from engine.maintenance.events import AddConstituent, IndexEvent, SharesChange, StockSplit
from engine.pipeline.chain import IndexPipeline
from engine.pipeline.state import EngineState, StateMismatchError, capture_state, restore_state
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.universe import Universe
from engine.testing import TestingSink
from tests.support.seed import SEED
from tests.support.universes import random_rows, universe_from_rows

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


def test_batches_of_distinct_securities_match_brute_force() -> None:
    rng = np.random.default_rng(SEED)
    print(f"seed {SEED}")
    guard, last = SequenceGuard(40), dict[int, int]()
    for _ in range(500):
        n = int(rng.integers(1, 4))
        security = rng.choice(40, n, replace=False)
        seq = rng.integers(-1, 30, n)
        expected = _brute_force(list(zip(security.tolist(), seq.tolist(), strict=True)), last)
        assert guard.screen(security, seq).tolist() == expected
        assert guard.last_seq.tolist() == [last.get(s, NO_SEQ) for s in range(40)]


def _pipeline(universe: Universe) -> tuple[IndexPipeline, TestingSink]:
    sink = TestingSink(universe.index_codes)
    return IndexPipeline(IndexCalculator(universe), sink), sink


def _ticks(universe: Universe, n: int, rng: np.random.Generator) -> TickColumns:
    security = rng.integers(0, len(universe.securities), n)
    price = universe.prev_close[security] * np.exp(rng.normal(0, 0.01, n))
    seq = np.arange(n, dtype=np.int64)
    return TickColumns(np.arange(n, dtype=np.int64) * 1000, security, price, seq)


def _resume_matches_straight_run(universe: Universe, events: list[IndexEvent]) -> None:
    rng = np.random.default_rng(SEED)
    print(f"seed {SEED}")
    ticks = _ticks(universe, 2000, rng)
    straight, straight_sink = _pipeline(universe)
    straight.schedule(events)
    straight.process(ticks)

    first, first_sink = _pipeline(universe)
    first.schedule(events)
    first.process(ticks.slice(0, 1000))
    state = capture_state(first, universe.fingerprint(), {"ticks:0": 1000}, 7)
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(state), type=EngineState)
    assert decoded.offsets == {"ticks:0": 1000} and decoded.ts_checkpoint == 7

    resumed, resumed_sink = _pipeline(universe)
    restore_state(resumed, decoded)
    resumed.process(ticks.slice(1000, 2000))
    assert np.array_equal(resumed.sequence_guard.last_seq, straight.sequence_guard.last_seq)
    assert resumed.calculator.universe.securities == straight.calculator.universe.securities
    combined = LevelColumns.concat(first_sink.batches + resumed_sink.batches)
    expected = LevelColumns.concat(straight_sink.batches)
    np.testing.assert_array_equal(combined.level, expected.level)
    assert np.array_equal(combined.seq, expected.seq)
    assert np.array_equal(combined.index, expected.index)


def test_checkpoint_round_trip_resumes_identically() -> None:
    universe = universe_from_rows(*random_rows(np.random.default_rng(SEED), 30, 4))
    _resume_matches_straight_run(universe, [])


def test_checkpoint_keeps_applied_and_pending_events() -> None:
    universe = universe_from_rows(*random_rows(np.random.default_rng(SEED), 30, 4))
    member = universe.securities[int(universe.membership.security[0])]
    index = universe.indices[int(universe.membership.index[0])].code
    events: list[IndexEvent] = [
        StockSplit(effective=500_000, security=member, ratio=2.0),
        AddConstituent(
            effective=600_000,
            index=index,
            security="NEW1",
            issued_shares=1e8,
            faf=0.5,
            price=12.0,
        ),
        SharesChange(effective=1_500_000, security=member, issued_shares=5e8),
    ]
    _resume_matches_straight_run(universe, events)


def test_checkpoint_of_other_reference_data_is_refused() -> None:
    rng = np.random.default_rng(SEED)
    other = universe_from_rows(*random_rows(rng, 10, 2))
    state = capture_state(_pipeline(other)[0], other.fingerprint())
    with pytest.raises(StateMismatchError, match="checkpoint belongs to reference data"):
        restore_state(_pipeline(load_builtin_universe())[0], state)
