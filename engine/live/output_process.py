"""The output stage in a child process: levels are encoded and produced on the second core.

Encoding a level to JSON and handing it to the producer costs about as much as fetching and
computing it, so the service ships each batch's levels as raw columns over a Unix socket to a
child process that runs ``KafkaOutput``; the event loop of the engine only fetches and computes.

Requests go parent -> child in batch order and the child handles them in that order, so the
commit order of ``engine.live.service`` holds unchanged: a checkpoint request is answered only
after every batch before it is acknowledged by Kafka. Each request is answered once (done, with
``ts_published``, or failed, with the error); after a failure the child stops taking requests and
every later call raises (exactly-once, the service then starts a new stage: see
``engine.live.recovery``). A message the child dropped after its retries (a dead letter, see
``engine.live.output``) is reported by a reply of its own, counted by the parent's
``on_dropped``. The child ignores SIGINT and SIGTERM (a terminal or a service manager signals the
whole process group: the parent decides when output stops) and exits when told to or when the
parent's end of the socket closes (the parent died: nothing more can be committed).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import pickle
import queue
import signal
import socket
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from multiprocessing.process import BaseProcess
from typing import Any

import numpy as np

from engine.columns import LevelColumns
from engine.errors import TickIndexError
from engine.live.codec import LevelEncoder, OutgoingMessage
from engine.live.config import ServiceConfig
from engine.live.gc_policy import serving_gc
from engine.live.log_limits import limit_kafka_client_logs
from engine.live.output import KafkaOutput
from engine.wire import WireCodec

# kind (u8), request number (u64), levels (u32), pickled extras (u32); then the level columns
# index int32, level float64, ts_event int64, seq int64; then the extras.
_REQUEST = struct.Struct("<BQII")
_LEVEL_ROW_BYTES = 4 + 8 + 8 + 8
# kind (u8), request number (u64), ts_published (i64), pickled error (u32); then the error.
_REPLY = struct.Struct("<BQqI")
_SUBMIT, _CHECKPOINT, _TRANSACTION, _CLOSE = 1, 2, 3, 4
_READY, _DONE, _FAILED, _DROPPED = 0, 1, 2, 3
_STREAM_LIMIT = 16 << 20
_SOCKET_BUFFER_BYTES = 16 << 20
_DIRECT_SEND_BYTES = 256 << 10
_EXIT_SECONDS = 30.0

log = logging.getLogger(__name__)


class OutputProcessError(TickIndexError):
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

    def __init__(
        self, message: str, retriable: bool = False, refused: frozenset[bytes] = frozenset()
    ) -> None:
        self.retriable = retriable
        self.refused = refused
        super().__init__(message)


class ProcessOutput:
    """``OutputStage`` in a child process (spawned by ``start``).

    Parameters
    ----------
    config : ServiceConfig
        Producer settings (bootstrap, linger, delivery, transactional id).
    encoder : LevelEncoder
        Its codes, previous closes, wire format, topic and message form are rebuilt in the child.
    on_dropped : callable, optional
        Called with the number of messages the child dropped after their retries.
    """

    def __init__(
        self,
        config: ServiceConfig,
        encoder: LevelEncoder,
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        self.config = config
        self._on_dropped = on_dropped
        self._encoder_parts = (
            encoder.codes, encoder.prev_close, encoder.codec.wire_format, encoder.topic,
            encoder.batched,
        )  # fmt: skip
        self._process: BaseProcess | None = None
        self._sender: _RequestSender | None = None
        self._reply_writer: asyncio.StreamWriter | None = None
        self._replies: asyncio.Task[None] | None = None
        self._waiting: dict[int, asyncio.Future[int]] = {}
        self._next = 0
        self._failure: OutputProcessError | None = None
        self._closing = False

    async def start(self) -> None:
        """Spawn the child and wait until its producer is connected."""
        requests, child_requests = socket.socketpair()
        replies, child_replies = socket.socketpair()
        context = multiprocessing.get_context("spawn")
        self._process = context.Process(
            target=_child_main,
            args=(child_requests, child_replies, self.config, self._encoder_parts),
            name="tickindex-output",
            daemon=True,
        )
        self._process.start()
        child_requests.close()
        child_replies.close()
        self._sender = _RequestSender(requests)
        reader, self._reply_writer = await asyncio.open_unix_connection(sock=replies)
        try:
            kind, _, _, error = await _read_reply(reader)
        except asyncio.IncompleteReadError:
            raise self._died() from None
        if kind != _READY:
            raise error
        self._replies = asyncio.create_task(self._read_replies(reader))

    async def close(self) -> None:
        """Let the child send what it holds, then wait for it to exit."""
        self._closing = True
        if self._sender is not None:
            if self._failure is None:
                self._sender.send([_REQUEST.pack(_CLOSE, self._number(), 0, 0)])
            await asyncio.to_thread(self._sender.close)
        if self._replies is not None:
            await asyncio.wait({self._replies}, timeout=_EXIT_SECONDS)
        if self._process is not None:
            await asyncio.to_thread(self._process.join, _EXIT_SECONDS)
            if self._process.is_alive():
                log.error("output process did not exit in %.0f s: killed", _EXIT_SECONDS)
                self._process.kill()
        if self._reply_writer is not None:
            self._reply_writer.close()
        if self._replies is not None:
            self._replies.cancel()
            await asyncio.gather(self._replies, return_exceptions=True)
        if self._failure is not None:
            raise self._failure

    async def submit(
        self, levels: LevelColumns, messages: Sequence[OutgoingMessage]
    ) -> asyncio.Future[int]:
        """Send one batch; see ``OutputStage.submit``."""
        return await self._request(_SUBMIT, levels, list(messages) if messages else None)

    async def checkpoint(self, message: OutgoingMessage) -> None:
        """Flush every submitted batch, then send ``message`` and wait for its acknowledgement."""
        await (await self._request(_CHECKPOINT, LevelColumns.empty(), message))

    async def transaction(
        self,
        levels: LevelColumns,
        messages: Sequence[OutgoingMessage],
        offsets: Mapping[Any, int],
        group_id: str,
        alone: frozenset[bytes] = frozenset(),
    ) -> int:
        """Levels, messages and input offsets committed together; see ``OutputStage``."""
        extras = (list(messages), dict(offsets), group_id, alone)
        return await (await self._request(_TRANSACTION, levels, extras))

    async def _request(
        self, kind: int, levels: LevelColumns, extras: object
    ) -> asyncio.Future[int]:
        if self._failure is not None:
            raise self._failure
        assert self._sender is not None
        number = self._number()
        payload = b"" if extras is None else pickle.dumps(extras, pickle.HIGHEST_PROTOCOL)
        answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting[number] = answer
        parts: list[bytes | memoryview] = [_REQUEST.pack(kind, number, len(levels), len(payload))]
        if len(levels):
            # Views, not copies: the engine never changes the arrays of levels it returned.
            parts.extend(
                np.ascontiguousarray(column, dtype=dtype).view(np.uint8).data
                for column, dtype in (
                    (levels.index, np.int32),
                    (levels.level, np.float64),
                    (levels.ts_event, np.int64),
                    (levels.seq, np.int64),
                )
            )
        if payload:
            parts.append(payload)
        self._sender.send(parts)
        return answer

    def _number(self) -> int:
        self._next += 1
        return self._next

    async def _read_replies(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                kind, number, ts_published, error = await _read_reply(reader)
                if kind == _DROPPED:
                    if self._on_dropped is not None:
                        self._on_dropped(ts_published)
                    continue
                answer = (
                    self._waiting.get(number)
                    if kind == _FAILED
                    else self._waiting.pop(number, None)
                )
                if kind == _FAILED:
                    self._fail(error)  # fails ``answer`` too, with every other waiting request
                elif answer is not None and not answer.done():
                    answer.set_result(ts_published)
        except asyncio.IncompleteReadError:
            if not self._closing or self._waiting:
                self._fail(self._died())

    def _died(self) -> OutputProcessError:
        code = None if self._process is None else self._process.exitcode
        return OutputProcessError(f"the output process exited unexpectedly (exit code {code})")

    def _fail(self, error: OutputProcessError) -> None:
        if self._failure is None:
            log.error("output process failed: %s", error)
            self._failure = error
        waiting, self._waiting = self._waiting, {}
        for answer in waiting.values():
            if not answer.done():
                answer.set_exception(error)


class _RequestSender:
    """Writes requests to the child: at once when the socket takes them, else from a thread.

    A small request (a quiet market's batch) goes in one non-blocking send from the event loop:
    no thread hand-off, whose GIL wait (up to the 5 ms switch interval while the engine
    computes) would show in latency. A large one, or what did not fit, is copied by the thread
    without the GIL, beside the engine, into a socket buffer asked to be large (the kernel caps
    it at ``net.core.wmem_max``); later requests queue behind it, so order holds. The queue
    holds at most the service's ``max_in_flight_batches`` batches (it waits on their answers
    before fetching more), so it needs no bound of its own.
    """

    def __init__(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER_BYTES)
        self._sock = sock
        self._queue: queue.SimpleQueue[bytes | memoryview | None] = queue.SimpleQueue()
        self._backlog = 0
        self._lock = threading.Lock()
        self.error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="tickindex-output-sender")
        self._thread.start()

    def send(self, parts: list[bytes | memoryview]) -> None:
        data: bytes | memoryview = b"".join(parts)
        with self._lock:
            if self._backlog == 0 and self.error is None and len(data) <= _DIRECT_SEND_BYTES:
                try:
                    sent = self._sock.send(data, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    sent = 0
                except OSError as exc:  # the child died: its replies' end reports it
                    self.error = exc
                    return
                if sent == len(data):
                    return
                data = memoryview(data)[sent:]
            self._backlog += 1
        self._queue.put(data)

    def close(self) -> None:
        """Send what is queued, then close the socket (blocking)."""
        self._queue.put(None)
        self._thread.join()
        self._sock.close()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            if self.error is None:
                try:
                    self._sock.sendall(data)
                except OSError as exc:  # the child died: its replies' end reports it
                    self.error = exc
            with self._lock:
                self._backlog -= 1


async def _read_reply(reader: asyncio.StreamReader) -> tuple[int, int, int, OutputProcessError]:
    kind, number, ts_published, size = _REPLY.unpack(await reader.readexactly(_REPLY.size))
    text, retriable, refused = "", False, frozenset[bytes]()
    if size:
        text, retriable, refused = pickle.loads(await reader.readexactly(size))
    return kind, number, ts_published, OutputProcessError(text, retriable, refused)


def _reply(
    writer: asyncio.StreamWriter, kind: int, number: int, ts: int, error: BaseException | None
) -> None:
    payload = b""
    if error is not None:
        retriable = bool(getattr(error, "retriable", False))
        refused = frozenset(getattr(error, "refused", ()))
        payload = pickle.dumps((f"{type(error).__name__}: {error}", retriable, refused))
    writer.write(_REPLY.pack(kind, number, ts, len(payload)) + payload)


def _reply_when_done(writer: asyncio.StreamWriter, number: int, done: asyncio.Future[int]) -> None:
    error = asyncio.CancelledError("batch cancelled") if done.cancelled() else done.exception()
    if error is None:
        _reply(writer, _DONE, number, done.result(), None)
    else:
        _reply(writer, _FAILED, number, 0, error)


def _child_main(
    requests: socket.socket,
    replies: socket.socket,
    config: ServiceConfig,
    encoder_parts: tuple[Sequence[str], np.ndarray[Any, np.dtype[np.float64]], Any, str, bool],
) -> None:
    """Entry point of the output process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s output %(levelname)s %(message)s"
    )
    limit_kafka_client_logs()
    codes, prev_close, wire_format, topic, batched = encoder_parts
    encoder = LevelEncoder(codes, prev_close, WireCodec(wire_format), topic, batched=batched)
    asyncio.run(_serve(requests, replies, config, encoder))


