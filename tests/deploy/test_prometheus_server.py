"""A real Prometheus server scrapes a real ``tickindex serve`` fed through a real Kafka broker.

The service runs as a subprocess on its own topics; Prometheus (scrape and rule evaluation every
second) loads deploy/prometheus/rules.yml. Every check polls the HTTP API until the expected state
or a deadline: nothing depends on how fast either process is.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from engine.refdata.builtin import load_builtin_universe
from engine.wire import WireCodec
from producers.kafka_publisher import TickPublisher
from producers.simulator import MarketSimulator
from tests.support.paths import REPO as ROOT
from tests.support.prometheus_config import ALERTS, RULES, dashboard, recorded_names
from tests.support.real_parts import require_tool
from tests.support.seed import SEED

pytestmark = [pytest.mark.kafka, pytest.mark.prometheus]

TICKS = 3000  # valid simulated ticks; one undecodable message more is sent
PARTITIONS = 2
DEADLINE_S = 60.0
CONSUMED = 'tickindex_ticks_consumed_total{job="tickindex"}'
_T = TypeVar("_T")


@dataclass(frozen=True)
class Stack:
    """The running service and Prometheus of this module."""

    tick_topic: str
    metrics_url: str
    prometheus_url: str

    def api(self, path: str, **params: str) -> Any:
        """``data`` of a successful Prometheus API call."""
        url = f"{self.prometheus_url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def samples(self, expr: str) -> list[tuple[dict[str, str], float]]:
        """Instant vector as ``(labels, value)`` pairs, sorted by labels."""
        pairs = [(s["metric"], float(s["value"][1])) for s in self.query(expr)]
        return sorted(pairs, key=lambda pair: sorted(pair[0].items()))

    def values(self, expr: str) -> list[float]:
        return [value for _, value in self.samples(expr)]


def wait_for(what: str, probe: Callable[[], _T | None], deadline_s: float = DEADLINE_S) -> _T:
    """Poll ``probe`` until it returns something other than None (or fail, naming ``what``)."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.25)


def _when(condition: bool, value: _T) -> _T | None:
    return value if condition else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _log_match(log: Path, pattern: str, process: subprocess.Popen[bytes]) -> re.Match[str] | None:
    if process.poll() is not None:
        pytest.fail(f"{process.args!r} exited with {process.returncode}:\n{log.read_text()}")
    return re.search(pattern, log.read_text(encoding="utf-8", errors="replace"))


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def _publish(bootstrap: str, topic: str) -> None:
    universe = load_builtin_universe()
    simulator = MarketSimulator(universe, SEED, start_ns=time.time_ns())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        publisher = TickPublisher(producer, topic, universe, WireCodec("json"))
        await publisher.publish(simulator.next_batch(TICKS))
        await publisher.flush()
        assert publisher.stats.ticks == TICKS
        await producer.send_and_wait(topic, b"not a tick", partition=0)
    finally:
        await producer.stop()


async def _delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        if doomed := [name for name in names if name in existing]:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


def _launch(argv: list[str], log: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    """Start ``argv`` with stderr to ``log``; ``processes`` keeps it for the cleanup."""
    with log.open("wb") as sink:
        processes.append(subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=sink))


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus = require_tool("prometheus")
    tmp = tmp_path_factory.mktemp("prometheus-server")
    tag = f"prom-{uuid.uuid4().hex[:12]}"
    topics = {kind: f"{kind}-{tag}" for kind in ("tick", "level", "dead-letter", "state")}
    serve_argv = [
        sys.executable,
        "-m",
        "tickindex.cli.main",
        "serve",
        "--bootstrap",
        kafka_bootstrap,
    ]
    for kind, topic in topics.items():
        serve_argv += [f"--{kind}-topic", topic]
    serve_argv += ["--group-id", tag, "--tick-partitions", str(PARTITIONS), "--metrics-port", "0"]
    serve_log, prom_log, web = tmp / "serve.log", tmp / "prometheus.log", f"127.0.0.1:{free_port()}"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        _launch(serve_argv, serve_log, processes)
        found = wait_for(
            "serve's metrics port",
            lambda: _log_match(serve_log, r"metrics on http://127\.0\.0\.1:(\d+)/", processes[0]),
        )
        metrics = f"127.0.0.1:{found.group(1)}"
        wait_for("serve to start", lambda: _log_match(serve_log, r"serving ", processes[0]))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {"job_name": "tickindex", "static_configs": [{"targets": [metrics]}]}
            ],
        }
        (tmp / "prometheus.yml").write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
        prom_argv = [prometheus, f"--config.file={tmp / 'prometheus.yml'}"]
        prom_argv += [f"--storage.tsdb.path={tmp / 'data'}", f"--web.listen-address={web}"]
        _launch(prom_argv, prom_log, processes)
        wait_for("Prometheus", lambda: _log_match(prom_log, "Server is ready", processes[1]))

        stack = Stack(topics["tick"], f"http://{metrics}/metrics", f"http://{web}")
        # Ticks only once Prometheus holds a 0 sample, or the increase would be invisible to it.
        wait_for("a scrape before the ticks", lambda: _when(stack.values(CONSUMED) == [0], True))
        asyncio.run(_publish(kafka_bootstrap, topics["tick"]))
        yield stack
    finally:
        for process in reversed(processes):
            _stop(process)
        asyncio.run(_delete_topics(kafka_bootstrap, list(topics.values())))


