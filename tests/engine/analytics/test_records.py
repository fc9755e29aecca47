"""Analytics records on the wire (v1): saved payloads keep decoding, every float published is
finite, and hostile bytes only ever raise the codec's decode errors."""

from __future__ import annotations

import math
import random

import msgspec
import numpy as np
import pytest

from engine.analytics.records import (
    MAX_FIGURE,
    AnalyticsRecord,
    HedgeLine,
    IndexAnalytics,
    InvalidRecordError,
    Mover,
    finite_or_none,
    kafka_key,
    validate_record,
)
from engine.core.errors import TickIndexError
from engine.wire import IndexLevel, WireCodec
from tests.engine.analytics.saved_records import (
    INDEX_ANALYTICS,
    PAIR_ANALYTICS,
    SAVED,
    SIGNAL_EVENT,
)
from tests.support.paths import TEST_DATA
from tests.support.seed import SEED

FOLDER = TEST_DATA / "wire_v1"
FORMATS = ["json", "msgpack"]
NAMES = sorted(SAVED)


def codec_for(wire_format: str) -> WireCodec:
    return WireCodec(wire_format)  # type: ignore[arg-type]


@pytest.mark.parametrize("wire_format", FORMATS)
@pytest.mark.parametrize("name", NAMES)
def test_saved_v1_payload_decodes_to_the_same_record(name: str, wire_format: str) -> None:
    payload = (FOLDER / f"{name}.{wire_format}").read_bytes()
    assert codec_for(wire_format).decode_analytics(payload) == SAVED[name]


@pytest.mark.parametrize("wire_format", FORMATS)
@pytest.mark.parametrize("name", NAMES)
def test_encoding_is_still_the_saved_v1_payload(name: str, wire_format: str) -> None:
    payload = (FOLDER / f"{name}.{wire_format}").read_bytes()
    assert codec_for(wire_format).encode_analytics(SAVED[name]) == payload


def test_json_is_tagged_and_leaves_absent_figures_out() -> None:
    close = (FOLDER / "index_analytics_close.json").read_bytes()
    assert close.startswith(b'{"type":"index_analytics","index":"HSSCI"')
    assert b'"final":true' in close
    assert b"vol_session" not in close and b"null" not in close
    decoded = WireCodec("json").decode_analytics(close)
    assert isinstance(decoded, IndexAnalytics)
    assert decoded.vol_session is None and decoded.top == [] and decoded.up == 0


@pytest.mark.parametrize("wire_format", FORMATS)
def test_round_trip_is_exact(wire_format: str) -> None:
    codec = codec_for(wire_format)
    records: list[AnalyticsRecord] = [
        msgspec.structs.replace(INDEX_ANALYTICS, level=0.1 + 0.2, turnover=MAX_FIGURE),
        msgspec.structs.replace(PAIR_ANALYTICS, beta=-1e-300, hedge=None),
        msgspec.structs.replace(SIGNAL_EVENT, active=False, values={}, kind="info"),
    ]
    for record in records:
        assert codec.decode_analytics(codec.encode_analytics(record)) == record


def test_kafka_keys_are_index_pair_and_signal_names() -> None:
    assert kafka_key(INDEX_ANALYTICS) == b"HSI"
    assert kafka_key(PAIR_ANALYTICS) == b"SmallCap/HSI"
    assert kafka_key(SIGNAL_EVENT) == b"smallcap_invalidation"


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    payload = (FOLDER / "pair_analytics.json").read_bytes()
    newer = payload[:-1] + b',"added_in_v2":{"x":[1,2]}}'
    assert WireCodec("json").decode_analytics(newer) == PAIR_ANALYTICS


def test_finite_or_none() -> None:
    for bad in (math.nan, math.inf, -math.inf, 1e301, -1e301, np.float64("nan")):
        assert finite_or_none(bad) is None
    for good in (0.0, -0.0, 5e-324, -MAX_FIGURE, MAX_FIGURE, 25812.5):
        assert finite_or_none(good) == good
    converted = finite_or_none(np.float64(2.5))
    assert converted == 2.5 and type(converted) is float


@pytest.mark.parametrize(
    ("record", "named"),
    [
        (msgspec.structs.replace(INDEX_ANALYTICS, level=math.nan), "level is nan"),
        (msgspec.structs.replace(INDEX_ANALYTICS, change_pct=math.inf), "change_pct is inf"),
        (msgspec.structs.replace(INDEX_ANALYTICS, vol_session=-math.inf), "vol_session is -inf"),
        (msgspec.structs.replace(INDEX_ANALYTICS, turnover=1e308), "turnover is 1e+308"),
        (
            msgspec.structs.replace(INDEX_ANALYTICS, bottom=[Mover("1299", math.nan, 77.1, -0.4)]),
            "bottom[0].contribution is nan",
        ),
        (
            msgspec.structs.replace(
                PAIR_ANALYTICS, hedge=HedgeLine("HSI", 1e7, math.nan, -8, -3, 0.0)
            ),
            "hedge.hedge_notional is nan",
        ),
        (
            msgspec.structs.replace(SIGNAL_EVENT, values={"rs": math.nan}),
            "values['rs'] is nan",
        ),
        (msgspec.structs.replace(INDEX_ANALYTICS, up=-1), "$.up"),
        (msgspec.structs.replace(PAIR_ANALYTICS, ts_event=0), "$.ts_event"),
        (msgspec.structs.replace(INDEX_ANALYTICS, index="X" * 65), "$.index"),
    ],
)
@pytest.mark.parametrize("wire_format", FORMATS)
def test_a_record_that_cannot_be_published_is_refused(
    record: AnalyticsRecord, named: str, wire_format: str
) -> None:
    with pytest.raises(InvalidRecordError, match=f"^{record.__struct_config__.tag} ") as caught:
        codec_for(wire_format).encode_analytics(record)
    assert named in str(caught.value)
    assert isinstance(caught.value, TickIndexError) and not caught.value.retriable


