"""Plain-Python reference of the index maths: obviously correct, slow, used only by tests.

Nothing here is shared with the engine: it reads the same rows a composition file holds and
recomputes every level from scratch after every tick with ``math.fsum``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RefIndex:
    code: str
    prev_close_level: float
    weight_cap: float | None = None


@dataclass(frozen=True)
class RefRow:
    index: str
    security: str
    issued_shares: float
    faf: float
    cap_factor: float | None
    prev_close: float


def scalar_capped_weights(caps: list[float], cap: float) -> list[float]:
    """Cap the breaching names, spread the excess over the rest pro rata, repeat."""
    total = math.fsum(caps)
    weights = [c / total for c in caps]
    fixed = [False] * len(caps)
    while True:
        breaching = [i for i, w in enumerate(weights) if not fixed[i] and w > cap * (1 + 1e-12)]
        if not breaching:
            return weights
        for i in breaching:
            fixed[i] = True
        free = 1.0 - cap * sum(fixed)
        rest = math.fsum(c for c, f in zip(caps, fixed, strict=True) if not f)
        weights = [cap if f else free * c / rest for c, f in zip(caps, fixed, strict=True)]


def scalar_cap_factors(caps: list[float], cap: float) -> list[float]:
    weights = scalar_capped_weights(caps, cap)
    per_unit = [w / c for w, c in zip(weights, caps, strict=True)]
    top = max(per_unit)
    return [u / top for u in per_unit]


class ScalarIndexModel:
    """Levels by full recompute: level = sum(P x IS x FAF x CF) / divisor."""

    def __init__(self, indices: list[RefIndex], rows: list[RefRow]) -> None:
        self.indices = {ix.code: ix for ix in indices}
        self.prices: dict[str, float] = {r.security: r.prev_close for r in rows}
        self.members: dict[str, list[tuple[str, float]]] = {ix.code: [] for ix in indices}
        for ix in indices:
            own = [r for r in rows if r.index == ix.code]
            if ix.weight_cap is not None:
                caps = [r.prev_close * r.issued_shares * r.faf for r in own]
                factors = scalar_cap_factors(caps, ix.weight_cap)
            else:
                factors = [1.0 if r.cap_factor is None else r.cap_factor for r in own]
            for r, cf in zip(own, factors, strict=True):
                self.members[ix.code].append((r.security, r.issued_shares * r.faf * cf))
        self.divisors = {
            code: self._capitalisation(code) / self.indices[code].prev_close_level
            for code in self.members
        }

    def _capitalisation(self, code: str) -> float:
        return math.fsum(self.prices[s] * w for s, w in self.members[code])

    def level(self, code: str) -> float:
        return self._capitalisation(code) / self.divisors[code]

    def indices_of(self, security: str) -> list[str]:
        return [code for code, mem in self.members.items() if any(s == security for s, _ in mem)]

    def tick(self, security: str, price: float) -> list[tuple[str, float]]:
        """Apply one tick; return (index, level) for every index containing the security."""
        self.prices[security] = price
        return [(code, self.level(code)) for code in self.indices_of(security)]

    def chain_linked_level(self, code: str, yesterday_prices: dict[str, float]) -> float:
        """Hang Seng's published form: YCI x sum(Pt x IS x FAF x CF) / sum(Pt-1 x IS x FAF x CF)."""
        today = self._capitalisation(code)
        yesterday = math.fsum(yesterday_prices[s] * w for s, w in self.members[code])
        return self.indices[code].prev_close_level * today / yesterday
