"""``tickindex gateway`` as a process: it prints its URL and serves the level and analytics
topics."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from engine.live.config import ConfigError
from tests.support.analytics_topic import index_record, produce_analytics
from tests.support.level_topic import hk, levels, produce, unique
from tests.support.live import wait_until
from tickindex.cli.gateway import bearer_token
from tickindex.cli.main import build_parser


async def test_the_gateway_command_serves_the_level_topic(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic, analytics_topic = unique("gw-cli"), unique("gw-cli-an")
    await produce(kafka_bootstrap, topic, [levels("HSI", [1, 2, 3])])
    record = index_record("HSI", hk("2026-11-20 10:00"), 1003.0)
    await produce_analytics(kafka_bootstrap, analytics_topic, [record])
    argv = [sys.executable, "-m", "tickindex.cli.main", "gateway", "--bootstrap", kafka_bootstrap]
    argv += ["--level-topic", topic, "--analytics-topic", analytics_topic]
    # recorded before the topic's levels (stamped 1, 2, 3 ns after the epoch)
    (tmp_path / "levels-1970-01-01.csv").write_text("ts,index,level,seq,security\n0,HSI,999.5,7,\n")
    argv += ["--history-dir", str(tmp_path), "--port", "0", "--duration", "20"]
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        line = await asyncio.to_thread(process.stderr.readline)
        assert line.startswith("tickindex gateway: serving http://127.0.0.1:"), line
        url = line.split("serving ", 1)[1].strip()
        body: dict[str, list[dict[str, object]]] = {}

        async def served() -> bool:
            reply = await asyncio.to_thread(urllib.request.urlopen, url + "levels", timeout=5)
            body.update(json.loads(reply.read()))
            return bool(body["levels"])

        await wait_until(served, "the level served over HTTP")
        assert body["levels"] == [
            {
                "type": "level",
                "index": "HSI",
                "level": 1003.0,
                "seq": 3,
                "ts_event": 3,
                "day_high": 1003.0,
                "day_low": 1001.0,
            }
        ]

        async def analytics_served() -> bool:
            reply = await asyncio.to_thread(urllib.request.urlopen, url + "analytics", timeout=5)
            body.update(json.loads(reply.read()))
            return bool(body["records"])

        await wait_until(analytics_served, "the analytics record served over HTTP")
        assert [(r["type"], r["index"], r["level"]) for r in body["records"]] == [
            ("index_analytics", "HSI", 1003.0)
        ]
        reply = await asyncio.to_thread(urllib.request.urlopen, url + "levels/HSI/history")
        history = json.loads(reply.read())["levels"]
        assert [(m["level"], m["seq"]) for m in history] == [
            (999.5, 7),
            *zip([1001.0, 1002.0, 1003.0], [1, 2, 3], strict=True),
        ]
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_the_token_comes_from_the_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = build_parser()
    monkeypatch.setenv("TICKINDEX_GATEWAY_TOKEN", "from-env")
    assert bearer_token(parser.parse_args(["gateway", "--host", "10.0.0.1"])) == "from-env"
    (tmp_path / "token").write_text("from-file\n")
    args = parser.parse_args(["gateway", "--host", "::", "--token-file", str(tmp_path / "token")])
    assert bearer_token(args) == "from-file"
    monkeypatch.delenv("TICKINDEX_GATEWAY_TOKEN")
    assert bearer_token(parser.parse_args(["gateway", "--host", "::1"])) is None
    assert bearer_token(parser.parse_args(["gateway", "--host", "localhost"])) is None
    with pytest.raises(ConfigError, match="not a loopback address"):
        bearer_token(parser.parse_args(["gateway", "--host", "gateway.example"]))
    with pytest.raises(ConfigError, match="--token-file"):
        bearer_token(parser.parse_args(["gateway", "--token-file", str(tmp_path / "none")]))


def test_the_frame_interval_is_milliseconds_from_0_to_1000(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    args = parser.parse_args(["gateway", "--frame-interval-ms", "25"])
    assert args.frame_interval_ms == 25
    assert parser.parse_args(["gateway"]).frame_interval_ms == 10
    for bad in ("-1", "1001", "2.5", "soon"):
        with pytest.raises(SystemExit):
            parser.parse_args(["gateway", "--frame-interval-ms", bad])
        assert "--frame-interval-ms" in capsys.readouterr().err
    bench = parser.parse_args(["bench", "--gateway-load", "--frame-interval-ms", "0"])
    assert bench.frame_interval_ms == 0
