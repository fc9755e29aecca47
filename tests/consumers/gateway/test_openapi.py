"""``/v1/openapi.json``: an OpenAPI 3 document in step with the application's routes."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from consumers.gateway.app import build_app
from consumers.gateway.hub import Gateway, GatewaySettings
from consumers.gateway.openapi import DOCUMENT
from consumers.gateway.page import PAGE_PATHS
from engine.refdata.builtin import load_builtin_universe
from tests.support.gateway import running_gateway


def test_every_route_of_the_application_is_documented() -> None:
    gateway = Gateway(load_builtin_universe(), GatewaySettings(), CollectorRegistry())
    routes = {
        resource.canonical
        for resource in build_app(gateway).router.resources()
        if resource.canonical != "/v1/stream/sse"  # the same stream as /v1/stream with SSE
    }
    assert routes >= PAGE_PATHS  # the live page and its files: not REST, not documented
    assert routes - PAGE_PATHS == set(DOCUMENT["paths"])


async def test_the_document_is_served_and_every_documented_path_answers() -> None:
    async with running_gateway(None, None) as (_, client):
        response = await client.get("/v1/openapi.json")
        assert response.status == 200
        served = await response.json()
        assert served == DOCUMENT
        assert served["openapi"].startswith("3.")
        for path, operations in served["paths"].items():
            assert set(operations) == {"get"}, path
            assert "200" in operations["get"]["responses"], path
            answer = await client.get(path.replace("{code}", "HSI"))
            expected = 400 if path == "/v1/stream" else 200  # a plain GET is not a WebSocket
            assert answer.status == expected, path
            answer.close()


def test_every_schema_reference_resolves() -> None:
    found: list[str] = []

    def collect(node: object) -> None:
        if isinstance(node, dict):
            found.extend(value for key, value in node.items() if key == "$ref")
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(DOCUMENT)
    assert found
    schemas = DOCUMENT["components"]["schemas"]
    assert {ref.removeprefix("#/components/schemas/") for ref in found} <= set(schemas)
