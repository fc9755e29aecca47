"""A quiet feed's levels follow their ticks closely, on the broker's clocks (a bound, not a bench).

The figures come from ``tickindex bench --kafka``; this only guards against a wait that would
hold a quiet feed's levels (a linger, a checkpoint in the way, a fetch held by a quiet topic):
the bound is generous so that a busy machine does not fail it.
"""

from __future__ import annotations

import pytest

from engine.refdata.builtin import load_builtin_universe
from tickindex.bench.kafka import run_tick_to_level_bench
from tickindex.bench.kafka_figures import KafkaBenchSettings

pytestmark = pytest.mark.kafka

RATE, SECONDS, WARMUP = 200.0, 3.0, 0.5


async def test_levels_of_a_quiet_feed_follow_their_ticks_within_100_ms(
    kafka_bootstrap: str,
) -> None:
    settings = KafkaBenchSettings(
        bootstrap=kafka_bootstrap,
        tick_to_level_rates=(RATE,),
        tick_to_level_seconds=SECONDS,
        warmup_seconds=WARMUP,
    )
    [figures] = await run_tick_to_level_bench(settings, load_builtin_universe())
    assert figures.ticks == RATE * SECONDS
    assert figures.unmatched == 0, "every level's tick is on the tick topic"
    assert figures.levels >= (SECONDS - WARMUP) * RATE * 0.9, "about one level or more per tick"
    assert 0 <= figures.p50_ms <= figures.p99_ms <= figures.p999_ms <= figures.max_ms
    assert figures.p99_ms < 100, f"tick-to-level p99 {figures.p99_ms} ms at {RATE:.0f} ticks/s"
