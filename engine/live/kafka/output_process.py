"""The output stage in a child process: levels are encoded and produced on the second core.

Encoding a level to JSON and handing it to the producer costs about as much as fetching and
computing it, so the service ships each batch's levels as raw columns over a Unix socket to a
child process that runs ``KafkaOutput``; the event loop of the engine only fetches and computes.

Requests go parent -> child in batch order and the child handles them in that order, so the commit
order of ``engine.live.service`` holds unchanged: a checkpoint request is answered only after every
batch before it is acknowledged by Kafka. The child saves a checkpoint (its flush, then its own
round trip) beside the batches that follow it, one checkpoint at a time: waiting for it before
reading on would hold every level of those milliseconds. Each request is answered once (done, with
``ts_published``, or failed, with the error); after a failure the child stops taking requests and
every later call raises (exactly-once, the service then starts a new stage: see
``engine.live.kafka.recovery``). A message the child dropped after its retries (a dead letter, see
``engine.live.kafka.output``) is reported by a reply of its own, counted by the parent's
``on_dropped``. The child ignores SIGINT and SIGTERM (a terminal or a service manager signals the
whole process group: the parent decides when output stops) and exits when told to or when the
parent's end of the socket closes (the parent died: nothing more can be committed). The frames on
the sockets and the thread that sends requests are ``engine.live.kafka.output_framing``.

Speed-up 1.31x and 1.28x (517k vs 394k, 457k vs 357k ticks/s with vs without, fastest of 5
rounds, two runs of ``tickindex bench --kafka --mechanisms``); ``output_process = false`` is
without.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import socket
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from multiprocessing.process import BaseProcess
from typing import Any

import numpy as np

from engine.kernel.columns import LevelColumns
from engine.live.codec import OutgoingMessage
from engine.live.config import ServiceConfig
from engine.live.kafka.output import KafkaOutput
from engine.live.kafka.output_framing import (
    CHECKPOINT,
    CLOSE,
    DONE,
    DROPPED,
    FAILED,
    READY,
    SUBMIT,
    TRANSACTION,
    OutputProcessError,
    RequestSender,
    read_reply,
    read_request,
    reply_when_done,
    request_parts,
    write_reply,
)
from engine.live.level_encoding import LevelEncoder
from engine.live.log_limits import limit_kafka_client_logs
from engine.wire import WireCodec

__all__ = ["OutputProcessError", "ProcessOutput"]

_STREAM_LIMIT = 16 << 20
_EXIT_SECONDS = 30.0

log = logging.getLogger(__name__)


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
        self._sender: RequestSender | None = None
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
        self._sender = RequestSender(requests)
        reader, self._reply_writer = await asyncio.open_unix_connection(sock=replies)
        try:
            kind, _, _, error = await read_reply(reader)
        except asyncio.IncompleteReadError:
            raise self._died() from None
        if kind != READY:
            raise error
        self._replies = asyncio.create_task(self._read_replies(reader))

    async def close(self) -> None:
        """Let the child send what it holds, then wait for it to exit."""
        self._closing = True
        if self._sender is not None:
            if self._failure is None:
                self._sender.send(request_parts(CLOSE, self._number(), LevelColumns.empty(), None))
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

    @property
    def failure(self) -> OutputProcessError | None:
        """Why the stage is unusable (the child failed or died), None while it works."""
        return self._failure

    async def submit(
        self, levels: LevelColumns, messages: Sequence[OutgoingMessage]
    ) -> asyncio.Future[int]:
        """Send one batch; see ``OutputStage.submit``."""
        return await self._request(SUBMIT, levels, list(messages) if messages else None)

    async def checkpoint(self, message: OutgoingMessage) -> None:
        """Flush every submitted batch, then send ``message`` and wait for its acknowledgement."""
        await (await self._request(CHECKPOINT, LevelColumns.empty(), message))

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
        return await (await self._request(TRANSACTION, levels, extras))

    async def _request(
        self, kind: int, levels: LevelColumns, extras: object
    ) -> asyncio.Future[int]:
        if self._failure is not None:
            raise self._failure
        assert self._sender is not None
        number = self._number()
        parts = request_parts(kind, number, levels, extras)
        answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting[number] = answer
        self._sender.send(parts)
        return answer

    def _number(self) -> int:
        self._next += 1
        return self._next

    async def _read_replies(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                kind, number, ts_published, error = await read_reply(reader)
                if kind == DROPPED:
                    if self._on_dropped is not None:
                        self._on_dropped(ts_published)
                    continue
                answer = (
                    self._waiting.get(number) if kind == FAILED else self._waiting.pop(number, None)
                )
                if kind == FAILED:
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
    encoder = LevelEncoder(
        codes,
        prev_close,
        WireCodec(wire_format),
        topic,
        batched=batched,
        complete_topic=config.complete_level_topic,
    )
    asyncio.run(_serve(requests, replies, config, encoder))


async def _serve(
    requests: socket.socket, replies: socket.socket, config: ServiceConfig, encoder: LevelEncoder
) -> None:
    # Both ends are kept: a StreamWriter closes its socket when it is garbage collected.
    reader, request_end = await asyncio.open_unix_connection(sock=requests, limit=_STREAM_LIMIT)
    reply_end, writer = await asyncio.open_unix_connection(sock=replies)
    output = KafkaOutput.from_config(
        config, encoder, on_dropped=lambda count: write_reply(writer, DROPPED, 0, count, None)
    )
    try:
        await output.start()
    except Exception as exc:  # any start failure is reported to the parent
        write_reply(writer, FAILED, 0, 0, exc)
        await writer.drain()
        writer.close()
        return
    try:
        write_reply(writer, READY, 0, 0, None)
        await _handle_requests(reader, writer, output)
    finally:
        await output.close()
        writer.close()
        request_end.close()
        del reply_end


async def _handle_requests(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, output: KafkaOutput
) -> None:
    saving: asyncio.Future[int] | None = None  # the checkpoint being saved beside later batches
    while True:
        request = await read_request(reader)
        if request is None:
            log.warning("the service closed the connection: stopping")
            return
        if saving is not None and saving.done() and saving.exception() is not None:
            return  # its failure was the reply: no request after it is taken
        kind, number, levels, extras = request
        try:
            if kind == SUBMIT:
                done = await output.submit(levels, extras or [])
                done.add_done_callback(partial(reply_when_done, writer, number))
            elif kind == CHECKPOINT:
                if saving is not None:
                    await saving
                saving = asyncio.ensure_future(_saved(output, extras))
                saving.add_done_callback(partial(reply_when_done, writer, number))
            elif kind == TRANSACTION:
                messages, offsets, group_id, alone = extras
                ts_published = await output.transaction(levels, messages, offsets, group_id, alone)
                write_reply(writer, DONE, number, ts_published, None)
            else:
                if saving is not None:
                    await saving
                await output.flush()
                return
        except Exception as exc:  # every failure goes back to the service
            write_reply(writer, FAILED, number, 0, exc)
            await writer.drain()
            return
        await writer.drain()


async def _saved(output: KafkaOutput, message: OutgoingMessage) -> int:
    """Save a checkpoint (``KafkaOutput.checkpoint``); 0 for the reply's ``ts_published``."""
    await output.checkpoint(message)
    return 0
