"""Options of the server that users reach for: ``add_trailing_slash``,
``cleanup_empty_child_namespaces``, ``per_message_deflate`` — with the official client where it
matters."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import tornado.httpclient

from sio_teach.errors import ConnectRefused
from sio_teach.examples import conformance as conformance_app
from sio_teach.server import Server, Socket
from tests.conftest import LiveServer
from tests.sio.conftest import RELAXED_HEARTBEAT, RawFactory

Serve = Callable[..., Awaitable[LiveServer]]


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``condition()`` holds (checked every 10 ms), or fail after ``timeout``."""

    async def check() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(check(), timeout)


# -- add_trailing_slash ----------------------------------------------------------------------


async def status(http_client: tornado.httpclient.AsyncHTTPClient, url: str) -> int:
    response = await http_client.fetch(url, raise_error=False)
    return response.code


async def test_add_trailing_slash_false_serves_the_bare_path(serve: Serve, http_client) -> None:  # type: ignore[no-untyped-def]
    """As engine.io, whose path test is a prefix test: ``/socket.io`` then matches
    ``/socket.io?…`` and still ``/socket.io/?…``."""
    sio = Server(add_trailing_slash=False)
    live = await serve(sio.routes("/socket.io/"), engines=[sio.engine])
    query = "?EIO=4&transport=polling"
    got = [
        await status(http_client, live.base_url + "/socket.io" + query),
        await status(http_client, live.base_url + "/socket.io/" + query),
    ]
    print("/socket.io, /socket.io/ ->", got)
    assert got == [200, 200]


async def test_add_trailing_slash_default_needs_the_slash(serve: Serve, http_client) -> None:  # type: ignore[no-untyped-def]
    sio = Server()
    live = await serve(sio.routes("/socket.io"), engines=[sio.engine])  # normalised: the slash
    query = "?EIO=4&transport=polling"
    assert await status(http_client, live.base_url + "/socket.io" + query) == 404
    assert await status(http_client, live.base_url + "/socket.io/" + query) == 200


async def test_official_client_without_trailing_slash(serve: Serve, run_node) -> None:  # type: ignore[no-untyped-def]
    sio = conformance_app.socketio_server(**RELAXED_HEARTBEAT, add_trailing_slash=False)
    paths: list[str] = []
    sio.engine.on("headers", lambda headers, request: paths.append(request.path))
    live = await serve(sio.routes("/socket.io/"), engines=[sio.engine])
    records = await run_node("sio_engine_options.js", live.base_url, "no-trailing-slash")
    print(records, set(paths))
    assert {"event": "ack", "value": "hi"} in records
    assert records[-1] == {"event": "done", "transport": "websocket", "extensions": ""}
    assert set(paths) == {"/socket.io"}  # every request, polling and the WebSocket, without it


# -- cleanup_empty_child_namespaces ------------------------------------------------------------


def dynamic_server(cleanup: bool) -> Server:
    sio = Server(cleanup_empty_child_namespaces=cleanup)
    dyn = sio.of(re.compile(r"^/dyn-\d+$"))

    @dyn.on("message-with-ack")
    def echo(socket: Socket, *args: Any) -> tuple:
        return args

    def refuse_some(socket: Socket) -> None:
        if socket.handshake["auth"].get("refuse"):
            raise ConnectRefused("refused")

    dyn.use(refuse_some)
    return sio


async def test_cleanup_empty_child_namespaces(serve: Serve, raw: RawFactory) -> None:
    sio = dynamic_server(cleanup=True)
    live = await serve(sio.routes("/socket.io/"), engines=[sio.engine])
    a, b = await raw(live), await raw(live)
    await a.connect("/dyn-1")
    await b.connect("/dyn-1")
    first = sio.namespaces["/dyn-1"]
    await a.send("1/dyn-1,")  # one of two leaves: the namespace stays
    await b.sync("/dyn-1")
    assert sio.namespaces.get("/dyn-1") is first
    await b.send("1/dyn-1,")  # the last one leaves: it goes
    await wait_for(lambda: "/dyn-1" not in sio.namespaces)
    await a.connect("/dyn-1")  # and comes back afresh
    assert sio.namespaces["/dyn-1"] is not first
    assert await a.sync("/dyn-1") == []
    await a.close()  # the connection ends: its socket leaves, the namespace goes
    await wait_for(lambda: "/dyn-1" not in sio.namespaces)
    await b.send('0/dyn-2,{"refuse":true}')  # refused: nothing is left behind
    assert await b.recv() == '4/dyn-2,{"message":"refused"}'
    assert "/dyn-2" not in sio.namespaces
    assert set(sio.namespaces) == {"/"}  # the static namespaces stay, empty or not


async def test_child_namespaces_kept_by_default(serve: Serve, raw: RawFactory) -> None:
    sio = dynamic_server(cleanup=False)
    live = await serve(sio.routes("/socket.io/"), engines=[sio.engine])
    a = await raw(live)
    await a.connect("/dyn-1")
    child = sio.namespaces["/dyn-1"]
    await a.send("1/dyn-1,")  # its only socket leaves (the packets are handled in order)
    await a.connect("/dyn-1")
    assert sio.namespaces["/dyn-1"] is child


# -- per_message_deflate, Socket.IO over the official client ---------------------------------


async def test_official_socketio_client_with_per_message_deflate(serve: Serve, run_node) -> None:  # type: ignore[no-untyped-def]
    sio = conformance_app.socketio_server(**RELAXED_HEARTBEAT, per_message_deflate=True)
    live = await serve(sio.routes("/socket.io/"), engines=[sio.engine])
    records = await run_node("sio_engine_options.js", live.base_url, "deflate")
    print(records)
    assert {"event": "ack", "value": "hi"} in records
    assert {"event": "ack", "value": "same"} in records  # a large ack, compressed both ways
    assert {"event": "back", "length": records[-2]["length"], "same": True} in records
    assert records[-1]["extensions"] == "permessage-deflate"


async def test_python_socketio_client_with_gzip_polling(serve: Serve) -> None:
    """python-socketio's client (aiohttp) asks for gzip and reads the compressed answers."""
    import socketio

    sio = conformance_app.socketio_server(**RELAXED_HEARTBEAT)
    encodings: list[str] = []
    sio.engine.on(
        "headers", lambda h, request: encodings.append(request.headers.get("Accept-Encoding", ""))
    )
    live = await serve(sio.routes("/socket.io/"), engines=[sio.engine])
    client = socketio.AsyncClient(reconnection=False)
    big = [{"id": i, "name": f"user-{i}"} for i in range(300)]
    await asyncio.wait_for(client.connect(live.base_url, transports=["polling"]), 10)
    try:
        assert await asyncio.wait_for(client.call("message-with-ack", big), 10) == big
    finally:
        await asyncio.wait_for(client.disconnect(), 10)
    print(set(encodings))
    assert encodings and all("gzip" in value for value in encodings)
