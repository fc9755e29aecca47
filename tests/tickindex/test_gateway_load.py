"""``tickindex bench --gateway-load``: a small run on the real broker (no timing thresholds)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from consumers.gateway.hub import GatewaySettings
from tickindex.bench.gateway_load import GatewayLoadFigures, GatewayLoadSettings, run_gateway_load
from tickindex.bench.gateway_load_clients import first_level_ts, weighted_percentile
from tickindex.bench.gateway_load_probes import metric_value, process_cpu_s, process_memory
from tickindex.bench.gateway_load_report import format_gateway_load
from tickindex.cli.main import main

pytestmark = pytest.mark.kafka


def test_fast_clients_get_every_level_and_slow_ones_are_conflated_then_disconnected(
    kafka_bootstrap: str,
) -> None:
    settings = GatewayLoadSettings(
        bootstrap=kafka_bootstrap,
        clients=3,
        slow_clients=2,
        levels_per_s=5000.0,
        seconds=4.0,
        warmup_s=0.5,
        slow_sleep_s=1.0,
        gateway=GatewaySettings(queue_levels=256, max_behind_s=1.0, send_buffer_bytes=4096),
    )
    figures = run_gateway_load(settings)
    assert figures.levels_published == 20_000 and figures.publish_seconds >= 4.0
    assert figures.gateway_messages_sent >= figures.fast_levels + figures.slow_levels
    assert 0 < figures.gateway_frames_sent < figures.gateway_messages_sent
    # A queue this short also conflates the fast clients now and then (a fetch after a pause
    # brings more than 256 levels at once): the missing levels are those conflated away.
    assert figures.fast_levels + figures.fast_levels_missing == 3 * figures.levels_published
    assert figures.fast_levels > figures.fast_levels_missing and figures.fast_disconnected == 0
    assert figures.fast_delay_p50_ms is not None and figures.fast_delay_p99_ms is not None
    assert figures.fast_delay_max_ms is not None and figures.worst_client_p99_ms is not None
    assert 0 < figures.fast_delay_p50_ms <= figures.fast_delay_p99_ms <= figures.fast_delay_max_ms
    assert figures.worst_client_p99_ms <= figures.fast_delay_max_ms
    assert figures.auditing_clients == 3  # the default 4, capped by the 3 fast clients
    assert figures.audited_delay_p99_ms is not None and figures.audited_bound_p99_ms is not None
    assert 0 < figures.audited_delay_p99_ms <= figures.audited_bound_p99_ms
    assert 0 < figures.slow_levels < figures.levels_published
    assert figures.levels_conflated > 0
    assert figures.gateway_disconnects_slow == 2
    assert 0 < figures.gateway_rss_before <= figures.gateway_max_rss
    assert figures.gateway_rss_after <= figures.gateway_max_rss
    assert figures.gateway_cpu_s > 0 and figures.clients_cpu_s > 0


def test_the_bench_command_prints_the_figures_as_json(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sizes = ["--clients", "2", "--slow-clients", "1", "--levels-per-s", "500", "--seconds", "1"]
    args = ["bench", "--gateway-load", "--json", "--bootstrap", kafka_bootstrap, *sizes]
    assert main([*args, "--warmup-s", "0.2"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert (figures["clients"], figures["slow_clients"], figures["levels_published"]) == (2, 1, 500)
    assert figures["fast_levels"] == 1000 and figures["fast_levels_missing"] == 0
    assert figures["audited_seqs_skipped"] == 0
    assert figures["fast_delay_p99_ms"] > 0


def test_metric_value_reads_one_labelled_series() -> None:
    text = (
        "# TYPE tickindex_gateway_disconnects_total counter\n"
        'tickindex_gateway_disconnects_total{reason="slow"} 3.0\n'
        'tickindex_gateway_levels_dropped_total{reason="queue_full"} 120.0\n'
    )
    assert metric_value(text, "tickindex_gateway_disconnects_total", "slow") == 3
    assert metric_value(text, "tickindex_gateway_levels_dropped_total", "queue_full") == 120
    assert metric_value(text, "tickindex_gateway_levels_dropped_total", "slow") == 0
    sent = 'tickindex_gateway_messages_sent_total{transport="websocket"} 7.0\n'
    assert (
        metric_value(sent, "tickindex_gateway_messages_sent_total", "websocket", label="transport")
        == 7
    )


def test_process_memory_of_this_process_and_of_no_process() -> None:
    resident, peak = process_memory(os.getpid())
    assert 0 < resident <= peak
    assert process_memory(-1) == (0, 0)


def test_process_cpu_of_this_process_and_of_no_process() -> None:
    started = process_cpu_s(os.getpid())
    sum(range(3_000_000))
    assert process_cpu_s(os.getpid()) > started >= 0
    assert process_cpu_s(-1) == 0.0


def test_the_text_report_names_every_figure() -> None:
    figures = GatewayLoadFigures(
        clients=200,
        slow_clients=20,
        levels_per_s=20_000.0,
        seconds=10.0,
        levels_published=200_000,
        publish_seconds=10.0,
        gateway_messages_sent=2_678_500,
        gateway_frames_sent=41_000,
        fast_levels=2_432_658,
        fast_delay_p50_ms=2699.0,
        fast_delay_p99_ms=5936.1,
        fast_delay_max_ms=6120.0,
        worst_client_p99_ms=6117.2,
        auditing_clients=4,
        audited_delay_p99_ms=5000.5,
        audited_bound_p99_ms=5100.25,
        audited_seqs_skipped=12,
        fast_levels_missing=37_565_000,
        fast_disconnected=0,
        slow_levels=620,
        levels_conflated=41_321_500,
        gateway_disconnects_slow=3,
        gateway_rss_before=76 << 20,
        gateway_rss_after=233 << 20,
        gateway_max_rss=240 << 20,
        gateway_cpu_s=9.5,
        clients_cpu_s=9.8,
    )
    text = format_gateway_load(figures)
    for shown in (
        "200 fast + 20 slow",
        "p99 5936.1 ms",
        "37,565,000 missing",
        "p99 5000.5 ms (bound 5100.2 ms), 12 seqs skipped",
        "2,678,500 levels in 41,000 WebSocket messages",
        "41,321,500 levels conflated, 3 slow disconnects",
        "76 MiB before, 233 MiB after, max 240 MiB",
        "gateway 9.5 s",
    ):
        assert shown in text


def test_first_level_ts_reads_the_first_level_of_a_message() -> None:
    message = (
        '[{"type":"gap","index":"HSI","after_seq":4,"resync":"snapshot"},'
        '{"type":"level","index":"HSI","level":1.5,"seq":9,"ts_event":1765000000123456789},'
        '{"type":"level","index":"HSI","level":1.5,"seq":10,"ts_event":1765000000999999999}]'
    )
    assert first_level_ts(message) == 1765000000123456789
    assert first_level_ts('[{"type":"gap","index":"HSI","after_seq":4}]') is None


def test_weighted_percentile_counts_each_value_its_weight() -> None:
    values, weights = np.array([30, 10, 20]), np.array([1, 98, 1])
    assert weighted_percentile(values, weights, 50) == 10
    assert weighted_percentile(values, weights, 99) == 20
    assert weighted_percentile(values, weights, 100) == 30
    assert weighted_percentile(np.array([], dtype=np.int64), np.array([]), 99) is None
