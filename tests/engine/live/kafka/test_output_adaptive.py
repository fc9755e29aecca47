"""The output waits adapt to the feed: small batches go at once, checkpoints beside, in flight."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import numpy as np
import pytest

from engine.core.errors import DeliveryError
from engine.kernel.columns import LevelColumns
from engine.live.codec import OutgoingMessage
from engine.live.config import ServiceConfig
from engine.live.kafka.output import (
    SMALL_BATCH_LEVELS,
    SMALL_BATCHES_PER_BATCH,
    InFlightBatches,
    KafkaOutput,
)
from engine.live.kafka.output_framing import (
    CHECKPOINT,
    CLOSE,
    DONE,
    FAILED,
    SUBMIT,
    read_reply,
    request_parts,
)
from engine.live.kafka.output_process import _handle_requests
from engine.live.level_encoding import LevelEncoder
from engine.refdata.builtin import load_builtin_universe
from engine.wire import WireCodec


class _Producer:
    """Records the keys sent through it; ``hold`` leaves their acknowledgements pending."""

    def __init__(self, *, hold: bool = False) -> None:
        self.keys: list[bytes | None] = []
        self.hold = hold
        self.acks: list[asyncio.Future[object]] = []

    async def send(self, topic: str, value: bytes, **options: Any) -> asyncio.Future[object]:
        self.keys.append(options.get("key"))
        ack: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if not self.hold:
            ack.set_result(None)
        self.acks.append(ack)
        return ack


def _levels(indices: list[int]) -> LevelColumns:
    size = len(indices)
    ts = np.arange(size, dtype=np.int64)
    index = np.array(indices, dtype=np.int32)
    return LevelColumns(ts, index, np.full(size, 100.0), ts + 1, np.zeros(size, dtype=np.int64))


def _output(producers: list[_Producer]) -> KafkaOutput:
    encoder = LevelEncoder.for_universe(
        load_builtin_universe(), WireCodec("json"), "levels", batched=False
    )
    return KafkaOutput(cast(Any, producers), encoder)


def test_the_single_wait_of_a_quiet_feed_is_no_linger() -> None:
    assert ServiceConfig().linger_ms == 0


async def test_a_small_batch_with_nothing_pending_goes_through_one_producer() -> None:
    first, second = _Producer(), _Producer()
    output = _output([first, second])
    await (await output.submit(_levels([0, 1, 2, 3]), []))
    assert len(first.keys) == 4 and second.keys == []


async def test_a_large_batch_is_spread_over_the_producers_by_index() -> None:
    first, second = _Producer(), _Producer()
    output = _output([first, second])
    indices = [i % 4 for i in range(SMALL_BATCH_LEVELS + 1)]
    await (await output.submit(_levels(indices), []))
    codes = output.encoder.keys
    assert set(first.keys) == {codes[0], codes[2]} and set(second.keys) == {codes[1], codes[3]}


async def test_a_small_batch_behind_an_unacknowledged_large_one_is_spread_by_index() -> None:
    first, second = _Producer(hold=True), _Producer(hold=True)
    output = _output([first, second])
    await output.submit(_levels([i % 4 for i in range(SMALL_BATCH_LEVELS + 1)]), [])
    sent = len(first.keys)
    batch = await output.submit(_levels([1]), [])
    assert len(first.keys) == sent and second.keys[-1] == output.encoder.keys[1]
    for ack in first.acks + second.acks:
        ack.set_result(None)
    await batch


async def test_a_large_batch_behind_an_unacknowledged_small_one_takes_its_producer() -> None:
    first, second = _Producer(hold=True), _Producer(hold=True)
    output = _output([first, second])
    await output.submit(_levels([1]), [])  # alone, not acknowledged yet
    batch = await output.submit(_levels([i % 4 for i in range(SMALL_BATCH_LEVELS + 1)]), [])
    assert len(first.keys) == 1 + SMALL_BATCH_LEVELS + 1 and second.keys == []
    for ack in first.acks:
        ack.set_result(None)
    await batch
    await output.submit(_levels([i % 4 for i in range(SMALL_BATCH_LEVELS + 1)]), [])
    assert second.keys, "with nothing in flight a large batch is spread again"


class _SlowCheckpoints:
    """An output whose checkpoint waits for ``release``; notes the order of the calls."""

    def __init__(self, *, fail: bool = False) -> None:
        self.calls: list[str] = []
        self.release = asyncio.Event()
        self.fail = fail

    async def submit(self, levels: LevelColumns, messages: list[Any]) -> asyncio.Future[int]:
        self.calls.append("submit")
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        done.set_result(7)
        return done

    async def checkpoint(self, message: OutgoingMessage) -> None:
        self.calls.append("checkpoint")
        await self.release.wait()
        if self.fail:
            raise DeliveryError("checkpoint to state not delivered")
        self.calls.append("saved")

    async def flush(self) -> None:
        self.calls.append("flush")


class _Writer:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        await asyncio.sleep(0)


async def _replies(writer: _Writer) -> dict[int, int]:
    reader = asyncio.StreamReader()
    reader.feed_data(bytes(writer.data))
    reader.feed_eof()
    replies = {}
    while not reader.at_eof():
        kind, number, _, _ = await read_reply(reader)
        replies[number] = kind
    return replies


def _request(kind: int, number: int, extras: object = None) -> bytes:
    levels = _levels([0]) if kind == SUBMIT else LevelColumns.empty()
    return b"".join(request_parts(kind, number, levels, extras))


async def _until(done: Any) -> None:
    for _ in range(1000):
        if done():
            return
        await asyncio.sleep(0)
    pytest.fail("the handler did not get there")


async def test_the_output_process_takes_batches_while_a_checkpoint_is_saved() -> None:
    output, writer, reader = _SlowCheckpoints(), _Writer(), asyncio.StreamReader()
    handler = asyncio.create_task(_handle_requests(reader, cast(Any, writer), cast(Any, output)))
    reader.feed_data(_request(CHECKPOINT, 1, OutgoingMessage("state", b"k", b"v")))
    reader.feed_data(_request(SUBMIT, 2))
    await _until(lambda: output.calls == ["checkpoint", "submit"] and writer.data)
    assert await _replies(writer) == {2: DONE}, "the batch is answered, the checkpoint is not yet"
    output.release.set()
    reader.feed_data(_request(CLOSE, 3))
    await handler
    assert output.calls == ["checkpoint", "submit", "saved", "flush"]
    assert await _replies(writer) == {1: DONE, 2: DONE}


async def test_after_a_failed_checkpoint_the_output_process_takes_no_request() -> None:
    output, writer, reader = _SlowCheckpoints(fail=True), _Writer(), asyncio.StreamReader()
    handler = asyncio.create_task(_handle_requests(reader, cast(Any, writer), cast(Any, output)))
    reader.feed_data(_request(CHECKPOINT, 1, OutgoingMessage("state", b"k", b"v")))
    await _until(lambda: output.calls == ["checkpoint"])
    output.release.set()
    await _until(lambda: writer.data)
    reader.feed_data(_request(SUBMIT, 2))
    await asyncio.wait_for(handler, 5)
    assert output.calls == ["checkpoint"]
    assert await _replies(writer) == {1: FAILED}


def _pending() -> asyncio.Future[int]:
    return asyncio.get_running_loop().create_future()


async def test_a_heavy_feed_pauses_fetching_at_the_batch_limit() -> None:
    in_flight = InFlightBatches(limit=8)
    for _ in range(7):
        in_flight.add(_pending(), SMALL_BATCH_LEVELS + 1)
    assert not in_flight.full()
    in_flight.add(_pending(), SMALL_BATCH_LEVELS + 1)
    assert in_flight.full()


async def test_a_quiet_feeds_small_batches_count_less() -> None:
    in_flight = InFlightBatches(limit=8)
    for _ in range(8 * SMALL_BATCHES_PER_BATCH - 1):
        in_flight.add(_pending(), 4)
    assert not in_flight.full(), "8 one-tick batches behind a slow ack do not pause fetching"
    in_flight.add(_pending(), 4)
    assert in_flight.full(), "but 16 times as many do"


async def test_draining_waits_for_the_oldest_half_in_order() -> None:
    in_flight = InFlightBatches(limit=8)
    batches = [_pending() for _ in range(8)]
    for batch in batches:
        in_flight.add(batch, SMALL_BATCH_LEVELS + 1)
    drain = asyncio.create_task(in_flight.drain())
    for batch in batches[:3]:
        batch.set_result(1)
    await asyncio.sleep(0)
    assert not drain.done(), "the fourth oldest is not acknowledged yet"
    batches[3].set_result(1)
    await drain
    assert len(in_flight) == 4 and not in_flight.full()


async def test_settling_forgets_acknowledged_batches_and_raises_a_failed_one() -> None:
    in_flight = InFlightBatches(limit=8)
    done, failed, later = _pending(), _pending(), _pending()
    for batch in (done, failed, later):
        in_flight.add(batch, 1)
    done.set_result(1)
    in_flight.settle()
    assert len(in_flight) == 2
    failed.set_exception(DeliveryError("levels not delivered"))
    with pytest.raises(DeliveryError):
        in_flight.settle()
