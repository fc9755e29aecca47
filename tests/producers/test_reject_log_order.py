"""``RejectLog.hold``/``release`` and ``in_line_order``: a file's lines go out in line order."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from producers import reject_log
from producers.reject_log import RejectLog, in_line_order


def test_held_lines_go_out_in_line_order_up_to_the_line_given() -> None:
    sink = io.StringIO()
    log = RejectLog("f.csv", sink=sink)
    log.hold()
    for line, reason in ((9, "b"), (4, "a"), (9, "c"), (12, "d")):
        log.report(line, reason, "x")
    assert sink.getvalue() == ""
    log.release(9)
    assert sink.getvalue().splitlines() == ["f.csv:4: a: x", "f.csv:9: b: x", "f.csv:9: c: x"]
    log.report(10, "e", "x")
    log.release()
    assert sink.getvalue().splitlines()[3:] == ["f.csv:10: e: x", "f.csv:12: d: x"]
    assert log.summary() == sink.getvalue().splitlines()


def test_in_line_order_releases_after_each_batch_and_at_the_end() -> None:
    sink = io.StringIO()
    log = RejectLog("f.csv", sink=sink)

    def reader() -> Iterator[int]:
        for first in (2, 5):
            log.report(first + 2, "reader", "x")  # the reader's skip, before the batch
            yield first
        log.report(9, "reader", "x")  # a last chunk with no row used: no batch

    seen = []
    for batch in in_line_order(reader(), log):
        seen.append(sink.getvalue().count("\n"))
        log.report(batch, "engine", "x")  # the engine's reject, while processing
    assert seen == [0, 2]  # out once the batch before was processed
    lines = sink.getvalue().splitlines()
    assert [line.split(":")[1] for line in lines] == ["2", "4", "5", "7", "9"]


def test_held_lines_go_out_at_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file of nothing but bad rows yields no batch: memory stays bounded all the same."""
    monkeypatch.setattr(reject_log, "MAX_HELD", 3)
    sink = io.StringIO()
    log = RejectLog("f.csv", sink=sink)
    log.hold()
    for line in (7, 5, 6, 9):
        log.report(line, "bad", "x")
    assert [text.split(":")[1] for text in sink.getvalue().splitlines()] == ["5", "6", "7"]
    log.release()
    assert sink.getvalue().splitlines()[-1] == "f.csv:9: bad: x"
