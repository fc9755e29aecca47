"""``tickindex bench --kafka`` at a small size on the real broker: consistent figures, no timing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from engine.live.config import topic_settings
from tickindex.bench.kafka_figures import (
    KafkaBenchResult,
    LatencyFigures,
    MechanismFigures,
    ServiceFigures,
    TickToLevelFigures,
)
from tickindex.bench.report import format_kafka_result
from tickindex.cli.main import main

pytestmark = pytest.mark.kafka

SIZES = {
    "--messages": "5000",
    "--batch-ticks": "20000",
    "--ticks-per-message": "500",
    "--latency-rate": "2000",
    "--latency-seconds": "1.5",
    "--warmup-seconds": "0.5",
    "--tick-to-level-rates": "500",
    "--tick-to-level-seconds": "1.5",
    "--analytics-rounds": "1",
}


async def _topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def _check_service_run(run: dict[str, Any], ticks: int) -> None:
    assert run["ticks"] == ticks
    assert run["levels"] == run["published_levels"] == run["expected_levels"] > ticks
    assert run["gaps"] == 0
    assert 0 < run["ticks_per_s"] <= run["consumed_ticks_per_s"]
    assert run["drain_ms"] >= 0 and run["stop_ms"] >= 0


def test_kafka_bench_small_run(kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]) -> None:
    sizes = [part for flag, value in SIZES.items() for part in (flag, value)]
    args = ["bench", "--kafka", "--json", "--bootstrap", kafka_bootstrap, *sizes]
    assert main([*args, "--latency-setting", "poll_timeout_ms=1"]) == 0
    result = json.loads(capsys.readouterr().out)

    assert result["n"] == result["raw_messages"] == 5000
    assert result["raw_msgs_per_s"] > 0
    _check_service_run(result["service"], 5000)
    assert result["service_ticks_per_s"] == result["service"]["ticks_per_s"]
    assert result["ratio"] == pytest.approx(
        result["service_ticks_per_s"] / result["raw_msgs_per_s"]
    )
    _check_service_run(result["batch"], 20000)
    assert result["batch_ticks_per_s"] == result["batch"]["ticks_per_s"]

    latency = result["latency"]
    assert latency["ticks"] == latency["service_ticks"] == 3000
    assert latency["service_levels"] == latency["received_levels"] == latency["expected_levels"]
    assert latency["gaps"] == 0
    assert 0 < latency["measured_levels"] < latency["received_levels"]
    for kind in ("publish", "receive"):
        p50, p99, top = (latency[f"{kind}_{q}_ms"] for q in ("p50", "p99", "max"))
        assert 0 < p50 <= p99 <= top
    for q in ("p50", "p99", "max"):  # a level is received after it is published
        assert latency[f"receive_{q}_ms"] >= latency[f"publish_{q}_ms"]
    assert result["latency_p50_ms"] == latency["publish_p50_ms"]
    assert result["latency_p99_ms"] == latency["publish_p99_ms"]

    [stamped] = result["tick_to_level"]
    _check_tick_to_level(stamped, 500.0, 750)

    analytics = result["analytics"]
    assert analytics["setting"] == "analytics"
    on, off = analytics["on"], analytics["off"]
    assert analytics["speedup"] == pytest.approx(on["ticks_per_s"] / off["ticks_per_s"])
    for run in (on, off):  # on ticks of their own, stamped at the service's ticks/s
        _check_service_run(run, 5000)
    assert on["levels"] == off["levels"], "analytics change no level"

    settings = result["settings"]
    assert settings["latency_service"]["poll_timeout_ms"] == 1
    assert settings["batch_service"]["max_batch_ticks"] == 10_000
    runs = ("service", "batch_service", "latency_service")
    for run in runs:
        assert settings[run]["level_messages"] == "batch"
        assert settings[run]["delivery"] == "at-least-once"
        assert settings[run]["metrics_port"] == -1
        assert settings[run]["complete_level_topic"] is None, "the default service: no copies"
    topics = [{settings[run][k] for k in topic_settings()} for run in runs]
    every = set.union(*topics)
    assert len(every) == sum(len(t) for t in topics), "each run has its own topics"
    assert not every & asyncio.run(_topics(kafka_bootstrap)), "the run's topics were deleted"

    report = format_kafka_result(
        KafkaBenchResult(
            **result
            | {
                "service": ServiceFigures(**result["service"]),
                "batch": ServiceFigures(**result["batch"]),
                "latency": LatencyFigures(**latency),
                "tick_to_level": [TickToLevelFigures(**stamped)],
                "analytics": MechanismFigures(
                    **analytics | {"on": ServiceFigures(**on), "off": ServiceFigures(**off)}
                ),
            }
        )
    )
    assert "ratio" in report and "p99" in report and "seq gaps or duplicates 0" in report
    assert "tick->level :       500 ticks/s" in report and "p99.9" in report
    assert "raw echo p50" in report
    assert f"analytics   : adds {100 * (1 / analytics['speedup'] - 1):+.1f}%" in report


def _check_tick_to_level(figures: dict[str, Any], rate: float, ticks: int) -> None:
    assert figures["rate"] == rate and figures["ticks"] == ticks
    assert figures["unmatched"] == 0
    assert figures["levels"] > 0
    assert figures["broker_ticks_per_s"] == pytest.approx(rate, rel=0.5)
    quantiles = [figures[f"{q}_ms"] for q in ("p50", "p99", "p999", "max")]
    assert quantiles[0] >= 0 and quantiles == sorted(quantiles)
    echo = [figures[f"echo_{q}_ms"] for q in ("p50", "p99", "p999")]
    assert echo[0] >= 0 and echo == sorted(echo), "the raw echo ran beside the service"


def test_kafka_bench_tick_to_level_only(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["bench", "--kafka", "--tick-to-level-only", "--bootstrap", kafka_bootstrap]
    rates = ["--tick-to-level-rates", "300,600", "--tick-to-level-seconds", "1"]
    assert main([*args, *rates, "--warmup-seconds", "0.2", "--json"]) == 0
    slow, fast = json.loads(capsys.readouterr().out)["tick_to_level"]
    _check_tick_to_level(slow, 300.0, 300)
    _check_tick_to_level(fast, 600.0, 600)
