"""The calculation core stays synchronous and Kafka-free: same code for live, replay and tests."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = [
    "engine.calculator",
    "engine.capping",
    "engine.columns",
    "engine.conflation",
    "engine.currency",
    "engine.pipeline",
    "engine.reference_data",
    "engine.screening",
    "engine.sequencing",
    "engine.state",
    "engine.universe",
    "engine.wire",
]


def test_core_imports_neither_asyncio_nor_kafka() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in CORE_MODULES)
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'asyncio', 'aiokafka', 'prometheus_client'})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
