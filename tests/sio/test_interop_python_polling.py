"""python-socketio's client over long-polling, when the server has many packets for it at once.

python-engineio's client refuses a polling payload of more than 16 packets ("Too many packets in
payload") and drops the connection; the official clients take any number. So the server answers
a GET with at most ``packets_per_poll`` (16) packets, and the client's next GET gets the rest.
"""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from sio_teach import Server, Socket
from tests.conftest import LiveServer

WAIT = 10.0


async def test_python_socketio_over_polling_receives_100_rapid_emits(serve: Any) -> None:
    sio = Server()

    @sio.on("burst")
    def burst(socket: Socket, n: int) -> tuple:
        for i in range(n):
            socket.emit("item", i)
        return ()

    live: LiveServer = await serve(sio.routes("/socket.io/"), engines=[sio.engine])
    client = socketio.AsyncClient(reconnection=False)
    items: list[int] = []
    done = asyncio.Event()

    @client.on("item")
    async def on_item(i: int) -> None:
        items.append(i)
        if len(items) == 100:
            done.set()

    disconnects: list[Any] = []
    client.on("disconnect", lambda *reason: disconnects.append(reason))
    await asyncio.wait_for(client.connect(live.base_url, transports=["polling"]), WAIT)
    try:
        await asyncio.wait_for(client.call("burst", 100), WAIT)
        await asyncio.wait_for(done.wait(), WAIT)
        assert items == list(range(100))
        assert disconnects == []
    finally:
        await asyncio.wait_for(client.disconnect(), WAIT)


def test_a_polling_answer_holds_at_most_16_packets() -> None:
    from sio_teach.eio.packet import decode_payload
    from sio_teach.eio.server_session import Config, ServerSession

    session = ServerSession("s", Config(), now=0.0)
    session.take_payload()
    for i in range(40):
        session.send(str(i))
    sizes = [len(decode_payload(session.take_payload())) for _ in range(3)]
    assert sizes == [16, 16, 8]
