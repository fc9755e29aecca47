"""The tick path's edge: every known crasher and range rule, dead-letter sizes, batch bounds."""

from __future__ import annotations

import hashlib
import math

import msgspec
import numpy as np
import pytest

from engine.core.bounds import MAX_PRICE
from engine.currency.translator import FxRejectReason, screen_fx
from engine.kernel.screening import RejectReason, screen_ticks
from engine.kernel.sequencing import NO_SEQ
from engine.live.codec import TickDecoder
from engine.live.config import ConfigError, load_config
from engine.live.dead_letters import (
    DEAD_LETTER_MAX_BYTES,
    MAX_DETAIL_BYTES,
    MAX_KEY_BYTES,
    dead_letter,
    record_size,
)
from engine.wire import Tick, TickBatch, WireCodec
from tests.support.records import CODE, GOOD, TS, UNIVERSE, FakeRecord, records, tick_json

DEEP = b'{"type":"tick","security":"0700","price":1.0,"ts_event":1,"x":' + b"[" * 1000
DEEP += b"]" * 1000 + b"}"

# (value, expected reason, batch position) of every known crasher of the old decoder and more.
JSON_POISON: list[tuple[bytes | None, RejectReason, int | None]] = [
    (tick_json(ts_event=2**63), RejectReason.BAD_TIMESTAMP, None),
    (tick_json(ts_event=2**64 + 5), RejectReason.BAD_TIMESTAMP, None),
    (tick_json(ts_event=0), RejectReason.BAD_TIMESTAMP, None),
    (tick_json(ts_event=-5), RejectReason.BAD_TIMESTAMP, None),
    (tick_json(ts_event=1.5e18), RejectReason.BAD_TIMESTAMP, None),
    (tick_json(seq=2**63), RejectReason.BAD_SEQ, None),
    (tick_json(seq=-1), RejectReason.BAD_SEQ, None),
    (tick_json(seq=10**40), RejectReason.BAD_SEQ, None),
    (tick_json(seq=1.0), RejectReason.BAD_SEQ, None),
    (tick_json(price=10**400), RejectReason.PRICE_OUT_OF_RANGE, None),
    (GOOD.replace(b"10.0", b"1e400"), RejectReason.PRICE_OUT_OF_RANGE, None),
    (DEEP, RejectReason.UNDECODABLE, None),
    (b"[" * 100_000, RejectReason.UNDECODABLE, None),
    (
        b'{"type":"tick","security":"\xff\xfe","price":1.0,"ts_event":1}',
        RejectReason.UNDECODABLE,
        None,
    ),
    (tick_json(security="X" * 1_000_000), RejectReason.UNDECODABLE, None),
    (b"\x00" * 1_000_000, RejectReason.UNDECODABLE, None),
    (b"", RejectReason.UNDECODABLE, None),
    (None, RejectReason.UNDECODABLE, None),
    (b"null", RejectReason.UNDECODABLE, None),
    (GOOD.replace(b"10.0", b"NaN"), RejectReason.UNDECODABLE, None),
    (
        WireCodec("json").encode(TickBatch([CODE, CODE], [1.0], [TS, TS])),
        RejectReason.UNDECODABLE,
        None,
    ),
]


@pytest.mark.parametrize(("value", "reason", "position"), JSON_POISON)
def test_each_poison_is_undecodable_with_its_reason_and_the_rest_goes_on(
    value: bytes | None, reason: RejectReason, position: int | None
) -> None:
    decoder = TickDecoder(UNIVERSE, WireCodec("json"))
    fetch = decoder.decode(records([GOOD, value, GOOD]))

    assert len(fetch.ticks) == 2
    assert fetch.message.tolist() == [0, 2]
    (bad,) = fetch.undecodable
    assert (bad.position, bad.reason, bad.batch_position) == (1, reason, position)
    assert bad.detail


