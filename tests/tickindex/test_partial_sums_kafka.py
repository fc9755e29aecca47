"""`tickindex bench --partial-sums` on the real broker, tiny: reduced levels are the engine's."""

from __future__ import annotations

import json

import pytest

from tests.support.seed import SEED
from tickindex.bench.partial_sums.run import run_partial_sums
from tickindex.bench.partial_sums.settings import PartialSumSettings
from tickindex.cli.main import main


def test_two_workers_reduce_to_the_engine_levels(kafka_bootstrap: str) -> None:
    settings = PartialSumSettings(
        kafka_bootstrap, workers=2, securities=2_000, indices=100, ticks=2_000, seed=SEED
    )
    figures = run_partial_sums(settings)
    assert figures.levels_match and figures.max_rel_diff <= 1e-9
    assert (figures.ticks, figures.workers, len(figures.events)) == (2_000, 2, 2)
    assert figures.unmatched_ticks == 0
    assert sum(stats["ticks"] for stats in figures.worker_stats) == 2_000
    assert 0 <= figures.tick_to_partial_ms[0] <= figures.tick_to_reduced_ms[0]
    assert figures.missing_barriers == {}


def test_a_deaf_worker_fails_the_check(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "bench", "--partial-sums", "--json", "--bootstrap", kafka_bootstrap,
        "--partial-workers", "2", "--partial-securities", "2000", "--partial-indices", "100",
        "--partial-ticks", "2000", "--deaf-worker", "0", "--no-event-hold",
    ]  # fmt: skip
    assert main(args) == 1
    result = json.loads(capsys.readouterr().out)
    assert not result["levels_match"] and result["mismatched_indices"] > 0
    assert result["deaf_worker"] == 0 and result["hold_events"] is False
    assert result["missing_barriers"] == {"0": [0], "1": [0]}
