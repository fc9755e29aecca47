"""IndexPipeline with in-memory source and sinks: bad ticks are rejected, counted, never fatal."""

from __future__ import annotations

import math

import numpy as np

from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import TickColumns
from engine.kernel.screening import RejectReason
from engine.pipeline.buffers import RejectBuffer
from engine.pipeline.chain import IndexPipeline
from engine.refdata.universe import Universe
from engine.testing import TestingSink, TestingSource
from tests.support.scalar_reference import RefIndex, RefRow, ScalarIndexModel
from tests.support.universes import universe_from_rows

MS = 1_000_000
INDICES = [RefIndex("HSI", 20000.0), RefIndex("TECH", 5000.0, 0.4)]
ROWS = [
    RefRow("HSI", "0005.HK", 2.0e10, 0.9, None, 65.0),
    RefRow("HSI", "0700.HK", 9.5e9, 0.7, 0.8, 380.0),
    RefRow("HSI", "1299.HK", 1.1e10, 1.0, None, 70.0),
    RefRow("TECH", "0700.HK", 9.5e9, 0.7, None, 380.0),
    RefRow("TECH", "9988.HK", 2.0e10, 0.85, None, 80.0),
    RefRow("TECH", "3690.HK", 6.2e9, 0.8, None, 120.0),
]

# (code, price, expected reason); ts = 1 ms x position.
TICKS: list[tuple[str, float, RejectReason]] = [
    ("0700.HK", 381.0, RejectReason.ACCEPTED),
    ("XXXX.HK", 10.0, RejectReason.UNKNOWN_SECURITY),
    ("0005.HK", math.nan, RejectReason.NON_FINITE_PRICE),
    ("9988.HK", 81.5, RejectReason.ACCEPTED),
    ("1299.HK", 0.0, RejectReason.NON_POSITIVE_PRICE),
    ("3690.HK", math.inf, RejectReason.NON_FINITE_PRICE),
    ("0005.HK", -65.0, RejectReason.NON_POSITIVE_PRICE),
    ("0005.HK", 64.5, RejectReason.ACCEPTED),
    ("YYYY.HK", math.nan, RejectReason.UNKNOWN_SECURITY),  # unknown wins over a bad price
    ("3690.HK", -math.inf, RejectReason.NON_FINITE_PRICE),  # non-finite wins over negative
    ("0700.HK", 379.2, RejectReason.ACCEPTED),
    ("", 50.0, RejectReason.UNKNOWN_SECURITY),
    ("1299.HK", -0.0, RejectReason.NON_POSITIVE_PRICE),
    ("3690.HK", 121.0, RejectReason.ACCEPTED),
    ("0700.HK", 379.2, RejectReason.ACCEPTED),
]


def universe() -> Universe:
    return universe_from_rows(INDICES, ROWS)


def stream(keep: set[RejectReason] | None = None) -> list[tuple[int, str, float]]:
    return [
        (i * MS, code, price)
        for i, (code, price, reason) in enumerate(TICKS)
        if keep is None or reason in keep
    ]


def make_pipeline(
    uni: Universe, conflate_ns: int | None = None
) -> tuple[IndexPipeline, TestingSink, RejectBuffer]:
    sink = TestingSink(uni.index_codes)
    rejects = RejectBuffer()
    pipeline = IndexPipeline(IndexCalculator(uni), sink, rejects=rejects, conflate_ns=conflate_ns)
    return pipeline, sink, rejects


def test_bad_ticks_rejected_with_reason_and_counted() -> None:
    uni = universe()
    pipeline, sink, rejects = make_pipeline(uni)
    stats = pipeline.run(TestingSource(uni, stream(), batch_size=4))
    expected = [reason for _, _, reason in TICKS]
    bad = [i for i, reason in enumerate(expected) if reason is not RejectReason.ACCEPTED]
    got_ticks = TickColumns.concat(rejects.ticks)
    got_reasons = np.concatenate(rejects.reasons)
    assert got_reasons.tolist() == [int(expected[i]) for i in bad]
    assert got_ticks.ts_event.tolist() == [i * MS for i in bad]
    assert got_ticks.security[got_reasons == RejectReason.UNKNOWN_SECURITY].tolist() == [-1] * 3
    assert stats.rejected == {
        RejectReason.UNKNOWN_SECURITY: 3,
        RejectReason.NON_FINITE_PRICE: 3,
        RejectReason.NON_POSITIVE_PRICE: 3,
    }
    assert stats.ticks_in == len(TICKS)
    assert stats.ticks_applied == len(TICKS) - len(bad) == 6
    assert stats.ticks_rejected == len(bad)
    assert stats.ticks_in == stats.ticks_applied + stats.ticks_rejected
    assert stats.batches == 4  # 15 ticks in batches of 4
    assert stats.levels_out == len(sink.levels)
    # Each applied tick publishes one level per index holding the security; 0700.HK is in both.
    assert stats.levels_out == 2 + 1 + 1 + 2 + 1 + 2
    assert RejectReason.NON_FINITE_PRICE.label == "non_finite_price"


