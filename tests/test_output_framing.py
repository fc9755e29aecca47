"""The socket protocol of the output process: requests and replies read back as written."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import cast

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.errors import DeliveryError
from engine.kernel.columns import LevelColumns
from engine.live.codec import OutgoingMessage
from engine.live.kafka.output_framing import (
    CLOSE,
    DONE,
    FAILED,
    TRANSACTION,
    OutputProcessError,
    Request,
    RequestSender,
    read_reply,
    read_request,
    reply_when_done,
    request_parts,
    write_reply,
)

INT64 = st.integers(-(2**63), 2**63 - 1)


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()  # in the running loop
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def _requests(data: bytes) -> list[Request]:
    """Every request in ``data``, up to the end of the stream."""
    reader, out = _reader(data), []
    while (request := await read_request(reader)) is not None:
        out.append(request)
    return out


async def _replies(data: bytes, count: int) -> list[tuple[int, int, int, OutputProcessError]]:
    reader = _reader(data)
    return [await read_reply(reader) for _ in range(count)]


def _frame(parts: list[bytes | memoryview]) -> bytes:
    return b"".join(parts)


class _Writer:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 2**31 - 1),
            st.floats(allow_nan=True, allow_infinity=True),
            INT64,
            INT64,
        ),
        max_size=30,
    ),
    number=st.integers(0, 2**64 - 1),
)
def test_a_request_reads_back_as_written(
    rows: list[tuple[int, float, int, int]], number: int
) -> None:
    index, level, ts_event, seq = ([row[at] for row in rows] for at in range(4))
    levels = LevelColumns(
        np.array(ts_event, dtype=np.int64),
        np.array(index, dtype=np.int32),
        np.array(level, dtype=np.float64),
        np.array(seq, dtype=np.int64),
        np.zeros(len(rows), dtype=np.int64),
    )
    extras: tuple[object, ...] = (
        [OutgoingMessage("dead", b"k", b"\xff" * 3)],
        {"t:0": 5},
        "group",
        frozenset(),
    )
    (request,) = asyncio.run(_requests(_frame(request_parts(TRANSACTION, number, levels, extras))))

    assert (request.kind, request.number, request.extras) == (TRANSACTION, number, extras)
    for got, sent in (
        (request.levels.index, levels.index),
        (request.levels.level, levels.level),
        (request.levels.ts_event, levels.ts_event),
        (request.levels.seq, levels.seq),
    ):
        np.testing.assert_array_equal(got, sent)


def test_requests_read_in_order_then_none_at_the_end() -> None:
    close = _frame(request_parts(CLOSE, 7, LevelColumns.empty(), None))
    assert len(close) == 17, "a header alone"

    requests = asyncio.run(_requests(close + close.replace(b"\x07", b"\x08", 1)))
    assert [(r.kind, r.number, r.extras) for r in requests] == [(CLOSE, 7, None), (CLOSE, 8, None)]


def test_a_truncated_request_raises() -> None:
    levels = LevelColumns.empty()
    frame = _frame(request_parts(TRANSACTION, 1, levels, ("extras", 1)))
    with pytest.raises(asyncio.IncompleteReadError):
        asyncio.run(_requests(frame[:-1]))


def test_a_failure_reply_keeps_the_reason_retriability_and_refused_records() -> None:
    writer = _Writer()
    error = DeliveryError("too large", False, refused=frozenset({b"digest"}))
    write_reply(cast(asyncio.StreamWriter, writer), FAILED, 3, 0, error)
    write_reply(cast(asyncio.StreamWriter, writer), DONE, 4, 1234, None)
    (kind, number, _, failure), (done, done_number, ts, _) = asyncio.run(
        _replies(bytes(writer.data), 2)
    )
    assert (kind, number) == (FAILED, 3)
    assert str(failure) == "DeliveryError: too large"
    assert not failure.retriable and failure.refused == frozenset({b"digest"})
    assert (done, done_number, ts) == (DONE, 4, 1234)


def test_a_cancelled_batch_is_answered_as_failed() -> None:
    async def answer() -> bytes:
        writer = _Writer()
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        done.cancel()
        reply_when_done(cast(asyncio.StreamWriter, writer), 9, done)
        return bytes(writer.data)

    ((kind, number, _, error),) = asyncio.run(_replies(asyncio.run(answer()), 1))
    assert (kind, number) == (FAILED, 9)
    assert "CancelledError" in str(error)


def test_the_sender_keeps_the_order_of_small_and_large_requests() -> None:
    ours, theirs = socket.socketpair()
    received = bytearray()

    def receive() -> None:
        while chunk := theirs.recv(1 << 20):
            received.extend(chunk)

    reader = threading.Thread(target=receive)
    reader.start()
    frames = [b"a" * 10, b"b" * (3 << 20), b"c" * 10, b"d" * (300 << 10), b"e" * 5]
    sender = RequestSender(ours)
    for frame in frames:
        sender.send([frame[:1], memoryview(frame)[1:]])
    sender.close()
    reader.join(timeout=30)
    theirs.close()
    assert sender.error is None
    assert bytes(received) == b"".join(frames)
