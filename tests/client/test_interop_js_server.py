"""Our Socket.IO Client against the official npm ``socket.io`` server (``tests/js/sio_server.js``).

Each scenario runs in the three transport modes of the official client: polling then upgrade to
WebSocket (the default), WebSocket only, polling only. The Node server prints a JSON line for
everything it sees, so the assertions are about what the *official* server received.

A missing ``node`` or ``node_modules`` fails these tests (it never skips them).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

import pytest

from sio_teach import AckTimeoutError, Client, ConnectError
from tests.client.conftest import Events, NodeServer, eventually

MODES = {
    "upgrade": ("polling", "websocket"),
    "websocket": ("websocket",),
    "polling": ("polling",),
}
TIMEOUT = 10.0


def digest(data: bytes) -> tuple[int, str]:
    """A short stand-in for a large binary value in an assertion."""
    return len(data), hashlib.sha256(data).hexdigest()[:16]


def b64(data: bytes) -> dict[str, str]:
    """How sio_server.js reports a binary value."""
    return {"$binary": base64.b64encode(data).decode()}


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


async def connected_client(
    make_client: Any, server: NodeServer, mode: str, **options: Any
) -> tuple[Client, Events]:
    """A client of ``server`` in transport ``mode``, connected; in "upgrade" mode, upgraded."""
    client = make_client(server.url, transports=MODES[mode], **options)
    events = Events(client)
    await asyncio.wait_for(client.connect(), TIMEOUT)
    if mode == "upgrade":
        await eventually(lambda: client.transport == "websocket", TIMEOUT, "the upgrade")
    return client, events


async def round_trip(socket: Any, server: NodeServer, text: str = "marker") -> None:
    """An ack round trip, then wait until the server's report of it has been read: the reports
    of everything sent before it on this connection (printed earlier) are in by then. (The ACK
    itself comes back over TCP and may overtake the server's stdout.)"""
    assert await socket.emit_with_ack("echo-ack", text, timeout=TIMEOUT) == text
    await server.wait_for("event", name="echo-ack", nsp=socket.nsp, args=[text])


# -- connecting -----------------------------------------------------------------------------


async def test_connect_with_auth(node_sio: Any, make_client: Any, mode: str) -> None:
    server = await node_sio()
    auth = {"token": "abc", "n": 1, "list": [True, None]}
    client = make_client(server.url, transports=MODES[mode], auth=auth)
    events = Events(client)
    echoed: list[Any] = []
    client.on("auth", echoed.append)

    await asyncio.wait_for(client.connect(), TIMEOUT)

    assert client.connected
    record = await server.wait_for("connection", nsp="/")
    assert record["auth"] == auth  # the CONNECT payload, as the server saw it
    assert record["id"] == client.id  # the sid of the CONNECT reply
    assert events.names()[:1] == ["connect"]
    await eventually(lambda: echoed, TIMEOUT, "the auth event")
    assert echoed == [auth]

    opened = await server.wait_for("eio-connection", eio=record["eio"])  # the handshake
    assert len(server.find("eio-connection")) == 1
    if mode == "websocket":
        assert opened["transport"] == record["transport"] == "websocket"
        assert client.transport == "websocket"
    elif mode == "upgrade":
        assert opened["transport"] == "polling"
        await server.wait_for("upgrade", eio=record["eio"], transport="websocket")
        await eventually(lambda: client.transport == "websocket", TIMEOUT, "the upgrade")
    else:
        assert opened["transport"] == record["transport"] == "polling"
        await round_trip(client, server, "still here")
        assert server.find("upgrade") == []
        assert client.transport == "polling"


async def test_events_emitted_before_connect_are_sent_on_connect(
    node_sio: Any, make_client: Any, mode: str
) -> None:
    server = await node_sio()
    client = make_client(server.url, transports=MODES[mode])
    client.emit("early", 1)
    client.emit("early", 2)
    client.emit("early", "volatile", volatile=True)  # not connected: dropped
    await asyncio.wait_for(client.connect(), TIMEOUT)
    await round_trip(client, server)
    assert server.events("early") == [[1], [2]]


# -- events and acks ------------------------------------------------------------------------


async def test_emit_with_ack(node_sio: Any, make_client: Any, mode: str) -> None:
    server = await node_sio()
    client, _ = await connected_client(make_client, server, mode)

    one = await client.emit_with_ack("echo-ack", "hello", timeout=TIMEOUT)
    several = await client.emit_with_ack(
        "echo-ack", 1, "two", {"three": [True, None]}, timeout=TIMEOUT
    )
    empty = await client.emit_with_ack("echo-ack", timeout=TIMEOUT)

    assert one == "hello"
    assert several == (1, "two", {"three": [True, None]})
    assert empty is None  # an ACK without arguments
    await server.wait_for("event", count=3, name="echo-ack")
    received = server.find("event", name="echo-ack")
    assert [r["args"] for r in received] == [["hello"], [1, "two", {"three": [True, None]}], []]
    assert all(r["ack"] for r in received)  # the server was asked for an ack each time

    got: list[tuple[Any, ...]] = []
    client.emit("echo-ack", "cb", 2, callback=lambda *args: got.append(args))
    await eventually(lambda: got, TIMEOUT, "the ACK callback")
    assert got == [("cb", 2)]


async def test_server_emits_with_ack_to_the_client(
    node_sio: Any, make_client: Any, mode: str
) -> None:
    server = await node_sio()
    client, _ = await connected_client(make_client, server, mode)
    questions: list[Any] = []
    confirmed: list[Any] = []

    @client.on("question")
    def answer(question: Any) -> Any:
        questions.append(question)
        return {"answer": question * 2}  # the return value is the ACK

    client.on("answer-received", confirmed.append)

    client.emit("ask", 21)
    record = await server.wait_for("answer")
    assert record["value"] == {"answer": 42}
    await eventually(lambda: confirmed, TIMEOUT, "answer-received")
    assert questions == [21]
    assert confirmed == [{"answer": 42}]

    @client.on("question")
    async def answer_later(question: Any) -> Any:  # a coroutine handler: ACK when it returns
        await asyncio.sleep(0.01)
        return question.upper()

    client.emit("ask", "async")
    record = await server.wait_for("answer", count=2)
    assert record["value"] == "ASYNC"


async def test_binary_round_trip(node_sio: Any, make_client: Any, mode: str) -> None:
    server = await node_sio()
    client, _ = await connected_client(make_client, server, mode)
    blob = bytes(range(256))
    nested = {"file": [b"\x00\x01\x02"], "name": "x.bin", "empty": b""}

    # client -> server (BINARY_EVENT) and back (BINARY_ACK)
    reply = await client.emit_with_ack("echo-ack", blob, nested, timeout=TIMEOUT)
    assert reply == (blob, nested)
    await server.wait_for("event", name="echo-ack")
    record = server.find("event", name="echo-ack")[0]
    assert record["args"] == [
        b64(blob),
        {"file": [b64(b"\x00\x01\x02")], "name": "x.bin", "empty": b64(b"")},
    ]

    # server -> client (BINARY_EVENT)
    back: list[tuple[Any, ...]] = []
    client.on("echo-back", lambda *args: back.append(args))
    client.emit("echo", b"\xff\x00\xfe", "text", {"deep": [[b"\x10"]]})
    await eventually(lambda: back, TIMEOUT, "echo-back")
    assert back == [(b"\xff\x00\xfe", "text", {"deep": [[b"\x10"]]})]

    # an ACK from the client carrying bytes (BINARY_ACK towards the server)
    client.on("question", lambda q: bytes(reversed(q)))
    client.emit("ask", b"\x01\x02\x03")
    record = await server.wait_for("answer")
    assert record["value"] == b64(b"\x03\x02\x01")


async def test_many_buffered_events_in_one_go(node_sio: Any, make_client: Any, mode: str) -> None:
    """The send buffer flushes hundreds of packets at once (one POST when polling)."""
    server = await node_sio()
    client = make_client(server.url, transports=MODES[mode])
    for n in range(300):
        client.emit("many", n)
    await asyncio.wait_for(client.connect(), TIMEOUT)
    await round_trip(client, server)
    assert server.events("many") == [[n] for n in range(300)]


async def test_large_binary_messages(node_sio: Any, make_client: Any, mode: str) -> None:
    """Two 600 kB attachments do not fit in one POST of maxPayload 1,000,000 bytes (base64 makes
    each 800 kB): the client must split them over several POSTs."""
    server = await node_sio()
    client, _ = await connected_client(make_client, server, mode)
    first, second = bytes([1]) * 600_000, bytes([2]) * 600_000
    client.emit("big", first, second)
    await round_trip(client, server)
    received = [
        [digest(base64.b64decode(arg["$binary"])) for arg in args] for args in server.events("big")
    ]
    assert received == [[digest(first), digest(second)]]
    assert client.connected


async def test_heartbeat_keeps_the_connection_alive(
    node_sio: Any, make_client: Any, mode: str
) -> None:
    """pingInterval 300 ms + pingTimeout 200 ms: a client that did not answer pings would be
    dropped within 0.5 s. Stay idle for three times that, then check nothing was closed."""
    server = await node_sio()
    client, events = await connected_client(make_client, server, mode)
    await asyncio.sleep(1.5)
    assert events.names() == ["connect"]
    assert server.find("conn-close") == []
    assert await client.emit_with_ack("echo-ack", "alive", timeout=TIMEOUT) == "alive"
    assert len(server.find("connection")) == 1


async def test_client_disconnect(node_sio: Any, make_client: Any, mode: str) -> None:
    server = await node_sio()
    client, events = await connected_client(make_client, server, mode)
    eio = (await server.wait_for("connection", nsp="/"))["eio"]

    await asyncio.wait_for(client.disconnect(), TIMEOUT)

    assert events.args("disconnect") == [("io client disconnect",)]
    assert not client.connected
    await server.wait_for("disconnect", nsp="/", reason="client namespace disconnect")
    await server.wait_for("conn-close", eio=eio)
    await asyncio.sleep(1.2)  # more than twice the longest backoff: no reconnection
    assert events.count("reconnect_attempt") == 0
    assert len(server.find("connection")) == 1


async def test_connect_when_already_connected_is_a_no_op(node_sio: Any, make_client: Any) -> None:
    """socket.io-client ``Socket.connect``: ``if (this.connected) return this``. A second CONNECT
    for a namespace already connected is an invalid state for the official server
    (socket.io ``Client.ondecoded``), which then closes the whole connection."""
    server = await node_sio()
    client, events = await connected_client(make_client, server, "websocket")

    await asyncio.wait_for(client.connect(), TIMEOUT)  # already connected

    assert await client.emit_with_ack("echo-ack", "same connection", timeout=TIMEOUT) == (
        "same connection"
    )
    assert server.find("conn-close") == []
    assert len(server.find("connection")) == 1
    assert events.names() == ["connect"]


# -- namespaces -----------------------------------------------------------------------------


async def test_two_namespaces_share_one_engineio_connection(
    node_sio: Any, make_client: Any, mode: str
) -> None:
    server = await node_sio()
    client, _ = await connected_client(make_client, server, mode, auth={"who": "main"})
    admin = client.socket("/admin", auth={"who": "admin"})
    admin_auth: list[Any] = []
    admin.on("auth", admin_auth.append)
    await asyncio.wait_for(admin.connect(), TIMEOUT)

    main_record = await server.wait_for("connection", nsp="/")
    admin_record = await server.wait_for("connection", nsp="/admin")
    assert main_record["eio"] == admin_record["eio"]  # ONE Engine.IO connection
    assert admin_record["auth"] == {"who": "admin"}
    assert admin.connected and admin.id == admin_record["id"] != client.id
    await eventually(lambda: admin_auth, TIMEOUT, "the auth event on /admin")
    assert admin_auth == [{"who": "admin"}]

    # each namespace gets its own events and acks
    await round_trip(admin, server, "to admin")
    await round_trip(client, server, "to main")
    assert server.events("echo-ack", nsp="/admin") == [["to admin"]]
    assert server.events("echo-ack", nsp="/") == [["to main"]]
    assert len(server.find("connection")) == 2


# -- refusals and server-side disconnects ---------------------------------------------------


async def test_middleware_refusal(node_sio: Any, make_client: Any, mode: str) -> None:
    server = await node_sio()
    client = make_client(server.url, transports=MODES[mode], auth={"refuse": True})
    events = Events(client)

    with pytest.raises(ConnectError, match="^nope$"):
        await asyncio.wait_for(client.connect(), TIMEOUT)

    assert events.args("connect_error") == [
        ({"message": "nope", "data": {"reason": "refused by test", "code": 4242}},)
    ]
    assert not client.connected
    assert events.count("connect") == 0
    assert server.find("connection") == []


async def test_middleware_refusal_of_a_second_namespace(
    node_sio: Any, make_client: Any, mode: str
) -> None:
    server = await node_sio()
    client, _ = await connected_client(make_client, server, mode)
    admin = client.socket("/admin", auth={"refuse": True})
    admin_events = Events(admin, ("connect", "connect_error"))

    with pytest.raises(ConnectError, match="^nope$"):
        await asyncio.wait_for(admin.connect(), TIMEOUT)

    assert admin_events.args("connect_error") == [
        ({"message": "nope", "data": {"reason": "refused by test", "code": 4242}},)
    ]
    assert not admin.connected
    # the main namespace (and the connection) are unaffected
    assert client.connected
    assert await client.emit_with_ack("echo-ack", "ok", timeout=TIMEOUT) == "ok"


async def test_server_side_disconnect_is_not_followed_by_reconnection(
    node_sio: Any, make_client: Any, mode: str
) -> None:
    server = await node_sio()
    client, events = await connected_client(make_client, server, mode)

    client.emit("disconnect-me")

    assert await events.wait("disconnect") == ("io server disconnect",)
    assert not client.connected
    await server.wait_for("disconnect", nsp="/", reason="server namespace disconnect")
    # no reconnection: give it more than twice the longest backoff (0.5 s), then check nothing came
    await asyncio.sleep(1.2)
    assert events.count("reconnect_attempt") == 0
    assert client.delays == []
    assert len(server.find("connection")) == 1

    # a manual connect() works again afterwards, as in the official client
    await asyncio.wait_for(client.connect(), TIMEOUT)
    assert client.connected
    await server.wait_for("connection", count=2, nsp="/")


async def test_server_side_disconnect_of_the_last_namespace_closes_the_connection(
    node_sio: Any, make_client: Any
) -> None:
    """socket.io-client ``Socket.ondisconnect`` → ``destroy()`` → ``Manager._destroy``: when no
    namespace is active any more, the manager closes the Engine.IO connection (python-socketio
    does the same). A connection with no namespace left must not linger, pinging forever."""
    server = await node_sio()
    client, events = await connected_client(make_client, server, "websocket")
    eio = (await server.wait_for("connection", nsp="/"))["eio"]

    client.emit("disconnect-me")
    await events.wait("disconnect")

    await server.wait_for("conn-close", eio=eio, timeout=5.0)


async def test_refusal_of_the_only_namespace_closes_the_connection(
    node_sio: Any, make_client: Any
) -> None:
    """The same rule after CONNECT_ERROR (socket.io-client ``Socket.onpacket``: CONNECT_ERROR →
    ``destroy()``): a refused client does not keep an Engine.IO connection open for nothing."""
    server = await node_sio()
    client = make_client(server.url, transports=("websocket",), auth={"refuse": True})
    with pytest.raises(ConnectError):
        await asyncio.wait_for(client.connect(), TIMEOUT)
    eio = (await server.wait_for("eio-connection"))["eio"]

    await server.wait_for("conn-close", eio=eio, timeout=5.0)


# -- reconnection and the send buffer -------------------------------------------------------


async def test_reconnection_delivers_the_send_buffer_once_in_order(
    node_sio: Any, make_client: Any, mode: str
) -> None:
    first = await node_sio()
    client, events = await connected_client(make_client, first, mode, auth={"token": "t"})
    await first.wait_for("connection", nsp="/")

    await first.kill()  # SIGKILL: no close packet, the connection just breaks
    (reason,) = await events.wait("disconnect", timeout=TIMEOUT)
    assert reason in ("transport close", "transport error", "ping timeout")
    assert not client.connected

    for n in range(5):
        client.emit("seq", n)
    client.emit("vol", "while disconnected", volatile=True)  # dropped, never sent
    acked: list[tuple[Any, ...]] = []
    client.emit("echo-ack", "buffered with ack", callback=lambda *a: acked.append(a))

    second = await node_sio(port=first.port)  # a new server on the SAME port
    (attempts,) = await events.wait("reconnect", timeout=15.0)  # the Engine.IO connection is back
    await events.wait("connect", count=2)  # ... and then the namespace (as in socket.io-client)

    assert client.connected
    assert attempts == events.count("reconnect_attempt") >= 1
    assert [args for args in events.args("reconnect_attempt")] == [
        (n,) for n in range(1, attempts + 1)
    ]
    assert events.count("reconnect_error") == attempts - 1
    assert events.count("connect") == 2
    assert all(0 < d <= 0.5 for d in client.delays) and len(client.delays) == attempts
    record = await second.wait_for("connection", nsp="/")
    assert record["auth"] == {"token": "t"}  # the CONNECT of the reconnection carries auth again
    assert record["id"] == client.id

    await eventually(lambda: acked, TIMEOUT, "the ACK of the buffered event")
    assert acked == [("buffered with ack",)]
    client.emit("vol", "while connected", volatile=True)  # connected: volatile is sent
    await round_trip(client, second)
    # everything sent before the marker has arrived (one connection, in order)
    assert second.events("seq") == [[0], [1], [2], [3], [4]]
    assert second.events("vol") == [["while connected"]]
    names = [r["name"] for r in second.find("event")]
    assert names == ["seq"] * 5 + ["echo-ack", "vol", "echo-ack"]


async def test_emit_with_ack_times_out_while_the_server_is_gone(
    node_sio: Any, make_client: Any
) -> None:
    server = await node_sio()
    client, events = await connected_client(make_client, server, "websocket", reconnection=False)
    await server.kill()
    await events.wait("disconnect")
    with pytest.raises(AckTimeoutError):
        await asyncio.wait_for(client.emit_with_ack("echo-ack", "x", timeout=0.2), TIMEOUT)
    assert events.count("reconnect_attempt") == 0  # reconnection=False


# -- retries: at-least-once delivery --------------------------------------------------------


async def test_retries_deliver_through_a_lost_first_arrival(
    node_sio: Any, make_client: Any, mode: str
) -> None:
    """``Client(retries=3, ack_timeout=0.5)`` against the official server, whose ``flaky``
    handler ignores the first arrival of each argument: every emit is acknowledged in the end,
    in order; the server sees each twice (at-least-once: the application de-duplicates)."""
    server = await node_sio()
    client, _ = await connected_client(make_client, server, mode, retries=3, ack_timeout=0.5)
    answers = await asyncio.wait_for(
        asyncio.gather(*(client.emit_with_ack("flaky", f"m{i}") for i in range(3))), TIMEOUT
    )
    assert answers == ["m0", "m1", "m2"]
    await server.wait_for("event", count=6, name="flaky")
    arrivals = [r["args"][0] for r in server.find("event", name="flaky")]
    assert arrivals == ["m0", "m0", "m1", "m1", "m2", "m2"]  # one in flight at a time


async def test_retries_give_up_after_retries_plus_one_tries(
    node_sio: Any, make_client: Any
) -> None:
    server = await node_sio()
    client, _ = await connected_client(make_client, server, "websocket", retries=1, ack_timeout=0.3)
    with pytest.raises(AckTimeoutError):  # "echo" never acks
        await asyncio.wait_for(client.emit_with_ack("echo", "x"), TIMEOUT)
    await server.wait_for("event", count=2, name="echo")
    assert await client.emit_with_ack("echo-ack", "after") == "after"  # the queue goes on
