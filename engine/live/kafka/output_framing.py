"""The socket protocol between the service and its output process (``output_process``).

Requests (parent -> child) and replies (child -> parent) are framed by fixed ``struct`` headers.
A request carries its batch's levels as raw little-endian columns (no encoding on the engine's
core) and the rest (messages, offsets, a checkpoint) pickled; a reply carries ``ts_published``
or, for a failure, the error's text, retriability and refused records. Both ends are this
package's own processes, over a socket pair nobody else holds: pickle is safe here.
"""

from __future__ import annotations

import asyncio
import pickle
import queue
import socket
import struct
import threading
from typing import Any, NamedTuple

import numpy as np

from engine.core.errors import RefusedRecordsError
from engine.kernel.columns import LevelColumns

# kind (u8, with _COUNTED set when a count column follows), request number (u64), levels (u32),
# pickled extras (u32); then the level columns index int32, level float64, ts_event int64, seq
# int64 (and count int64 when there is one: conflated or complete-topic rows); then the extras.
_REQUEST = struct.Struct("<BQII")
_COUNTED = 0x80
_LEVEL_ROW_BYTES = 4 + 8 + 8 + 8
_COUNT_BYTES = 8
_LEVEL_DTYPES = (np.int32, np.float64, np.int64, np.int64, np.int64)
# kind (u8), request number (u64), ts_published (i64), pickled error (u32); then the error.
_REPLY = struct.Struct("<BQqI")
SUBMIT, CHECKPOINT, TRANSACTION, CLOSE = 1, 2, 3, 4
READY, DONE, FAILED, DROPPED = 0, 1, 2, 3
_SOCKET_BUFFER_BYTES = 16 << 20
_DIRECT_SEND_BYTES = 256 << 10


class OutputProcessError(RefusedRecordsError):
    """The output process failed (a Kafka error in it, or it died).

    Parameters
    ----------
    message : str
        What failed, with the child's exception type.
    retriable : bool
        The child's error was retriable (a broker hiccup): a restart may succeed.
    refused : frozenset of bytes
        The child's ``DeliveryError.refused``: digests of the records Kafka refused.
    """


class Request(NamedTuple):
    """One request as the child reads it."""

    kind: int
    number: int
    levels: LevelColumns
    extras: Any


