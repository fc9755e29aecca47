"""Registering securities one by one: O(k) growth, same ids, bitwise the same levels."""

from __future__ import annotations

import dataclasses

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import LevelColumns, TickColumns
from engine.kernel.screening import RejectReason
from engine.live.control import ControlChannel
from engine.live.kafka.fetch import FetchedRecord
from engine.maintenance.event_queue import EventLimits
from engine.maintenance.events import AddConstituent
from engine.pipeline.chain import IndexPipeline
from engine.pipeline.state import EngineState, capture_state, restore_state
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.universe import UNKNOWN_SECURITY, Universe, build_universe
from engine.testing import TestingSink
from producers.simulator import MarketSimulator
from tests.support.seed import SEED

T = 1_795_138_200_000_000_000
NEW = [f"NEW{k:03d}" for k in range(40)]
N_TICKS = 6_000
EFFECTIVE_AT = 3_000  # position of the first tick at or after the add events' effective time
JOINS = {"HSI": NEW[:2], "HSCI": NEW[2:8], "HSI_FIN": NEW[8:10]}  # the rest join no index
BASE = load_builtin_universe()
N_BASE = BASE.n_securities
NEW_IDS = np.arange(N_BASE, N_BASE + len(NEW))


def _ticks() -> TickColumns:
    """Simulated ticks on the built-in securities; after the events, some on the new codes
    (one a duplicate, for the sequence guard), at prices around the events' 10.0."""
    ticks = MarketSimulator(BASE, SEED, start_ns=T).next_batch(N_TICKS)
    rng = np.random.default_rng(SEED)
    rows = np.sort(rng.choice(np.arange(EFFECTIVE_AT + 1, N_TICKS), 400, replace=False))
    security = ticks.security.copy()
    price = ticks.price.copy()
    security[rows] = rng.choice(NEW_IDS, rows.size)
    price[rows] = np.round(10.0 * np.exp(rng.normal(0.0, 0.01, rows.size)), 3)
    seq = np.arange(N_TICKS, dtype=np.int64)
    security[rows[-1]], seq[rows[-1]] = security[rows[-2]], seq[rows[-2]]  # a duplicate
    return TickColumns(ticks.ts_event, security, price, seq)


TICKS = _ticks()
EFFECTIVE = int(TICKS.ts_event[EFFECTIVE_AT])


def _events() -> list[AddConstituent]:
    return [
        AddConstituent(
            effective=EFFECTIVE,
            index=index,
            security=code,
            issued_shares=1e9 + 1e7 * k,
            faf=0.5,
            price=10.0,
            id=f"add-{index}-{code}",
        )
        for index, codes in JOINS.items()
        for k, code in enumerate(codes)
    ]


def _from_start() -> Universe:
    """The built-in universe built with the new codes from the start."""
    prev_close = np.append(BASE.prev_close, np.full(len(NEW), np.nan))
    return build_universe(BASE.indices, [*BASE.securities, *NEW], prev_close, BASE.declared)


def _pipeline(universe: Universe = BASE) -> tuple[IndexPipeline, TestingSink]:
    sink = TestingSink(universe.index_codes)
    return IndexPipeline(IndexCalculator(universe), sink), sink


def _run_from_start() -> tuple[IndexPipeline, LevelColumns]:
    pipeline, sink = _pipeline(_from_start())
    pipeline.schedule(_events())
    pipeline.process(TICKS)
    return pipeline, sink.levels


def _assert_same_levels(got: LevelColumns, expected: LevelColumns) -> None:
    assert len(got) == len(expected)
    np.testing.assert_array_equal(got.level.view(np.uint64), expected.level.view(np.uint64))
    for name in ("ts_event", "index", "seq", "security"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))


def _assert_same_state(got: IndexPipeline, expected: IndexPipeline) -> None:
    a, b = got.calculator, expected.calculator
    assert a.universe.securities == b.universe.securities
    assert [a.universe.security_id(code) for code in NEW] == NEW_IDS.tolist()
    for name in ("prices", "divisors", "levels", "peaks", "published_levels"):
        left, right = getattr(a, name), getattr(b, name)
        np.testing.assert_array_equal(left.view(np.uint64), right.view(np.uint64), err_msg=name)
    np.testing.assert_array_equal(a.seq, b.seq)
    np.testing.assert_array_equal(got.sequence_guard.last_seq, expected.sequence_guard.last_seq)
    assert got.stats.rejected == expected.stats.rejected
    assert got.stats.events_applied == expected.stats.events_applied == len(_events())


