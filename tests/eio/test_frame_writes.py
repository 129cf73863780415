"""WebSocket frames written together (``EngineServer.write_unsent``): what one loop iteration
makes for a connection leaves in one write, in order, before any close frame."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sio_teach.transports.eio_server import EngineHandler, EngineServer, EngineSocket


class CountingHandler(EngineHandler):
    """Records every write to the socket (each holds one or more whole frames)."""

    writes: list[bytes] = []

    def write_now(self, data: bytes) -> None:
        CountingHandler.writes.append(data)
        super().write_now(data)


async def start(serve: Any, ws_connect: Any) -> tuple[Any, EngineSocket]:
    sockets: list[EngineSocket] = []
    engine = EngineServer(sockets.append, ping_interval=60, ping_timeout=60)
    live = await serve(engine.routes("/engine.io/", CountingHandler), engines=[engine])
    ws = await ws_connect(live.ws_url("/engine.io/", EIO=4, transport="websocket"))
    opened = await ws.read_message()
    assert opened.startswith("0{") and json.loads(opened[1:])["sid"] == sockets[0].sid
    CountingHandler.writes = []
    return ws, sockets[0]


async def test_what_one_iteration_sends_leaves_in_one_write_in_order(
    serve: Any, ws_connect: Any
) -> None:
    ws, socket = await start(serve, ws_connect)
    for text in ("one", "two", "three"):
        socket.send(text)
    assert CountingHandler.writes == [], "expected nothing written before the loop runs"
    received = [await asyncio.wait_for(ws.read_message(), 5) for _ in range(3)]
    assert received == ["4one", "4two", "4three"]
    assert len(CountingHandler.writes) == 1, f"expected 1 write, got {CountingHandler.writes}"


async def test_frames_still_unsent_go_before_the_close(serve: Any, ws_connect: Any) -> None:
    ws, socket = await start(serve, ws_connect)
    socket.send("last words")
    socket.close()
    got = [await asyncio.wait_for(ws.read_message(), 5) for _ in range(3)]
    assert got == ["4last words", "1", None], f"expected message, close packet, end; got {got}"
