"""``tickindex bench --json`` reports consistent figures (no timing thresholds here)."""

from __future__ import annotations

import json

import pytest

from tickindex.cli.main import main


def test_bench_json_figures(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "--json", "--ticks", "50000", "--batch-size", "5000", "--naive-ticks", "500"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ticks"] == 50000 and result["naive_ticks"] == 500
    assert result["ticks_per_s"] > 0 and result["naive_ticks_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["ticks_per_s"] / result["naive_ticks_per_s"])
    assert result["naive_max_rel_diff"] <= 1e-12
    assert result["levels_per_tick"] > 1
    assert result["peak_traced_bytes"] > 0
