"""WebSocket text frames built by the gateway, read back by aiohttp's own frame reader."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

from consumers.gateway.ws_frames import WRITE_LIMIT_BYTES, text_frame, write_frame


@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536, 300_000])
async def test_every_length_form_reads_back_whole(size: int) -> None:
    payload = bytes(ord("a") + i % 26 for i in range(size))

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        assert request.transport is not None
        await write_frame(request.transport, text_frame(payload))
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    async with TestClient(TestServer(app)) as client:
        ws = await client.ws_connect("/", max_msg_size=0)
        message = await ws.receive()
        assert message.type == WSMsgType.TEXT
        assert message.data == payload.decode()


def test_the_header_is_rfc_6455_unmasked_final_text() -> None:
    assert text_frame(b"hi") == b"\x81\x02hi"
    assert text_frame(b"x" * 200)[:4] == b"\x81\x7e\x00\xc8"
    assert text_frame(b"x" * 70_000)[:10] == b"\x81\x7f" + (70_000).to_bytes(8, "big")


class StalledTransport(asyncio.Transport):
    """A connection whose peer reads nothing: everything written stays buffered."""

    def __init__(self) -> None:
        super().__init__()
        self.buffered = 0
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.buffered += len(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closing


async def test_a_writer_waits_while_its_client_is_backed_up_and_fails_once_closed() -> None:
    transport = StalledTransport()
    await write_frame(transport, b"x" * WRITE_LIMIT_BYTES)  # at the limit: no wait
    waiting = asyncio.ensure_future(write_frame(transport, b"x"))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    transport.closing = True
    with pytest.raises(ConnectionResetError):
        await waiting
    with pytest.raises(ConnectionResetError):
        await write_frame(transport, b"x")
