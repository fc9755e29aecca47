"""``tickindex record --complete``: a complete level topic recorded, every gap in a seq reported."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.level_topic import hk, levels, produce, unique
from tickindex.cli.main import main

TS = hk("2026-11-20 10:00")


def _record(bootstrap: str, topic: str, out: Path) -> list[str]:
    where = ["--bootstrap", bootstrap, "--topic", topic, "--out-dir", str(out)]
    return ["record", *where, "--from-beginning", "--duration", "3", "--complete"]


@pytest.mark.kafka
def test_record_complete_reports_each_gap_and_exits_1(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = unique("rec-complete")
    stream = [
        levels("HSI", [1, 2], ts=TS),
        levels("HSCEI", [1, 2, 3], ts=TS),
        levels("HSI", [3], ts=TS),
        levels("HSI", [6, 7], ts=TS),  # 4 and 5 never published
    ]
    asyncio.run(produce(kafka_bootstrap, topic, stream))
    assert main(_record(kafka_bootstrap, topic, tmp_path)) == 1
    err = capsys.readouterr().err
    assert "8 levels written" in err
    assert "complete: 1 seq gap(s), 2 level(s) missing" in err
    assert "gap HSI seq 4-5" in err


@pytest.mark.kafka
def test_record_complete_without_gaps_exits_0(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = unique("rec-complete-ok")
    asyncio.run(produce(kafka_bootstrap, topic, [levels("HSI", [1, 2]), levels("HSI", [3])]))
    assert main(_record(kafka_bootstrap, topic, tmp_path)) == 0
    assert "complete: no seq gap" in capsys.readouterr().err
