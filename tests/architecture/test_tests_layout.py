"""The tests mirror the code: each test file in the folder of what it tests, helpers in
``tests/support``, nothing imported from ``conftest.py`` or another test module, broker tests
always marked ``kafka``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import REPO

TESTS = REPO / "tests"
# Test folders that mirror no folder of the repository.
OWN_FOLDERS = frozenset({"support", "architecture", "data"})
TOP_LEVEL_MODULES = frozenset({"__init__.py", "conftest.py"})


def _test_folders() -> Iterator[Path]:
    for folder in sorted(TESTS.rglob("*")):
        relative = folder.relative_to(TESTS)
        skipped = "__pycache__" in relative.parts or relative.parts[0] in OWN_FOLDERS
        if folder.is_dir() and not skipped:
            yield folder


def _imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            yield node.module


def test_no_module_at_the_top_level_of_tests_but_conftest() -> None:
    top_level = {path.name for path in TESTS.glob("*.py")}
    assert top_level <= TOP_LEVEL_MODULES, sorted(top_level - TOP_LEVEL_MODULES)


def test_every_test_folder_mirrors_a_folder_of_the_repository() -> None:
    folders = list(_test_folders())
    assert folders
    unmatched = [
        str(folder.relative_to(TESTS))
        for folder in folders
        if not (REPO / folder.relative_to(TESTS)).is_dir()
    ]
    assert not unmatched, f"test folders with no code folder of the same path: {unmatched}"


def test_every_test_folder_is_a_package() -> None:
    folders = [folder for folder in TESTS.rglob("*") if any(folder.glob("*.py"))]
    assert folders
    assert not [str(f.relative_to(REPO)) for f in folders if not (f / "__init__.py").is_file()]


def test_support_holds_helpers_and_no_tests() -> None:
    support = sorted((TESTS / "support").glob("*.py"))
    assert len(support) > 1
    assert not [path.name for path in support if path.name.startswith("test_")]


def test_nothing_imports_from_conftest() -> None:
    modules = sorted(TESTS.rglob("*.py"))
    assert len(modules) > 1
    importing = [
        str(path.relative_to(REPO))
        for path in modules
        if any(name.split(".")[-1] == "conftest" for name in _imported_modules(path))
    ]
    assert not importing, f"import from tests/support instead: {importing}"


def test_no_test_module_imports_another() -> None:
    importing = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in sorted(TESTS.rglob("test_*.py"))
        for name in _imported_modules(path)
        if name.startswith("tests.") and name.split(".")[-1].startswith("test_")
    ]
    assert not importing, f"shared test helpers belong in tests/support: {importing}"


def test_every_collected_test_using_the_broker_is_marked_kafka(
    request: pytest.FixtureRequest,
) -> None:
    # Whatever the -m selection, a broker test left in the session must carry the marker, so
    # `-m "not kafka"` never reaches for a broker.
    items = request.session.items
    assert request.node in items
    unmarked = [
        item.nodeid
        for item in items
        if "kafka_bootstrap" in getattr(item, "fixturenames", ())
        and item.get_closest_marker("kafka") is None
    ]
    assert not unmarked


def test_a_broker_test_is_marked_kafka_without_saying_so(
    kafka_bootstrap: str, request: pytest.FixtureRequest
) -> None:
    assert kafka_bootstrap
    assert request.node.get_closest_marker("kafka") is not None
