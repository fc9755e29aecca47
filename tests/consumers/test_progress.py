"""The progress bar: share done, amounts, rate and time left."""

from __future__ import annotations

import io

import pytest

from consumers.progress import ProgressBar


def test_rows_rate_and_eta(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([100.0, 102.0])
    monkeypatch.setattr("consumers.progress.time.monotonic", lambda: next(clock))
    out = io.StringIO()
    bar = ProgressBar("replay", out, unit="rows")
    bar(1_000_000, 4_000_000)
    text = out.getvalue()
    assert "25.0%" in text
    assert "1,000,000/4,000,000 rows" in text
    assert "500,000 rows/s" in text
    assert "ETA 0:06" in text


def test_bytes_without_a_total_show_the_rate_only(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 4.0])
    monkeypatch.setattr("consumers.progress.time.monotonic", lambda: next(clock))
    out = io.StringIO()
    bar = ProgressBar("publish", out)
    bar(8_000_000, 0)
    bar.finish()
    assert out.getvalue() == "\rpublish [] 8.0 MB  2.0 MB/s\n"


def test_nothing_drawn_nothing_ended() -> None:
    out = io.StringIO()
    ProgressBar("x", out).finish()
    assert out.getvalue() == ""
