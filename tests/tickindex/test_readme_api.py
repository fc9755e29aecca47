"""The README's Python API example works as written."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO

README = REPO / "README.md"


def python_api_example() -> str:
    """The first ``python`` code block of the README's "Python API" section."""
    section = README.read_text().split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "no python code block in the Python API section"
    return match.group(1)


def test_the_example_has_five_lines_and_prints_a_finite_level(tmp_path: Path) -> None:
    code = python_api_example()
    assert len([line for line in code.splitlines() if line.strip()]) == 5  # and a blank one
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    level = float(result.stdout.strip())
    assert math.isfinite(level)
    assert 20_000 < level < 30_000  # the built-in HSI closed at 25,800


def dataframe_example() -> str:
    """The ``python`` code block of the README's "Replays as DataFrames" section."""
    section = README.read_text().split("\n### Replays as DataFrames\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "no python code block in the Replays as DataFrames section"
    return match.group(1)


@pytest.mark.slow
def test_the_dataframe_example_runs_as_written(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", dataframe_example()],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    out = result.stdout
    assert "2026-11-20 09:30:00+08:00" in out and "2026-11-20 10:15:00+08:00" in out
    assert "HSTECH" in out and "change_pct" in out
    streamed = re.search(r"([\d,]+) levels streamed", out)
    assert streamed is not None and int(streamed.group(1).replace(",", "")) > 100_000
