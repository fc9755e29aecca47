"""Query parameters of the gateway's endpoints, checked: a bad one is a 4xx JSON error."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import msgspec
from aiohttp import web

from engine.core.timestamps import parse_timestamp

MAX_CONFLATE_MS = 60_000


def json_error(status: type[web.HTTPError], message: str) -> web.HTTPError:
    """An HTTP error whose body is ``{"error": message}``."""
    return status(
        text=msgspec.json.encode({"error": message}).decode(), content_type="application/json"
    )


def index_codes(
    query: Mapping[str, str], known: Collection[str], most: int
) -> frozenset[str] | None:
    """The ``indices=A,B`` filter (None without one); unknown codes or more than ``most`` of
    them are a 400."""
    text = query.get("indices")
    if text is None:
        return None
    codes = [code.strip() for code in text.split(",") if code.strip()]
    if not codes:
        raise json_error(web.HTTPBadRequest, "indices: empty subscription")
    if len(set(codes)) > most:
        raise json_error(
            web.HTTPBadRequest, f"indices: {len(set(codes))} codes, at most {most} allowed"
        )
    unknown = sorted(set(codes) - set(known))
    if unknown:
        raise json_error(web.HTTPBadRequest, f"indices: unknown index {', '.join(unknown)}")
    return frozenset(codes)


def time_bound(query: Mapping[str, str], name: str) -> int | None:
    """``from``/``to``: nanoseconds since the epoch or ISO-8601 with an offset (optional)."""
    text = query.get(name)
    if text is None:
        return None
    try:
        return parse_timestamp(text)
    except (ValueError, OverflowError) as exc:
        raise json_error(web.HTTPBadRequest, f"{name}: {exc}") from None


def conflate_seconds(query: Mapping[str, str]) -> float:
    """``conflate_ms``: the client's conflation interval in seconds (0 without one)."""
    text = query.get("conflate_ms", "0")
    if not text.isdigit() or int(text) > MAX_CONFLATE_MS:
        raise json_error(
            web.HTTPBadRequest, f"conflate_ms: an integer 0 to {MAX_CONFLATE_MS}, got {text!r}"
        )
    return int(text) / 1000


def since_seqs(query: Mapping[str, str], known: Collection[str]) -> dict[str, int]:
    """``since=CODE:SEQ,...``: the last seq the client got per index (empty without one)."""
    text = query.get("since")
    if text is None:
        return {}
    since: dict[str, int] = {}
    for item in text.split(","):
        code, _, seq = item.strip().partition(":")
        if code not in known:
            raise json_error(web.HTTPBadRequest, f"since: unknown index {code!r}")
        if not seq.lstrip("-").isdigit():
            raise json_error(web.HTTPBadRequest, f"since: {item!r} is not CODE:SEQ")
        since[code] = int(seq)
    return since


@dataclass(frozen=True)
class Subscription:
    """What a stream client asked for."""

    indices: frozenset[str] | None
    conflate_s: float
    since: dict[str, int]
    analytics: bool = False


def analytics_wanted(query: Mapping[str, str]) -> bool:
    """``analytics=1``: the client also wants the analytics records (``0`` or absent: not)."""
    text = query.get("analytics", "0")
    if text not in ("0", "1"):
        raise json_error(web.HTTPBadRequest, f"analytics: 0 or 1, got {text!r}")
    return text == "1"


def subscription(query: Mapping[str, str], known: Collection[str], most: int) -> Subscription:
    """The stream parameters of ``query``, checked against the ``known`` index codes."""
    indices = index_codes(query, known, most)
    since = since_seqs(query, known)
    if indices is not None and not set(since) <= indices:
        raise json_error(web.HTTPBadRequest, "since: names an index outside the subscription")
    return Subscription(indices, conflate_seconds(query), since, analytics_wanted(query))
