"""``tickindex bench --scale``: the synthetic world's shape, its figures and the level check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.kernel.calculator import IndexCalculator
from engine.refdata.reference_files import load_universe
from tickindex.bench.core import EngineRun, simulated_ticks
from tickindex.bench.scale import LevelCheckError, check_levels, last_prices
from tickindex.bench.scale_world import WorldShape, write_world
from tickindex.cli.main import main

SMALL = WorldShape(securities=5_000, indices=300, seed=3)


def test_scale_bench_json_figures(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "bench", "--scale", "--json", "--scale-securities", "2000", "--scale-indices", "200",
        "--scale-ticks", "20000", "--batch-size", "5000",
    ]  # fmt: skip
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    scale, builtin = result["scale"], result["builtin"]
    assert (scale["securities"], scale["indices"], scale["ticks"]) == (2000, 200, 20000)
    assert builtin["indices"] == 13 and builtin["ticks"] == 20000
    assert scale["memberships"] >= 2000
    for family in (scale, builtin):
        assert family["checked_indices"] == min(50, family["indices"])
        assert 0.0 <= family["max_rel_diff"] <= 1e-9
        assert family["levels"] == pytest.approx(family["levels_per_tick"] * family["ticks"])
        assert family["levels_per_s"] == pytest.approx(family["levels"] / family["seconds"])
    assert result["ratio"] == pytest.approx(scale["levels_per_s"] / builtin["levels_per_s"])
    for family in (scale, builtin):
        assert family["levels_per_cpu_s"] == pytest.approx(family["levels"] / family["cpu_seconds"])
    cpu_ratio = scale["levels_per_cpu_s"] / builtin["levels_per_cpu_s"]
    assert result["cpu_ratio"] == pytest.approx(cpu_ratio)
    assert result["load_s"] > 0 and result["write_s"] > 0
    assert result["rss_after_load_bytes"] >= result["rss_before_load_bytes"] > 0
    assert result["batch_size"] == 5000


def test_scale_bench_text(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "bench", "--scale", "--scale-securities", "1000", "--scale-indices", "50",
        "--scale-ticks", "5000",
    ]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "1,000 securities, 50 indices" in out
    assert "50 final levels checked" in out and "ratio      :" in out


def test_world_shape(tmp_path: Path) -> None:
    files = write_world(SMALL, tmp_path)
    universe = load_universe(files.indices, files.composition)
    m = universe.membership
    assert universe.n_securities == SMALL.securities and len(universe.indices) == SMALL.indices
    assert len(m) == files.memberships
    sizes = np.bincount(m.index, minlength=SMALL.indices)
    assert sizes.min() >= 50 and sizes.max() <= 500
    assert np.median(sizes) < sizes.mean()  # skewed: most indices small, a few large
    per_security = np.bincount(m.security, minlength=SMALL.securities)
    assert per_security.min() >= 1 and per_security.max() <= 10
    pairs = m.index.astype(np.int64) * SMALL.securities + m.security
    assert np.unique(pairs).size == pairs.size
    capped = [spec.weight_cap is not None for spec in universe.indices]
    assert 0 < sum(capped) < SMALL.indices


def test_world_files_are_seeded(tmp_path: Path) -> None:
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        folder.mkdir()
    first, second = (write_world(SMALL, folder) for folder in folders)
    assert first.composition.read_bytes() == second.composition.read_bytes()
    assert first.indices.read_bytes() == second.indices.read_bytes()


def test_level_check_fails_loudly_on_a_wrong_level(tmp_path: Path) -> None:
    files = write_world(WorldShape(securities=500, indices=20, seed=4), tmp_path)
    universe = load_universe(files.indices, files.composition)
    ticks = simulated_ticks(universe, 1_000, seed=4)
    prices = last_prices(universe, ticks)
    m = universe.membership
    capitalisation = np.bincount(m.index, weights=prices[m.security] * universe.weights())
    levels = capitalisation / universe.divisors
    sample = np.arange(20)
    assert check_levels(universe, levels, prices, sample) <= 1e-12
    levels[7] *= 1 + 1e-8
    with pytest.raises(LevelCheckError, match=r"I00007 is .*\(relative difference 1\.0"):
        check_levels(universe, levels, prices, sample)


def test_last_prices_take_each_securitys_last_tick(tmp_path: Path) -> None:
    files = write_world(WorldShape(securities=300, indices=10, seed=5), tmp_path)
    universe = load_universe(files.indices, files.composition)
    ticks = simulated_ticks(universe, 2_000, seed=5)
    expected = universe.prev_close.copy()
    for security, price in zip(ticks.security.tolist(), ticks.price.tolist(), strict=True):
        expected[security] = price
    np.testing.assert_array_equal(last_prices(universe, ticks), expected)


def test_an_engine_run_in_parts_is_one_pass_in_the_same_batches(tmp_path: Path) -> None:
    files = write_world(WorldShape(securities=400, indices=12, seed=6), tmp_path)
    universe = load_universe(files.indices, files.composition)
    ticks = simulated_ticks(universe, 5_000, seed=6)
    whole = EngineRun(IndexCalculator(universe), ticks, 300)
    whole.advance(len(ticks))
    parts = EngineRun(IndexCalculator(universe), ticks, 300)
    for _ in range(4):
        parts.advance(1_500)  # whole batches: the same batches as one pass
    assert parts.applied == whole.applied == len(ticks)
    assert parts.levels == whole.levels > 0
    np.testing.assert_array_equal(parts.calculator.levels, whole.calculator.levels)
    assert parts.seconds > 0 and parts.cpu_seconds > 0
