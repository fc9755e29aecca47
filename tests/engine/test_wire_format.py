"""Wire format v1: saved payloads keep decoding to the same values (the format never breaks
silently), and every message kind round-trips in JSON and MessagePack."""

from __future__ import annotations

import msgspec
import pytest

from engine.wire import FxTick, FxTickBatch, IndexLevel, IndexLevels, Tick, TickBatch, WireCodec
from tests.support.paths import TEST_DATA

SAVED = TEST_DATA / "wire_v1"


def test_saved_v1_tick() -> None:
    tick = WireCodec("json").decode_tick((SAVED / "tick.json").read_bytes())
    assert tick == Tick("0700", 401.2, 1_795_138_200_123_456_789, seq=42, volume=1500.0)


def test_saved_v1_minimal_tick_has_optional_fields_absent() -> None:
    tick = WireCodec("json").decode_tick((SAVED / "tick_minimal.json").read_bytes())
    assert tick == Tick("0005", 61.35, 1_795_138_200_000_000_000)
    assert isinstance(tick, Tick) and tick.seq is None and tick.volume is None


def test_saved_v1_tick_batch() -> None:
    batch = WireCodec("json").decode_tick((SAVED / "tick_batch.json").read_bytes())
    assert isinstance(batch, TickBatch)
    assert batch.security == ["0700", "0005", "0700"]
    assert batch.price == [401.2, 61.35, 401.4]
    assert batch.seq == [43, 7, 44] and batch.volume is None


def test_saved_v1_levels() -> None:
    codec = WireCodec("json")
    single = codec.decode_level((SAVED / "index_level.json").read_bytes())
    assert single == IndexLevel(
        "HSI",
        25812.345678901234,
        12.345678901234,
        1_795_138_200_123_456_789,
        1_795_138_200_125_000_000,
        1001,
    )
    batch = codec.decode_level((SAVED / "index_levels.json").read_bytes())
    assert isinstance(batch, IndexLevels)
    assert (batch.index, batch.level, batch.seq) == ("HSTECH", [5651.5, 5652.25], [7, 8])


def test_saved_v1_msgpack() -> None:
    codec = WireCodec("msgpack")
    assert codec.decode_tick((SAVED / "tick.msgpack").read_bytes()) == Tick(
        "0700", 401.2, 1_795_138_200_123_456_789, seq=42, volume=1500.0
    )
    levels = codec.decode_level((SAVED / "index_levels.msgpack").read_bytes())
    assert isinstance(levels, IndexLevels) and levels.level == [5651.5, 5652.25]


def test_saved_v1_fx_tick() -> None:
    expected = FxTick("HKDUSD", 0.12853, 1_795_138_200_123_456_789)
    assert WireCodec("json").decode_fx((SAVED / "fx_tick.json").read_bytes()) == expected
    assert WireCodec("msgpack").decode_fx((SAVED / "fx_tick.msgpack").read_bytes()) == expected


def test_saved_v1_fx_tick_batch() -> None:
    batch = WireCodec("json").decode_fx((SAVED / "fx_tick_batch.json").read_bytes())
    assert batch == FxTickBatch(
        ["HKDUSD", "HKD/CNH", "hkdusd"],
        [0.12853, 0.92114, 0.12855],
        [1_795_138_200_000_000_001, 1_795_138_200_000_000_002, 1_795_138_200_000_000_003],
    )


def test_fx_and_tick_decoders_keep_to_their_own_kinds() -> None:
    codec = WireCodec("json")
    with pytest.raises(msgspec.ValidationError):
        codec.decode_fx((SAVED / "tick.json").read_bytes())
    with pytest.raises(msgspec.ValidationError):
        codec.decode_tick((SAVED / "fx_tick.json").read_bytes())


@pytest.mark.parametrize("wire_format", ["json", "msgpack"])
def test_round_trip_is_exact(wire_format: str) -> None:
    codec = WireCodec(wire_format)  # type: ignore[arg-type]
    messages = [
        Tick("0700", 0.1 + 0.2, 1, seq=3),
        TickBatch(["A", "B"], [1e-300, 1e300], [1, 2]),
    ]
    for message in messages:
        assert codec.decode_tick(codec.encode(message)) == message
    level = IndexLevels("HSI", 25800.0, [25800.000000000004], [5], [9], 6)
    assert codec.decode_level(codec.encode(level)) == level
    fx_messages = [
        FxTick("HKDUSD", 0.1 + 0.2, 7),
        FxTickBatch(["HKDUSD", "HKDCNH"], [0.12853000000000001, 0.92114], [8, 9]),
    ]
    for fx in fx_messages:
        assert codec.decode_fx(codec.encode(fx)) == fx


def test_json_is_plain_and_tagged() -> None:
    text = WireCodec("json").encode(Tick("0700", 401.2, 5))
    assert text == b'{"type":"tick","security":"0700","price":401.2,"ts_event":5}'


def test_malformed_payloads_raise_decode_errors() -> None:
    codec = WireCodec("json")
    for payload in (
        b"",
        b"{",
        b'{"type":"quote"}',
        b'{"type":"tick","security":"X"}',
        b'{"type":"tick","security":"X","price":"abc","ts_event":1}',
    ):
        with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
            codec.decode_tick(payload)
    for payload in (
        b'{"type":"fx_tick","pair":"HKDUSD","rate":0.1285}',
        b'{"type":"fx_tick","pair":"HKDUSD","rate":"0.1285","ts_event":1}',
        b'{"type":"fx_tick","pair":"HKDUSD","rate":NaN,"ts_event":1}',
        b'{"type":"fx_tick_batch","pair":["HKDUSD"],"rate":[0.1285]}',
    ):
        with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
            codec.decode_fx(payload)


def test_unknown_wire_format() -> None:
    with pytest.raises(ValueError, match="unknown wire format"):
        WireCodec("xml")  # type: ignore[arg-type]
