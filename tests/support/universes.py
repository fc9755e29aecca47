"""Engine universes for tests, built from reference rows without going through files."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.refdata.universe import IndexSpec, Membership, Universe, build_universe
from tests.support.scalar_reference import RefIndex, RefRow


def universe_from_rows(
    indices: list[RefIndex], rows: list[RefRow], extra_specs: Sequence[IndexSpec] = ()
) -> Universe:
    """Build an engine Universe from reference rows, without going through files.

    ``extra_specs`` (total return indices) follow the price indices and have no rows.
    """
    specs = [IndexSpec(ix.code, ix.code, ix.prev_close_level, ix.weight_cap) for ix in indices]
    specs += extra_specs
    securities = sorted({r.security for r in rows})
    sid = {s: i for i, s in enumerate(securities)}
    iid = {ix.code: i for i, ix in enumerate(indices)}
    prev_close = np.zeros(len(securities))
    for r in rows:
        prev_close[sid[r.security]] = r.prev_close
    capped = {ix.code for ix in indices if ix.weight_cap is not None}
    membership = Membership(
        index=np.array([iid[r.index] for r in rows], dtype=np.int32),
        security=np.array([sid[r.security] for r in rows], dtype=np.int32),
        issued_shares=np.array([r.issued_shares for r in rows]),
        faf=np.array([r.faf for r in rows]),
        cap_factor=np.array(
            [
                np.nan if r.index in capped else (1.0 if r.cap_factor is None else r.cap_factor)
                for r in rows
            ]
        ),
    )
    return build_universe(specs, securities, prev_close, membership)


def random_rows(
    rng: np.random.Generator,
    n_securities: int,
    n_indices: int,
    price_range: tuple[float, float] = (0.5, 500.0),
    capped_fraction: float = 0.3,
) -> tuple[list[RefIndex], list[RefRow]]:
    """A random universe with overlapping memberships; every index has at least one member."""
    lo, hi = np.log(price_range[0]), np.log(price_range[1])
    prices = np.exp(rng.uniform(lo, hi, n_securities))
    shares = np.exp(rng.uniform(np.log(1e6), np.log(1e11), n_securities))
    fafs = np.round(rng.uniform(0.05, 1.0, n_securities), 2).clip(0.01, 1.0)
    indices: list[RefIndex] = []
    rows: list[RefRow] = []
    for k in range(n_indices):
        size = int(rng.integers(1, n_securities + 1))
        members = rng.choice(n_securities, size=size, replace=False)
        cap = None
        if size >= 5 and rng.random() < capped_fraction:
            cap = float(max(rng.uniform(0.1, 0.5), 1.0 / size + 0.01))
        code = f"IX{k}"
        indices.append(RefIndex(code, float(rng.uniform(100, 30000)), cap))
        for s in sorted(members.tolist()):
            cf = None if cap is not None or rng.random() < 0.5 else float(rng.uniform(0.2, 1.0))
            rows.append(
                RefRow(code, f"S{s:04d}", float(shares[s]), float(fafs[s]), cf, float(prices[s]))
            )
    return indices, rows
