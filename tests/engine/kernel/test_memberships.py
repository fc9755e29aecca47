"""``engine.kernel.memberships``: both layouts expand ticks into the same pairs, bitwise."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from engine.kernel import memberships
from engine.kernel.memberships import MembershipTable
from tests.support.seed import SEED

N_SECURITIES = 300
N_INDICES = 40


def random_memberships(
    rng: np.random.Generator,
) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.float64]]:
    """Each security in 0 to 6 distinct indices, rows shuffled."""
    per_security = rng.integers(0, 7, N_SECURITIES)
    security = np.repeat(np.arange(N_SECURITIES, dtype=np.int32), per_security)
    index = np.concatenate(
        [rng.choice(N_INDICES, int(k), replace=False) for k in per_security]
    ).astype(np.int32)
    shuffle = rng.permutation(security.size)
    weights = np.exp(rng.uniform(np.log(1e3), np.log(1e9), security.size))
    return security[shuffle], index[shuffle], weights[shuffle]


Rows = tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.float64], NDArray[np.float64]]


def table(
    rng: np.random.Generator, *, min_fill: float, monkeypatch: pytest.MonkeyPatch
) -> tuple[MembershipTable, Rows]:
    monkeypatch.setattr(memberships, "MIN_SLOT_FILL", min_fill)
    security, index, weights = random_memberships(rng)
    members = MembershipTable(security, index, weights, N_SECURITIES, N_INDICES)
    divisors = rng.uniform(1e3, 1e6, N_INDICES)
    members.set_divisors(divisors)
    return members, (security, index, weights, divisors)


def plain_pairs(
    rows: Rows,
    ticks: NDArray[np.intp],
    change: NDArray[np.float64],
) -> tuple[list[int], list[float]]:
    """Per tick, its security's indices ascending, and change x weight / divisor."""
    security, index, weights, divisors = rows
    pair_index: list[int] = []
    pair_change: list[float] = []
    for s, c in zip(ticks.tolist(), change.tolist(), strict=True):
        mine = np.flatnonzero(security == s)
        for row in mine[np.argsort(index[mine])].tolist():
            pair_index.append(int(index[row]))
            pair_change.append(c * float(weights[row] / divisors[index[row]]))
    return pair_index, pair_change


@pytest.mark.parametrize(("min_fill", "slots"), [(0.0, True), (2.0, False)])
def test_either_layout_gives_each_ticks_indices_in_order_and_bitwise_changes(
    min_fill: float, slots: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(SEED)
    members, rows = table(rng, min_fill=min_fill, monkeypatch=monkeypatch)
    assert members.uses_slots is slots
    ticks = rng.integers(0, N_SECURITIES, 2_000).astype(np.intp)  # repeats and empty ones
    change = rng.normal(0.0, 3.0, ticks.size)
    counts = members.counts(ticks)
    index, level_change = members.expand(ticks, change, counts)
    want_index, want_change = plain_pairs(rows, ticks, change)
    assert int(counts.sum()) == len(want_index)
    assert index.tolist() == want_index
    assert level_change.view(np.uint64).tolist() == np.array(want_change).view(np.uint64).tolist()


@pytest.mark.parametrize("min_fill", [0.0, 2.0])
def test_added_securities_are_in_no_index_and_change_no_other_pair(
    min_fill: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(SEED + 1)
    members, rows = table(rng, min_fill=min_fill, monkeypatch=monkeypatch)
    members.add_securities(3)
    members.add_securities(1)
    ticks = rng.integers(0, N_SECURITIES + 4, 1_000).astype(np.intp)
    ticks[:4] = np.arange(N_SECURITIES, N_SECURITIES + 4)  # every new one ticks
    change = rng.normal(0.0, 3.0, ticks.size)
    counts = members.counts(ticks)
    assert counts[ticks >= N_SECURITIES].tolist() == [0] * int((ticks >= N_SECURITIES).sum())
    index, level_change = members.expand(ticks, change, counts)
    want_index, want_change = plain_pairs(rows, ticks, change)
    assert index.tolist() == want_index
    assert level_change.view(np.uint64).tolist() == np.array(want_change).view(np.uint64).tolist()
