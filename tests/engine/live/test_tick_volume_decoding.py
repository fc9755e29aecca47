"""Volumes of fetched ticks: None when no tick had one (the common feed costs nothing), NaN
where a tick had none, and a bad volume screened (tick kept, volume NaN, counted)."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from engine.live.codec import DecodedFetch, TickDecoder
from engine.refdata.builtin import load_builtin_universe
from engine.wire import Tick, TickBatch, WireCodec, WireFormat
from tests.support.records import records
from tests.support.seed import SEED

TS = 1_795_138_200_000_000_000


def decode(messages: list[msgspec.Struct], wire_format: WireFormat = "json") -> DecodedFetch:
    codec = WireCodec(wire_format)
    decoder = TickDecoder(load_builtin_universe(), codec)
    return decoder.decode(records([codec.encode(m) for m in messages]))


@pytest.mark.parametrize("wire_format", ["json", "msgpack"])
def test_no_volume_anywhere_gives_no_column(wire_format: WireFormat) -> None:
    fetch = decode([Tick("0700", 401.2, TS), TickBatch(["0005"], [61.0], [TS + 1])], wire_format)
    assert fetch.ticks.volume is None and fetch.bad_volumes == 0
    single = decode([Tick("0700", 401.2, TS), Tick("0005", 61.0, TS + 1)], wire_format)
    assert single.ticks.volume is None and single.bad_volumes == 0


@pytest.mark.parametrize("wire_format", ["json", "msgpack"])
def test_single_ticks_with_and_without_volume(wire_format: WireFormat) -> None:
    fetch = decode(
        [
            Tick("0700", 401.2, TS, volume=1500.0),
            Tick("0005", 61.0, TS + 1),
            Tick("0005", 61.1, TS + 2, volume=-300.0),
        ],
        wire_format,
    )
    assert fetch.ticks.volume is not None
    np.testing.assert_array_equal(fetch.ticks.volume, [1500.0, np.nan, np.nan])
    np.testing.assert_array_equal(fetch.ticks.price, [401.2, 61.0, 61.1])
    assert fetch.bad_volumes == 1 and fetch.undecodable == []


def test_msgpack_non_finite_volumes_are_screened_not_rejected() -> None:
    fetch = decode(
        [
            TickBatch(["0700", "0005"], [401.2, 61.0], [TS, TS + 1], volume=[math.nan, 200.0]),
            Tick("0700", 401.4, TS + 2, volume=math.inf),
        ],
        "msgpack",
    )
    assert fetch.ticks.volume is not None
    np.testing.assert_array_equal(fetch.ticks.volume, [np.nan, 200.0, np.nan])
    assert len(fetch.ticks) == 3 and fetch.bad_volumes == 2


def test_tick_batch_volumes_mixed_with_single_ticks() -> None:
    fetch = decode(
        [
            Tick("0700", 401.2, TS),
            TickBatch(["0700", "0005"], [401.4, 61.0], [TS + 1, TS + 2], volume=[100.0, 2e12]),
            TickBatch(["0005"], [61.1], [TS + 3]),
        ]
    )
    assert fetch.ticks.volume is not None
    np.testing.assert_array_equal(fetch.ticks.volume, [np.nan, 100.0, np.nan, np.nan])
    assert fetch.bad_volumes == 1


def test_volume_stays_aligned_when_ticks_of_a_batch_are_rejected() -> None:
    batch = TickBatch(
        ["0700", "0700", "0005"],
        [401.2, 401.4, 61.0],
        [TS, -5, TS + 2],
        volume=[100.0, -1.0, 300.0],
    )
    fetch = decode([batch])
    assert len(fetch.undecodable) == 1 and len(fetch.ticks) == 2
    assert fetch.ticks.volume is not None
    np.testing.assert_array_equal(fetch.ticks.volume, [100.0, 300.0])
    assert fetch.bad_volumes == 0  # the rejected tick is dead-lettered whole, not screened


def test_volume_column_of_another_length_makes_the_batch_undecodable() -> None:
    batch = TickBatch(["0700", "0005"], [401.2, 61.0], [TS, TS + 1], volume=[100.0])
    fetch = decode([batch, Tick("0700", 401.4, TS + 2, volume=5.0)])
    assert [u.position for u in fetch.undecodable] == [0]
    assert fetch.ticks.volume is not None
    np.testing.assert_array_equal(fetch.ticks.volume, [5.0])


def test_fast_path_and_record_by_record_agree_on_volumes() -> None:
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED)
    codec = WireCodec("json")
    decoder = TickDecoder(load_builtin_universe(), codec)
    volumes = rng.choice([100.0, 2_000.0, -1.0, 1e13, 0.0], size=500)
    given = rng.random(500) < 0.7
    fetched = records(
        [
            codec.encode(
                Tick("0700", 401.2, TS + n, volume=float(volumes[n]) if given[n] else None)
            )
            for n in range(500)
        ]
    )
    fast = decoder.decode(fetched)
    slow = decoder._one_by_one(fetched, [r.value for r in fetched], None)
    assert fast.ticks.volume is not None and slow.ticks.volume is not None
    np.testing.assert_array_equal(fast.ticks.volume, slow.ticks.volume)
    assert (
        fast.bad_volumes
        == slow.bad_volumes
        == int(np.sum(given & ((volumes < 0) | (volumes > 1e12))))
    )


def test_tick_batch_with_null_volumes_decodes() -> None:
    payload = (
        b'{"type":"tick_batch","security":["0700","0005"],"price":[401.2,61.0],'
        b'"ts_event":[1795138200000000000,1795138200000000001],"volume":[null,300]}'
    )
    codec = WireCodec("json")
    fetch = TickDecoder(load_builtin_universe(), codec).decode(records([payload]))
    assert fetch.undecodable == [] and fetch.bad_volumes == 0
    assert fetch.ticks.volume is not None
    np.testing.assert_array_equal(fetch.ticks.volume, [np.nan, 300.0])
