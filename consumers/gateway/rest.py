"""The REST endpoints and the middlewares: JSON errors (never a traceback) and bearer tokens."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable

import msgspec
import numpy as np
from aiohttp import web
from aiohttp.typedefs import Middleware

from consumers.gateway.book import Level
from consumers.gateway.day_history import DayHistory
from consumers.gateway.hub import Gateway
from consumers.gateway.query import index_codes, json_error, time_bound
from engine.refdata.universe import Universe

log = logging.getLogger(__name__)

GATEWAY = web.AppKey("gateway", Gateway)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(body: object) -> web.Response:
    """``body`` as JSON (msgspec: floats round-trip exactly)."""
    return web.Response(body=msgspec.json.encode(body), content_type="application/json")


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as ``{"error": ...}``: HTTP errors keep their status, anything else is
    logged with its traceback and answered with a plain 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        text = exc.text or ""
        message = exc.reason if not text or text.startswith(f"{exc.status}:") else text
        raise json_error(_status_class(exc.status), message) from None
    except Exception:
        log.exception("error serving %s %s", request.method, request.path)
        raise json_error(web.HTTPInternalServerError, "internal error") from None


def _status_class(status: int) -> type[web.HTTPError]:
    known: dict[int, type[web.HTTPError]] = {
        400: web.HTTPBadRequest,
        401: web.HTTPUnauthorized,
        403: web.HTTPForbidden,
        404: web.HTTPNotFound,
        405: web.HTTPMethodNotAllowed,
        413: web.HTTPRequestEntityTooLarge,
    }
    return known.get(status, web.HTTPBadRequest if status < 500 else web.HTTPInternalServerError)


def bearer_token(token: str) -> Middleware:
    """A middleware that answers 401 unless ``Authorization: Bearer <token>`` is given."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            error = json_error(web.HTTPUnauthorized, "missing or wrong bearer token")
            error.headers["WWW-Authenticate"] = "Bearer"
            raise error
        return await handler(request)

    return check


def _index_code(request: web.Request) -> str:
    code = request.match_info["code"]
    if code not in request.app[GATEWAY].universe.index_codes:
        raise json_error(web.HTTPNotFound, f"unknown index {code!r}")
    return code


async def indices(request: web.Request) -> web.Response:
    """``GET /v1/indices``: code, name, return variant, constituents count and previous
    closing level per index."""
    universe = request.app[GATEWAY].universe
    counts = np.bincount(universe.membership.index, minlength=len(universe.indices)).tolist()
    return json_response(
        {
            "indices": [
                {
                    "code": spec.code,
                    "name": spec.name,
                    "return_type": spec.return_type,
                    "underlying": spec.underlying,
                    "constituents": count,
                    "prev_close": spec.prev_close_level,
                }
                for spec, count in zip(universe.indices, counts, strict=True)
            ]
        }
    )


async def levels(request: web.Request) -> web.Response:
    """``GET /v1/levels[?indices=A,B]``: the latest level, seq and ts_event per index, with
    the high and low of its HKT day so far (null: none of its levels seen is of that day)."""
    gateway = request.app[GATEWAY]
    wanted = index_codes(
        request.query, gateway.universe.index_codes, gateway.settings.max_subscription
    )
    book = gateway.book
    return json_response(
        {
            "levels": [
                _with_day_range(level, book.day_range.of(level.index))
                for level in book.latest()
                if wanted is None or level.index in wanted
            ]
        }
    )


def _with_day_range(level: Level, day: tuple[float, float] | None) -> dict[str, object]:
    high, low = (None, None) if day is None else day
    return {**level.message(), "day_high": high, "day_low": low}


async def history(request: web.Request) -> web.Response:
    """``GET /v1/levels/{code}/history?from=&to=``: the levels between the times: the ring's,
    after those of the day files (when the gateway has them) from before the ring's oldest;
    at most ``max_history_response`` of them, the oldest first (``truncated``: there are more)."""
    code = _index_code(request)
    low, high = time_bound(request.query, "from"), time_bound(request.query, "to")
    if low is not None and high is not None and low > high:
        raise json_error(web.HTTPBadRequest, "from is after to")
    gateway = request.app[GATEWAY]
    most = gateway.settings.max_history_response
    found = gateway.book.history(code, low, high)
    if gateway.day_history is not None:
        before = gateway.book.oldest(code)
        found = (
            await _recorded_before(gateway.day_history, before, code, low, high, most=most) + found
        )
    return json_response(
        {
            "index": code,
            "levels": [level.message() for level in found[:most]],
            "truncated": len(found) > most,
        }
    )


async def _recorded_before(
    day_history: DayHistory,
    oldest: Level | None,
    code: str,
    low: int | None,
    high: int | None,
    *,
    most: int,
) -> list[Level]:
    if oldest is not None:
        high = oldest.ts_event if high is None else min(high, oldest.ts_event)
        if low is not None and low > high:
            return []
    recorded = await asyncio.to_thread(day_history.levels, code, low, high, most)
    if oldest is None:
        return recorded
    return [lv for lv in recorded if (lv.ts_event, lv.seq) < (oldest.ts_event, oldest.seq)]


def index_weights(universe: Universe, code: str) -> list[dict[str, object]]:
    """Weight (at previous closing prices) and cap factor of every constituent of ``code``,
    biggest first."""
    members = universe.membership
    rows = np.flatnonzero(members.index == universe.index_id(code))
    value = universe.prev_close[members.security[rows]] * universe.weights()[rows]
    order = np.argsort(-value, kind="stable")
    share = value[order] / value.sum()
    return [
        {"security": universe.securities[security], "weight": weight, "cap_factor": cap}
        for security, weight, cap in zip(
            members.security[rows][order].tolist(),
            share.tolist(),
            members.cap_factor[rows][order].tolist(),
            strict=True,
        )
    ]


async def weights(request: web.Request) -> web.Response:
    """``GET /v1/weights/{code}``: the index's constituents, weights and cap factors."""
    code = _index_code(request)
    universe = request.app[GATEWAY].universe
    return json_response({"index": code, "weights": index_weights(universe, code)})


async def analytics(request: web.Request) -> web.Response:
    """``GET /v1/analytics``: the latest analytics record per index, pair and signal (none
    without an analytics topic)."""
    return json_response({"records": request.app[GATEWAY].analytics.latest()})