def test_msgpack_poison_never_raises() -> None:
    codec = WireCodec("msgpack")
    decoder = TickDecoder(UNIVERSE, codec)
    encode = msgspec.msgpack.encode
    base = {"type": "tick", "security": CODE, "price": 10.0, "ts_event": TS}
    deep = b"\x85\xa4type\xa4tick\xa8security\xa40700\xa5price\xcb?\xf0" + b"\x00" * 6
    deep += b"\xa8ts_event\x01\xa1x" + b"\x91" * 5000 + b"\xc0"
    poison: list[tuple[bytes, RejectReason]] = [
        (encode(base | {"ts_event": 2**64 - 1}), RejectReason.BAD_TIMESTAMP),
        (encode(base | {"seq": 2**63}), RejectReason.BAD_SEQ),
        (encode(base | {"seq": -(2**63)}), RejectReason.BAD_SEQ),
        (deep, RejectReason.UNDECODABLE),
        (b"\xd4\x01\x00", RejectReason.UNDECODABLE),  # an ext type
        (b"\xc1", RejectReason.UNDECODABLE),  # never used
        (b"\xdb\xff\xff\xff\xff", RejectReason.UNDECODABLE),  # str32 of 4 GiB, truncated
    ]  # fmt: skip
    bad_utf8 = encode(base).replace(b"\xa4" + CODE.encode(), b"\xa4\xff\xfe\xfd\xfc")
    assert b"\xff\xfe" in bad_utf8
    poison.append((bad_utf8, RejectReason.UNDECODABLE))
    good = codec.encode(Tick(CODE, 10.0, TS, seq=3))
    fetch = decoder.decode(records([good, *(v for v, _ in poison), good]))
    assert fetch.message.tolist() == [0, len(poison) + 1]
    assert [(b.position, b.reason) for b in fetch.undecodable] == [
        (i + 1, reason) for i, (_, reason) in enumerate(poison)
    ]


def test_the_joined_fast_path_stays_for_good_fetches() -> None:
    codec = WireCodec("json")
    decoder = TickDecoder(UNIVERSE, codec)
    calls = {"lines": 0, "one": 0}
    lines, one = codec.decode_tick_lines, codec.decode_tick

    def count_lines(payload: bytes) -> list[object]:
        calls["lines"] += 1
        return list(lines(payload))

    def count_one(payload: bytes) -> object:
        calls["one"] += 1
        return one(payload)

    codec.decode_tick_lines = count_lines  # type: ignore[assignment,method-assign]
    codec.decode_tick = count_one  # type: ignore[assignment,method-assign]
    fetch = decoder.decode(records([tick_json(seq=i, ts_event=TS + i) for i in range(100)]))
    assert calls == {"lines": 1, "one": 0}
    assert fetch.ticks.seq is not None and fetch.ticks.seq.tolist() == list(range(100))
    decoder.decode(records([GOOD, tick_json(ts_event=2**63), GOOD]))
    assert calls == {"lines": 2, "one": 3}


@pytest.mark.slow
def test_a_tick_batch_of_a_million_tiny_ticks_decodes() -> None:
    n = 1_000_000
    codec = WireCodec("msgpack")
    batch = TickBatch([CODE] * n, [1.0] * n, list(range(TS, TS + n)))
    fetch = TickDecoder(UNIVERSE, codec).decode(records([codec.encode(batch)]))
    assert len(fetch.ticks) == n and not fetch.undecodable
    assert fetch.position_in_message[-1] == n - 1


def test_decoded_columns_keep_seq_absent_as_no_seq() -> None:
    fetch = TickDecoder(UNIVERSE, WireCodec("json")).decode(records([GOOD, tick_json(seq=0)]))
    assert fetch.ticks.seq is not None and fetch.ticks.seq.tolist() == [NO_SEQ, 0]


