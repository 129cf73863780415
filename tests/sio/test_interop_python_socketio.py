"""The PyPI client ``socketio.AsyncClient`` (python-socketio) against our server.

The server is the conformance app plus the extras of :func:`tests.sio.conftest.interop_server`,
started in the test's event loop on a free port. Every await is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import socketio

from sio_teach.examples import conformance as conformance_app
from tests.conftest import LiveServer
from tests.sio.conftest import RELAXED_HEARTBEAT, interop_server

pytestmark = pytest.mark.usefixtures("no_server_errors")

TRANSPORTS = {"websocket": ["websocket"], "polling": ["polling"], "default": None}
WAIT = 5.0


class Inbox:
    """What one namespace of the client received, event by event."""

    def __init__(self) -> None:
        self.queues: dict[str, asyncio.Queue[tuple[Any, ...]]] = {}

    def queue(self, event: str) -> asyncio.Queue[tuple[Any, ...]]:
        return self.queues.setdefault(event, asyncio.Queue())

    async def get(self, event: str) -> tuple[Any, ...]:
        return await asyncio.wait_for(self.queue(event).get(), WAIT)

    def listen(self, client: socketio.AsyncClient, namespace: str, *events: str) -> None:
        for event in events:

            async def handler(*args: Any, event: str = event) -> None:
                self.queue(event).put_nowait(args)

            client.on(event, handler, namespace=namespace)


@pytest.fixture
async def clients() -> AsyncIterator[list[socketio.AsyncClient]]:
    made: list[socketio.AsyncClient] = []
    yield made
    for client in made:
        if client.connected:
            try:
                await asyncio.wait_for(client.disconnect(), WAIT)
            except Exception:
                pass


async def start(
    serve: Callable[..., Awaitable[LiveServer]], reasons: list[str] | None = None
) -> LiveServer:
    sio = interop_server(reasons=reasons)
    return await serve(sio.routes("/socket.io/"), engines=[sio.engine])


@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_python_socketio_client(serve, clients, transport: str) -> None:
    reasons: list[str] = []
    live = await start(serve, reasons)
    client = socketio.AsyncClient(reconnection=False)
    clients.append(client)
    main, custom = Inbox(), Inbox()
    main.listen(client, "/", "auth", "message-back", "callback-ack", "disconnect")
    custom.listen(client, "/custom", "auth", "message-back", "disconnect")

    @client.on("callback", namespace="/")
    def on_callback(*args: Any) -> tuple:
        main.queue("callback").put_nowait(args)
        return ("y", {"z": 1}) if args[0] != "bin" else (b"\x07\x08",)  # the ACK

    await asyncio.wait_for(
        client.connect(
            live.base_url,
            auth={"token": "py"},
            namespaces=["/", "/custom"],
            transports=TRANSPORTS[transport],
            wait_timeout=WAIT,
        ),
        2 * WAIT,
    )
    assert client.connected
    assert set(client.namespaces) == {"/", "/custom"}
    assert client.get_sid("/") != client.get_sid("/custom")
    # auth: the CONNECT payload comes back right after the CONNECT reply, on each namespace
    assert await main.get("auth") == ({"token": "py"},)
    assert await custom.get("auth") == ({"token": "py"},)

    # emit → message-back
    await client.emit("message", (1, "2", {"3": [True]}))
    assert await main.get("message-back") == (1, "2", {"3": [True]})
    await client.emit("message", "on custom", namespace="/custom")
    assert await custom.get("message-back") == ("on custom",)

    # call (emit with an ack)
    assert await client.call("message-with-ack", (1, "2"), timeout=WAIT) == (1, "2")
    assert await client.call("message-with-ack", "y", namespace="/custom", timeout=WAIT) == "y"
    assert await client.call("message-with-ack", timeout=WAIT) is None  # an empty ACK

    # binary round trip, both ways
    await client.emit("message", (b"\x01\x02\x03", {"nested": [b"\x04"]}))
    assert await main.get("message-back") == (b"\x01\x02\x03", {"nested": [b"\x04"]})
    assert await client.call("message-with-ack", (b"\x00\xff", "t"), timeout=WAIT) == (
        b"\x00\xff",
        "t",
    )

    # server → client event with an ack (call-me-back), JSON then binary
    await client.emit("call-me-back", ("x", 2))
    assert await main.get("callback") == ("x", 2)
    assert await main.get("callback-ack") == ("y", {"z": 1})
    await client.emit("call-me-back", ("bin",))
    assert await main.get("callback") == ("bin",)
    assert await main.get("callback-ack") == (b"\x07\x08",)

    # disconnect-me on /custom: / stays connected
    await client.emit("disconnect-me", namespace="/custom")
    await custom.get("disconnect")
    assert "/custom" not in client.namespaces
    assert await client.call("message-with-ack", "still", timeout=WAIT) == "still"

    # the client disconnects
    await asyncio.wait_for(client.disconnect(), WAIT)
    await asyncio.wait_for(client.wait(), WAIT)
    assert not client.connected

    async def server_saw_it() -> None:
        while not any(r.startswith("/ ") for r in reasons):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(server_saw_it(), WAIT)
    assert "/custom server namespace disconnect" in reasons
    main_reasons = [r for r in reasons if r.startswith("/ ")]
    if transport == "polling":
        # python-socketio POSTs `41` and the close packet `1` together: the DISCONNECT comes first
        assert main_reasons == ["/ client namespace disconnect"], reasons
    else:
        # on a WebSocket python-engineio may close the socket before its queue is flushed
        assert main_reasons in (["/ client namespace disconnect"], ["/ transport close"]), reasons


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_python_socketio_connect_error(serve, clients, transport: str) -> None:
    live = await start(serve)
    client = socketio.AsyncClient(reconnection=False)
    clients.append(client)
    errors: asyncio.Queue[Any] = asyncio.Queue()
    client.on("connect_error", lambda data: errors.put_nowait(data), namespace="/private")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await asyncio.wait_for(
            client.connect(
                live.base_url,
                auth={"token": "bad"},
                namespaces=["/private"],
                transports=[transport],
                wait_timeout=WAIT,
            ),
            2 * WAIT,
        )
    assert await asyncio.wait_for(errors.get(), WAIT) == {
        "message": "not authorized",
        "data": {"code": 4001, "hint": "use a good token"},
    }

    good = socketio.AsyncClient(reconnection=False)
    clients.append(good)
    await asyncio.wait_for(
        good.connect(
            live.base_url,
            auth={"token": "good"},
            namespaces=["/private"],
            transports=[transport],
            wait_timeout=WAIT,
        ),
        2 * WAIT,
    )
    assert await good.call("whoami", namespace="/private", timeout=WAIT) == "private:good"


async def test_python_socketio_broadcast_between_clients(serve, clients) -> None:
    live = await start(serve)
    inboxes = []
    for transport in ("websocket", "polling", "websocket"):
        client = socketio.AsyncClient(reconnection=False)
        clients.append(client)
        inbox = Inbox()
        inbox.listen(client, "/", "broadcast-message", "room-message")
        await asyncio.wait_for(
            client.connect(live.base_url, transports=[transport], wait_timeout=WAIT), 2 * WAIT
        )
        inboxes.append(inbox)
    a, b, c = clients
    assert await a.call("join", "lobby", timeout=WAIT) == "lobby"
    assert await b.call("join", "lobby", timeout=WAIT) == "lobby"
    assert await c.call("to-room", ("lobby", "hello", b"\x01"), timeout=WAIT) is None
    assert await inboxes[0].get("room-message") == ("hello", b"\x01")
    assert await inboxes[1].get("room-message") == ("hello", b"\x01")
    assert await a.call("broadcast", "hi", timeout=WAIT) is None
    assert await inboxes[1].get("broadcast-message") == ("hi",)
    assert await inboxes[2].get("broadcast-message") == ("hi",)
    # the senders got nothing back (each round trip below returns after anything queued before)
    for client in clients:
        assert await client.call("message-with-ack", "sync", timeout=WAIT) == "sync"
    assert inboxes[0].queue("broadcast-message").empty()
    assert inboxes[2].queue("room-message").empty()


@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_python_socketio_client_with_the_msgpack_serializer(
    serve, clients, transport: str
) -> None:
    """python-socketio's ``serializer="msgpack"`` against ``Server(parser="msgpack")``: the same
    app (the conformance app's events) with JSON and binary data, acks both ways."""
    sio = conformance_app.socketio_server(parser="msgpack", **RELAXED_HEARTBEAT)
    live = await serve(sio.routes("/socket.io/"), engines=[sio.engine])
    client = socketio.AsyncClient(reconnection=False, serializer="msgpack")
    clients.append(client)
    main = Inbox()
    main.listen(client, "/", "auth", "message-back", "callback-ack")

    @client.on("callback", namespace="/")
    def on_callback(*args: Any) -> tuple:
        return (b"\x07\x08", {"z": 1})  # a binary ACK, in msgpack

    await asyncio.wait_for(
        client.connect(
            live.base_url, transports=TRANSPORTS[transport], auth={"k": b"\x00"}, wait_timeout=WAIT
        ),
        WAIT,
    )
    assert await main.get("auth") == ({"k": b"\x00"},)
    await client.emit("message", ("text", b"\x01\x02", {"n": [1, 2.5, None]}))
    assert await main.get("message-back") == ("text", b"\x01\x02", {"n": [1, 2.5, None]})
    assert await client.call("message-with-ack", ("a", b"\x03"), timeout=WAIT) == ("a", b"\x03")
    await client.emit("call-me-back", b"\x05")
    assert await main.get("callback-ack") == (b"\x07\x08", {"z": 1})
