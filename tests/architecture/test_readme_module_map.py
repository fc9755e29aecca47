"""README's module map (the table under "## Layout") names the tree as it is."""

from __future__ import annotations

import re

from tests.support.paths import REPO

TOP_LEVEL = ("producers", "consumers", "tickindex", "deploy", "tests")


def mapped_paths() -> list[str]:
    """Every path in the first column of the Layout table."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    firsts = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return [path for cell in firsts for path in re.findall(r"`([^`]+)`", cell)]


def engine_packages() -> list[str]:
    """``engine`` sub-packages (folders with an ``__init__.py``), except package data."""
    return sorted(
        str(init.parent.relative_to(REPO))
        for init in (REPO / "engine").rglob("__init__.py")
        if init.parent != REPO / "engine" and "data" not in init.parent.parts
    )


def test_every_path_in_the_module_map_exists() -> None:
    paths = mapped_paths()
    assert paths, "no Layout table found in README.md"
    assert [path for path in paths if not (REPO / path).exists()] == []


def test_every_package_is_in_the_module_map() -> None:
    paths = set(mapped_paths())
    assert [name for name in [*TOP_LEVEL, *engine_packages()] if name not in paths] == []