def test_price_rules() -> None:
    prices = np.array([10.0, MAX_PRICE, 1e308, math.inf, -math.inf, math.nan, -1.0, 0.0, 9e11])
    reasons = screen_ticks(1, np.zeros(prices.size, dtype=np.int64), prices)
    assert [RejectReason(r) for r in reasons.tolist()] == [
        RejectReason.ACCEPTED,
        RejectReason.PRICE_OUT_OF_RANGE,
        RejectReason.PRICE_OUT_OF_RANGE,
        RejectReason.NON_FINITE_PRICE,
        RejectReason.NON_FINITE_PRICE,
        RejectReason.NON_FINITE_PRICE,
        RejectReason.NON_POSITIVE_PRICE,
        RejectReason.NON_POSITIVE_PRICE,
        RejectReason.ACCEPTED,
    ]


def test_fx_rate_rules() -> None:
    rates = np.array([0.1285, 1e10, 1e-10, math.inf, math.nan, -2.0, 0.0, 1e9, 1e-9])
    reasons = screen_fx(1, np.zeros(rates.size, dtype=np.int64), rates)
    assert [FxRejectReason(r) for r in reasons.tolist()] == [
        FxRejectReason.ACCEPTED,
        FxRejectReason.RATE_OUT_OF_RANGE,
        FxRejectReason.RATE_OUT_OF_RANGE,
        FxRejectReason.NON_FINITE_RATE,
        FxRejectReason.NON_FINITE_RATE,
        FxRejectReason.NON_POSITIVE_RATE,
        FxRejectReason.NON_POSITIVE_RATE,
        FxRejectReason.ACCEPTED,
        FxRejectReason.ACCEPTED,
    ]


# -- dead letters ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 10, 60_000, 70_000, 1_000_000, 5_000_000])
@pytest.mark.parametrize("key_size", [None, 4, 100_000])
def test_a_dead_letter_never_exceeds_its_bound(size: int, key_size: int | None) -> None:
    value = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    key = None if key_size is None else b"k" * key_size
    record = FakeRecord("t" * 249, 2**31 - 1, 2**63 - 1, key, value)
    letter = dead_letter(record, "dlq", RejectReason.UNDECODABLE, "\udcff" + "e" * 10**6, 7)

    assert record_size(letter) <= DEAD_LETTER_MAX_BYTES
    headers = dict(letter.headers)
    assert headers["tickindex.original_size"] == str(size).encode()
    assert headers["tickindex.original_sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert len(headers["tickindex.error"]) <= MAX_DETAIL_BYTES
    assert headers["tickindex.error"].decode().startswith("\\udcff")
    assert headers["tickindex.batch_position"] == b"7"
    assert value.startswith(letter.value)
    truncated = len(letter.value) < size
    assert ("tickindex.truncated" in headers) == truncated
    assert truncated == (size > 60_000)
    if key_size is not None and key_size > MAX_KEY_BYTES:
        assert letter.key == key[:MAX_KEY_BYTES] if key else False
        assert headers["tickindex.original_key_size"] == str(key_size).encode()
    else:
        assert letter.key == key


def test_a_smaller_bound_is_kept_too() -> None:
    record = FakeRecord("ticks", 0, 1, b"0700", b"v" * 100_000)
    letter = dead_letter(record, "dlq", "fx_undecodable", "bad", max_bytes=4096)
    assert record_size(letter) <= 4096 and len(letter.value) > 3000
    with pytest.raises(ValueError, match="at least 4096"):
        dead_letter(record, "dlq", "fx_undecodable", "bad", max_bytes=100)


def test_dead_letter_bound_is_a_setting() -> None:
    assert load_config().dead_letter_max_bytes == DEAD_LETTER_MAX_BYTES
    assert (
        load_config(env={"TICKINDEX_DEAD_LETTER_MAX_BYTES": "8192"}).dead_letter_max_bytes == 8192
    )
    with pytest.raises(ConfigError, match="dead_letter_max_bytes"):
        load_config(overrides={"dead_letter_max_bytes": 1000})