def test_one_by_one_at_once_and_from_the_start_give_bitwise_the_same_levels() -> None:
    straight, expected = _run_from_start()
    new_ticks = np.isin(expected.security, NEW_IDS)
    assert new_ticks.sum() > 50  # the new codes' ticks move their indices once added
    assert straight.stats.rejected == {RejectReason.DUPLICATE_SEQ: 1}

    at_once, at_once_sink = _pipeline()
    at_once.register_securities(NEW)
    at_once.schedule(_events())
    at_once.process(TICKS)

    one_by_one, one_by_one_sink = _pipeline()
    one_by_one.schedule(_events())
    cuts = np.linspace(0, EFFECTIVE_AT, len(NEW) + 1).astype(int).tolist()
    for code, lo, hi in zip(NEW, cuts[:-1], cuts[1:], strict=True):
        one_by_one.register_securities([code, NEW[0]])  # a known code is skipped
        one_by_one.process(TICKS.slice(lo, hi))
    one_by_one.process(TICKS.slice(EFFECTIVE_AT, N_TICKS))

    for pipeline, sink in ((at_once, at_once_sink), (one_by_one, one_by_one_sink)):
        _assert_same_levels(sink.levels, expected)
        _assert_same_state(pipeline, straight)


@pytest.mark.slow
@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 5), st.integers(0, EFFECTIVE_AT // 10)), min_size=1, max_size=12
    )
)
def test_registering_in_any_chunks_between_any_batches_keeps_levels_bitwise(
    steps: list[tuple[int, int]],
) -> None:
    """``steps``: (codes to register, ticks to process next); the rest register at the end."""
    pipeline, sink = _pipeline()
    pipeline.schedule(_events())
    registered, position = 0, 0
    for count, ticks in steps:
        pipeline.register_securities(NEW[registered : registered + count])
        registered = min(registered + count, len(NEW))
        pipeline.process(TICKS.slice(position, position + ticks))
        position += ticks
    pipeline.register_securities(NEW[registered:])
    pipeline.process(TICKS.slice(position, N_TICKS))
    straight, expected = _run_from_start()
    _assert_same_levels(sink.levels, expected)
    _assert_same_state(pipeline, straight)


def test_add_events_through_the_control_channel_one_per_fetch() -> None:
    pipeline, sink = _pipeline()
    limits = EventLimits(late_tolerance_ns=10**18)
    channel = ControlChannel(pipeline, "json", limits, wall_clock=lambda: T)
    ids = []
    for offset, event in enumerate(_events()):
        record = FetchedRecord("control", 0, offset, b"k", msgspec.json.encode(event))
        assert channel.receive([record], "dlq") == []
        ids.append(pipeline.calculator.universe.security_id(event.security))
    assert ids == NEW_IDS[: len(ids)].tolist()  # ids given as the events arrive, kept after
    pipeline.register_securities(NEW)
    pipeline.process(TICKS)
    straight, expected = _run_from_start()
    _assert_same_levels(sink.levels, expected)
    _assert_same_state(pipeline, straight)


def _roundtrip(state: EngineState) -> EngineState:
    return msgspec.msgpack.decode(msgspec.msgpack.encode(state), type=EngineState)


def test_checkpoints_round_trip_after_registration() -> None:
    fingerprint = BASE.fingerprint()
    straight, expected = _run_from_start()
    pipeline, sink = _pipeline()
    pipeline.schedule(_events())
    for code in NEW:
        pipeline.register_securities([code])
    checkpoints = (1_000, EFFECTIVE_AT - 1, 4_500)  # before and after the events apply
    position = 0
    for cut in checkpoints:
        pipeline.process(TICKS.slice(position, cut))
        position = cut
        state = capture_state(pipeline, fingerprint)
        resumed, resumed_sink = _pipeline()
        restore_state(resumed, _roundtrip(state))
        encode = msgspec.msgpack.encode  # bytes: the prices of unpriced codes are NaN
        assert encode(capture_state(resumed, fingerprint)) == encode(state)
        resumed.process(TICKS.slice(cut, N_TICKS))
        done = len(sink.levels)
        _assert_same_levels(resumed_sink.levels, expected.take(np.arange(done, len(expected))))
        assert resumed.calculator.universe.securities == straight.calculator.universe.securities
        np.testing.assert_array_equal(resumed.calculator.levels, straight.calculator.levels)
    pipeline.process(TICKS.slice(position, N_TICKS))
    _assert_same_levels(sink.levels, expected)


