"""Turnover per security and per index against a pandas reference, over several day rolls; the
ratio to the average of the last K days; batching and restarts change no bit."""

from __future__ import annotations

import msgspec
import numpy as np
import pandas as pd
import pytest

from engine.analytics.constituents import MemberRows
from engine.analytics.turnover import Turnover, TurnoverConfig, TurnoverState
from engine.kernel.calculator import IndexCalculator
from tests.support.constituent_reference import (
    index_turnover_reference,
    random_walk_ticks,
    turnover_reference,
)
from tests.support.seed import SEED
from tests.support.universes import random_rows, universe_from_rows

RTOL = 1e-9
N_SECURITIES = 50


def _day_of_ticks(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Random ticks with volumes, some without (NaN), some bad (negative, NaN or inf price,
    unknown security)."""
    security, price = random_walk_ticks(rng, rng.uniform(1.0, 400.0, N_SECURITIES), n)
    volume = rng.integers(100, 100_000, n).astype(np.float64)
    volume[rng.random(n) < 0.1] = np.nan
    volume[rng.random(n) < 0.02] = -500.0
    price[rng.random(n) < 0.02] = np.nan
    price[rng.random(n) < 0.01] = np.inf
    security[rng.random(n) < 0.01] = -1
    return pd.DataFrame({"security": security, "price": price, "volume": volume})


def _add(turnover: Turnover, ticks: pd.DataFrame, batches: int) -> None:
    for part in np.array_split(np.arange(len(ticks)), batches):
        rows = ticks.iloc[part]
        turnover.add(rows["security"], rows["price"], rows["volume"])


def test_turnover_matches_the_pandas_reference_over_day_rolls() -> None:
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED)
    indices, rows = random_rows(rng, N_SECURITIES, n_indices=6)
    members = MemberRows.of(IndexCalculator(universe_from_rows(indices, rows)))
    member_frame = pd.DataFrame({"index": members.index, "security": members.security})
    index_ids = [4, 0, 2, 5, 1, 3]
    days = 3
    turnover = Turnover(N_SECURITIES, TurnoverConfig(days=days))
    totals: list[np.ndarray] = []
    ignored = 0
    for day in range(6):
        ticks = _day_of_ticks(rng, 2000)
        _add(turnover, ticks, batches=day + 1)
        expected, bad = turnover_reference(ticks, N_SECURITIES)
        ignored += bad
        np.testing.assert_allclose(turnover.today, expected, rtol=RTOL)
        assert turnover.ignored == ignored > 0
        np.testing.assert_allclose(
            turnover.by_index(members, index_ids),
            index_turnover_reference(member_frame, expected, index_ids),
            rtol=RTOL,
        )
        ratio = turnover.turnover_ratio(np.arange(N_SECURITIES))
        if totals:
            average = pd.DataFrame(totals[-days:]).mean().to_numpy()
            np.testing.assert_allclose(ratio, expected / average, rtol=RTOL)
        else:
            assert np.isnan(ratio).all()
        totals.append(expected)
        turnover.roll()
        assert not turnover.today.any()


def test_a_security_in_several_indices_counts_in_each() -> None:
    members = MemberRows(
        index=np.array([0, 0, 1, 1], dtype=np.intp),
        security=np.array([0, 1, 1, 2], dtype=np.intp),
        weight=np.ones(4),
        n_indices=2,
    )
    turnover = Turnover(3)
    assert turnover.add([0, 1, 2, 1], [10.0, 2.0, 5.0, 2.0], [1.0, 100.0, np.nan, 50.0]) == 0
    assert turnover.today.tolist() == [10.0, 300.0, 0.0]
    assert turnover.by_index(members, [1, 0]).tolist() == [300.0, 310.0]


def test_totals_are_bitwise_the_same_however_the_ticks_are_batched() -> None:
    rng = np.random.default_rng(SEED)
    ticks = _day_of_ticks(rng, 3000)
    whole, split = Turnover(N_SECURITIES), Turnover(N_SECURITIES)
    _add(whole, ticks, batches=1)
    _add(split, ticks, batches=37)
    assert whole.today.tobytes() == split.today.tobytes()
    assert whole.ignored == split.ignored


def test_restart_round_trip_is_bitwise() -> None:
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED)
    turnover = Turnover(N_SECURITIES, TurnoverConfig(days=4))
    for _ in range(5):
        _add(turnover, _day_of_ticks(rng, 500), batches=3)
        turnover.roll()
    _add(turnover, _day_of_ticks(rng, 500), batches=2)
    encoded = msgspec.msgpack.encode(turnover.capture())
    resumed = Turnover(N_SECURITIES, TurnoverConfig(days=4))
    resumed.restore(msgspec.msgpack.decode(encoded, type=TurnoverState))
    assert msgspec.msgpack.encode(resumed.capture()) == encoded
    later = _day_of_ticks(rng, 500)
    for t in (turnover, resumed):
        _add(t, later, batches=2)
        t.roll()
        _add(t, later, batches=1)
    securities = np.arange(N_SECURITIES)
    assert turnover.today.tobytes() == resumed.today.tobytes()
    assert turnover.average().tobytes() == resumed.average().tobytes()
    ratio = turnover.turnover_ratio(securities)
    assert ratio.tobytes() == resumed.turnover_ratio(securities).tobytes()
    with pytest.raises(ValueError, match="does not fit 3 days"):
        Turnover(N_SECURITIES, TurnoverConfig(days=3)).restore(resumed.capture())


def test_ratio_is_nan_without_history_or_average_and_new_securities_have_none() -> None:
    turnover = Turnover(2, TurnoverConfig(days=2))
    turnover.add([0], [10.0], [5.0])
    assert np.isnan(turnover.turnover_ratio([0, 1])).all()
    turnover.roll()  # day 1: security 0 traded 50, security 1 nothing
    turnover.grow(3)
    turnover.add([0, 2], [10.0, 1.0], [10.0, 7.0])
    assert turnover.today.tolist() == [100.0, 0.0, 7.0]
    ratio = turnover.turnover_ratio([0, 1, 2])
    assert ratio[0] == 2.0 and np.isnan(ratio[1:]).all()
    turnover.roll()
    turnover.roll()  # an empty day pushes day 1 out of the two held
    assert turnover.average().tolist() == [50.0, 0.0, 3.5]


def test_bad_products_are_ignored_and_counted() -> None:
    turnover = Turnover(2)
    with np.errstate(all="raise"):
        ignored = turnover.add(
            [0, 0, 1, 1, 5, -1, 1],
            [np.nan, np.inf, -1.0, 2.0, 1.0, 1.0, np.nan],
            [1.0, 1.0, 1.0, -3.0, 1.0, 1.0, np.nan],
        )
    assert ignored == turnover.ignored == 6
    assert not turnover.today.any()
    with pytest.raises(ValueError, match="same length"):
        turnover.add([0], [1.0, 2.0], [1.0])


def test_config_defaults_and_validation() -> None:
    assert TurnoverConfig().days == 20
    decode = msgspec.json.Decoder(TurnoverConfig)
    for bad in (b'{"days": 0}', b'{"window": 3}'):
        with pytest.raises(msgspec.ValidationError):
            decode.decode(bad)


def test_an_empty_batch_adds_nothing() -> None:
    turnover = Turnover(3)
    assert turnover.add(np.empty(0, np.int64), np.empty(0), np.empty(0)) == 0
    assert turnover.today.tolist() == [0.0, 0.0, 0.0]
