"""The project's Prometheus rules, alerts and Grafana dashboard as the tests read them."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.support.paths import REPO as ROOT

RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "tickindex-dashboard.json"
ALERTS = frozenset(
    {
        "TickIndexDown",
        "NoTicksDuringTradingSession",
        "ConsumerLagGrowing",
        "DeadLettersArriving",
        "IndexStale",
        "CheckpointTooOld",
    }
)


def rules() -> list[tuple[str, str, str]]:
    """``(kind, name, expr)`` of every rule in rules.yml (``record`` or ``alert``)."""
    found: list[tuple[str, str, str]] = []
    lines = RULES.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        head = re.match(r"\s*- (record|alert): (\S+)$", line)
        if head is None:
            continue
        expr_line = next(
            j for j in range(i + 1, len(lines)) if lines[j].lstrip().startswith("expr:")
        )
        inline = lines[expr_line].split("expr:", 1)[1].strip()
        body = [] if inline in {"|", ">-"} else [inline]
        indent = len(lines[expr_line]) - len(lines[expr_line].lstrip())
        for follow in lines[expr_line + 1 :]:
            if follow.strip() and len(follow) - len(follow.lstrip()) <= indent:
                break
            body.append(follow.strip())
        found.append((head.group(1), head.group(2), " ".join(body).strip()))
    return found


def recorded_names() -> set[str]:
    return {name for kind, name, _ in rules() if kind == "record"}


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data