def test_registering_while_a_level_is_withheld_keeps_the_last_good_one() -> None:
    code = BASE.securities[int(BASE.membership.security[0])]
    member = BASE.security_id(code)
    pipeline, _ = _pipeline()
    calculator = pipeline.calculator
    first = calculator.apply([member], [float(BASE.prev_close[member]) * 1.01])
    with np.errstate(over="ignore", invalid="ignore"):
        calculator.apply([member], [1.7e308])  # some level overflows: withheld
    assert calculator.nonfinite_levels > 0
    published, levels = calculator.published_levels.copy(), calculator.levels.copy()
    assert np.isfinite(published).all() and first.level.size > 0

    pipeline.register_securities(["ZZZ1", "ZZZ2"])
    np.testing.assert_array_equal(calculator.published_levels, published)
    np.testing.assert_array_equal(calculator.levels, levels)
    assert np.isnan(calculator.prices[-2:]).all() and calculator.prices.size == N_BASE + 2


def test_a_universe_grown_from_an_older_one_branches_off() -> None:
    one = BASE.with_securities(["A1"])
    two = one.with_securities(["B2", "A1", "B2"])
    branch = one.with_securities(["C3"])  # ``two`` took id N_BASE + 1 in the shared register
    assert one.securities == (*BASE.securities, "A1")
    assert two.securities == (*BASE.securities, "A1", "B2")
    assert branch.securities == (*BASE.securities, "A1", "C3")
    assert [one.n_securities, two.n_securities, branch.n_securities] == [
        N_BASE + 1,
        N_BASE + 2,
        N_BASE + 2,
    ]
    assert BASE.security_id("A1") == UNKNOWN_SECURITY
    assert one.security_id("B2") == one.security_id("C3") == UNKNOWN_SECURITY
    assert two.security_id("B2") == branch.security_id("C3") == N_BASE + 1
    assert two.security_id("C3") == branch.security_id("B2") == UNKNOWN_SECURITY
    np.testing.assert_array_equal(
        one.security_ids(["A1", "B2", "C3", BASE.securities[0]]), [N_BASE, -1, -1, 0]
    )
    np.testing.assert_array_equal(two.security_ids(["A1", "B2", "C3"]), [N_BASE, N_BASE + 1, -1])
    for universe in (one, two, branch):
        assert universe.prev_close.size == universe.n_securities
        np.testing.assert_array_equal(universe.prev_close[:N_BASE], BASE.prev_close)
        assert np.isnan(universe.prev_close[N_BASE:]).all()
        assert not universe.prev_close.flags.writeable
    assert BASE.with_securities(["A1"]).security_id("A1") == N_BASE
    assert BASE.prev_close.size == N_BASE and BASE.n_securities == N_BASE


def test_a_grown_universe_is_the_universe_built_with_its_codes() -> None:
    grown = BASE
    for code in NEW:
        grown = grown.with_securities([code])
    built = _from_start()
    assert grown.fingerprint() == built.fingerprint()
    assert grown.securities == built.securities and grown.n_securities == built.n_securities
    assert grown.security_ids(NEW).tolist() == built.security_ids(NEW).tolist()
    replaced = dataclasses.replace(grown, divisors=grown.divisors * 2)
    assert replaced.securities == built.securities
    assert replaced.security_id(NEW[-1]) == N_BASE + len(NEW) - 1
    assert grown.with_securities(NEW[:3]) is grown


def _storages(arrays: list[np.ndarray]) -> int:
    """How many distinct memory blocks hold these arrays (views count as their base)."""
    return len({id(array if array.base is None else array.base) for array in arrays})


def test_registering_one_code_at_a_time_reallocates_logarithmically_often() -> None:
    pipeline, _ = _pipeline()
    calculator = pipeline.calculator
    prices, prev_close, last_seq, codes = [], [], [], []
    for k in range(10_000):
        pipeline.register_securities([f"R{k:05d}"])
        # kept alive, so no two storages share an id
        prices.append(calculator.prices)
        prev_close.append(calculator.universe.prev_close)
        last_seq.append(pipeline.sequence_guard.last_seq)
        codes.append(calculator.universe.security_id(f"R{k:05d}"))
    assert codes == list(range(N_BASE, N_BASE + 10_000))
    # capacity doubling: about log2(10,000 / 400) copies, not one per registration
    for arrays in (prices, prev_close, last_seq):
        assert _storages(arrays) <= 8
    assert np.isnan(calculator.prices[N_BASE:]).all()
    np.testing.assert_array_equal(calculator.prices[:N_BASE], BASE.prev_close)
    assert (pipeline.sequence_guard.last_seq[N_BASE:] == -1).all()
