"""Applying something that is not a maintenance event is refused with the project's EventError."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from engine.core.errors import EventError, TickIndexError
from engine.kernel.calculator import IndexCalculator
from engine.maintenance.adjustments import apply_event
from engine.maintenance.events import ReviewRow
from engine.refdata.builtin import load_builtin_universe

NOT_EVENTS: list[Any] = [
    object(),
    "stock_split",
    ReviewRow(index="HSI", security="0005", issued_shares=1.0, faf=1.0),
]


@pytest.mark.parametrize("bad", NOT_EVENTS, ids=lambda bad: type(bad).__name__)
def test_not_an_event_raises_event_error_and_changes_nothing(bad: Any) -> None:
    calculator = IndexCalculator(load_builtin_universe())
    divisors = calculator.divisors.copy()
    with pytest.raises(EventError, match="not a maintenance event") as raised:
        apply_event(calculator, bad)
    assert isinstance(raised.value, TickIndexError) and not raised.value.retriable
    np.testing.assert_array_equal(calculator.divisors, divisors)


def test_the_check_survives_python_optimisation() -> None:
    code = (
        "from engine.core.errors import EventError\n"
        "from engine.kernel.calculator import IndexCalculator\n"
        "from engine.maintenance.adjustments import apply_event\n"
        "from engine.refdata.builtin import load_builtin_universe\n"
        "try:\n"
        "    apply_event(IndexCalculator(load_builtin_universe()), object())\n"
        "except EventError as exc:\n"
        "    print('EventError', exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-O", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("EventError not a maintenance event: object")
