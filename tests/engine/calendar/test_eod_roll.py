"""End-of-day roll: tomorrow's files reload to today's closing divisors, prices and cap factors."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest

import engine.calendar.eod
from engine.calendar.eod import EodRollError, write_next_day_files
from engine.kernel.calculator import IndexCalculator
from engine.maintenance.adjustments import apply_event
from engine.maintenance.events import AddConstituent, CashDividend, StockSplit
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.capping import cap_factors
from engine.refdata.reference_files import load_universe
from engine.refdata.universe import IndexSpec, Universe, build_universe
from tests.support.seed import SEED
from tests.support.universes import random_rows, universe_from_rows


def random_ticks(
    rng: np.random.Generator, calculator: IndexCalculator, n: int, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` ticks on priced securities, log-normal moves of ``sigma`` from the current price."""
    priced = np.flatnonzero(np.isfinite(calculator.prices))
    security = rng.choice(priced, size=n)
    price = calculator.prices[security] * np.exp(rng.normal(0.0, sigma, size=n))
    return security, price


def with_total_return(universe: Universe) -> Universe:
    """The universe plus a gross and a net total return index on each of its first two."""
    extra = []
    for spec in universe.indices[:2]:
        extra.append(
            IndexSpec(f"{spec.code}_GTR", f"{spec.name} gross", 2000.0, None, "gross", spec.code)
        )
        extra.append(
            IndexSpec(f"{spec.code}_NTR", f"{spec.name} net", 1500.0, None, "net", spec.code, 0.1)
        )
    return build_universe(
        [*universe.indices, *extra], universe.securities, universe.prev_close, universe.declared
    )


def rows_by_key(universe: Universe) -> dict[tuple[str, str], tuple[float, float, float]]:
    """(index code, security code) -> (issued shares, FAF, cap factor), every resolved row."""
    m = universe.membership
    return {
        (universe.index_codes[k], universe.securities[s]): (shares, faf, cf)
        for k, s, shares, faf, cf in zip(
            m.index.tolist(),
            m.security.tolist(),
            m.issued_shares.tolist(),
            m.faf.tolist(),
            m.cap_factor.tolist(),
            strict=True,
        )
    }


def relative_gap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.abs(b)))


def roll(
    calculator: IndexCalculator, folder: Path, closing_levels: np.ndarray | None = None
) -> Universe:
    """Roll into ``folder`` and load the files back."""
    indices_path, composition_path = write_next_day_files(
        calculator, folder, closing_levels=closing_levels
    )
    assert (indices_path, composition_path) == (folder / "indices.csv", folder / "composition.csv")
    return load_universe(indices_path, composition_path)


def assert_carried(day_one: IndexCalculator, loaded: Universe) -> None:
    """Divisors within 1e-12, prices exact, every row (TR rows included) exact."""
    universe = day_one.universe
    assert loaded.index_codes == universe.index_codes
    assert relative_gap(loaded.divisors, day_one.divisors) <= 1e-12
    for code, price in zip(loaded.securities, loaded.prev_close.tolist(), strict=True):
        assert price == day_one.prices[universe.security_id(code)], code
    assert rows_by_key(loaded) == rows_by_key(universe)


def test_builtin_round_trip_after_ticks_and_events(
    rng: np.random.Generator, tmp_path: Path
) -> None:
    print(f"seed {SEED}")
    calculator = IndexCalculator(load_builtin_universe())
    universe = calculator.universe
    for _ in range(5):
        calculator.apply(*random_ticks(rng, calculator, 5_000, 0.02))
    hsbc = "0005"
    adjusted = apply_event(calculator, CashDividend(effective=1, security=hsbc, amount=1.5))
    apply_event(calculator, StockSplit(effective=2, security="0700", ratio=2.0))
    calculator.apply(*random_ticks(rng, calculator, 5_000, 0.02))

    loaded = roll(calculator, tmp_path)
    assert_carried(calculator, loaded)
    # the split's new shares and the dividend-adjusted TR divisors travelled with the files
    assert rows_by_key(loaded)["HSI", "0700"][0] == 2 * rows_by_key(universe)["HSI", "0700"][0]
    assert adjusted, "a dividend on an HSI name adjusts the gross total return index"
    for change in adjusted:
        k = loaded.index_id(change.index)
        assert loaded.divisors[k] == pytest.approx(change.new_divisor, rel=1e-12)
        assert loaded.divisors[k] != pytest.approx(universe.divisors[k], rel=1e-6)

    day_two = IndexCalculator(loaded)
    assert relative_gap(day_two.levels, calculator.levels) <= 1e-13
    assert day_two.seq.tolist() == [0] * len(loaded.indices)


