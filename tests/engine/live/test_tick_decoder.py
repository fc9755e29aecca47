"""The service's tick decoder: the one-call fast path equals decoding record by record.

Fetches mix good ``tick`` and ``tick_batch`` messages with the records that could fool a joined
decode (empty, a newline inside, two messages in one record, one message split over two
records, bad JSON); whatever the mix, the columns, origins and undecodable list must be those of
decoding each record on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import numpy as np
import pytest

from engine.kernel.sequencing import NO_SEQ
from engine.live.codec import DecodedFetch, TickDecoder
from engine.refdata.builtin import load_builtin_universe
from engine.wire import Tick, TickBatch, WireCodec, WireFormat
from tests.support.seed import SEED


@dataclass(frozen=True)
class FakeRecord:
    """The parts of a Kafka record the decoder reads."""

    value: bytes | None
    topic: str = "ticks"
    partition: int = 0
    offset: int = 0
    key: bytes | None = None


def reference_decode(decoder: TickDecoder, records: list[FakeRecord]) -> DecodedFetch:
    """Record by record, the decoder's own slow path with no joined decode at all."""
    return decoder._one_by_one(records, [r.value for r in records], None)


def assert_same_fetch(got: DecodedFetch, want: DecodedFetch) -> None:
    assert got.undecodable == want.undecodable
    for name in ("ts_event", "security", "price", "seq", "origin"):
        np.testing.assert_array_equal(getattr(got.ticks, name), getattr(want.ticks, name), name)
    np.testing.assert_array_equal(got.message, want.message)
    np.testing.assert_array_equal(got.position_in_message, want.position_in_message)


def random_records(rng: np.random.Generator, codes: tuple[str, ...], size: int) -> list[bytes]:
    encoder = msgspec.json.Encoder()
    out = []
    for n in range(size):
        code = codes[int(rng.integers(len(codes)))] if rng.random() < 0.95 else "NOPE"
        seq = int(rng.integers(1, 1000)) if rng.random() < 0.5 else None
        tick = Tick(code, float(rng.uniform(0.01, 500.0)), 1_000_000 + n, seq)
        out.append(encoder.encode(tick))
    return out


TRAPS: dict[str, Callable[[bytes, bytes], list[bytes | None]]] = {
    "empty": lambda a, b: [b""],
    "newline inside": lambda a, b: [a[:-1] + b"\n}"],
    "two messages": lambda a, b: [a + b"\n" + b],
    "two messages on a line": lambda a, b: [a + b"," + b],
    "split message": lambda a, b: [a[: a.index(b',"ts_event"')], a[a.index(b'"ts_event"') :]],
    "bad json": lambda a, b: [b"{not json"],
    "none": lambda a, b: [None],
    "tick batch": lambda a, b: [
        msgspec.json.encode(TickBatch(["0700", "0005"], [400.0, 60.0], [5, 6], [1, 2]))
    ],
    "short tick batch": lambda a, b: [msgspec.json.encode(TickBatch(["0700"], [], [5]))],
}


@pytest.mark.parametrize("trap", [None, *TRAPS])
def test_joined_decode_equals_record_by_record(trap: str | None) -> None:
    universe = load_builtin_universe()
    decoder = TickDecoder(universe, WireCodec("json"))
    rng = np.random.default_rng(SEED)
    print(f"seed {SEED}, trap {trap}")
    for _ in range(20):
        values: list[bytes | None] = list(random_records(rng, universe.securities, 50))
        if trap is not None:
            at = int(rng.integers(len(values) - 1))
            first, second = values[at], values[at + 1]
            assert first is not None and second is not None
            values[at : at + 2] = TRAPS[trap](first, second)
        records = [FakeRecord(v, offset=i) for i, v in enumerate(values)]
        got = decoder.decode(records)
        assert_same_fetch(got, reference_decode(decoder, records))
        assert len(got.ticks) + len(got.undecodable) >= len(values) - (trap == "tick batch")


def test_fast_path_columns() -> None:
    universe = load_builtin_universe()
    decoder = TickDecoder(universe, WireCodec("json"))
    values = [
        b'{"type":"tick","security":"0700","price":401.2,"ts_event":7,"seq":3}',
        b'{"type":"tick","security":"NOPE","price":1.5,"ts_event":8}',
    ]
    decoder._one_by_one = None  # type: ignore[assignment,method-assign]  # fast path only
    fetch = decoder.decode([FakeRecord(v) for v in values])
    assert fetch.ticks.security.tolist() == [universe.security_id("0700"), -1]
    assert fetch.ticks.price.tolist() == [401.2, 1.5]
    assert fetch.ticks.ts_event.tolist() == [7, 8]
    assert fetch.ticks.seq is not None and fetch.ticks.seq.tolist() == [3, NO_SEQ]
    assert fetch.message.tolist() == [0, 1] and fetch.position_in_message.tolist() == [-1, -1]


@pytest.mark.parametrize("wire_format", ["json", "msgpack"])
def test_empty_fetch(wire_format: WireFormat) -> None:
    decoder = TickDecoder(load_builtin_universe(), WireCodec(wire_format))
    fetch = decoder.decode([])
    assert len(fetch.ticks) == 0 and fetch.undecodable == []