def test_prometheus_scrapes_every_consumed_tick(stack: Stack) -> None:
    wait_for(
        f"{CONSUMED} == {TICKS + 1}", lambda: _when(stack.values(CONSUMED) == [TICKS + 1], True)
    )
    assert stack.values('up{job="tickindex"}') == [1.0]
    assert stack.values("tickindex_ticks_applied_total") == [TICKS]
    rejected = stack.samples("tickindex_ticks_rejected_total > 0")
    assert [(labels["reason"], value) for labels, value in rejected] == [("undecodable", 1.0)]


def test_consumer_lag_is_scraped_per_partition_and_drains(stack: Stack) -> None:
    lag = f'tickindex_consumer_lag_messages{{topic="{stack.tick_topic}"}}'
    wait_for(
        "lag 0 on every partition", lambda: _when(stack.values(lag) == [0.0] * PARTITIONS, True)
    )
    partitions = [labels["partition"] for labels, _ in stack.samples(lag)]
    assert partitions == [str(p) for p in range(PARTITIONS)]


def test_recording_rules_evaluate_on_live_data(stack: Stack) -> None:
    def present(expr: str) -> Callable[[], list[tuple[dict[str, str], float]] | None]:
        return lambda: stack.samples(expr) or None

    # The ticks came in one burst: a recorded rate is positive for about a minute, so look back.
    (rate,) = wait_for(
        "consumed rate", present("max_over_time(tickindex:ticks_consumed:rate1m[10m])")
    )
    instance = stack.metrics_url.split("/")[2]
    assert rate[0] == {"job": "tickindex", "instance": instance}
    assert rate[1] > 0
    published = wait_for("levels rate", present("tickindex:levels_published:rate1m"))
    indices = sorted(labels["index"] for labels, _ in published)
    assert indices == sorted(load_builtin_universe().index_codes)
    p99 = "max_over_time(tickindex:event_to_publish_seconds:p99_1m[10m])"
    ((_, seconds),) = wait_for("latency p99", present(p99))
    assert 0 < seconds <= 10.0  # at most the histogram's top finite bucket


def test_rules_are_loaded_and_healthy(stack: Stack) -> None:
    def evaluated() -> list[dict[str, Any]] | None:
        found = [rule for group in stack.api("rules")["groups"] for rule in group["rules"]]
        return _when(all(rule["health"] == "ok" for rule in found), found)

    found = wait_for("every rule evaluated", evaluated)
    assert {r["name"] for r in found if r["type"] == "alerting"} == ALERTS
    assert {r["name"] for r in found if r["type"] == "recording"} == recorded_names()
    assert [r.get("lastError", "") for r in found] == [""] * len(found)


def test_dead_letter_alert_fires_and_the_others_stay_quiet(stack: Stack) -> None:
    def firing() -> list[dict[str, Any]] | None:
        alerts: list[dict[str, Any]] = stack.api("alerts")["alerts"]
        return _when(any(a["labels"]["alertname"] == "DeadLettersArriving" for a in alerts), alerts)

    alerts = wait_for("DeadLettersArriving", firing)
    (dead,) = [a for a in alerts if a["labels"]["alertname"] == "DeadLettersArriving"]
    assert (dead["state"], dead["labels"]["reason"], dead["labels"]["severity"]) == (
        "firing",
        "undecodable",
        "warning",
    )
    quiet = {"TickIndexDown", "ConsumerLagGrowing", "IndexStale", "CheckpointTooOld"}
    assert not [a for a in alerts if a["labels"]["alertname"] in quiet]


def test_dashboard_queries_return_labelled_data(stack: Stack) -> None:
    wait_for("recording rules", lambda: stack.query("tickindex:batch_size_ticks:mean1m") or None)
    substitutions = {
        "$__rate_interval": "1m",
        "$job": "tickindex",
        "$instance": ".*",
        "$index": ".*",
    }
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in substitutions.items():
                expr = expr.replace(variable, value)
            result = stack.query(expr)
            assert result, (panel["title"], expr)
            for label in re.findall(r"\{\{ *(\w+) *\}\}", target["legendFormat"]):
                assert all(label in s["metric"] for s in result), (panel["title"], label)
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            query = re.fullmatch(r"label_values\((.+), *(\w+)\)", variable["definition"])
            assert query is not None, variable["definition"]
            selector = query.group(1).replace("$job", "tickindex")
            values = stack.api(f"label/{query.group(2)}/values", **{"match[]": selector})
            assert values, variable["name"]


def test_live_metrics_pass_promtool_check_metrics(stack: Stack) -> None:
    with urllib.request.urlopen(stack.metrics_url, timeout=10) as response:
        text = response.read().decode()
    assert "tickindex_ticks_consumed_total" in text
    result = subprocess.run(
        [require_tool("promtool"), "check", "metrics"],
        input=text,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