def test_a_numpy_count_is_refused_clearly() -> None:
    record = msgspec.structs.replace(INDEX_ANALYTICS, up=np.int64(3))
    with pytest.raises(InvalidRecordError, match=r"index_analytics HSI: .*int64"):
        validate_record(record)


def _changed(name: str, **changes: object) -> dict[str, object]:
    fields: dict[str, object] = msgspec.json.decode((FOLDER / f"{name}.json").read_bytes())
    return fields | changes


def _json(**changes: object) -> bytes:
    return msgspec.json.encode(_changed("index_analytics", **changes))


def _msgpack(**changes: object) -> bytes:
    return msgspec.msgpack.encode(_changed("index_analytics", **changes))


def _replaced(name: str, old: bytes, new: bytes) -> bytes:
    text = (FOLDER / f"{name}.json").read_bytes()
    assert old in text
    return text.replace(old, new)


DEEP = 100_000

HOSTILE_JSON = {
    "1e308": _json(level=1e308),
    "1e400": _replaced("index_analytics", b"25812.345678901234", b"1e400"),
    "NaN literal": _replaced("index_analytics", b"25812.345678901234", b"NaN"),
    "null required": _json(level=None),
    "huge ts_event": _json(ts_event=2**70),
    "huge count": _json(up=10**30),
    "negative count": _json(down=-1),
    "float count": _json(up=1.5),
    "deep nesting": b'{"type":"signal_event","values":' + b"[" * DEEP + b"]" * DEEP + b"}",
    "deep unknown field": b'{"type":"pair_analytics","x":' + b"[" * DEEP + b"]" * DEEP + b"}",
    "invalid UTF-8": _replaced("signal_event", b"HSI closes", b"\xff\xfe"),
    "unknown kind": _replaced("signal_event", b'"invalidation"', b'"panic"'),
    "unknown tag": b'{"type":"index_level","index":"HSI"}',
    "no tag": b'{"index":"HSI"}',
    "truncated": (FOLDER / "pair_analytics.json").read_bytes()[:-7],
    "empty": b"",
    "too many movers": _json(
        top=[{"security": "A", "contribution": 1.0, "price": 1.0, "change_pct": 0.0}] * 1001
    ),
}
HOSTILE_MSGPACK = {
    "NaN": _msgpack(level=math.nan),
    "inf": _msgpack(change=math.inf),
    "1e308": _msgpack(open=1e308),
    "huge int": _msgpack(ts_event=2**64 - 1),
    "deep nesting": b"\x91" * DEEP,
    "deep unknown field": b"\x82\xa4type\xaepair_analytics\xa1x" + b"\x91" * DEEP + b"\xc0",
    "invalid UTF-8": b"\x82\xa4type\xa6signal\xa4name\xa2\xff\xfe",
    "truncated": (FOLDER / "index_analytics.msgpack").read_bytes()[:-9],
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_JSON))
def test_hostile_json_raises_only_decode_errors(name: str) -> None:
    with pytest.raises(msgspec.DecodeError):
        WireCodec("json").decode_analytics(HOSTILE_JSON[name])


@pytest.mark.parametrize("name", sorted(HOSTILE_MSGPACK))
def test_hostile_msgpack_raises_only_decode_errors(name: str) -> None:
    with pytest.raises(msgspec.DecodeError):
        WireCodec("msgpack").decode_analytics(HOSTILE_MSGPACK[name])


def _floats(value: object) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, msgspec.Struct):
        return [f for name in value.__struct_fields__ for f in _floats(getattr(value, name))]
    if isinstance(value, list):
        return [f for item in value for f in _floats(item)]
    if isinstance(value, dict):
        return [f for item in value.values() for f in _floats(item)]
    return []


@pytest.mark.parametrize("wire_format", FORMATS)
def test_mutated_payloads_decode_finite_or_raise_decode_errors(wire_format: str) -> None:
    print(f"seed {SEED}")
    rng = random.Random(SEED)
    codec = codec_for(wire_format)
    payloads = [(FOLDER / f"{name}.{wire_format}").read_bytes() for name in NAMES]
    decoded = 0
    for _ in range(3000):
        payload = bytearray(rng.choice(payloads))
        for _ in range(rng.randint(1, 4)):
            payload[rng.randrange(len(payload))] = rng.randrange(256)
        try:
            record = codec.decode_analytics(bytes(payload))
        except msgspec.DecodeError:
            continue
        decoded += 1
        assert all(math.isfinite(f) for f in _floats(record))
        validate_record(record)
    assert decoded > 0


def test_level_and_analytics_decoders_keep_to_their_own_kinds() -> None:
    codec = WireCodec("json")
    with pytest.raises(msgspec.ValidationError):
        codec.decode_level((FOLDER / "index_analytics.json").read_bytes())
    with pytest.raises(msgspec.ValidationError):
        codec.decode_analytics((FOLDER / "index_level.json").read_bytes())
    level = IndexLevel("HSI", 1.0, 0.0, 1, 2, 3)
    with pytest.raises(msgspec.ValidationError):
        codec.decode_analytics(codec.encode(level))
