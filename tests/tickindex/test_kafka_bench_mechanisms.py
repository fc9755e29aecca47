"""``tickindex bench --kafka --mechanisms``: each speed mechanism on and off, back to back."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from engine.live.config import ServiceConfig, topic_settings
from tickindex.bench.kafka_figures import (
    MECHANISMS,
    KafkaBenchResult,
    KafkaBenchSettings,
    LatencyFigures,
    MechanismFigures,
    ServiceFigures,
    TickToLevelFigures,
)
from tickindex.bench.kafka_mechanisms import MechanismRuns
from tickindex.bench.report import format_kafka_result
from tickindex.cli.main import main

SINGLE = ServiceConfig(group_id="bench-single", tick_topic="bench-single-tick", metrics_port=-1)


def _make_config(name: str, overrides: dict[str, Any]) -> ServiceConfig:
    topics: dict[str, Any] = {key: f"{name}-{key}" for key in topic_settings()}
    return ServiceConfig(group_id=name, metrics_port=-1, **topics, **overrides)


def _figures(ticks_per_s: float) -> ServiceFigures:
    return ServiceFigures(100, ticks_per_s, ticks_per_s, 0.0, 0.0, 300, 300, 300, 0)


def test_no_runs_unless_asked() -> None:
    runs = MechanismRuns(KafkaBenchSettings(), _make_config, SINGLE)
    assert runs.configs() == []


def test_each_mechanism_is_run_on_and_off_on_the_single_tick_topic() -> None:
    settings = KafkaBenchSettings(mechanisms=True, mechanism_rounds=2, service={"linger_ms": 3})
    runs = MechanismRuns(settings, _make_config, SINGLE)
    assert list(runs.pairs) == list(MECHANISMS)
    for setting, pairs in runs.pairs.items():
        assert len(pairs) == 2
        for on, off in pairs:
            assert getattr(on, setting) is True and getattr(off, setting) is False
            for other in set(MECHANISMS) - {setting}:
                assert getattr(on, other) is True and getattr(off, other) is True
            assert on.tick_topic == off.tick_topic == SINGLE.tick_topic
            assert on.linger_ms == off.linger_ms == 3
    configs = runs.configs()
    assert len(configs) == 4 * len(MECHANISMS)
    assert len({c.group_id for c in configs}) == len(configs), "each run has its own group"
    assert len({c.level_topic for c in configs}) == len(configs)
    assert len({c.state_topic for c in configs}) == len(configs)


def test_pairs_alternate_and_the_fastest_of_each_side_is_compared() -> None:
    settings = KafkaBenchSettings(mechanisms=True, mechanism_rounds=3)
    runs = MechanismRuns(settings, _make_config, SINGLE)
    order: list[tuple[str, bool]] = []
    speeds = iter([200.0, 100.0, 120.0, 300.0, 250.0, 110.0] * len(MECHANISMS))

    async def time_service(config: ServiceConfig) -> ServiceFigures:
        run = config.group_id.removeprefix(f"{SINGLE.group_id}-")  # SETTING-onN or SETTING-offN
        setting = run.rsplit("-", 1)[0]
        order.append((setting, getattr(config, setting)))
        return _figures(next(speeds))

    figures = asyncio.run(runs.time(time_service))
    first = [state for setting, state in order if setting == MECHANISMS[0]]
    assert first == [True, False, False, True, True, False]
    # on: 200, 300, 250; off: 100, 120, 110 -> 300 / 120
    assert [f.setting for f in figures] == list(MECHANISMS)
    assert figures[0].on_ticks_per_s == [200.0, 300.0, 250.0]
    assert figures[0].off_ticks_per_s == [100.0, 120.0, 110.0]
    assert figures[0].speedup == pytest.approx(2.5)
    assert figures[0].on.ticks_per_s == 300.0 and figures[0].off.ticks_per_s == 120.0


@pytest.mark.kafka
def test_kafka_bench_with_mechanisms_small_run(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sizes = {
        "--messages": "3000",
        "--batch-ticks": "6000",
        "--ticks-per-message": "500",
        "--latency-rate": "1000",
        "--latency-seconds": "1",
        "--warmup-seconds": "0.2",
        "--mechanism-rounds": "1",
        "--analytics-rounds": "0",
        "--tick-to-level-rates": "500",
        "--tick-to-level-seconds": "0.5",
    }
    args = [part for flag, value in sizes.items() for part in (flag, value)]
    assert (
        main(["bench", "--kafka", "--json", "--mechanisms", "--bootstrap", kafka_bootstrap, *args])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["analytics"] is None
    assert [m["setting"] for m in result["mechanisms"]] == list(MECHANISMS)
    for mechanism in result["mechanisms"]:
        on, off = mechanism["on"], mechanism["off"]
        assert mechanism["speedup"] == pytest.approx(on["ticks_per_s"] / off["ticks_per_s"])
        assert mechanism["on_ticks_per_s"] == [on["ticks_per_s"]]
        for run in (on, off):
            assert run["ticks"] == 3000 and run["gaps"] == 0
            assert run["published_levels"] == run["expected_levels"] == result["service"]["levels"]

    report = format_kafka_result(
        KafkaBenchResult(
            **result
            | {
                "service": ServiceFigures(**result["service"]),
                "batch": ServiceFigures(**result["batch"]),
                "latency": LatencyFigures(**result["latency"]),
                "tick_to_level": [TickToLevelFigures(**f) for f in result["tick_to_level"]],
                "mechanisms": [
                    MechanismFigures(
                        **m | {"on": ServiceFigures(**m["on"]), "off": ServiceFigures(**m["off"])}
                    )
                    for m in result["mechanisms"]
                ],
            }
        )
    )
    for mechanism in result["mechanisms"]:
        assert f"{mechanism['setting']:<16}: speed-up {mechanism['speedup']:.2f}x" in report
