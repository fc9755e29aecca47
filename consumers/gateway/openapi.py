"""The OpenAPI 3 document of the gateway's REST endpoints, served at ``/v1/openapi.json``.

Hand-written from a small table of paths; a test checks it against the application's routes
(every REST route documented, every documented path answering).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from consumers.gateway.rest import json_response

OPENAPI_PATH = "/v1/openapi.json"

_ERROR = {"$ref": "#/components/schemas/Error"}
_LEVEL = {"$ref": "#/components/schemas/Level"}


def _query(name: str, description: str, schema_type: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": schema_type},
    }


_CODE = {
    "name": "code",
    "in": "path",
    "required": True,
    "description": "index code",
    "schema": {"type": "string"},
}
_INDICES = _query("indices", "comma-separated index codes (default: every index)")
_TIME = "nanoseconds since the epoch or ISO-8601 with a UTC offset"


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _get(
    summary: str, ok: dict[str, Any], parameters: list[dict[str, Any]], *errors: int
) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": ok}
    for status in (*errors, 401):
        responses[str(status)] = _json("error (401: missing or wrong bearer token)", _ERROR)
    return {"get": {"summary": summary, "parameters": parameters, "responses": responses}}


def _object(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


PATHS: dict[str, dict[str, Any]] = {
    "/v1/indices": _get(
        "code, name, return variant, constituents count and previous close per index",
        _json("the indices", _object(indices=_array({"$ref": "#/components/schemas/Index"}))),
        [],
    ),
    "/v1/levels": _get(
        "the latest level, seq and ts_event per index, with its HKT day's high and low",
        _json("the snapshot", _object(levels=_array({"$ref": "#/components/schemas/Latest"}))),
        [_INDICES],
        400,
    ),
    "/v1/levels/{code}/history": _get(
        "the levels of one index between two times (the in-memory ring, then the day files)",
        _json(
            "the levels, the oldest first",
            _object(
                index={"type": "string"},
                levels=_array(_LEVEL),
                truncated={
                    "type": "boolean",
                    "description": "there are more: ask again from the last one's ts_event",
                },
            ),
        ),
        [_CODE, _query("from", f"first ts_event: {_TIME}"), _query("to", f"last: {_TIME}")],
        400,
        404,
    ),
    "/v1/weights/{code}": _get(
        "the constituents of one index, biggest weight first",
        _json(
            "the weights",
            _object(
                index={"type": "string"},
                weights=_array(
                    _object(
                        security={"type": "string"},
                        weight={"type": "number"},
                        cap_factor={"type": "number"},
                    )
                ),
            ),
        ),
        [_CODE],
        404,
    ),
    "/v1/analytics": _get(
        "the latest analytics record per index, pair and signal (with --analytics-topic)",
        _json(
            "the records, as on the analytics topic (a 'type' tag each)",
            _object(records=_array({"type": "object"})),
        ),
        [],
    ),
    "/v1/stream": _get(
        "the levels as a WebSocket (or SSE with Accept: text/event-stream); not REST, listed "
        "for its parameters",
        {
            "description": (
                "a stream of messages, each a JSON array of level, gap and analytics events "
                "(oldest first); a disconnect is a WebSocket close frame with the reason (SSE: "
                "a 'disconnect' event)"
            )
        },
        [
            _INDICES,
            _query("conflate_ms", "send at most the latest level per index this often", "integer"),
            _query("since", "CODE:SEQ,...: replay what was missed since those seqs"),
            _query("analytics", "1: also the analytics records", "integer"),
        ],
        400,
    ),
    OPENAPI_PATH: _get("this document", _json("OpenAPI 3", {"type": "object"}), []),
    "/metrics": _get(
        "the gateway's metrics (Prometheus text format)",
        {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
        [],
    ),
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "tickindex gateway",
        "version": "1",
        "description": "The index levels of the level topic over HTTP. Every error is a JSON "
        '{"error": ...}; a bearer token is required when the gateway has one.',
    },
    "paths": PATHS,
    "components": {
        "schemas": {
            "Error": _object(error={"type": "string"}),
            "Level": _object(
                type={"type": "string", "enum": ["level"]},
                index={"type": "string"},
                level={"type": "number"},
                seq={"type": "integer"},
                ts_event={"type": "integer", "description": "nanoseconds since the epoch"},
            ),
            "Latest": {
                "allOf": [
                    _LEVEL,
                    _object(
                        day_high={
                            "type": "number",
                            "nullable": True,
                            "description": "highest level of the index's HKT day so far "
                            "(null: none of its levels seen is of that day)",
                        },
                        day_low={
                            "type": "number",
                            "nullable": True,
                            "description": "lowest level of the index's HKT day so far",
                        },
                    ),
                ]
            },
            "Index": _object(
                code={"type": "string"},
                name={"type": "string"},
                return_type={"type": "string"},
                underlying={"type": "string", "nullable": True},
                constituents={"type": "integer"},
                prev_close={"type": "number", "description": "previous closing level"},
            ),
        },
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    },
    "security": [{}, {"bearer": []}],
}


async def openapi(request: web.Request) -> web.Response:
    """``GET /v1/openapi.json``: the OpenAPI 3 document of the REST endpoints."""
    return json_response(DOCUMENT)
