"""Where the repository and the tests' saved data are, whatever folder a test lives in."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEST_DATA = REPO / "tests" / "data"
