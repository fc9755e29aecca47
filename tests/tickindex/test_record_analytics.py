"""``tickindex record --analytics``: the analytics topic to daily JSON Lines files, each record
as the topic carries it, by the Hong Kong date of its event time; malformed messages counted."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from engine.analytics.records import AnalyticsRecord
from engine.wire import IndexLevel, WireCodec
from tests.support.analytics_topic import (
    Message,
    decoded_lines,
    index_record,
    json_line,
    pair_record,
    produce_analytics,
    signal_record,
)
from tests.support.level_topic import hk, unique
from tickindex.cli.main import main

FRIDAY = [hk("2026-11-20 15:59"), hk("2026-11-21 00:00") - 1]  # the second: 15:59:59 UTC
MONDAY = [hk("2026-11-23 09:30"), hk("2026-11-23 09:31")]


def _record(bootstrap: str, topic: str, out: Path, *more: str) -> list[str]:
    where = ["--bootstrap", bootstrap, "--topic", topic, "--out-dir", str(out)]
    return ["record", "--analytics", *where, "--duration", "3", *more]


@pytest.mark.kafka
@pytest.mark.parametrize("wire_format", ["json", "msgpack"])
def test_records_go_to_the_file_of_their_hong_kong_day(
    kafka_bootstrap: str,
    tmp_path: Path,
    wire_format: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = unique("rec-an")
    friday: list[AnalyticsRecord] = [index_record("HSI", FRIDAY[0], 1001.0)]
    friday += [pair_record(FRIDAY[0], 1.1)]
    friday += [index_record("HSI", FRIDAY[1], 1002.0, final=True), signal_record(FRIDAY[1], True)]
    monday: list[AnalyticsRecord] = [index_record("HSI", MONDAY[0], 1003.0)]
    monday += [signal_record(MONDAY[1], False)]
    codec = WireCodec("json" if wire_format == "json" else "msgpack")
    bad = [
        b"\xff\xfe junk",
        b"[" * 1000 + b"]" * 1000,
        codec.encode(IndexLevel("HSI", 1, 0, 1, 1, 1)),
    ]
    stream: list[Message] = [*friday[:2], *bad, *friday[2:], *monday]
    asyncio.run(produce_analytics(kafka_bootstrap, topic, stream, wire_format=wire_format))
    args = _record(kafka_bootstrap, topic, tmp_path, "--from-beginning", "--wire-format")
    with caplog.at_level(logging.WARNING, logger="consumers.level_client"):
        assert main([*args, wire_format]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "6 analytics records written to 2 file(s), 0 duplicates dropped" in err
    assert f"messages read {len(stream)}, skipped {len(bad)} malformed" in err
    for offset in (2, 3, 4):
        assert f"{topic}[0]@{offset}:" in caplog.text
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jsonl")) == [
        "2026-11-20/analytics.jsonl",
        "2026-11-23/analytics.jsonl",
    ]
    friday_file = (tmp_path / "2026-11-20" / "analytics.jsonl").read_bytes()
    assert friday_file == b"".join(map(json_line, friday))
    assert decoded_lines(friday_file) == friday
    assert decoded_lines((tmp_path / "2026-11-23" / "analytics.jsonl").read_bytes()) == monday


@pytest.mark.kafka
def test_a_restarted_recorder_appends_and_drops_republished_records(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    topic, group = unique("rec-an-append"), unique("g")
    first: list[AnalyticsRecord] = [pair_record(MONDAY[0], 1.0), pair_record(MONDAY[1], 1.1)]
    asyncio.run(produce_analytics(kafka_bootstrap, topic, first))
    args = _record(kafka_bootstrap, topic, tmp_path, "--group-id", group, "--from-beginning")
    assert main(args) == 0
    later: list[AnalyticsRecord] = [pair_record(MONDAY[1] + 1_000_000_000, 1.2)]
    asyncio.run(produce_analytics(kafka_bootstrap, topic, [*later, later[0]]))
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "1 analytics records written to 1 file(s), 1 duplicates dropped" in err
    recorded = (tmp_path / "2026-11-23" / "analytics.jsonl").read_bytes()
    assert recorded == b"".join(map(json_line, [*first, *later]))


@pytest.mark.parametrize("extra", [["--complete"], ["--format", "csv"]])
def test_analytics_refuses_level_only_options(
    tmp_path: Path, extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["record", "--analytics", "--bootstrap", "127.0.0.1:1", "--out-dir", str(tmp_path)]
    assert main([*args, *extra]) == 2
    assert "--analytics records JSON Lines" in capsys.readouterr().err
