"""``tickindex bench --replay-io``: the three ways of replaying the same ticks, one run."""

from __future__ import annotations

import json
import os

import pytest

from engine.refdata.builtin import load_builtin_universe
from tickindex.bench.replay_io import format_replay_io, run_replay_io_benchmark
from tickindex.cli.main import main


def test_three_ways_give_the_same_levels() -> None:
    result = run_replay_io_benchmark(load_builtin_universe(), 20_000, seed=3, rounds=1)
    assert [way.name for way in result.ways] == [
        "engine only (in memory)",
        "Parquet in -> Parquet out",
        "CSV in -> Parquet out",
    ]
    assert result.same_levels
    assert len({way.levels for way in result.ways}) == 1 and result.ways[0].levels > 20_000
    assert result.ways[0].ratio_to_engine == 1.0
    assert all(way.ticks_per_s > 0 and way.cpu_seconds > 0 for way in result.ways)
    text = format_replay_io(result, None)
    assert "x engine-only" in text and "the same" in text


def test_command_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "--replay-io", "--ticks", "5000", "--json"]
    assert main(argv) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["ticks"] == 5000 and payload["same_levels"] is True
    assert len(payload["ways"]) == 3
    assert payload["cpu_core"] is None  # a replay's level writer has a thread of its own


def test_one_core_pins_the_process(capsys: pytest.CaptureFixture[str]) -> None:
    before = os.sched_getaffinity(0)
    try:
        assert main(["bench", "--replay-io", "--ticks", "2000", "--one-core", "--json"]) == 0
        payload = json.loads(capsys.readouterr().out)
        assert os.sched_getaffinity(0) == {payload["cpu_core"]}
    finally:
        os.sched_setaffinity(0, before)
