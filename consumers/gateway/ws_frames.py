"""WebSocket text frames built once and written whole, straight to the connection.

aiohttp writes a frame of more than 16 KiB as two sends (its header, then the payload), and
copies the payload into each client's frame. A gateway message under load is tens of KiB and
the same for every client of a hand-out, so the stream builds the frame once (RFC 6455: a
server's frames are not masked; compression is not negotiated on the stream) and gives each
client one send of it. Control frames (ping, close) still go through aiohttp, whole too.
"""

from __future__ import annotations

import asyncio
import struct

WRITE_LIMIT_BYTES = 1 << 16
"""A client's bytes buffered in the gateway (past the kernel's) before its sender waits."""
DRAIN_POLL_S = 0.005

_FIN_TEXT = 0x81


def text_frame(payload: bytes) -> bytes:
    """``payload`` as one unmasked, final WebSocket text frame."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", _FIN_TEXT, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", _FIN_TEXT, 126, size)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, size)
    return header + payload


async def write_frame(transport: asyncio.Transport, frame: bytes) -> None:
    """Write ``frame`` and wait while more than ``WRITE_LIMIT_BYTES`` of this connection's
    output wait in the gateway; raises ``ConnectionResetError`` once the connection is gone."""
    if transport.is_closing():
        raise ConnectionResetError("the client's connection is closed")
    transport.write(frame)
    while transport.get_write_buffer_size() > WRITE_LIMIT_BYTES:
        if transport.is_closing():
            raise ConnectionResetError("the client's connection is closed")
        await asyncio.sleep(DRAIN_POLL_S)