def request_parts(
    kind: int, number: int, levels: LevelColumns, extras: object
) -> list[bytes | memoryview]:
    """The frame of one request, in parts for ``RequestSender.send``; ``extras`` None: none."""
    payload = b"" if extras is None else pickle.dumps(extras, pickle.HIGHEST_PROTOCOL)
    counted = len(levels) > 0 and levels.count is not None
    header = _REQUEST.pack(kind | (_COUNTED if counted else 0), number, len(levels), len(payload))
    parts: list[bytes | memoryview] = [header]
    if len(levels):
        columns = (levels.index, levels.level, levels.ts_event, levels.seq, levels.count)
        # Views, not copies: the engine never changes the arrays of levels it returned.
        parts.extend(
            np.ascontiguousarray(column, dtype=dtype).view(np.uint8).data
            for column, dtype in zip(columns, _LEVEL_DTYPES, strict=True)
            if column is not None
        )
    if payload:
        parts.append(payload)
    return parts


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request; None when the service closed the connection between requests."""
    try:
        header = await reader.readexactly(_REQUEST.size)
    except asyncio.IncompleteReadError:
        return None
    flagged, number, size, extras_size = _REQUEST.unpack(header)
    kind, counted = flagged & ~_COUNTED, flagged & _COUNTED
    row_bytes = _LEVEL_ROW_BYTES + (_COUNT_BYTES if counted else 0)
    levels = _levels(await reader.readexactly(size * row_bytes), size, counted=bool(counted))
    extras: Any = pickle.loads(await reader.readexactly(extras_size)) if extras_size else None
    return Request(kind, number, levels, extras)


async def read_reply(reader: asyncio.StreamReader) -> tuple[int, int, int, OutputProcessError]:
    """The next reply: kind, request number, ``ts_published`` (or count dropped), error."""
    kind, number, ts_published, size = _REPLY.unpack(await reader.readexactly(_REPLY.size))
    text, retriable, refused = "", False, frozenset[bytes]()
    if size:
        text, retriable, refused = pickle.loads(await reader.readexactly(size))
    return kind, number, ts_published, OutputProcessError(text, retriable, refused)


def write_reply(
    writer: asyncio.StreamWriter, kind: int, number: int, ts: int, error: BaseException | None
) -> None:
    """Write one reply; ``error`` goes as its text, retriability and refused records."""
    payload = b""
    if error is not None:
        retriable = bool(getattr(error, "retriable", False))
        refused = frozenset(getattr(error, "refused", ()))
        payload = pickle.dumps((f"{type(error).__name__}: {error}", retriable, refused))
    writer.write(_REPLY.pack(kind, number, ts, len(payload)) + payload)


def reply_when_done(writer: asyncio.StreamWriter, number: int, done: asyncio.Future[int]) -> None:
    """Reply to request ``number`` with the outcome of ``done`` (a done callback)."""
    error = asyncio.CancelledError("batch cancelled") if done.cancelled() else done.exception()
    if error is None:
        write_reply(writer, DONE, number, done.result(), None)
    else:
        write_reply(writer, FAILED, number, 0, error)


class RequestSender:
    """Writes requests to the child: at once when the socket takes them, else from a thread.

    A small request (a quiet market's batch) goes in one non-blocking send from the event loop:
    no thread hand-off, whose GIL wait (up to the 5 ms switch interval while the engine
    computes) would show in latency. A large one, or what did not fit, is copied by the thread
    without the GIL, beside the engine, into a socket buffer asked to be large (the kernel caps
    it at ``net.core.wmem_max``); later requests queue behind it, so order holds. The queue
    holds at most the batches the service lets await their answers before it stops fetching
    (``engine.live.kafka.output.InFlightBatches``), so it needs no bound of its own.
    """

    def __init__(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER_BYTES)
        self._sock = sock
        self._queue: queue.SimpleQueue[list[bytes | memoryview] | None] = queue.SimpleQueue()
        self._backlog = 0
        self._lock = threading.Lock()
        self.error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="tickindex-output-sender")
        self._thread.start()

    def send(self, parts: list[bytes | memoryview]) -> None:
        """Send one request's frame, in order after every earlier one."""
        size = sum(map(len, parts))  # bytes: the parts are flat byte views
        with self._lock:
            if self._backlog == 0 and self.error is None and size <= _DIRECT_SEND_BYTES:
                data = b"".join(parts)
                try:
                    sent = self._sock.send(data, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    sent = 0
                except OSError as exc:  # the child died: its replies' end reports it
                    self.error = exc
                    return
                if sent == size:
                    return
                parts = [memoryview(data)[sent:]]
            self._backlog += 1
        self._queue.put(parts)  # a large frame is not joined here: the thread sends its parts

    def close(self) -> None:
        """Send what is queued, then close the socket (blocking)."""
        self._queue.put(None)
        self._thread.join()
        self._sock.close()

    def _run(self) -> None:
        while (parts := self._queue.get()) is not None:
            try:
                for part in parts:
                    if self.error is None:
                        self._sock.sendall(part)
            except OSError as exc:  # the child died: its replies' end reports it
                self.error = exc
            with self._lock:
                self._backlog -= 1


def _levels(data: bytes, size: int, *, counted: bool) -> LevelColumns:
    if size == 0:
        return LevelColumns.empty()
    dtypes = _LEVEL_DTYPES if counted else _LEVEL_DTYPES[:-1]
    starts = np.cumsum([0, *(np.dtype(dtype).itemsize * size for dtype in dtypes)])
    index, level, ts_event, seq, *count = (
        np.frombuffer(data, dtype=dtype, count=size, offset=int(start))
        for dtype, start in zip(dtypes, starts, strict=False)
    )
    security = np.zeros(size, dtype=np.int64)
    return LevelColumns(ts_event, index, level, seq, security, count[0] if count else None)