def test_tick_at_the_closing_price_gives_the_closing_level(tmp_path: Path) -> None:
    calculator = IndexCalculator(load_builtin_universe())
    rng = np.random.default_rng(SEED)
    calculator.apply(*random_ticks(rng, calculator, 20_000, 0.03))
    close = calculator.levels.copy()
    day_two = IndexCalculator(roll(calculator, tmp_path))
    opening = day_two.levels.copy()
    code = "0700"
    security = day_two.universe.security_id(code)
    updates = day_two.apply([security], [calculator.prices[calculator.universe.security_id(code)]])
    assert updates.index.size >= 2  # 0700 is in several indices
    # an unchanged price moves nothing: the published level is the reloaded one, bit for bit,
    # and that is the closing level up to the rounding of one capitalisation sum
    assert updates.level.tolist() == opening[updates.index].tolist()
    assert relative_gap(updates.level, close[updates.index]) <= 1e-13


def test_day_two_continues_from_the_close(rng: np.random.Generator, tmp_path: Path) -> None:
    print(f"seed {SEED}")
    calculator = IndexCalculator(with_total_return(universe_from_rows(*random_rows(rng, 60, 8))))
    for _ in range(3):
        calculator.apply(*random_ticks(rng, calculator, 2_000, 0.05))
    day_two = IndexCalculator(roll(calculator, tmp_path))
    # the same day-two ticks on the carried-over engine and on the reloaded one
    security, price = random_ticks(rng, calculator, 3_000, 0.05)
    codes = [calculator.universe.securities[s] for s in security.tolist()]
    continued = calculator.apply(security, price)
    reloaded = day_two.apply(day_two.universe.security_ids(codes), price)
    assert reloaded.tick.tolist() == continued.tick.tolist()
    assert reloaded.index.tolist() == continued.index.tolist()
    assert relative_gap(reloaded.level, continued.level) <= 1e-12
    assert relative_gap(day_two.divisors, calculator.divisors) <= 1e-12


def test_cap_factors_are_carried_not_recomputed(rng: np.random.Generator, tmp_path: Path) -> None:
    print(f"seed {SEED}")
    indices, rows = random_rows(rng, 40, 6, capped_fraction=1.0)
    calculator = IndexCalculator(universe_from_rows(indices, rows))
    universe = calculator.universe
    capped = [k for k, spec in enumerate(universe.indices) if spec.weight_cap is not None]
    assert capped, "the seed gave no capped index"
    calculator.apply(*random_ticks(rng, calculator, 4_000, 0.3))  # weights drift far

    loaded = roll(calculator, tmp_path)
    assert_carried(calculator, loaded)
    with (tmp_path / "composition.csv").open() as handle:
        written = list(csv.DictReader(handle))
    assert all(row["cap_factor"] for row in written)  # on every row, capped indices too
    # recapping at the closing prices would give other factors: carrying them matters
    m = universe.declared
    drifted = []
    for k in capped:
        own = m.index == k
        ffmc = calculator.prices[m.security[own]] * m.issued_shares[own] * m.faf[own]
        recapped = cap_factors(ffmc, float(universe.indices[k].weight_cap or 1.0))
        drifted.append(not np.allclose(recapped, m.cap_factor[own], rtol=1e-9))
    assert any(drifted)


def test_total_return_indices_take_their_underlying_rows(
    rng: np.random.Generator, tmp_path: Path
) -> None:
    calculator = IndexCalculator(with_total_return(universe_from_rows(*random_rows(rng, 30, 3))))
    first = calculator.universe.declared.security[calculator.universe.declared.index == 0][0]
    apply_event(
        calculator,
        CashDividend(effective=1, security=calculator.universe.securities[first], amount=0.01),
    )
    loaded = roll(calculator, tmp_path)
    assert_carried(calculator, loaded)
    with (tmp_path / "indices.csv").open() as handle:
        specs = {row["index"]: row for row in csv.DictReader(handle)}
    with (tmp_path / "composition.csv").open() as handle:
        written = {row["index"] for row in csv.DictReader(handle)}
    assert written == {"IX0", "IX1", "IX2"}  # no rows of their own for TR indices
    assert specs["IX0_NTR"]["return_type"] == "net"
    assert specs["IX0_NTR"]["underlying"] == "IX0"
    assert float(specs["IX0_NTR"]["withholding_rate"]) == 0.1
    assert specs["IX1"]["return_type"] == "price"
    m = loaded.membership
    for tr, underlying in (("IX0_GTR", "IX0"), ("IX1_NTR", "IX1")):
        mine = sorted(m.security[m.index == loaded.index_id(tr)].tolist())
        theirs = sorted(m.security[m.index == loaded.index_id(underlying)].tolist())
        assert mine == theirs and mine


