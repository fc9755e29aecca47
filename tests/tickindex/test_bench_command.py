"""``tickindex bench --json`` reports consistent figures (no timing thresholds here)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.refdata.builtin import load_builtin_universe
from tickindex.bench.core import NaiveRecompute
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


def test_bench_without_naive_ticks_reports_no_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "--json", "--ticks", "20000", "--batch-size", "5000", "--naive-ticks", "0"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["naive_ticks"] == 0
    assert result["naive_ticks_per_s"] is None and result["ratio"] is None
    assert result["ticks_per_s"] > 0


def test_bench_text_without_naive_ticks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--ticks", "20000", "--batch-size", "5000", "--naive-ticks", "0"]) == 0
    assert "naive  : not run (--naive-ticks 0)" in capsys.readouterr().out


def test_naive_recompute_knows_the_indices_of_every_security() -> None:
    universe = load_builtin_universe()
    naive = NaiveRecompute(universe)
    m = universe.membership
    expected = [np.unique(m.index[m.security == s]).tolist() for s in range(universe.n_securities)]
    assert naive.indices_of == expected
    assert [rows.tolist() for rows in naive.members] == [
        np.flatnonzero(m.index == k).tolist() for k in range(len(universe.indices))
    ]
