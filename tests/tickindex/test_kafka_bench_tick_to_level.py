"""``tickindex bench --kafka`` tick-to-level figures: quantiles of every sample, the rate flags."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tickindex.bench.kafka_tick_to_level import figures_of
from tickindex.cli.main import main


def test_the_quantiles_are_of_every_sample() -> None:
    latencies = np.sort(np.r_[np.full(991, 2), np.full(8, 30), [200]]).astype(np.int64)
    figures = figures_of(1000.0, 400, latencies, 0, 998.5)
    assert (figures.p50_ms, figures.p99_ms, figures.max_ms) == (2.0, 2.0, 200.0)
    assert 30.0 <= figures.p999_ms <= 200.0
    assert (figures.levels, figures.ticks, figures.broker_ticks_per_s) == (1000, 400, 998.5)


def test_no_sample_gives_no_quantile() -> None:
    figures = figures_of(50.0, 0, np.array([], dtype=np.int64), 0, math.nan)
    assert figures.levels == 0 and math.isnan(figures.p99_ms) and math.isnan(figures.max_ms)


@pytest.mark.parametrize("rates", ["", "1000,x", "0", "1000,-5"])
def test_bad_tick_to_level_rates_are_refused(
    rates: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["bench", "--kafka", "--tick-to-level-rates", rates])
    assert stopped.value.code == 2
    assert "--tick-to-level-rates" in capsys.readouterr().err