async def _serve(
    requests: socket.socket, replies: socket.socket, config: ServiceConfig, encoder: LevelEncoder
) -> None:
    # Both ends are kept: a StreamWriter closes its socket when it is garbage collected.
    reader, request_end = await asyncio.open_unix_connection(sock=requests, limit=_STREAM_LIMIT)
    reply_end, writer = await asyncio.open_unix_connection(sock=replies)
    output = KafkaOutput.from_config(
        config, encoder, on_dropped=lambda count: _reply(writer, _DROPPED, 0, count, None)
    )
    try:
        await output.start()
    except Exception as exc:  # any start failure is reported to the parent
        _reply(writer, _FAILED, 0, 0, exc)
        await writer.drain()
        writer.close()
        return
    try:
        with serving_gc(config.tune_gc):
            _reply(writer, _READY, 0, 0, None)
            await _handle_requests(reader, writer, output)
    finally:
        await output.close()
        writer.close()
        request_end.close()
        del reply_end


async def _handle_requests(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, output: KafkaOutput
) -> None:
    while True:
        try:
            header = await reader.readexactly(_REQUEST.size)
        except asyncio.IncompleteReadError:
            log.warning("the service closed the connection: stopping")
            return
        kind, number, size, extras_size = _REQUEST.unpack(header)
        levels = _levels(await reader.readexactly(size * _LEVEL_ROW_BYTES), size)
        extras: Any = pickle.loads(await reader.readexactly(extras_size)) if extras_size else None
        try:
            if kind == _SUBMIT:
                done = await output.submit(levels, extras or [])
                done.add_done_callback(partial(_reply_when_done, writer, number))
            elif kind == _CHECKPOINT:
                await output.checkpoint(extras)
                _reply(writer, _DONE, number, 0, None)
            elif kind == _TRANSACTION:
                messages, offsets, group_id, alone = extras
                ts_published = await output.transaction(levels, messages, offsets, group_id, alone)
                _reply(writer, _DONE, number, ts_published, None)
            else:
                await output.flush()
                return
        except Exception as exc:  # every failure goes back to the service
            _reply(writer, _FAILED, number, 0, exc)
            await writer.drain()
            return
        await writer.drain()


def _levels(data: bytes, size: int) -> LevelColumns:
    if size == 0:
        return LevelColumns.empty()
    ends = np.cumsum([0, 4 * size, 8 * size, 8 * size, 8 * size])
    index, level, ts_event, seq = (
        np.frombuffer(data, dtype=dtype, count=size, offset=int(start))
        for dtype, start in zip((np.int32, np.float64, np.int64, np.int64), ends, strict=False)
    )
    return LevelColumns(ts_event, index, level, seq, np.zeros(size, dtype=np.int64))
