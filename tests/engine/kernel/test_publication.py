"""Publication policy: which levels go to the level topic, per index group, and with what count."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import LevelColumns
from engine.kernel.publication import (
    Publication,
    PublicationRule,
    interval_vector,
    parse_publication,
)
from engine.pipeline.chain import IndexPipeline
from engine.refdata.builtin import load_builtin_universe
from engine.testing import TestingSink
from producers.simulator import MarketSimulator

MS = 1_000_000
START_NS = 1_795_138_200_000_000_000


class FakeClock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_spec_parsed_into_rules_first_match_wins() -> None:
    rules = parse_publication(" HSI=all , HSTECH*=50ms,*=2000ms")
    assert rules == (
        PublicationRule("HSI", 0),
        PublicationRule("HSTECH*", 50),
        PublicationRule("*", 2000),
    )
    codes = ["HSI", "HSTECH", "HSTECH.USD", "HSCEI", "HSI.USD"]
    assert (interval_vector(rules, codes) // MS).tolist() == [0, 50, 50, 2000, 2000]
    assert (interval_vector(parse_publication("HSCEI=10ms"), codes) // MS).tolist() == [
        0,
        0,
        0,
        10,
        0,
    ], "unmatched indices get every level"


def test_a_lone_policy_is_every_index() -> None:
    assert parse_publication("100ms") == (PublicationRule("*", 100),)
    assert parse_publication("all") == (PublicationRule("*", 0),)


@pytest.mark.parametrize(
    "spec", ["", "HSI", "HSI=", "=50ms", "HSI=50", "HSI=0ms", "HSI=-5ms", "HSI=1.5ms", "*=2s"]
)
def test_bad_specs_are_refused_naming_the_part(spec: str) -> None:
    with pytest.raises(ValueError, match="publication"):
        parse_publication(spec)


def _full_levels(n_ticks: int, seed: int) -> tuple[LevelColumns, tuple[str, ...]]:
    """Every level of a seeded simulated stream on the built-in family."""
    universe = load_builtin_universe()
    ticks = MarketSimulator(universe, seed, start_ns=START_NS).next_batch(n_ticks)
    sink = TestingSink(universe.index_codes)
    pipeline = IndexPipeline(IndexCalculator(universe), sink)
    pipeline.process(ticks)
    return sink.levels, universe.index_codes


def _published(
    publication: Publication, levels: LevelColumns, cuts: list[int]
) -> list[LevelColumns]:
    bounds = [0, *cuts, len(levels)]
    return [publication.publish(levels.take(slice(a, b)))[0] for a, b in itertools.pairwise(bounds)]


def _rows(out: LevelColumns) -> list[tuple[int, int, int, float, int, int]]:
    assert out.count is not None
    return sorted(
        zip(
            out.index.tolist(),
            out.seq.tolist(),
            out.ts_event.tolist(),
            out.level.tolist(),
            out.security.tolist(),
            out.count.tolist(),
            strict=True,
        )
    )


def test_conflated_levels_are_real_levels_the_last_of_each_bucket_and_count_them_all() -> None:
    full, codes = _full_levels(20_000, seed=3)
    clock = FakeClock()
    publication = Publication("*=50ms", codes, clock=clock)
    parts = _published(publication, full, [])
    assert publication.conflator is not None
    parts.append(publication.conflator.flush())
    out = LevelColumns.concat(parts)
    assert 0 < len(out) < len(full) // 5
    # Every published level is the full stream's level with that (index, seq).
    real = {
        (i, q): (t, lv, s)
        for i, q, t, lv, s in zip(
            full.index.tolist(),
            full.seq.tolist(),
            full.ts_event.tolist(),
            full.level.tolist(),
            full.security.tolist(),
            strict=True,
        )
    }
    for index, seq, ts, level, security, _ in _rows(out):
        assert real[index, seq] == (ts, level, security)
    # The last level of each (index, 50 ms bucket of the monotone event clock) is published.
    bucket = np.maximum.accumulate(full.ts_event) // (50 * MS)
    last = {}
    for index, b, seq in zip(full.index.tolist(), bucket.tolist(), full.seq.tolist(), strict=True):
        last[index, b] = seq
    assert {(i, q) for i, q, *_ in _rows(out)} == {(i, q) for (i, _), q in last.items()}
    # Counts add up to every level of each index.
    assert out.count is not None
    counted = np.bincount(out.index, weights=out.count, minlength=len(codes))
    assert counted.tolist() == np.bincount(full.index, minlength=len(codes)).tolist()


def test_same_publication_however_the_stream_is_batched() -> None:
    full, codes = _full_levels(6_000, seed=4)
    outs = []
    for cuts in ([], [1, 2, 500, 501, 7_000, 12_000], list(range(0, len(full), 333))):
        publication = Publication("HSI=all,HSCEI=20ms,*=75ms", codes, clock=FakeClock())
        parts = _published(publication, full, cuts)
        assert publication.conflator is not None
        parts.append(publication.conflator.flush())
        outs.append(_rows(LevelColumns.concat(parts)))
    assert outs[0] == outs[1] == outs[2]
    hsi = codes.index("HSI")
    assert sum(1 for row in outs[0] if row[0] == hsi) == np.count_nonzero(full.index == hsi)


def test_policy_all_passes_the_levels_through_unchanged() -> None:
    full, codes = _full_levels(500, seed=5)
    publication = Publication("all", codes)
    assert publication.passes_everything
    out, conflated = publication.publish(full)
    assert out is full and conflated == 0
    assert not publication.idle_release_due()
    assert publication.held() is None


def test_complete_topic_rows_carry_count_zero_beside_the_published_ones() -> None:
    full, codes = _full_levels(2_000, seed=6)
    publication = Publication("*=1000ms", codes, complete=True, clock=FakeClock())
    out, conflated = publication.publish(full)
    assert out.count is not None
    complete = out.take(out.count == 0)
    assert complete.level.tolist() == full.level.tolist()
    assert complete.seq.tolist() == full.seq.tolist()
    published = out.take(out.count > 0)
    assert published.count is not None
    assert int(published.count.sum()) - len(published) == conflated
    everything = Publication("all", codes, complete=True)
    rows, _ = everything.publish(full)
    assert rows.count is not None
    assert np.bincount(rows.count).tolist() == [len(full), len(full)]


def test_a_quiet_feed_releases_the_held_levels_after_their_interval() -> None:
    full, codes = _full_levels(300, seed=7)
    clock = FakeClock()
    publication = Publication("HSI=200ms,*=5000ms", codes, clock=clock)
    publication.publish(full.take(slice(0, 20)))  # a burst within one bucket: all held
    assert publication.conflator is not None
    held = publication.held()
    assert held is not None and len(held.levels) > 0
    clock.now += 0.1
    assert not publication.idle_release_due()
    assert len(publication.release_idle()[0]) == 0
    clock.now += 0.15  # 250 ms quiet: HSI's interval passed, not the others'
    assert publication.idle_release_due()
    released, _ = publication.release_idle()
    assert set(released.index.tolist()) == {codes.index("HSI")}
    clock.now += 5
    rest, _ = publication.release_idle()
    assert len(rest) + len(released) == len(held.levels)
    assert len(publication.conflator) == 0
    assert not publication.idle_release_due()


def test_levels_held_under_a_conflating_policy_go_out_once_it_is_all() -> None:
    full, codes = _full_levels(100, seed=8)
    conflating = Publication("*=60000ms", codes, clock=FakeClock())
    conflating.publish(full)
    held = conflating.held()
    assert held is not None and len(held.levels) > 0
    now_all = Publication("all", codes, clock=FakeClock())
    now_all.restore(held)
    assert not now_all.passes_everything
    out, _ = now_all.publish(LevelColumns.empty())
    assert len(out) == 0
    assert now_all.idle_release_due()
    released, _ = now_all.release_idle()
    assert released.seq.tolist() == held.levels.seq.tolist()


def test_once_the_restored_levels_are_out_all_passes_everything_again() -> None:
    full, codes = _full_levels(100, seed=8)
    conflating = Publication("*=60000ms", codes, clock=FakeClock())
    conflating.publish(full.take(slice(0, 50)))
    now_all = Publication("all", codes, clock=FakeClock())
    now_all.restore(conflating.held())
    out, _ = now_all.publish(full.take(slice(50, 100)))
    assert out.seq.tolist()[-50:] == full.seq[50:100].tolist()
    assert now_all.passes_everything and now_all.held() is None


def test_an_empty_batch_publishes_nothing_and_holds_nothing() -> None:
    publication = Publication("A=10ms", ("A", "B"), clock=FakeClock())
    out, conflated = publication.publish(LevelColumns.empty())
    assert len(out) == 0 and conflated == 0
    assert not publication.idle_release_due()
