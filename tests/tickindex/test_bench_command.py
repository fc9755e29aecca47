"""``tickindex bench --json`` reports consistent figures (no timing thresholds here)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.refdata.builtin import load_builtin_universe
from producers.simulator import DEFAULT_RATE
from tickindex.bench.analytics import PARTS, on_event_clock
from tickindex.bench.core import START_NS, NaiveRecompute, simulated_ticks
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
    analytics = result["analytics"]
    assert analytics["ticks"] == 50000 and analytics["plain_ticks_per_s"] > 0
    live, replay = analytics["live"], analytics["replay"]
    for clock in (live, replay):
        assert clock["ratio"] == pytest.approx(
            clock["ticks_per_s"] / analytics["plain_ticks_per_s"]
        )
        assert len(clock["part_ratios"]) == PARTS
    # 50,000 ticks at 2,000 a second of event time: about 25 s from 09:30, a boundary each
    # second passed, each with the 13 indices and the 2 default pairs.
    span_ns = simulated_ticks(load_builtin_universe(), 50000, seed=7).ts_event[-1] - START_NS
    assert replay["event_rate"] == DEFAULT_RATE
    assert replay["boundaries"] == span_ns // 1_000_000_000 >= 24
    assert replay["records"] == 15 * replay["boundaries"]
    assert live["event_rate"] > 100 * DEFAULT_RATE and live["boundaries"] <= 1
    assert analytics["us_per_boundary"] == pytest.approx(
        (
            analytics["ticks"] / replay["ticks_per_s"]
            - analytics["ticks"] / analytics["plain_ticks_per_s"]
        )
        / replay["boundaries"]
        * 1e6
    )


def test_bench_without_naive_ticks_reports_no_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "--json", "--ticks", "20000", "--batch-size", "5000", "--naive-ticks", "0"]
    assert main([*args, "--no-analytics"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["naive_ticks"] == 0
    assert result["naive_ticks_per_s"] is None and result["ratio"] is None
    assert result["ticks_per_s"] > 0
    assert result["analytics"] is None


def test_bench_text_without_naive_ticks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--ticks", "20000", "--batch-size", "5000", "--naive-ticks", "0"]) == 0
    out = capsys.readouterr().out
    assert "naive  : not run (--naive-ticks 0)" in out
    assert "analytics: live clock (event time at the engine's " in out
    assert "(2,000 ticks/s of event time)" in out and "analytics ratio" in out


def test_the_live_clock_rescales_event_times_from_the_start() -> None:
    ticks = simulated_ticks(load_builtin_universe(), 1000, seed=3)
    live = on_event_clock(ticks, 1000 * DEFAULT_RATE)
    gaps, live_gaps = np.diff(ticks.ts_event - START_NS), np.diff(live.ts_event - START_NS)
    assert (live_gaps >= 0).all() and live.ts_event[0] >= START_NS
    assert (live.ts_event[-1] - START_NS) == pytest.approx(
        (ticks.ts_event[-1] - START_NS) / 1000, abs=1
    )
    assert live_gaps.sum() < gaps.sum() / 999
    assert live.price is ticks.price and live.volume is ticks.volume


def test_naive_recompute_knows_the_indices_of_every_security() -> None:
    universe = load_builtin_universe()
    naive = NaiveRecompute(universe)
    m = universe.membership
    expected = [np.unique(m.index[m.security == s]).tolist() for s in range(universe.n_securities)]
    assert naive.indices_of == expected
    assert [rows.tolist() for rows in naive.members] == [
        np.flatnonzero(m.index == k).tolist() for k in range(len(universe.indices))
    ]
