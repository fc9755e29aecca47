"""Conflated levels on the wire: ``count`` in level messages, complete-topic rows, the checkpoint.

A level that stands for several (conflation) carries ``count``; every level also goes to the
complete level topic, unconflated, when one is configured; levels held back go into the
checkpoint; and all of it leaves today's messages and checkpoints as they were.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import numpy as np
import pytest

from engine.kernel.columns import LevelColumns
from engine.kernel.conflation import HeldRows
from engine.live.config import ConfigError, ServiceConfig, load_config
from engine.live.kafka.output_framing import SUBMIT, read_request, request_parts
from engine.live.level_encoding import LevelEncoder
from engine.pipeline.state import EngineState, HeldLevels, StateMismatchError
from engine.wire import IndexLevel, IndexLevels, WireCodec

SAVED = Path(__file__).resolve().parents[2] / "data" / "wire_v1"


def _levels(count: list[int] | None) -> LevelColumns:
    n = 4
    return LevelColumns(
        ts_event=np.arange(10, 10 + n, dtype=np.int64),
        index=np.array([0, 1, 0, 1], dtype=np.int32),
        level=np.array([100.5, 200.5, 101.5, 201.5]),
        seq=np.array([1, 1, 2, 2], dtype=np.int64),
        security=np.zeros(n, dtype=np.int64),
        count=None if count is None else np.array(count, dtype=np.int64),
    )


def _encoder(*, batched: bool, complete: str | None = "all-levels") -> LevelEncoder:
    codes, closes = ("HSI", "HSCEI"), np.array([100.0, 200.0])
    codec = WireCodec("json")
    return LevelEncoder(codes, closes, codec, "levels", batched=batched, complete_topic=complete)


def test_levels_without_count_are_encoded_as_before() -> None:
    for batched in (True, False):
        out = _encoder(batched=batched).encode(_levels(None), 99)
        assert {m.topic for m in out} == {"levels"}
        assert all(b'"count"' not in m.value for m in out)
    batch = _encoder(batched=True).encode(_levels(None), 99)[0]
    assert batch.value == (
        b'{"type":"index_levels","index":"HSI","prev_close":100.0,"level":[100.5,101.5],'
        b'"ts_event":[10,12],"seq":[1,2],"ts_published":99}'
    )


@pytest.mark.parametrize("batched", [True, False])
def test_counted_rows_go_to_the_level_topic_with_count_zero_rows_to_the_complete_one(
    batched: bool,
) -> None:
    codec = WireCodec("json")
    rows = LevelColumns.concat([_levels([0, 0, 0, 0]), _levels(None).take(np.array([2, 3]))])
    counted = LevelColumns(
        rows.ts_event, rows.index, rows.level, rows.seq, rows.security,
        np.array([0, 0, 0, 0, 2, 3], dtype=np.int64),
    )  # fmt: skip
    out = _encoder(batched=batched).encode(counted, 99)
    complete = [codec.decode_level(m.value) for m in out if m.topic == "all-levels"]
    published = [codec.decode_level(m.value) for m in out if m.topic == "levels"]
    if batched:
        assert [(m.index, m.seq, m.count) for m in complete if isinstance(m, IndexLevels)] == [
            ("HSI", [1, 2], None),
            ("HSCEI", [1, 2], None),
        ]
        assert [(m.index, m.seq, m.count) for m in published if isinstance(m, IndexLevels)] == [
            ("HSI", [2], [2]),
            ("HSCEI", [2], [3]),
        ]
    else:
        assert [(m.index, m.seq, m.count) for m in complete if isinstance(m, IndexLevel)] == [
            ("HSI", 1, 1),
            ("HSCEI", 1, 1),
            ("HSI", 2, 1),
            ("HSCEI", 2, 1),
        ]
        assert [(m.index, m.seq, m.count) for m in published if isinstance(m, IndexLevel)] == [
            ("HSI", 2, 2),
            ("HSCEI", 2, 3),
        ]
    assert {m.key for m in out} == {b"HSI", b"HSCEI"}  # keyed by index on both topics


def test_saved_v1_level_messages_decode_with_count_one() -> None:
    codec = WireCodec("json")
    single = codec.decode_level((SAVED / "index_level.json").read_bytes())
    assert isinstance(single, IndexLevel) and single.count == 1
    batch = codec.decode_level((SAVED / "index_levels.json").read_bytes())
    assert isinstance(batch, IndexLevels) and batch.count is None
    packed = WireCodec("msgpack").decode_level((SAVED / "index_levels.msgpack").read_bytes())
    assert isinstance(packed, IndexLevels) and packed.count is None


def test_count_survives_a_round_trip_in_both_formats() -> None:
    for wire_format in ("json", "msgpack"):
        codec = WireCodec(wire_format)
        batch = IndexLevels("HSI", 1.0, [2.0, 3.0], [5, 6], [4, 9], 7, count=[4, 5])
        assert codec.decode_level(codec.encode(batch)) == batch
        single = IndexLevel("HSI", 2.0, 1.0, 5, 7, 9, count=6)
        assert codec.decode_level(codec.encode(single)) == single


def test_output_process_frames_carry_the_count_column_when_there_is_one() -> None:
    async def read_back(levels: LevelColumns) -> LevelColumns:
        reader = asyncio.StreamReader()
        reader.feed_data(b"".join(request_parts(SUBMIT, 3, levels, ["extra"])))
        reader.feed_eof()
        request = await read_request(reader)
        assert request is not None
        assert (request.kind, request.number, request.extras) == (SUBMIT, 3, ["extra"])
        return request.levels

    counted = asyncio.run(read_back(_levels([0, 3, 1, 0])))
    assert counted.count is not None and counted.count.tolist() == [0, 3, 1, 0]
    assert counted.level.tolist() == [100.5, 200.5, 101.5, 201.5]
    assert counted.seq.tolist() == [1, 1, 2, 2]
    plain = asyncio.run(read_back(_levels(None)))
    assert plain.count is None and plain.ts_event.tolist() == [10, 11, 12, 13]


def test_publication_settings_are_checked() -> None:
    config = load_config(overrides={"publication": "HSI=all,*=100ms", "complete_level_topic": "c"})
    assert (config.publication, config.complete_level_topic) == ("HSI=all,*=100ms", "c")
    assert ServiceConfig().publication == "all" and ServiceConfig().complete_level_topic is None
    with pytest.raises(ConfigError, match=r"publication: policy '5s'"):
        load_config(overrides={"publication": "*=5s"})
    with pytest.raises(ConfigError, match="complete_level_topic must differ"):
        load_config(overrides={"complete_level_topic": "index-levels"})


def test_held_levels_round_trip_in_the_checkpoint_and_old_checkpoints_have_none() -> None:
    held = HeldRows(_levels([1, 3, 2, 1]), 12)
    state = EngineState("fp", [1.0], [2.0], [0, 0], [-1], publication=HeldLevels.of(held))
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(state), type=EngineState)
    assert decoded.publication is not None
    rows = decoded.publication.rows(2)
    assert rows.clock == 12
    assert rows.levels.count is not None and rows.levels.count.tolist() == [1, 3, 2, 1]
    assert rows.levels.level.tolist() == held.levels.level.tolist()
    old = msgspec.to_builtins(EngineState("fp", [1.0], [2.0], [0, 0], [-1], version=5))
    del old["publication"]  # a version 5 checkpoint has no such key
    restored = msgspec.msgpack.decode(msgspec.msgpack.encode(old), type=EngineState)
    assert restored.publication is None and restored.version == 5


def test_held_levels_of_unknown_indices_are_a_corrupt_checkpoint() -> None:
    held = HeldLevels.of(HeldRows(_levels([1, 1, 1, 1]), 12))
    with pytest.raises(StateMismatchError, match="held levels do not fit 1"):
        held.rows(1)
