"""The architecture as rules on the import graph: packages, engine layers, and no cycles.

Every ``import`` and ``from ... import`` statement of the project's own modules (including those
inside functions and ``TYPE_CHECKING`` blocks) is an edge. A rule broken here is a design
change: change the rule in the same commit, with the reason.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.support.paths import REPO as ROOT

TOP_PACKAGES = ("engine", "producers", "consumers", "tickindex")

# Which top-level packages each may import (besides itself).
ALLOWED_PACKAGES = {
    "engine": set(),
    "producers": {"engine"},
    "consumers": {"engine"},
    "tickindex": {"engine", "producers", "consumers"},
}

# Engine layers, lowest first: a module may import modules of its own layer or lower ones.
# The longest matching prefix decides a module's layer.
ENGINE_LAYERS: list[tuple[str, ...]] = [
    ("engine.core",),
    ("engine.refdata",),
    ("engine.kernel",),
    ("engine.maintenance", "engine.currency", "engine.calendar"),
    ("engine.analytics",),
    ("engine.pipeline", "engine.wire", "engine.testing"),
    (
        "engine.live.config",
        "engine.live.codec",
        "engine.live.level_encoding",
        "engine.live.log_limits",
        "engine.live.collectors",
        "engine.live.metrics",
        "engine.live.security_settings",
    ),
    ("engine.live.kafka",),
    ("engine.live",),
]

# Sibling packages of one engine layer that must stay independent of each other.
INDEPENDENT = [("engine.maintenance", "engine.currency", "engine.calendar")]

SYNC_CORE_LAYERS = 6  # the layers before engine.live: no asyncio, Kafka or Prometheus


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in TOP_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def imported_names(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    return {
        name: {target for target in imported_names(path) if target in modules} - {name}
        for name, path in modules.items()
    }


def engine_layer(module: str) -> int:
    best, layer = -1, -1
    for number, prefixes in enumerate(ENGINE_LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, layer = len(prefix), number
    return layer


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import that breaks a package or layer rule, as ``importer -> imported: rule``."""
    found = []
    for importer, targets in sorted(graph.items()):
        package = importer.split(".")[0]
        for target in sorted(targets):
            other = target.split(".")[0]
            if other != package and other not in ALLOWED_PACKAGES[package]:
                found.append(f"{importer} -> {target}: {package} may not import {other}")
            if package == other == "engine" and importer != "engine" and target != "engine":
                mine, theirs = engine_layer(importer), engine_layer(target)
                if theirs > mine:
                    found.append(f"{importer} -> {target}: layer {mine} imports layer {theirs}")
                found.extend(
                    f"{importer} -> {target}: {a} and {b} are independent"
                    for group in INDEPENDENT
                    for a in group
                    for b in group
                    if a != b and importer.startswith(a + ".") and target.startswith(b + ".")
                )
    return found


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle among modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_every_engine_module_has_a_layer() -> None:
    unplaced = [m for m in project_modules() if m.startswith("engine.") and engine_layer(m) < 0]
    assert unplaced == []


def test_packages_and_engine_layers_import_only_downwards() -> None:
    assert violations(import_graph(project_modules())) == []


def test_no_import_cycles_between_modules() -> None:
    assert cycle(import_graph(project_modules())) is None


def test_a_broken_rule_is_caught() -> None:
    graph = import_graph(project_modules())
    graph["engine.kernel.calculator"] = graph["engine.kernel.calculator"] | {"producers.simulator"}
    graph["producers.simulator"] = graph["producers.simulator"] | {"consumers.board"}
    graph["engine.refdata.universe"] = graph["engine.refdata.universe"] | {"engine.live.service"}
    graph["engine.currency.translator"] = graph["engine.currency.translator"] | {
        "engine.calendar.sessions"
    }
    assert violations(graph) == [
        "engine.currency.translator -> engine.calendar.sessions: "
        "engine.currency and engine.calendar are independent",
        "engine.kernel.calculator -> producers.simulator: engine may not import producers",
        "engine.refdata.universe -> engine.live.service: layer 1 imports layer 8",
        "producers.simulator -> consumers.board: producers may not import consumers",
    ]
    graph["engine.core.errors"] = graph["engine.core.errors"] | {"engine.kernel.calculator"}
    assert cycle(graph) is not None


def test_sync_core_imports_neither_asyncio_nor_kafka() -> None:
    core = sorted(
        m
        for m in project_modules()
        if m.startswith("engine.") and 0 <= engine_layer(m) < SYNC_CORE_LAYERS
    )
    code = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in core)
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'asyncio', 'aiokafka', 'prometheus_client'})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == ""
