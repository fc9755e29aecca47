"""A universe restricted to some indices computes bitwise the levels of the full universe."""

from __future__ import annotations

import numpy as np
import pytest

from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import TickColumns
from engine.pipeline.chain import IndexPipeline
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.subset import restrict_universe
from engine.refdata.universe import IndexSpec, Universe
from engine.testing import TestingSink
from tests.support.seed import SEED
from tests.support.universes import random_rows, universe_from_rows

START_NS = 1_795_138_200_000_000_000


def random_universe(seed: int) -> Universe:
    rng = np.random.default_rng(seed)
    indices, rows = random_rows(rng, n_securities=80, n_indices=30)
    total_return = IndexSpec("IX3_GTR", "IX3 gross", 5000.0, return_type="gross", underlying="IX3")
    return universe_from_rows(indices, rows, extra_specs=[total_return])


def random_ticks(universe: Universe, n: int, seed: int) -> TickColumns:
    rng = np.random.default_rng(seed)
    security = rng.integers(0, universe.n_securities, n)
    walk = np.exp(rng.normal(0.0, 0.01, n))
    return TickColumns(
        ts_event=START_NS + np.arange(n, dtype=np.int64) * 1000,
        security=security.astype(np.int64),
        price=universe.prev_close[security] * walk,
    )


def level_rows(
    universe: Universe, ticks: TickColumns, cuts: list[int]
) -> list[tuple[int, str, float, int]]:
    """Every level of ``ticks`` fed in batches cut at ``cuts``."""
    sink = TestingSink(universe.index_codes)
    pipeline = IndexPipeline(IndexCalculator(universe), sink)
    for start, stop in zip([0, *cuts], [*cuts, len(ticks)], strict=True):
        pipeline.process(ticks.slice(start, stop))
    return sink.rows()


@pytest.mark.parametrize("keep", [["IX0"], ["IX3", "IX3_GTR", "IX17"], ["IX29", "IX5", "IX11"]])
def test_restricted_levels_are_bitwise_the_full_universe_s(keep: list[str]) -> None:
    full = random_universe(SEED)
    ticks = random_ticks(full, 20_000, SEED + 1)
    cuts = sorted(np.random.default_rng(SEED + 2).choice(len(ticks), 40, replace=False).tolist())
    restricted = restrict_universe(full, keep)
    assert restricted.index_codes == tuple(c for c in full.index_codes if c in keep)
    assert restricted.securities == full.securities
    expected = [row for row in level_rows(full, ticks, cuts) if row[1] in keep]
    got = level_rows(restricted, ticks, [5_000, 10_000])  # batching differs too
    assert len(expected) > 1000
    assert got == expected  # floats compared with ==: bitwise for finite levels


def test_restricted_universe_keeps_divisors_rows_and_prices() -> None:
    full = load_builtin_universe()
    restricted = restrict_universe(full, ["HSTECH", "HSI"])
    assert restricted.index_codes == tuple(c for c in full.index_codes if c in ("HSI", "HSTECH"))
    for code in ("HSI", "HSTECH"):
        assert restricted.divisors[restricted.index_id(code)] == full.divisors[full.index_id(code)]
        rows = full.membership.index == full.index_id(code)
        kept = restricted.membership.index == restricted.index_id(code)
        np.testing.assert_array_equal(
            restricted.membership.security[kept], full.membership.security[rows]
        )
    np.testing.assert_array_equal(restricted.prev_close, full.prev_close)


def test_a_total_return_index_needs_its_underlying() -> None:
    with pytest.raises(ValueError, match="HSI_GTR needs its underlying"):
        restrict_universe(load_builtin_universe(), ["HSI_GTR"])


def test_an_unknown_index_is_refused() -> None:
    with pytest.raises(KeyError):
        restrict_universe(load_builtin_universe(), ["NOPE"])
