"""``tickindex record`` on a level topic with malformed messages: each is skipped, counted and
logged with its ``topic[partition]@offset``; the good levels are all written; no crash."""

from __future__ import annotations

import asyncio
import csv
import logging
from pathlib import Path

import msgspec
import pytest

from engine.wire import IndexLevel
from tests.support.level_topic import Message, hk, levels, produce, unique
from tickindex.cli.main import main

GOOD_TS = hk("2026-11-20 10:00")


def json_bad() -> list[bytes]:
    ts = GOOD_TS
    return [
        b"\xff\xfe not a level",
        b"[" * 1000 + b"]" * 1000,
        b'{"type":"index_level","index":"HSI","level":' + b"[" * 1000 + b"]" * 1000 + b"}",
        f'{{"type":"index_level","index":"HSI","level":1e999,"change":0,"ts_event":{ts},'
        f'"ts_published":{ts},"seq":7}}'.encode(),
        f'{{"type":"index_level","index":"HSI","level":1.0,"change":0,"ts_event":{ts},'
        f'"ts_published":{ts},"seq":{2**64}}}'.encode(),
        f'{{"type":"index_levels","index":"HSI","prev_close":1000.0,"level":[1.0],'
        f'"ts_event":[{2**63}],"seq":[9],"ts_published":{ts}}}'.encode(),
        f'{{"type":"index_levels","index":"HSI","prev_close":1000.0,"level":[1.0,2.0],'
        f'"ts_event":[{ts}],"seq":[9,10],"ts_published":{ts}}}'.encode(),
        f'{{"type":"index_level","index":"{"X" * 5000}","level":1.0,"change":0,'
        f'"ts_event":{ts},"ts_published":{ts},"seq":1}}'.encode(),
    ]


def msgpack_bad() -> list[bytes]:
    ts = GOOD_TS
    encode = msgspec.msgpack.encode
    return [
        b"\xc1\xff junk",
        encode(IndexLevel("HSI", float("nan"), 0.0, ts, ts, 7)),
        encode(IndexLevel("HSI", float("inf"), 0.0, ts, ts, 8)),
        encode(IndexLevel("HSI", 1.0, 0.0, ts, ts, 2**64 - 1)),
        encode(
            {"type": "index_levels", "index": "HSI", "prev_close": float("nan"),
             "level": [1.0], "ts_event": [ts], "seq": [9], "ts_published": ts}
        ),
    ]  # fmt: skip


@pytest.mark.kafka
@pytest.mark.parametrize("wire_format", ["json", "msgpack"])
def test_record_skips_and_counts_malformed_level_messages(
    kafka_bootstrap: str,
    tmp_path: Path,
    wire_format: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = unique("rec-bad")
    bad = json_bad() if wire_format == "json" else msgpack_bad()
    good = [levels("HSI", [1, 2], ts=GOOD_TS), levels("HSI", [3], ts=GOOD_TS)]
    stream: list[Message] = [good[0], *bad, good[1]]
    asyncio.run(produce(kafka_bootstrap, topic, stream, wire_format=wire_format))
    args = ["record", "--bootstrap", kafka_bootstrap, "--topic", topic, "--out-dir"]
    args += [str(tmp_path), "--from-beginning", "--duration", "3", "--wire-format", wire_format]
    with caplog.at_level(logging.WARNING, logger="consumers.level_client"):
        assert main(args) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "3 levels written to 1 file(s), 0 duplicates dropped" in err
    assert f"messages read {len(stream)}, skipped {len(bad)} malformed" in err
    for offset in range(1, len(bad) + 1):
        assert f"{topic}[0]@{offset}:" in caplog.text
    with (tmp_path / "levels-2026-11-20.csv").open() as handle:
        recorded = [(r["index"], int(r["seq"]), float(r["level"])) for r in csv.DictReader(handle)]
    assert recorded == [("HSI", 1, 1001.0), ("HSI", 2, 1002.0), ("HSI", 3, 1003.0)]
