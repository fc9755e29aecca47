"""deploy/prometheus and deploy/grafana: promtool checks, rule coverage and dashboard metric names.

Metric names are checked against a real ``ServiceMetrics`` exposition plus the recording rules,
so a renamed metric breaks this test instead of a dashboard panel or an alert.
"""

from __future__ import annotations

import re
import subprocess
import time
from functools import cache

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from engine.live.metrics import ServiceMetrics
from tests.support.paths import REPO as ROOT
from tests.support.prometheus_config import (
    ALERTS,
    RULES,
    dashboard,
    recorded_names,
    rules,
)
from tests.support.real_parts import require_tool

RULES_TEST = ROOT / "deploy" / "prometheus" / "rules_test.yml"
#: Series Prometheus itself creates for a scrape target and for alerting rules.
PROMETHEUS_SERIES = frozenset({"up", "ALERTS"})

_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS |= {"and", "or", "unless", "bool", "offset", "inf", "nan"}
_IDENT = re.compile(r"(?<![\w.$])[A-Za-z_:][\w:]*(?![\w:]|\s*\()")
_CLAUSE = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def promql_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (not functions, labels, keywords or $vars)."""
    bare = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers, with their quoted values
    bare = re.sub(r"\[[^\]]*\]", " ", bare)  # range durations, $__rate_interval included
    bare = re.sub(r'"[^"]*"', " ", _CLAUSE.sub(" ", bare))
    return {m.group(0) for m in _IDENT.finditer(bare) if m.group(0).lower() not in _KEYWORDS}


@cache
def exposed_names() -> frozenset[str]:
    """Sample names of a real ``ServiceMetrics`` after one batch, lag and checkpoint."""
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry, ("HSI", "HSTECH"), version="0")
    metrics.record_batch(
        consumed=3,
        applied=2,
        rejected={"unknown_security": 1},
        processing_seconds=0.001,
    )
    metrics.record_published(np.array([2, 1], dtype=np.int64), np.array([0.01, 0.02, 0.03]))
    metrics.record_dead_letters({"unknown_security": 1})
    metrics.set_consumer_lag({("ticks", 0): 5})
    metrics.checkpoint_written(time.time())
    text = generate_latest(registry).decode()
    return frozenset(s.name for f in text_string_to_metric_families(text) for s in f.samples)


def dashboard_queries() -> list[tuple[str, str]]:
    """``(where, PromQL)`` of every panel target and the selector of every query variable."""
    queries: list[tuple[str, str]] = []
    for panel in dashboard()["panels"]:
        where = f"panel {panel['title']!r}"
        queries.extend((f"{where} {t['refId']}", t["expr"]) for t in panel.get("targets", []))
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.+), *\w+\)", variable["definition"])
            assert match is not None, variable["definition"]
            queries.append((f"variable {variable['name']}", match.group(1)))
    return queries


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), *args],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.prometheus
def test_promtool_check_config() -> None:
    result = promtool("check", "config", "deploy/prometheus/prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout
    assert "is valid prometheus config file syntax" in result.stdout


@pytest.mark.prometheus
def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", "deploy/prometheus/rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout  # our parse sees them all


@pytest.mark.prometheus
def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", "deploy/prometheus/rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "FAILED" not in result.stdout + result.stderr


def test_alerts_are_the_documented_set_each_with_severity_and_help() -> None:
    assert {name for kind, name, _ in rules() if kind == "alert"} == ALERTS
    blocks = re.split(r"\n\s*- alert: ", RULES.read_text(encoding="utf-8"))[1:]
    assert len(blocks) == len(ALERTS)
    for block in blocks:
        name = block.split("\n", 1)[0]
        assert re.search(r"\n\s+severity: (critical|warning)\n", block), name
        assert re.search(r"\n\s+summary: ", block) and re.search(r"\n\s+description: ", block), name


def test_every_rule_has_unit_tests() -> None:
    text = RULES_TEST.read_text(encoding="utf-8")
    for kind, name, _ in rules():
        if kind == "record":
            assert f"expr: {name}\n" in text, name
            continue
        # "exp_alerts: []" expects silence; a list, an anchor or an alias expects alerts
        tests = [t.strip() for t in re.findall(rf"alertname: {name}\n\s+exp_alerts:(.*)", text)]
        assert "[]" in tests, f"{name}: no not-firing case"
        assert [t for t in tests if t != "[]"], f"{name}: no firing case"


def test_rules_select_only_exposed_metrics() -> None:
    known = exposed_names() | PROMETHEUS_SERIES | recorded_names()
    for _, name, expr in rules():
        names = promql_names(expr)
        assert names, (name, expr)
        assert names <= known, (name, names - known)


def test_promql_names_helper() -> None:
    assert promql_names(
        'histogram_quantile(0.9, sum by (le) (rate(a_bucket{job="$j"}[$__rate_interval])))'
    ) == {"a_bucket"}
    assert promql_names('count(ALERTS{alertstate="firing"}) or vector(0)') == {"ALERTS"}
    assert promql_names('x:y:z{a=~"b|c"} == 1 and on (job) c_total > 1e-3 unless d offset 5m') == {
        "x:y:z",
        "c_total",
        "d",
    }
    assert "tickindex_ticks_consumed_total" in exposed_names()
    assert "tickindex_event_to_publish_seconds_bucket" in exposed_names()


def test_dashboard_queries_use_only_exposed_metrics() -> None:
    known = exposed_names() | PROMETHEUS_SERIES | recorded_names()
    queries = dashboard_queries()
    assert len(queries) >= 15
    for where, expr in queries:
        names = promql_names(expr)
        assert names, (where, expr)
        assert names <= known, (where, names - known)


def test_dashboard_shows_what_operators_need() -> None:
    shown = set().union(*(promql_names(expr) for _, expr in dashboard_queries()))
    assert {
        "tickindex_index_level",
        "tickindex:ticks_consumed:rate1m",
        "tickindex:ticks_applied:rate1m",
        "tickindex:event_to_publish_seconds:p50_1m",
        "tickindex:event_to_publish_seconds:p99_1m",
        "tickindex_consumer_lag_messages",
        "tickindex:ticks_rejected:rate5m",
        "tickindex_dead_letters_total",
        "tickindex_checkpoint_age_seconds",
        "tickindex:batch_size_ticks:mean1m",
        "tickindex_batch_processing_seconds_bucket",
    } <= shown


def test_dashboard_layout_and_datasource() -> None:
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
        if panel["type"] == "row":
            continue
        targets = panel["targets"]
        assert targets, panel["title"]
        assert len({t["refId"] for t in targets}) == len(targets), panel["title"]
        for item in (panel, *targets):
            assert item["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
