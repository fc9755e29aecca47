"""Property-based fuzzing of the tick and FX decoding: any input decodes or is listed as bad.

Whatever the bytes, JSON-ish value or MessagePack value, ``TickDecoder.decode`` and
``FxChannel.decode`` return: every record either gave ticks with in-range columns or is named
with a reason; never another exception.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.bounds import MAX_PRICE
from engine.currency.translator import CurrencyTranslator, CurrencyVariant, FxRejectReason
from engine.kernel.screening import RejectReason, screen_ticks
from engine.kernel.sequencing import NO_SEQ
from engine.live.codec import TickDecoder
from engine.live.dead_letters import DEAD_LETTER_MAX_BYTES, record_size
from engine.live.fx import FxChannel
from engine.refdata.builtin import load_builtin_universe
from engine.wire import WireCodec, WireFormat
from tests.support.records import FakeRecord

UNIVERSE = load_builtin_universe()
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INT64_MAX = 2**63 - 1


hostile_ints = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1, INT64_MAX, INT64_MAX + 1, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1]),
)
hostile_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 1e12, 5e-324, 0.0, -0.0]),
)
codes = st.one_of(
    st.sampled_from([*UNIVERSE.securities[:5], "ZZZZ", "HKDUSD", "hkd/usd", ""]),
    st.text(max_size=80),
)
scalars = st.one_of(st.none(), st.booleans(), hostile_ints, hostile_floats, codes)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
field_values = st.one_of(scalars, st.lists(scalars, max_size=4), values)


@st.composite
def message_like(draw: st.DrawFn) -> dict[str, Any]:
    """A dict shaped like a tick, tick_batch or FX message, with hostile field values."""
    kind = draw(st.sampled_from(["tick", "tick_batch", "fx_tick", "fx_tick_batch", "quote"]))
    names = ["security", "price", "ts_event", "seq", "volume", "pair", "rate"]
    message = {"type": kind}
    for name in draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names))):
        message[name] = draw(field_values)
    return message


def deep(depth: int) -> bytes:
    return b'{"type":"tick","security":"0700","price":1.0,"ts_event":1,"x":' + (
        b"[" * depth + b"]" * depth + b"}"
    )


def encode(value: Any, wire_format: WireFormat) -> bytes | None:
    if wire_format == "json":
        try:
            return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")
        except (ValueError, OverflowError):
            return None
    try:
        return msgspec.msgpack.encode(value)
    except (OverflowError, TypeError, UnicodeEncodeError):
        return None


def check_ticks(payloads: list[bytes | None], wire_format: WireFormat) -> None:
    records = [FakeRecord("t", 0, i, None, p) for i, p in enumerate(payloads)]
    fetch = TickDecoder(UNIVERSE, WireCodec(wire_format)).decode(records)
    ticks = fetch.ticks
    # A tick_batch may lose single ticks (named by batch position) and keep the others.
    named = [(u.position, u.batch_position) for u in fetch.undecodable]
    assert len(set(named)) == len(named)
    assert all(isinstance(u.reason, RejectReason) for u in fetch.undecodable)
    whole = {u.position for u in fetch.undecodable if u.batch_position is None}
    assert not whole & set(fetch.message.tolist())
    kept = set(zip(fetch.message.tolist(), fetch.position_in_message.tolist(), strict=True))
    assert not kept & set(named)
    assert ((ticks.ts_event > 0) & (ticks.ts_event <= INT64_MAX)).all()
    assert ticks.seq is not None and (ticks.seq >= NO_SEQ).all()
    assert ((ticks.security >= -1) & (ticks.security < len(UNIVERSE.securities))).all()
    reasons = screen_ticks(len(UNIVERSE.securities), ticks.security, ticks.price)
    accepted = ticks.price[reasons == RejectReason.ACCEPTED]
    assert (np.isfinite(accepted) & (accepted > 0) & (accepted < MAX_PRICE)).all()
    for u in fetch.undecodable:
        assert u.batch_position is None or u.batch_position >= 0


@FUZZ
@given(st.lists(st.binary(max_size=200), min_size=1, max_size=5))
def test_any_bytes_decode_or_are_named(payloads: list[bytes]) -> None:
    formats: tuple[WireFormat, ...] = ("json", "msgpack")
    for wire_format in formats:
        check_ticks(list(payloads), wire_format)


@pytest.mark.slow
@FUZZ
@given(st.lists(st.one_of(message_like(), values), min_size=1, max_size=5), st.booleans())
def test_any_json_or_msgpack_value_decodes_or_is_named(items: list[Any], msgpack: bool) -> None:
    wire_format: WireFormat = "msgpack" if msgpack else "json"
    payloads = [encode(item, wire_format) for item in items]
    check_ticks([p for p in payloads if p is not None] or [b""], wire_format)


@FUZZ
@given(st.integers(1, 3000), st.booleans())
def test_any_nesting_depth_decodes_or_is_named(depth: int, msgpack: bool) -> None:
    if msgpack:
        payload = b"\x81\xa4type" + b"\x91" * depth + b"\xc0"
        check_ticks([payload], "msgpack")
    else:
        check_ticks([deep(depth), b"[" * depth], "json")


def fx_channel(wire_format: WireFormat) -> FxChannel:
    variant = CurrencyVariant("HSI_USD", "HSI", "USD", "HKDUSD", 3315.3, 0.1285)
    closes = [spec.prev_close_level for spec in UNIVERSE.indices]
    translator = CurrencyTranslator([variant], UNIVERSE.index_codes, closes)
    return FxChannel(translator, WireCodec(wire_format), "dlq")


@pytest.mark.slow
@FUZZ
@given(st.lists(st.one_of(message_like(), values, st.binary(max_size=100)), max_size=5))
def test_any_fx_message_decodes_or_is_dead_lettered(items: list[Any]) -> None:
    formats: tuple[WireFormat, ...] = ("json", "msgpack")
    for wire_format in formats:
        channel = fx_channel(wire_format)
        payloads = [i if isinstance(i, bytes) else encode(i, wire_format) for i in items]
        records = [FakeRecord("fx", 0, n, b"k", p) for n, p in enumerate(payloads)]
        fx, letters, rejected = channel.decode(records)
        assert ((fx.ts_event > 0) & (fx.ts_event <= INT64_MAX)).all()
        assert (np.isfinite(fx.rate) & (fx.rate > 0)).all()
        assert ((fx.pair >= 0) & (fx.pair < len(channel.translator.pairs))).all()
        assert sum(rejected.values()) == len(letters)
        labels = {f"fx_{r.label}" for r in FxRejectReason}
        assert set(rejected) <= labels
        assert all(record_size(letter) <= DEAD_LETTER_MAX_BYTES for letter in letters)
