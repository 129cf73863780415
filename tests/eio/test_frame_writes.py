"""WebSocket frames held back while more of a read is to be handled (``EngineServer.write_unsent``):
what the messages of one read make leaves in one write per connection, in order, before any close
frame; a frame made with nothing more to read leaves at once, in a write of its own."""

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


SOCKETS: list[EngineSocket] = []


def on_connect(socket: EngineSocket) -> None:
    """Echo every message; "close" sends last words and closes the session; "tell" sends "news"
    to the first client, "quiet" sends nothing."""

    def on_message(data: str | bytes) -> None:
        if data == "close":
            socket.send("last words")
            socket.close()
        elif data == "tell":
            SOCKETS[0].send("news")
        elif data != "quiet":
            socket.send(data)

    SOCKETS.append(socket)
    socket.on_message = on_message


def masked(*texts: str) -> bytes:
    """Client text frames (masked, with a zero key: the payload reads as is), back to back."""
    return b"".join(bytes([0x81, 0x80 | len(t), 0, 0, 0, 0]) + t.encode() for t in texts)


async def start(serve: Any, ws_connect: Any, clients: int = 1) -> Any:
    """``clients`` WebSocket clients of one server (pings far away); the first, or all of them."""
    SOCKETS.clear()
    engine = EngineServer(on_connect, ping_interval=60, ping_timeout=60)
    live = await serve(engine.routes("/engine.io/", CountingHandler), engines=[engine])
    opened = []
    for _ in range(clients):
        ws = await ws_connect(live.ws_url("/engine.io/", EIO=4, transport="websocket"))
        assert (await ws.read_message()).startswith("0{")
        opened.append(ws)
    CountingHandler.writes = []
    return opened[0] if clients == 1 else opened


async def read(ws: Any, count: int) -> list[str | None]:
    return [await asyncio.wait_for(ws.read_message(), 5) for _ in range(count)]


async def test_what_one_read_makes_leaves_in_one_write_in_order(
    serve: Any, ws_connect: Any
) -> None:
    ws = await start(serve, ws_connect)
    await ws.protocol.stream.write(masked("4one", "4two", "4three"))  # one read for the server
    assert await read(ws, 3) == ["4one", "4two", "4three"]
    assert len(CountingHandler.writes) == 1, f"expected 1 write, got {CountingHandler.writes}"


async def test_a_lone_message_is_answered_at_once(serve: Any, ws_connect: Any) -> None:
    ws = await start(serve, ws_connect)
    for text in ("4one", "4two"):
        await ws.write_message(text)
        assert await read(ws, 1) == [text]
    assert len(CountingHandler.writes) == 2, f"expected 2 writes, got {CountingHandler.writes}"


async def test_frames_held_back_go_before_the_close(serve: Any, ws_connect: Any) -> None:
    ws = await start(serve, ws_connect)
    await ws.protocol.stream.write(masked("4close", "4unheard"))  # closed while more is to read
    got = await read(ws, 3)
    assert got == ["4last words", "1", None], f"expected message, close packet, end; got {got}"
    sent = json.dumps([w.decode(errors="replace") for w in CountingHandler.writes])
    assert "unheard" not in sent, f"expected nothing after the close, got {sent}"


async def test_frames_held_for_another_connection_leave_when_the_read_ends(
    serve: Any, ws_connect: Any
) -> None:
    first, second = await start(serve, ws_connect, clients=2)
    # one read: "tell" makes a frame for the first client, held while "quiet" is still to handle
    await second.protocol.stream.write(masked("4tell", "4quiet"))
    assert await read(first, 1) == ["4news"], "expected the held frame when the read ended"


async def test_frames_held_when_a_read_ends_inside_a_frame_leave_at_the_next_iteration(
    serve: Any, ws_connect: Any
) -> None:
    ws = await start(serve, ws_connect)
    rest = masked("4two")
    await ws.protocol.stream.write(masked("4one") + rest[:3])  # "4one", then a frame cut short
    assert await read(ws, 1) == ["4one"], "expected the echo before the rest of the read"
    await ws.protocol.stream.write(rest[3:])
    assert await read(ws, 1) == ["4two"]
