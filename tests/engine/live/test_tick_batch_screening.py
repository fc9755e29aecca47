"""A ``tick_batch`` is screened per tick: one bad value loses only its own tick.

Each bad tick gets its own dead letter with its reason and ``tickindex.batch_position``, and the
good ticks of the same message are applied, as replay does per row.
"""

from __future__ import annotations

import json

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from engine.core.bounds import MAX_CODE_LENGTH
from engine.kernel.screening import RejectReason
from engine.live.codec import TickDecoder
from engine.live.config import ServiceConfig
from engine.live.dead_letters import dead_letters
from engine.live.fetch_work import FetchWork
from engine.live.metrics import ServiceMetrics
from engine.pipeline.buffers import RejectBuffer
from engine.refdata.builtin import load_builtin_universe
from engine.wire import Tick, WireCodec, WireFormat
from tests.support.records import GOOD, TS, FakeRecord, records

UNIVERSE = load_builtin_universe()
A, B = UNIVERSE.securities[0], UNIVERSE.securities[1]


def batch(wire_format: WireFormat = "json", **columns: object) -> bytes:
    body: dict[str, object] = {"type": "tick_batch", "security": [A, B, A], "price": [10.0] * 3}
    body |= {"ts_event": [TS, TS + 1, TS + 2]} | columns
    return json.dumps(body).encode() if wire_format == "json" else msgspec.msgpack.encode(body)


@pytest.mark.parametrize(
    ("columns", "reason", "position"),
    [
        ({"ts_event": [TS, 0, TS]}, RejectReason.BAD_TIMESTAMP, 1),
        ({"ts_event": [TS, 2**63, TS]}, RejectReason.BAD_TIMESTAMP, 1),
        ({"ts_event": [-5, TS, TS]}, RejectReason.BAD_TIMESTAMP, 0),
        ({"ts_event": [TS, TS, 2**64 - 1]}, RejectReason.BAD_TIMESTAMP, 2),
        ({"seq": [1, 2, -3]}, RejectReason.BAD_SEQ, 2),
        ({"seq": [-1, 2, 3]}, RejectReason.BAD_SEQ, 0),
        ({"seq": [1, 2**64 - 1, 3]}, RejectReason.BAD_SEQ, 1),
        ({"security": [A, "X" * (MAX_CODE_LENGTH + 1), B]}, RejectReason.UNDECODABLE, 1),
    ],
)
@pytest.mark.parametrize("wire_format", ["json", "msgpack"])
def test_one_bad_tick_loses_only_itself(
    columns: dict[str, object], reason: RejectReason, position: int, wire_format: WireFormat
) -> None:
    good = WireCodec(wire_format).encode(msgspec.json.decode(GOOD, type=Tick))
    value = batch(wire_format, **columns)
    fetch = TickDecoder(UNIVERSE, WireCodec(wire_format)).decode(records([good, value, good]))

    assert len(fetch.ticks) == 4
    assert fetch.message.tolist() == [0, 1, 1, 2]
    assert fetch.position_in_message.tolist() == [-1, *(p for p in range(3) if p != position), -1]
    (bad,) = fetch.undecodable
    assert (bad.position, bad.reason, bad.batch_position) == (1, reason, position)
    assert bad.detail


def test_every_bad_tick_of_a_batch_gets_its_own_dead_letter() -> None:
    value = batch(
        security=[A, "Y" * 100, B, A, B],
        price=[10.0] * 5,
        ts_event=[0, TS, 2**64 + 5, TS, TS],
        seq=[1, 2, 3, -7, 5],
    )
    fetch = TickDecoder(UNIVERSE, WireCodec("json")).decode(records([GOOD, value]))

    assert fetch.message.tolist() == [0, 1]
    assert fetch.position_in_message.tolist() == [-1, 4]
    assert [(u.position, u.reason, u.batch_position) for u in fetch.undecodable] == [
        (1, RejectReason.BAD_TIMESTAMP, 0),
        (1, RejectReason.UNDECODABLE, 1),
        (1, RejectReason.BAD_TIMESTAMP, 2),
        (1, RejectReason.BAD_SEQ, 3),
    ]
    no_rejects, no_reasons = RejectBuffer().take()
    letters = dead_letters(fetch, no_rejects, no_reasons, "dlq")
    assert [dict(letter.headers)["tickindex.batch_position"] for letter in letters] == [
        b"0",
        b"1",
        b"2",
        b"3",
    ]


def test_a_code_of_the_longest_length_is_screened_as_a_code() -> None:
    value = batch(security=[A, "Z" * MAX_CODE_LENGTH, B])
    fetch = TickDecoder(UNIVERSE, WireCodec("json")).decode(records([value]))
    assert len(fetch.ticks) == 3 and not fetch.undecodable
    assert fetch.ticks.security.tolist()[1] == -1, "unknown, left to the engine's screening"


def test_the_service_applies_the_good_ticks_of_a_batch_and_dead_letters_the_bad_one() -> None:
    config = ServiceConfig()
    metrics = ServiceMetrics(CollectorRegistry(), UNIVERSE.index_codes, version="test")
    work = FetchWork(config, UNIVERSE, metrics)
    value = batch(ts_event=[TS, 0, TS + 2])
    record = FakeRecord(config.tick_topic, 0, 5, None, value)

    _, messages = work.process({config.tick_topic: [record]})

    assert work.pipeline.stats.ticks_applied == 2
    (letter,) = [m for m in messages if m.topic == config.dead_letter_topic]
    headers = dict(letter.headers)
    assert headers["tickindex.reason"] == b"bad_timestamp"
    assert headers["tickindex.batch_position"] == b"1"
