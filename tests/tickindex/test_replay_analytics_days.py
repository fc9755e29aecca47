"""`tickindex replay --analytics` day by day: Friday with --eod-dir, then Monday from the rolled
folder with --analytics-state gives Monday's records of one replay of both days.

Every count, flag, signal state and turnover is the same; the other figures agree to 1e-12
relative, not bitwise, because the rolled files' divisors are recomputed from the closing
prices (``engine.calendar.eod``), so Monday's levels differ from a continuous replay's in the
last bits. The bitwise carry-over of the analytics state itself is
``tests/engine/analytics/test_daily_state.py``'s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest

from engine.analytics.daily_state import ANALYTICS_STATE_FILE, read_analytics_state
from engine.analytics.records import AnalyticsRecord, IndexAnalytics, PairAnalytics, SignalEvent
from engine.refdata.builtin import load_builtin_universe
from engine.wire import WireCodec
from tests.support.analytics_pipeline import CONFIG, stream
from tests.support.analytics_stream import MONDAY, hkt
from tests.support.live_analytics import write_tick_csv
from tickindex.cli.main import main

pytestmark = pytest.mark.slow

FRIDAY_DATE = "2026-11-20"
MONDAY_DATE = "2026-11-23"
DATED_PAIR = "SMALLCAP_SINCE_FRIDAY"


def _config() -> dict[str, object]:
    rules = [msgspec.to_builtins(rule) for rule in CONFIG.rules]
    rules.append(
        {
            "name": "smallcap-since-friday-rising",
            "kind": "info",
            "sentence": "SmallCap relative strength since Friday's close rose for 3 intervals",
            "when": {"type": "rising", "series": f"{DATED_PAIR}.rs", "intervals": 3},
        }
    )
    return {
        "interval_ms": CONFIG.interval_ms,
        "sample_ms": CONFIG.sample_ms,
        "window": CONFIG.window,
        "turnover_days": 2,
        "watch": ["0700", "0005"],
        "pairs": [
            {"name": "SMALLCAP_VS_HSI", "a": "HSCI_SC", "b": "HSI", "window": 200},
            {"name": DATED_PAIR, "a": "HSCI_SC", "b": "HSI", "base": FRIDAY_DATE},
        ],
        "rules": rules,
    }


def _records(path: Path) -> list[AnalyticsRecord]:
    codec = WireCodec("json")
    return [codec.decode_analytics(line.encode()) for line in path.read_text().splitlines()]


def _replay(work: Path, name: str, ticks: Path, extra: Sequence[str]) -> Path:
    out = work / f"{name}.jsonl"
    args = [
        "replay",
        "--no-progress",
        "--ticks",
        str(ticks),
        "--out",
        str(work / f"{name}-levels.csv"),
    ]
    args += ["--analytics", str(out), "--analytics-config", str(work / "analytics.json")]
    assert main([*args, "--calendar", str(work / "calendar.csv"), *extra]) == 0
    return out


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("analytics_days")
    universe, ticks = stream()
    monday = ticks.ts_event >= hkt(MONDAY, 0.0)
    write_tick_csv(work / "both.csv", universe, ticks)
    write_tick_csv(work / "friday.csv", universe, ticks.take(~monday))
    write_tick_csv(work / "monday.csv", universe, ticks.take(monday))
    (work / "analytics.json").write_text(json.dumps(_config()))
    (work / "calendar.csv").write_text("date,kind\n2026-11-24,holiday\n2026-11-25,half_day\n")
    _replay(work, "both", work / "both.csv", [])
    _replay(work, "friday", work / "friday.csv", ["--eod-dir", str(work / "eod")])
    rolled = work / "eod" / MONDAY_DATE
    reference = ["--indices", str(rolled / "indices.csv")]
    reference += ["--composition", str(rolled / "composition.csv")]
    state = ["--analytics-state", str(rolled / ANALYTICS_STATE_FILE)]
    _replay(work, "monday", work / "monday.csv", [*reference, *state])
    return work


def _same(restarted: object, continuous: object, where: str) -> None:
    """Equal, floats to 1e-12 relative (``NaN`` never appears in records: None)."""
    if isinstance(continuous, float) and isinstance(restarted, float):
        assert restarted == pytest.approx(continuous, rel=1e-12, abs=1e-9), where
    elif isinstance(continuous, dict) and isinstance(restarted, dict):
        assert restarted.keys() == continuous.keys(), where
        for key, value in continuous.items():
            _same(restarted[key], value, f"{where}.{key}")
    elif isinstance(continuous, list) and isinstance(restarted, list):
        assert len(restarted) == len(continuous), where
        for row, (got, value) in enumerate(zip(restarted, continuous, strict=True)):
            _same(got, value, f"{where}[{row}]")
    else:
        assert restarted == continuous, where


def test_monday_from_the_daily_files_is_monday_of_one_replay(days: Path) -> None:
    both = _records(days / "both.jsonl")
    start = hkt(MONDAY, 0.0)
    monday = [msgspec.to_builtins(r) for r in both if r.ts_event >= start]
    restarted = [msgspec.to_builtins(r) for r in _records(days / "monday.jsonl")]
    assert len(monday) > 1000
    _same(restarted, monday, "monday")
    assert _records(days / "friday.jsonl") == [r for r in both if r.ts_event < start]
    turnover = [
        r.turnover for r in _records(days / "monday.jsonl") if isinstance(r, IndexAnalytics)
    ]
    assert turnover == [r.turnover for r in both if isinstance(r, IndexAnalytics)][-len(turnover) :]


def test_the_windows_carry_over_the_restart(days: Path) -> None:
    start = hkt(MONDAY, 0.0)
    monday = [r for r in _records(days / "monday.jsonl") if r.ts_event >= start]
    first_hsi = next(r for r in monday if isinstance(r, IndexAnalytics) and r.index == "HSI")
    # A fresh start would have no returns, turnover average or Friday close on Monday morning.
    assert first_hsi.returns_in_window > 0 and first_hsi.vol_rolling is not None
    pairs = [r for r in monday if isinstance(r, PairAnalytics)]
    carried = next(r for r in pairs if r.pair == "SMALLCAP_VS_HSI")
    assert carried.returns_in_window > CONFIG.window and carried.beta is not None
    assert any(isinstance(r, SignalEvent) for r in monday)


def test_a_pair_based_on_friday_has_rs_against_fridays_close(days: Path) -> None:
    both = _records(days / "both.jsonl")
    start = hkt(MONDAY, 0.0)
    indices = [r for r in both if isinstance(r, IndexAnalytics)]
    friday_close = {r.index: r.level for r in indices if r.final and r.ts_event < start}
    level = {(r.ts_event, r.index): r.level for r in indices}
    dated = [r for r in both if isinstance(r, PairAnalytics) and r.pair == DATED_PAIR]
    assert all(r.rs is None for r in dated if r.ts_event < start)
    monday = [r for r in dated if r.ts_event >= start]
    assert monday and all(r.rs is not None for r in monday)
    for record in monday:
        a = level[record.ts_event, "HSCI_SC"] / friday_close["HSCI_SC"]
        b = level[record.ts_event, "HSI"] / friday_close["HSI"]
        assert record.rs == 100.0 * a / b


def test_the_state_file_of_another_universe_is_a_clear_error(
    days: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = days / "eod" / MONDAY_DATE / ANALYTICS_STATE_FILE
    read_analytics_state(path, load_builtin_universe())  # fits the family it was written for
    other = days / "other"
    other.mkdir(exist_ok=True)
    (other / "indices.csv").write_text("index,name,prev_close_level,weight_cap\nONE,One,100.0,\n")
    (other / "composition.csv").write_text(
        "index,security,issued_shares,faf,cap_factor,prev_close\nONE,0005,1000,1.0,1.0,50.0\n"
    )
    args = ["replay", "--no-progress", "--ticks", str(days / "monday.csv")]
    args += ["--out", str(other / "l.csv"), "--analytics", str(other / "a.jsonl")]
    args += ["--indices", str(other / "indices.csv"), "--composition"]
    args += [str(other / "composition.csv"), "--analytics-state", str(path)]
    assert main(args) == 2
    assert "analytics state of other indices" in capsys.readouterr().err
    (other / "bad.msgpack").write_bytes(b"not msgpack")
    assert main([*args[:-1], str(other / "bad.msgpack")]) == 2
    assert "not an analytics state file" in capsys.readouterr().err
