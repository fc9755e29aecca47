"""Figures of a partial-sum run from its read-back records: latencies, final levels, flags."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tickindex.bench.partial_sums.figures import ReadBack, final_levels, first_past
from tickindex.bench.partial_sums.maths import ENCODER, ReducedLevels
from tickindex.cli.main import main


def test_a_tick_meets_the_first_message_whose_watermark_passes_it() -> None:
    watermarks = np.array([0, 3, 2, 5], dtype=np.int64)  # a late message never moves it back
    appended = np.array([10, 20, 30, 40], dtype=np.int64)
    offsets = np.array([0, 2, 3, 4, 5], dtype=np.int64)
    np.testing.assert_array_equal(first_past(watermarks, appended, offsets), [20, 20, 40, 40, -1])


def _reduced(index: list[int], level: list[float]) -> SimpleNamespace:
    message = ReducedLevels(
        np.array(index, dtype=np.int32).tobytes(), np.array(level).tobytes(), [0]
    )
    return SimpleNamespace(timestamp=0, value=ENCODER.encode(message))


def test_final_levels_are_the_last_published_and_the_largest_step_is_found() -> None:
    read = ReadBack(
        ticks=[],
        partials=[],
        reduced=[_reduced([0, 1], [100.0, 50.0]), _reduced([1], [60.0]), _reduced([0], [99.0])],
    )
    levels, step, where = final_levels(read, np.array([100.0, 50.0, 7.0]))
    np.testing.assert_array_equal(levels, [99.0, 60.0, 7.0])
    assert step == pytest.approx(0.2) and where == 1


@pytest.mark.parametrize("flags", [["--deaf-worker", "4"], ["--partial-workers", "0"]])
def test_bad_partial_sum_flags_are_refused(
    flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "--partial-sums", *flags]) == 2
    assert "--deaf-worker" in capsys.readouterr().err
