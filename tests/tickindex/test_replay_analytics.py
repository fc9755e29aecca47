"""`tickindex replay --analytics`: the records of the in-memory pipeline, from files."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from engine.analytics.records import IndexAnalytics, SignalEvent
from engine.wire import WireCodec
from tests.support.analytics_pipeline import CONFIG, stream, whole
from tests.support.live_analytics import write_tick_csv
from tickindex.cli.main import main

pytestmark = pytest.mark.slow


def test_replay_writes_the_analytics_records_of_the_pipeline(tmp_path: Path) -> None:
    universe, ticks = stream()
    tick_file = tmp_path / "ticks.csv"
    write_tick_csv(tick_file, universe, ticks)
    settings = tmp_path / "analytics.json"
    settings.write_text(
        json.dumps(
            {
                "interval_ms": CONFIG.interval_ms,
                "sample_ms": CONFIG.sample_ms,
                "window": CONFIG.window,
                "rules": [msgspec.to_builtins(rule) for rule in CONFIG.rules],
            }
        )
    )
    calendar = tmp_path / "calendar.csv"  # the holidays of tests.support.analytics_stream
    calendar.write_text("date,kind\n2026-11-24,holiday\n2026-11-25,half_day\n")
    out = tmp_path / "analytics.jsonl"
    args = ["replay", "--no-progress", "--ticks", str(tick_file), "--out", str(tmp_path / "l.csv")]
    args += ["--analytics", str(out), "--analytics-config", str(settings)]
    assert main([*args, "--calendar", str(calendar)]) == 0
    codec = WireCodec("json")
    records = [codec.decode_analytics(line.encode()) for line in out.read_text().splitlines()]
    assert records == whole().records
    assert any(isinstance(r, IndexAnalytics) and r.final for r in records)
    assert any(isinstance(r, SignalEvent) for r in records)


def test_a_bad_analytics_config_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tick_file = tmp_path / "ticks.csv"
    tick_file.write_text("ts,security,price\n")
    settings = tmp_path / "analytics.toml"
    settings.write_text('indices = ["NOPE"]\n')
    args = ["replay", "--no-progress", "--ticks", str(tick_file), "--out", str(tmp_path / "l.csv")]
    args += ["--analytics", str(tmp_path / "a.jsonl"), "--analytics-config", str(settings)]
    assert main(args) == 2
    assert "unknown index 'NOPE'" in capsys.readouterr().err
