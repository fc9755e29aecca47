"""Fuzzing the control-event decoder: any input is a valid event or a dead letter, never a crash."""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.bounds import MAX_CODE_LENGTH, MAX_PRICE, MAX_RATIO, MAX_SHARES
from engine.core.errors import ReferenceDataError
from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import LevelColumns
from engine.live.control import ControlChannel
from engine.live.kafka.fetch import FetchedRecord
from engine.maintenance.event_files import load_sourced_events
from engine.maintenance.events import IndexEvent, Review
from engine.pipeline.chain import IndexPipeline
from engine.refdata.builtin import load_builtin_universe
from engine.wire import WireFormat

T = 1_795_138_200_000_000_000
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TYPES = [
    "stock_split", "consolidation", "bonus_issue", "rights_issue", "special_dividend",
    "dividend", "shares_change", "faf_change", "add_constituent", "delete_constituent",
    "replace_constituent", "review",
]  # fmt: skip
FIELDS = [
    "effective", "id", "security", "old_security", "index", "ratio", "new_shares", "per_held",
    "subscription_price", "amount", "withholding_rate", "issued_shares", "faf", "cap_factor",
    "price", "rows",
]  # fmt: skip
BOUNDS = {
    "ratio": (0, MAX_RATIO), "new_shares": (0, MAX_RATIO), "per_held": (0, MAX_RATIO),
    "subscription_price": (0, MAX_PRICE), "amount": (0, MAX_PRICE), "price": (0, MAX_PRICE),
    "issued_shares": (0, MAX_SHARES), "faf": (0, 1), "cap_factor": (0, 1),
}  # fmt: skip

hostile_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 2, 0.5, 1e308, -1e308, 5e-324, 1e6, 1e12, 1e15, 2.0**63]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, T]),
)
hostile_strings = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["0700", "0005", "HSI", "HSTECH", "NOPE", "", "X" * (MAX_CODE_LENGTH + 1)]),
)
scalars = st.one_of(st.none(), st.booleans(), hostile_numbers, hostile_strings)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), children, max_size=5
        ),
    ),
    max_leaves=20,
)
row = st.fixed_dictionaries(
    {
        "index": st.one_of(st.sampled_from(["HSI", "HSTECH", "NOIX"]), hostile_strings),
        "security": hostile_strings,
        "issued_shares": hostile_numbers,
        "faf": hostile_numbers,
    },
    optional={"cap_factor": hostile_numbers, "price": hostile_numbers},
)
near_events = st.builds(
    lambda kind, fields, rows: {"type": kind, **fields} | ({"rows": rows} if rows else {}),
    st.sampled_from(TYPES),
    st.dictionaries(
        st.sampled_from(FIELDS[:-1]), st.one_of(hostile_numbers, hostile_strings), max_size=8
    ),
    st.lists(row, max_size=3),
)

# The fields of each type, so that many examples decode and exercise admission and apply.
SHAPES: dict[str, tuple[str, ...]] = {
    "stock_split": ("security", "ratio"),
    "consolidation": ("security", "ratio"),
    "bonus_issue": ("security", "ratio"),
    "rights_issue": ("security", "new_shares", "per_held", "subscription_price"),
    "special_dividend": ("security", "amount"),
    "dividend": ("security", "amount", "withholding_rate"),
    "shares_change": ("security", "issued_shares"),
    "faf_change": ("security", "faf", "index"),
    "add_constituent": ("index", "security", "issued_shares", "faf", "price"),
    "delete_constituent": ("index", "security"),
    "replace_constituent": ("index", "old_security", "security", "issued_shares", "faf"),
}
plausible = {
    "security": st.sampled_from(["0700", "0005", "0001", "0027", "NEWCO", "NOPE"]),
    "old_security": st.sampled_from(["0700", "0005", "0001", "NOPE"]),
    "index": st.sampled_from(["HSI", "HSTECH", "HSI_GTR", "NOIX"]),
    "ratio": st.floats(0.001, 1000),
    "new_shares": st.floats(0.001, 1000),
    "per_held": st.floats(0.001, 1000),
    "subscription_price": st.floats(0.001, 1e4),
    "amount": st.floats(0.001, 1e3),
    "withholding_rate": st.floats(0, 1),
    "issued_shares": st.floats(1, 1e12),
    "faf": st.floats(0.01, 1),
    "price": st.floats(0.01, 1e4),
}


@st.composite
def shaped_events(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(SHAPES)))
    event: dict[str, Any] = {"type": kind, "effective": draw(st.integers(T, T + 10**12))}
    for name in SHAPES[kind]:
        hostile = draw(st.integers(0, 9)) == 0
        event[name] = draw(hostile_numbers if hostile else plausible[name])
    return event


def _encode(value: Any, wire: WireFormat) -> bytes | None:
    try:
        if wire == "json":
            return json.dumps(value, allow_nan=True).encode()
        return msgspec.msgpack.encode(value)
    except (OverflowError, TypeError, ValueError):
        return None  # not representable in this format


