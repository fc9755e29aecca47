"""The gateway load benchmark's WebSocket clients: fast, auditing and slow.

Every stream message is a JSON array of events, oldest first, and the publisher stamps each
level's ``ts_event`` with its wall time at send, in send order. So receive time minus the first
level's ``ts_event`` bounds the delay of every level in the message from above: a fast client
records that bound once per message, weighted by its levels, without decoding the message
(200 clients at 20,000 levels/s are 4 million levels a second: no Python client keeps up
decoding them all on the gateway's machine). Auditing clients decode every level, check each
index's seqs are consecutive and record each level's exact delay, which the bound is checked
against. The clients run in worker processes of their own (``run_client_worker``), away from
the publisher, whose pace stamps the levels.
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import msgspec
import numpy as np
from aiohttp import ClientSession, TCPConnector, WSMsgType

_LEVEL = '"type":"level"'
_TS_EVENT = '"ts_event":'


class _LevelEvent(msgspec.Struct):
    type: str
    index: str = ""
    seq: int = 0
    ts_event: int = 0


_decode_events = msgspec.json.Decoder(list[_LevelEvent]).decode


@dataclass
class ClientResult:
    """What one client received: levels, per-message delay bounds (ns) and their weights, and
    for an auditing client each level's exact delay and the seqs it found missing."""

    levels: int = 0
    bound_ns: list[int] = field(default_factory=list)
    bound_levels: list[int] = field(default_factory=list)
    exact_ns: list[int] = field(default_factory=list)
    skipped: int = 0
    disconnected: bool = False
    audited: bool = False


def first_level_ts(text: str) -> int | None:
    """The ``ts_event`` of the first level in one stream message (None: no level in it)."""
    at = text.find(_LEVEL)
    if at < 0:
        return None
    start = text.find(_TS_EVENT, at) + len(_TS_EVENT)
    end = start
    while end < len(text) and text[end].isdigit():
        end += 1
    return int(text[start:end])


async def fast_client(
    session: ClientSession, url: str, measure_from_ns: int, result: ClientResult
) -> None:
    """Read as fast as possible; per message, the delay bound of its levels."""
    async with session.ws_connect(url) as ws:
        async for msg in ws:
            now = time.time_ns()
            if msg.type != WSMsgType.TEXT:
                break
            text: str = msg.data
            count = text.count(_LEVEL)
            first = first_level_ts(text)
            result.levels += count
            if first is not None and first >= measure_from_ns:
                result.bound_ns.append(now - first)
                result.bound_levels.append(count)
        result.disconnected = ws.close_code is not None and ws.close_code != 1000


async def auditing_client(
    session: ClientSession, url: str, measure_from_ns: int, result: ClientResult
) -> None:
    """Read as fast as possible, decoding every level: exact delays, seq gaps and the bound."""
    result.audited = True
    last_seq: dict[str, int] = {}
    async with session.ws_connect(url) as ws:
        async for msg in ws:
            now = time.time_ns()
            if msg.type != WSMsgType.TEXT:
                break
            levels = [e for e in _decode_events(msg.data) if e.type == "level"]
            if not levels:
                continue
            result.levels += len(levels)
            for event in levels:
                previous = last_seq.get(event.index)
                if previous is not None and event.seq > previous + 1:
                    result.skipped += event.seq - previous - 1
                last_seq[event.index] = event.seq
                if event.ts_event >= measure_from_ns:
                    result.exact_ns.append(now - event.ts_event)
            if levels[0].ts_event >= measure_from_ns:
                result.bound_ns.append(now - levels[0].ts_event)
                result.bound_levels.append(len(levels))
        result.disconnected = ws.close_code is not None and ws.close_code != 1000


async def slow_client(
    session: ClientSession, url: str, sleep_s: float, result: ClientResult
) -> None:
    """Read one message, then sleep ``sleep_s``, and again."""
    async with session.ws_connect(url) as ws:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            result.levels += msg.data.count(_LEVEL)
            await asyncio.sleep(sleep_s)
        result.disconnected = ws.close_code is not None and ws.close_code != 1000


@dataclass(frozen=True)
class ClientShare:
    """The clients one worker process runs.

    Attributes
    ----------
    stream_url : str
        The gateway's ``/v1/stream``.
    fast, auditing, slow : int
        Fast clients (of which the first ``auditing`` decode every level) and slow ones.
    slow_sleep_s : float
        A slow client's sleep after each message.
    measure_from_ns : int
        Levels stamped earlier are left out of the delays (the warm-up).
    drain_s : float
        Longest wait, once told how many levels were published, for the last ones.
    """

    stream_url: str
    fast: int
    auditing: int
    slow: int
    slow_sleep_s: float
    measure_from_ns: int
    drain_s: float


async def _run_share(share: ClientShare, pipe: Connection) -> None:
    fast = [ClientResult() for _ in range(share.fast)]
    slow = [ClientResult() for _ in range(share.slow)]
    async with ClientSession(connector=TCPConnector(limit=0)) as session:
        tasks = [
            *(
                asyncio.create_task(
                    (auditing_client if n < share.auditing else fast_client)(
                        session, share.stream_url, share.measure_from_ns, result
                    )
                )
                for n, result in enumerate(fast)
            ),
            *(
                asyncio.create_task(
                    slow_client(session, share.stream_url, share.slow_sleep_s, result)
                )
                for result in slow
            ),
        ]
        gc.collect()
        gc.freeze()  # a measuring client's own pauses are not the gateway's delay
        published = await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        deadline = time.monotonic() + share.drain_s
        while sum(r.levels for r in fast) < share.fast * published:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if not isinstance(outcome, (asyncio.CancelledError, type(None))):
                raise outcome
    pipe.send((fast, slow))


def run_client_worker(share: ClientShare, pipe: Connection) -> None:
    """Worker process: connect the share's clients, read until ``pipe`` brings the number of
    levels published and the fast clients have them all (or ``drain_s`` passed), then send
    back the fast and the slow clients' ``ClientResult``s."""
    asyncio.run(_run_share(share, pipe))


def weighted_percentile(
    values: np.ndarray[Any, Any], weights: np.ndarray[Any, Any], q: float
) -> float | None:
    """The ``q``-th percentile of ``values`` each counted ``weights`` times (lower value at a
    tie; None: nothing counted)."""
    if len(values) == 0 or weights.sum() == 0:
        return None
    order = np.argsort(values, kind="stable")
    counted = np.cumsum(weights[order])
    rank = q / 100.0 * counted[-1]
    at = min(int(np.searchsorted(counted, rank, side="left")), len(order) - 1)
    return float(values[order][at])
