"""What one ``tickindex bench --partial-sums`` run does (the flags' values)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PartialSumSettings:
    """What one ``bench --partial-sums`` run does."""

    bootstrap: str
    workers: int = 4
    securities: int = 20_000
    indices: int = 1_000
    ticks: int = 400_000
    rate: float = 0.0
    chunk_ticks: int = 4_000
    seed: int = 13
    deaf_worker: int | None = None
    hold_events: bool = True
    keep_topics: bool = False
    timeout_s: float = 600.0