payloads = st.one_of(
    st.binary(max_size=200),
    json_values,
    near_events,
    shaped_events(),
    shaped_events(),
    st.sampled_from(
        [
            b"[" * 1000 + b"]" * 1000,
            b'{"a":' * 1000 + b"1" + b"}" * 1000,
            b"\xff\xfe\xfd",
            b'{"type":"stock_split","effective":1,"security":"\xff","ratio":2}',
            b'{"type":"stock_split","effective":1,"security":"'
            + b"x" * (1 << 20)
            + b'","ratio":2}',
            b'{"type":"stock_split","effective":1,"security":"0700","ratio":1e308}',
            b'{"type":"stock_split","effective":9223372036854775808,"security":"0700","ratio":2}',
            b'{"type":"stock_split","effective":1,"security":"0700","ratio":NaN}',
            b"\x91" * 1000 + b"\xc0",  # msgpack: arrays nested 1,000 deep
            b"",
        ]
    ),
)


def _in_range(event: IndexEvent) -> bool:
    """Every numeric field finite and within its documented bounds."""
    parts: list[msgspec.Struct] = [event, *(event.rows if isinstance(event, Review) else [])]
    for part in parts:
        for name in part.__struct_fields__:
            value = getattr(part, name)
            if name == "effective" and not 0 <= value <= 2**63 - 1:
                return False
            if name in BOUNDS and value is not None:
                low, high = BOUNDS[name]
                if not (math.isfinite(value) and low < value <= high):
                    return False
            if name == "withholding_rate" and value is not None and not 0 <= value <= 1:
                return False
    return True


def _channel(wire: WireFormat) -> ControlChannel:
    class Discard:
        def write(self, levels: LevelColumns) -> None:
            del levels

    pipeline = IndexPipeline(IndexCalculator(load_builtin_universe()), Discard())
    return ControlChannel(pipeline, wire, wall_clock=lambda: T)


CHANNELS = {"json": _channel("json"), "msgpack": _channel("msgpack")}
DECODERS: dict[str, msgspec.json.Decoder[IndexEvent] | msgspec.msgpack.Decoder[IndexEvent]] = {
    "json": msgspec.json.Decoder(IndexEvent),
    "msgpack": msgspec.msgpack.Decoder(IndexEvent),
}


def _check(payload: Any, wire: WireFormat) -> None:
    data = payload if isinstance(payload, bytes) else _encode(payload, wire)
    if data is None:
        return
    try:
        event = DECODERS[wire].decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        pass
    else:
        assert _in_range(event), event
    channel = CHANNELS[wire]
    pending_before = len(channel.pipeline.events)
    letters = channel.receive([FetchedRecord("control", 0, 7, None, data)], "dlq")
    admitted = len(channel.pipeline.events) - pending_before
    assert len(letters) + admitted == 1
    if letters:
        headers = dict(letters[0].headers)
        assert headers["tickindex.reason"] == b"invalid_event"
        assert headers["tickindex.source"] == b"control[0]@7"
        assert data.startswith(letters[0].value)
        assert (letters[0].value == data) == ("tickindex.truncated" not in headers)
    else:
        assert all(_in_range(pending.event) for pending in channel.pipeline.pending)
    # Applying what was admitted never raises, and leaves every level finite and positive.
    channel.pipeline.apply_due_events(2**63 - 1)
    levels = channel.pipeline.calculator.levels
    assert np.isfinite(levels).all() and (levels > 0).all()


@FUZZ
@given(payloads)
def test_json_control_messages_decode_to_valid_events_or_dead_letters(payload: Any) -> None:
    _check(payload, "json")


@FUZZ
@given(payloads)
def test_msgpack_control_messages_decode_to_valid_events_or_dead_letters(payload: Any) -> None:
    _check(payload, "msgpack")


# -- events files (the same structs, read by ``tickindex replay --events``) ---------------------

csv_cells = st.one_of(
    st.text(max_size=12),
    hostile_numbers.map(str),
    st.sampled_from(["", "stock_split", "review", "0700", "HSI", "nan", "1e308", "9" * 30]),
)


@st.composite
def events_files(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["jsonl", "csv", "bytes"]))
    if kind == "jsonl":
        lines = draw(st.lists(st.one_of(shaped_events(), near_events, json_values), max_size=5))
        body = b"\n".join(_encode(line, "json") or b"" for line in lines)
        return "events.jsonl", body
    if kind == "csv":
        header = draw(st.lists(st.sampled_from([*FIELDS[:-1], "type", "bogus"]), max_size=8))
        rows = draw(st.lists(st.lists(csv_cells, max_size=10), max_size=5))
        lines = [",".join(header), *(",".join(row) for row in rows)]
        return "events.csv", "\n".join(lines).encode()
    return draw(st.sampled_from(["events.jsonl", "events.csv"])), draw(st.binary(max_size=300))


@pytest.mark.slow
@FUZZ
@given(events_files())
def test_events_files_load_valid_events_or_name_file_and_line(
    tmp_path_factory: Any, file: tuple[str, bytes]
) -> None:
    name, data = file
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(data)
    try:
        events = load_sourced_events(path)
    except ReferenceDataError as exc:
        assert str(exc).startswith(str(path))
    else:
        assert all(_in_range(pending.event) for pending in events)
        assert all(p.origin and p.origin.source.startswith(f"{path}:") for p in events)
