"""Outside parts (Kafka broker, promtool, kcat, java, ...): skip when missing, fail in CI."""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_REAL_PARTS = os.environ.get("TICKINDEX_REQUIRE_KAFKA") == "1"


def missing_real_part(what: str) -> None:
    """Fail when CI requires the real parts (TICKINDEX_REQUIRE_KAFKA=1), else skip."""
    if REQUIRE_REAL_PARTS:
        pytest.fail(f"{what} (TICKINDEX_REQUIRE_KAFKA=1: real parts are required)")
    pytest.skip(what)


def require_tool(name: str) -> str:
    """Path of an outside tool (promtool, kcat, prometheus); fails in CI when missing."""
    path = shutil.which(name)
    if path is None:
        missing_real_part(f"{name} is not installed (deploy/install-system-deps.sh installs it)")
        raise AssertionError("unreachable")
    return path
