"""A seeded synthetic world shaped like a calculation agent's, written as provider-style files.

Indices have power-law sizes (a Pareto law truncated to ``[min_members, max_members]``, most
indices small, a few large); every security is in ``1 .. max_indices_per_security`` indices;
prices, shares and free-float factors are drawn per security, and a quarter of the indices
carry a weight cap (their cap factors are computed when the files are loaded). The same seed
gives the same files byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from engine.refdata.reference_files import COMPOSITION_HEADER, INDICES_HEADER

SIZE_EXPONENT = 1.5  # Pareto tail exponent of the index sizes
CAPPED_SHARE = 0.25  # share of the indices with a weight cap
WEIGHT_CAP = 0.10


@dataclass(frozen=True)
class WorldShape:
    """How large the synthetic world is."""

    securities: int = 100_000
    indices: int = 10_000
    min_members: int = 50
    max_members: int = 500
    max_indices_per_security: int = 10
    seed: int = 13


@dataclass(frozen=True)
class WorldFiles:
    """The indices and composition files of a written world, with its membership count."""

    indices: Path
    composition: Path
    memberships: int


def index_sizes(shape: WorldShape, rng: np.random.Generator) -> NDArray[np.int64]:
    """Members per index: truncated Pareto, scaled down if the securities cannot fill them."""
    low, high, alpha = float(shape.min_members), float(shape.max_members), SIZE_EXPONENT
    u = rng.random(shape.indices)
    sizes = (low**-alpha - u * (low**-alpha - high**-alpha)) ** (-1.0 / alpha)
    members = np.floor(sizes).astype(np.int64)
    capacity = shape.securities * shape.max_indices_per_security
    if members.sum() > capacity:  # a small world: every security would exceed its limit
        members = np.maximum(members * capacity // members.sum(), 1)
    if members.sum() < shape.securities:  # too few slots to give every security an index
        members += (shape.securities - members.sum()) // shape.indices + 1
    capped: NDArray[np.int64] = np.minimum(members, shape.securities)
    return capped


def memberships_per_security(
    total: int, shape: WorldShape, rng: np.random.Generator
) -> NDArray[np.int64]:
    """Indices per security, each in ``1 .. max_indices_per_security``, summing to ``total``."""
    n, most = shape.securities, shape.max_indices_per_security
    p = min(max((total / n - 1.0) / (most - 1), 0.0), 1.0) if most > 1 else 0.0
    counts = 1 + rng.binomial(most - 1, p, n)
    diff = int(total - counts.sum())
    while diff:
        eligible = np.flatnonzero(counts < most) if diff > 0 else np.flatnonzero(counts > 1)
        chosen = rng.choice(eligible, size=min(abs(diff), eligible.size), replace=False)
        counts[chosen] += 1 if diff > 0 else -1
        diff = int(total - counts.sum())
    return counts


def membership_pairs(
    shape: WorldShape, rng: np.random.Generator
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(index, security) of every membership, grouped by index, no pair twice.

    A security's copies are laid out over the indices column by column (slot j of every index
    large enough, then slot j + 1), so the copies of one security land in distinct indices.
    """
    sizes = index_sizes(shape, rng)
    total = int(sizes.sum())
    counts = memberships_per_security(total, shape, rng)
    copies = np.repeat(rng.permutation(shape.securities), counts[: shape.securities])
    by_size = np.argsort(-sizes, kind="stable")
    slot = np.arange(sizes.max())
    in_column = slot[:, None] < sizes[by_size][None, :]  # [slot, index by size]
    index = by_size[np.nonzero(in_column)[1]]
    key = np.unique(index * shape.securities + copies)  # drops the rare repeated pair
    return key // shape.securities, key % shape.securities


def write_world(shape: WorldShape, folder: Path) -> WorldFiles:
    """Write ``indices.csv`` and ``composition.csv`` of the seeded world into ``folder``."""
    rng = np.random.default_rng(shape.seed)
    index, security = membership_pairs(shape, rng)
    codes = np.array([f"S{k:06d}" for k in range(shape.securities)])
    price = np.round(np.exp(rng.normal(3.0, 1.2, shape.securities)), 2) + 0.01
    shares = np.round(np.exp(rng.normal(20.0, 1.5, shape.securities)))
    faf = np.round(rng.uniform(0.05, 1.0, shape.securities), 2)
    capped = rng.random(shape.indices) < CAPPED_SHARE
    level = np.round(rng.uniform(1_000.0, 30_000.0, shape.indices), 2)

    indices_path = folder / "indices.csv"
    composition_path = folder / "composition.csv"
    lines = [",".join(INDICES_HEADER)]
    lines += [
        f"I{k:05d},Synthetic {k},{level[k]:.2f},{WEIGHT_CAP if capped[k] else ''}"
        for k in range(shape.indices)
    ]
    indices_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cells = zip(
        index.tolist(),
        codes[security].tolist(),
        shares[security].tolist(),
        faf[security].tolist(),
        price[security].tolist(),
        strict=True,
    )
    rows = [",".join(COMPOSITION_HEADER)]
    rows += [f"I{k:05d},{code},{s:.0f},{f:.2f},,{p:.2f}" for k, code, s, f, p in cells]
    composition_path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return WorldFiles(indices_path, composition_path, len(index))
