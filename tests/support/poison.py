"""Poison tick messages of every kind, good tick messages, and checks of their dead letters."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import msgspec

from engine.kernel.columns import TickColumns
from engine.live.dead_letters import DEAD_LETTER_MAX_BYTES, MAX_KEY_BYTES
from engine.refdata.universe import Universe
from engine.wire import Tick, TickBatch, WireCodec

Message = tuple[bytes | None, bytes]


class Poison(NamedTuple):
    """A bad message: key, value, the reason it must be dead-lettered with, batch position."""

    key: bytes | None
    value: bytes
    reason: str
    position: int | None


def poison(universe: Universe, ts: int) -> list[Poison]:
    """One message of each kind of poison (about 1 MB together)."""
    code = universe.securities[3]
    key = code.encode()

    def tick(**fields: object) -> bytes:
        body = {"type": "tick", "security": code, "price": 50.0, "ts_event": ts} | fields
        return json.dumps(body).encode()

    def raw_price(text: str) -> bytes:
        return tick().replace(b"50.0", text.encode())

    nested = b'{"type":"tick","security":"%s","price":1.0,"ts_event":1,"x":' % key
    nested += b"[" * 1000 + b"]" * 1000 + b"}"
    huge = b"\xc1" + bytes(range(256)) * 3906  # ~1 MB, not JSON
    mismatched = WireCodec("json").encode(TickBatch([code, code], [50.0], [ts, ts]))
    return [
        Poison(*fields)
        for fields in [
            (key, tick(ts_event=2**63), "bad_timestamp", None),
            (key, tick(ts_event=2**64 + 1), "bad_timestamp", None),
            (key, tick(ts_event=-1), "bad_timestamp", None),
            (key, tick(seq=2**63), "bad_seq", None),
            (None, nested, "undecodable", None),
            (None, huge, "undecodable", None),
            (b"k" * 5000, b"{", "undecodable", None),
            (key, tick(price=1e308), "price_out_of_range", None),
            (key, raw_price("1e400"), "price_out_of_range", None),
            (key, raw_price("-1e400"), "price_out_of_range", None),
            (key, raw_price("NaN"), "undecodable", None),
            (key, tick(price=-5.0), "non_positive_price", None),
            (key, tick(price=0.0), "non_positive_price", None),
            (None, tick().replace(key, b"\xff\xfe\xfd\xfc"), "undecodable", None),
            (None, tick(security="X" * 1_000), "undecodable", None),
            (None, mismatched, "undecodable", None),
            (  # alone in its batch: good neighbours would be applied (test_tick_batch_*)
                None,
                json.dumps(
                    {
                        "type": "tick_batch",
                        "security": [code],
                        "price": [1.0],
                        "ts_event": [2**63],
                    }
                ).encode(),
                "bad_timestamp",
                0,
            ),
            (b"ZZZZ", tick(security="ZZZZ"), "unknown_security", None),
        ]
    ]


def singles(universe: Universe, ticks: TickColumns, codec: WireCodec) -> list[Message]:
    assert ticks.seq is not None
    columns = (ticks.security, ticks.price, ticks.ts_event, ticks.seq)
    return [
        (universe.securities[s].encode(), codec.encode(Tick(universe.securities[s], p, t, q)))
        for s, p, t, q in zip(*(c.tolist() for c in columns), strict=True)
    ]


def batches(universe: Universe, ticks: TickColumns, codec: WireCodec, size: int) -> list[Message]:
    out: list[Message] = []
    for start in range(0, len(ticks), size):
        part = ticks.slice(start, start + size)
        assert part.seq is not None
        message = TickBatch(
            [universe.securities[s] for s in part.security.tolist()],
            part.price.tolist(),
            part.ts_event.tolist(),
            part.seq.tolist(),
        )
        out.append((None, codec.encode(message)))
    return out


def check_dead_letters(letters: list[Any], tick_topic: str, bad: dict[int, Poison]) -> None:
    """Each poison message (by offset on partition 0) dead-lettered once, reason, cut to fit."""
    assert len(letters) == len(bad)
    by_source = {dict(letter.headers)["tickindex.source"].decode(): letter for letter in letters}
    for offset, (key, value, reason, position) in bad.items():
        letter = by_source[f"{tick_topic}[0]@{offset}"]
        headers = {name: data.decode() for name, data in letter.headers}
        assert headers["tickindex.reason"] == reason, (offset, headers)
        where = None if position is None else str(position)
        assert headers.get("tickindex.batch_position") == where
        assert headers["tickindex.original_size"] == str(len(value))
        size = (
            len(letter.value)
            + len(letter.key or b"")
            + sum(len(n) + len(d) for n, d in letter.headers)
        )
        assert size <= DEAD_LETTER_MAX_BYTES
        assert value.startswith(letter.value)
        assert (letter.value == value) == ("tickindex.truncated" not in headers)
        assert letter.key == (None if key is None else key[:MAX_KEY_BYTES])


def control_poison(universe: Universe, effective: int) -> list[bytes]:
    """Maintenance events the service must dead-letter as ``invalid_event``."""
    code = universe.securities[1]
    events: list[dict[str, object]] = [
        {"type": "stock_split", "effective": effective, "security": code, "ratio": 1e308},
        {"type": "stock_split", "effective": effective, "security": code, "ratio": -2},
        {"type": "stock_split", "effective": 2**63, "security": code, "ratio": 2},
        {"type": "special_dividend", "effective": effective, "security": code, "amount": 1e308},
        {
            "type": "rights_issue",
            "effective": effective,
            "security": code,
            "new_shares": 1e308,
            "per_held": 1e-308,
            "subscription_price": 1e308,
        },
        {"type": "delete_constituent", "effective": effective, "index": "NOPE", "security": code},
        {"type": "shares_change", "effective": effective, "security": "NOSUCH", "issued_shares": 1},
        {"type": "faf_change", "effective": effective, "security": code, "faf": 2.0},
    ]
    return [msgspec.json.encode(event) for event in events] + [b"[" * 1000, b"\xff junk"]