def test_price_only_family_keeps_the_four_column_indices_file(tmp_path: Path) -> None:
    universe = build_universe(
        [IndexSpec("PX", "Price", 1000.0)],
        ["A", "B"],
        np.array([0.1 + 0.2, 7.0]),
        load_builtin_universe()
        .declared.take(np.array([0, 1]))
        .replace(index=np.zeros(2, dtype=np.int32), security=np.array([0, 1], dtype=np.int32)),
    )
    calculator = IndexCalculator(universe)
    roll(calculator, tmp_path)
    lines = (tmp_path / "indices.csv").read_text().splitlines()
    assert lines[0] == "index,name,prev_close_level,weight_cap"
    assert lines[1] == f"PX,Price,{float(calculator.levels[0])!r},"
    # full precision: 0.1 + 0.2 is written as its shortest round-trip repr
    assert ",0.30000000000000004\n" in (tmp_path / "composition.csv").read_text()


def test_added_and_registered_securities(rng: np.random.Generator, tmp_path: Path) -> None:
    calculator = IndexCalculator(universe_from_rows(*random_rows(rng, 20, 3, capped_fraction=0)))
    # a newcomer whose code sorts first gets the last id; a registered name has no price
    apply_event(
        calculator,
        AddConstituent(
            effective=1, index="IX0", security="A000", issued_shares=1e9, faf=0.5, price=12.5
        ),
    )
    grown = calculator.universe.with_securities(["ZZZZ"])
    calculator.rebase(grown, np.append(calculator.prices, np.nan), calculator.divisors)
    calculator.apply(*random_ticks(rng, calculator, 500, 0.02))
    loaded = roll(calculator, tmp_path)
    assert_carried(calculator, loaded)
    assert loaded.securities[0] == "A000"
    assert "ZZZZ" not in loaded.securities


def test_closing_levels_must_be_the_levels_at_the_close(
    rng: np.random.Generator, tmp_path: Path
) -> None:
    calculator = IndexCalculator(load_builtin_universe())
    earlier = calculator.levels.copy()
    updates = calculator.apply(*random_ticks(rng, calculator, 3_000, 0.02))
    published = np.full(len(calculator.universe.indices), np.nan)
    published[updates.index] = updates.level  # last published level of each index
    published = np.where(np.isnan(published), calculator.levels, published)

    loaded = roll(calculator, tmp_path, closing_levels=published)
    with (tmp_path / "indices.csv").open() as handle:
        written = [float(row["prev_close_level"]) for row in csv.DictReader(handle)]
    assert written == published.tolist()
    assert relative_gap(loaded.divisors, calculator.divisors) <= 1e-12

    with pytest.raises(ValueError, match="roll at the close"):
        write_next_day_files(calculator, tmp_path / "x", closing_levels=earlier)
    with pytest.raises(ValueError, match="roll at the close"):
        write_next_day_files(calculator, tmp_path / "x", closing_levels=published * np.nan)
    with pytest.raises(ValueError, match="elements"):
        write_next_day_files(calculator, tmp_path / "x", closing_levels=published[:2])


def test_verification_catches_files_that_do_not_reproduce_the_close(
    rng: np.random.Generator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calculator = IndexCalculator(load_builtin_universe())
    opening = calculator.universe
    calculator.apply(*random_ticks(rng, calculator, 3_000, 0.02))
    real_loader = load_universe

    def skewed(*paths: Path) -> Universe:
        loaded = real_loader(*paths)
        return dataclasses.replace(loaded, divisors=loaded.divisors * (1 + 1e-10))

    monkeypatch.setattr(engine.calendar.eod, "load_universe", skewed)
    with pytest.raises(EodRollError, match="reloaded divisor of HSI is"):
        write_next_day_files(calculator, tmp_path)
    monkeypatch.setattr(engine.calendar.eod, "load_universe", lambda *_: opening)
    with pytest.raises(EodRollError, match="reloaded closing prices"):
        write_next_day_files(calculator, tmp_path)
    # without verification the same files are written and the broken loader is never called
    write_next_day_files(calculator, tmp_path, verify=False)
    assert not list(tmp_path.glob(".*.tmp"))
