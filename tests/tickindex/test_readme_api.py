"""The README's Python API example works as written."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

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
