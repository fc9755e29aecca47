"""The gateway's REST endpoints on a real level topic; errors as JSON; the bearer token."""

from __future__ import annotations

import numpy as np
import pytest

from consumers.gateway.hub import GatewaySettings
from engine.refdata.builtin import load_builtin_universe
from tests.support.gateway import running_gateway
from tests.support.level_topic import levels, produce, unique
from tests.support.live import wait_until
from tickindex.cli.main import main

TS = 1_795_138_200_000_000_000  # 2026-11-20T09:30:00+08:00


async def test_rest_endpoints_serve_the_topic(kafka_bootstrap: str) -> None:
    topic = unique("gw-rest")
    await produce(
        kafka_bootstrap,
        topic,
        [levels("HSI", [1, 2, 3, 4, 5], ts=TS), levels("HSCEI", [1, 2, 3], base=500.0, ts=TS)],
    )
    settings = GatewaySettings(max_subscription=2)
    async with running_gateway(kafka_bootstrap, topic, settings) as (gateway, client):

        async def arrived() -> bool:
            return [lv.seq for lv in gateway.book.latest()] == [3, 5]

        await wait_until(arrived, "the levels in the gateway")
        snapshot = await (await client.get("/v1/levels")).json()
        assert snapshot == {
            "levels": [
                {
                    "type": "level",
                    "index": "HSCEI",
                    "level": 503.0,
                    "seq": 3,
                    "ts_event": TS + 3,
                    "day_high": 503.0,
                    "day_low": 501.0,
                },
                {
                    "type": "level",
                    "index": "HSI",
                    "level": 1005.0,
                    "seq": 5,
                    "ts_event": TS + 5,
                    "day_high": 1005.0,
                    "day_low": 1001.0,
                },
            ]
        }
        only = await (await client.get("/v1/levels?indices=HSI")).json()
        assert [lv["index"] for lv in only["levels"]] == ["HSI"]

        universe = load_builtin_universe()
        listed = (await (await client.get("/v1/indices")).json())["indices"]
        assert [i["code"] for i in listed] == list(universe.index_codes)
        counts = np.bincount(universe.membership.index).tolist()
        assert [i["constituents"] for i in listed] == counts
        assert listed[0]["name"] == "Hang Seng Index"
        assert [i["prev_close"] for i in listed] == [
            spec.prev_close_level for spec in universe.indices
        ]

        response = await client.get(f"/v1/levels/HSI/history?from={TS + 2}&to={TS + 4}")
        assert [lv["seq"] for lv in (await response.json())["levels"]] == [2, 3, 4]
        iso = "/v1/levels/HSI/history?from=2026-11-20T09:30:00.000000003%2B08:00"
        assert [lv["seq"] for lv in (await (await client.get(iso)).json())["levels"]] == [3, 4, 5]

        weights = (await (await client.get("/v1/weights/HSI")).json())["weights"]
        assert len(weights) == counts[0]
        assert sum(w["weight"] for w in weights) == pytest.approx(1.0)
        assert weights == sorted(weights, key=lambda w: -w["weight"])


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/v1/levels/NOPE/history", 404, "unknown index 'NOPE'"),
        ("/v1/weights/NOPE", 404, "unknown index 'NOPE'"),
        ("/v1/levels/HSI/history?from=yesterday", 400, "from: "),
        ("/v1/levels/HSI/history?from=2026-11-19T09:30:00", 400, "no UTC offset"),
        ("/v1/levels/HSI/history?from=20&to=10", 400, "from is after to"),
        ("/v1/levels?indices=HSI,NOPE", 400, "unknown index NOPE"),
        ("/v1/levels?indices=HSI,HSCEI,HSTECH", 400, "3 codes, at most 2"),
        ("/v1/stream/sse?conflate_ms=fast", 400, "conflate_ms"),
        ("/v1/stream/sse?since=HSI", 400, "not CODE:SEQ"),
        ("/v1/stream/sse?indices=HSI&since=HSCEI:3", 400, "outside the subscription"),
        ("/v1/stream/sse?analytics=yes", 400, "analytics: 0 or 1"),
        ("/v1/stream", 400, "WebSocket"),
        ("/v1/nothing", 404, "Not Found"),
    ],
)
async def test_bad_requests_get_a_json_error(path: str, status: int, error: str) -> None:
    async with running_gateway(None, None, GatewaySettings(max_subscription=2)) as (_, client):
        response = await client.get(path)
        assert response.status == status
        assert response.content_type == "application/json"
        body = await response.json()
        assert error in body["error"], body


async def test_an_unexpected_error_is_a_json_500_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running_gateway(None, None) as (gateway, client):

        def broken() -> None:
            raise RuntimeError("book exploded")

        gateway.book.latest = broken  # type: ignore[method-assign,assignment]
        response = await client.get("/v1/levels")
        assert response.status == 500
        assert await response.json() == {"error": "internal error"}
    assert "book exploded" in caplog.text  # logged for the operator, not sent to the client


async def test_a_token_is_required_when_configured() -> None:
    async with running_gateway(None, None, GatewaySettings(token="s3cret")) as (_, client):
        refused = await client.get("/v1/indices")
        assert refused.status == 401
        assert refused.headers["WWW-Authenticate"] == "Bearer"
        assert "bearer token" in (await refused.json())["error"]
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401
        good = await client.get("/v1/indices", headers={"Authorization": "Bearer s3cret"})
        assert good.status == 200
        assert "Access-Control-Allow-Origin" not in good.headers


def test_a_non_loopback_address_without_a_token_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TICKINDEX_GATEWAY_TOKEN", raising=False)
    assert main(["gateway", "--host", "0.0.0.0", "--duration", "0.1"]) == 2
    assert "not a loopback address" in capsys.readouterr().err