def test_levels_equal_a_pipeline_fed_only_good_ticks() -> None:
    uni = universe()
    pipeline, sink, _ = make_pipeline(uni)
    pipeline.run(TestingSource(uni, stream(), batch_size=4))
    # Same batches with the bad ticks taken out: bit-identical levels.
    clean, clean_sink, clean_rejects = make_pipeline(uni)
    for batch in TestingSource(uni, stream(), batch_size=4):
        good = np.isin(batch.ts_event, [ts for ts, _, _ in stream({RejectReason.ACCEPTED})])
        clean.process(batch.take(good))
    clean.close()
    assert sink.rows() == clean_sink.rows()
    assert clean_rejects.ticks == []
    assert clean.stats.ticks_rejected == 0
    # Any other split of the good ticks: same rows and seq, levels to rounding.
    other, other_sink, _ = make_pipeline(uni)
    other.run(TestingSource(uni, stream({RejectReason.ACCEPTED}), batch_size=1))
    got, want = sink.levels, other_sink.levels
    assert got.ts_event.tolist() == want.ts_event.tolist()
    assert got.index.tolist() == want.index.tolist()
    assert got.seq.tolist() == want.seq.tolist()
    np.testing.assert_allclose(got.level, want.level, rtol=1e-12)
    np.testing.assert_array_equal(pipeline.calculator.levels, other.calculator.levels)


def test_levels_match_the_scalar_reference() -> None:
    uni = universe()
    pipeline, sink, _ = make_pipeline(uni)
    pipeline.run(TestingSource(uni, stream(), batch_size=5))
    model = ScalarIndexModel(INDICES, ROWS)
    expected = [
        (ts, code, level)
        for ts, sec, price in stream({RejectReason.ACCEPTED})
        for code, level in model.tick(sec, price)
    ]
    rows = sink.rows()
    assert [(ts, code) for ts, code, _, _ in rows] == [(ts, code) for ts, code, _ in expected]
    for (_, _, got, _), (_, _, want) in zip(rows, expected, strict=True):
        assert abs(got - want) <= 1e-12 * want
    seqs = {code: [s for _, c, _, s in rows if c == code] for code in uni.index_codes}
    assert seqs == {"HSI": [1, 2, 3, 4], "TECH": [1, 2, 3, 4, 5]}


def test_batch_of_only_bad_ticks_does_not_stop_the_chain() -> None:
    uni = universe()
    pipeline, sink, rejects = make_pipeline(uni)
    bad = TestingSource(uni, [(0, "NOPE", 1.0), (1, "0005.HK", math.nan)]).ticks
    pipeline.process(bad)
    assert sink.batches == []
    good = TestingSource(uni, [(2, "0005.HK", 66.0)]).ticks
    pipeline.process(good)
    assert sink.levels.index.tolist() == [uni.index_id("HSI")]
    assert pipeline.stats.ticks_in == 3
    assert pipeline.stats.ticks_applied == 1
    assert pipeline.stats.ticks_rejected == 2
    assert len(rejects.ticks) == 1
    assert sink.rows()[0][:2] == (2, "HSI")
    assert sink.rows()[0][3] == 1


def test_pipeline_without_reject_sink_still_counts() -> None:
    uni = universe()
    sink = TestingSink(uni.index_codes)
    pipeline = IndexPipeline(IndexCalculator(uni), sink)
    stats = pipeline.run(TestingSource(uni, stream(), batch_size=100))
    assert stats.ticks_rejected == 9
    assert stats.ticks_applied == 6
    assert stats.levels_out == 9


def test_conflated_pipeline_rejects_and_matches_good_only_run() -> None:
    uni = universe()
    pipeline, sink, rejects = make_pipeline(uni, conflate_ns=4 * MS)
    stats = pipeline.run(TestingSource(uni, stream(), batch_size=3))
    clean, clean_sink, _ = make_pipeline(uni, conflate_ns=4 * MS)
    clean.run(TestingSource(uni, stream({RejectReason.ACCEPTED}), batch_size=3))
    got, want = sink.levels, clean_sink.levels
    assert got.ts_event.tolist() == want.ts_event.tolist()
    assert got.index.tolist() == want.index.tolist()
    assert got.seq.tolist() == want.seq.tolist()
    np.testing.assert_allclose(got.level, want.level, rtol=1e-12)
    # At most one level per index per 4 ms interval, and the last level of each index is out.
    keys = list(zip(got.index.tolist(), (got.ts_event // (4 * MS)).tolist(), strict=True))
    assert len(keys) == len(set(keys))
    assert stats.levels_out == len(got) < 9
    for k in range(len(uni.indices)):
        last = got.level[got.index == k][-1]
        assert abs(last - pipeline.calculator.levels[k]) <= 1e-12 * last
    assert stats.ticks_in == stats.ticks_applied + stats.ticks_rejected
    assert sum(len(r) for r in rejects.reasons) == 9


def test_tick_observers_see_every_accepted_tick_once_before_its_levels() -> None:
    uni = universe()
    pipeline, sink, _ = make_pipeline(uni)
    seen: list[TickColumns] = []
    levels_when_seen: list[int] = []

    def observe(ticks: TickColumns) -> None:
        seen.append(ticks)
        levels_when_seen.append(len(sink.levels))

    pipeline.tick_observers.append(observe)
    pipeline.run(TestingSource(uni, stream(), batch_size=4))
    accepted = [i for i, (_, _, reason) in enumerate(TICKS) if reason is RejectReason.ACCEPTED]
    assert TickColumns.concat(seen).ts_event.tolist() == [i * MS for i in accepted]
    assert levels_when_seen[0] == 0  # before the batch's levels reach the sink
    assert all(len(batch) for batch in seen)  # a batch of only bad ticks is not observed
