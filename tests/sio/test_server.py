"""The Socket.IO server API (``sio_teach.server``), driven through raw wire clients.

Each test builds its own :class:`Server`, starts it in the test's event loop on a free port, and
talks to it with :class:`tests.sio.conftest.RawClient` (raw Engine.IO packets; Socket.IO messages
compared as on the wire without the Engine.IO ``4``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import tornado.ioloop
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

import sio_teach.adapters.memory
import sio_teach.server
from sio_teach.errors import AckTimeoutError, ConnectError, ConnectRefused
from sio_teach.examples import bench_server
from sio_teach.msgpack_parser import decode as msgpack_decode
from sio_teach.msgpack_parser import encode as msgpack_encode
from sio_teach.server import Server, Socket
from sio_teach.sio.packet import Packet, PacketType
from tests.conftest import ROOT, LiveServer, free_port
from tests.sio.conftest import RawClient, RawFactory, RawPolling

pytestmark = pytest.mark.usefixtures("no_server_errors")

PH0 = '{"_placeholder":true,"num":0}'
Serve = Callable[..., Awaitable[LiveServer]]


class App:
    """A server under test plus what its handlers saw."""

    def __init__(self, sio: Server, live: LiveServer) -> None:
        self.sio = sio
        self.live = live

    @property
    def base_url(self) -> str:
        return self.live.base_url


class Recorder:
    """Connect / disconnect bookkeeping for one namespace: sockets by id, reasons in a queue."""

    def __init__(self, sio: Server, namespace: str = "/") -> None:
        self.sockets: dict[str, Socket] = {}
        self.reasons: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.connected: asyncio.Queue[Socket] = asyncio.Queue()
        nsp = sio.of(namespace)

        @nsp.on("connect")
        def on_connect(socket: Socket, auth: dict) -> None:
            self.sockets[socket.id] = socket
            self.connected.put_nowait(socket)

        @nsp.on("disconnect")
        def on_disconnect(socket: Socket, reason: str) -> None:
            self.reasons.put_nowait((socket.id, reason))

        @nsp.on("message-with-ack")  # what RawClient.sync() uses
        def message_with_ack(socket: Socket, *args: Any) -> tuple:
            return args

    async def reason(self, timeout: float = 5.0) -> tuple[str, str]:
        return await asyncio.wait_for(self.reasons.get(), timeout)


async def start(serve: Serve, sio: Server) -> App:
    live = await serve(sio.routes("/socket.io/"), engines=[sio.engine])
    return App(sio, live)


async def three_clients(
    serve: Serve, raw: RawFactory, sio: Server
) -> tuple[Recorder, list[Any], list[Any]]:
    """``sio`` served, and three raw clients connected to ``/``: (its recorder, the clients, their
    sockets)."""
    rec = Recorder(sio)
    app = await start(serve, sio)
    clients = [await raw(app.live) for _ in range(3)]
    sockets = []
    for client in clients:
        await client.connect()
        sockets.append(await asyncio.wait_for(rec.connected.get(), 5.0))
    return rec, clients, sockets


# -- handler return values → ACK -------------------------------------------------------------


async def test_return_value_is_the_ack(serve: Serve, raw: RawFactory) -> None:
    sio = Server()
    Recorder(sio)
    results = {
        "none": None,
        "empty": (),
        "one": "x",
        "many": (1, "2", None),
        "list": [1, 2],
        "bin": b"\x01",
    }

    @sio.on("ask")
    async def ask(socket: Socket, what: str) -> Any:
        await asyncio.sleep(0)  # a coroutine handler
        return results[what]

    app = await start(serve, sio)
    c = await raw(app.live)
    await c.connect()
    await c.send('21["ask","none"]')  # None: no ACK at all
    await c.send('22["ask","empty"]', '23["ask","one"]', '24["ask","many"]', '25["ask","list"]')
    await c.send('26["ask","bin"]')
    assert await c.recv() == "32[]"
    assert await c.recv() == '33["x"]'
    assert await c.recv() == '34[1,"2",null]'
    assert await c.recv() == "35[[1,2]]"
    assert await c.recv() == f"61-6[{PH0}]"
    assert await c.recv() == b"\x01"
    await c.send('2["ask","one"]')  # no ack id: no ACK
    assert await c.sync() == []


async def test_sync_handler_and_failing_handler(serve: Serve, raw: RawFactory, caplog) -> None:
    sio = Server()
    Recorder(sio)

    @sio.on("boom")
    def boom(socket: Socket) -> str:
        raise RuntimeError("handler bug")

    app = await start(serve, sio)
    c = await raw(app.live)
    await c.connect()
    await c.send('21["boom"]')  # the handler fails: logged, no ACK, the connection lives on
    assert await c.sync() == []
    assert any("handler" in r.getMessage() for r in caplog.records if r.name == "sio_teach.server")


# -- dynamic namespaces ----------------------------------------------------------------------


async def test_dynamic_namespace_by_regex(serve: Serve, raw: RawFactory) -> None:
    sio = Server()
    Recorder(sio)
    dyn = sio.of(re.compile(r"^/dyn-\d+$"))
    connected: list[str] = []

    @dyn.on("connect")
    def on_connect(socket: Socket, auth: dict) -> None:
        connected.append(socket.nsp.name)

    @dyn.on("whoami")
    def whoami(socket: Socket) -> str:
        return socket.nsp.name

    @dyn.on("shout")
    def shout(socket: Socket, text: str) -> tuple:
        socket.nsp.emit("shouted", text)  # everyone on *this* child namespace
        return ()

    app = await start(serve, sio)
    c = await raw(app.live)
    d = await raw(app.live)
    await c.connect("/dyn-12")
    await c.connect("/dyn-7")
    await d.connect("/dyn-7")
    assert connected == ["/dyn-12", "/dyn-7", "/dyn-7"]
    await c.send('2/dyn-12,1["whoami"]')
    assert await c.recv() == '3/dyn-12,1["/dyn-12"]'
    await c.send('2/dyn-7,2["whoami"]')
    assert await c.recv() == '3/dyn-7,2["/dyn-7"]'
    # each child is a namespace of its own: a namespace-wide emit stays in it
    await d.send('2/dyn-7,3["shout","hey"]')
    assert await d.recv() == '2/dyn-7,["shouted","hey"]'
    assert await d.recv() == "3/dyn-7,3[]"
    assert await c.recv() == '2/dyn-7,["shouted","hey"]'  # c is on /dyn-7 too, but not twice
    await c.send('2/dyn-12,4["shout","only-12"]')
    assert await c.recv() == '2/dyn-12,["shouted","only-12"]'
    assert await c.recv() == "3/dyn-12,4[]"
    # names that do not match: refused, the connection stays usable
    for name in ("/dyn-x", "/dyn-12x", "/xdyn-1", "/dyn-"):
        await c.send(f"0{name},")
        assert await c.recv() == f'4{name},{{"message":"Invalid namespace"}}'
    await c.connect("/")
    assert await c.sync() == []


async def test_dynamic_namespace_by_predicate(serve: Serve, raw: RawFactory) -> None:
    sio = Server()
    seen: list[tuple[str, dict]] = []

    def allowed(name: str, auth: dict) -> bool:
        seen.append((name, auth))
        return name.startswith("/org-") and auth.get("token") == "ok"

    org = sio.of(allowed)

    @org.on("whoami")
    def whoami(socket: Socket) -> tuple:
        return socket.nsp.name, socket.handshake["auth"]

    app = await start(serve, sio)
    c = await raw(app.live)
    await c.send('0/org-b,{"token":"no"}')
    assert await c.recv() == '4/org-b,{"message":"Invalid namespace"}'
    await c.send('0/other,{"token":"ok"}')
    assert await c.recv() == '4/other,{"message":"Invalid namespace"}'
    await c.connect("/org-a", {"token": "ok"})
    await c.send('2/org-a,1["whoami"]')
    assert await c.recv() == '3/org-a,1["/org-a",{"token":"ok"}]'
    assert ("/org-a", {"token": "ok"}) in seen and ("/org-b", {"token": "no"}) in seen


async def test_dynamic_namespace_middleware_of_the_parent_applies(
    serve: Serve, raw: RawFactory
) -> None:
    sio = Server()
    dyn = sio.of(re.compile(r"^/room-\w+$"))

    def only_vip(socket: Socket) -> None:
        if socket.handshake["auth"].get("vip") is not True:
            raise ConnectRefused("vip only", {"nsp": socket.nsp.name})

    dyn.use(only_vip)
    app = await start(serve, sio)
    c = await raw(app.live)
    await c.send("0/room-a,")
    assert await c.recv() == '4/room-a,{"message":"vip only","data":{"nsp":"/room-a"}}'
    await c.connect("/room-a", {"vip": True})


# -- middlewares -----------------------------------------------------------------------------


async def test_middleware_refusal_payload(serve: Serve, raw: RawFactory) -> None:
    sio = Server()
    Recorder(sio)
    private = Recorder(sio, "/private")
    calls: list[str] = []

    async def check_token(socket: Socket) -> None:
        await asyncio.sleep(0)  # a coroutine middleware
        calls.append("check_token")
        if socket.handshake["auth"].get("token") != "good":
            raise ConnectRefused("not authorized", {"code": 4001, "retry": False})
        socket.data["user"] = "ann"

    def second(socket: Socket) -> None:
        calls.append("second")

    sio.of("/private").use(check_token)
    sio.use(second, namespace="/private")

    @sio.on("whoami", namespace="/private")
    def whoami(socket: Socket) -> str:
        return socket.data["user"]

    app = await start(serve, sio)
    c = await raw(app.live)
    await c.send('0/private,{"token":"bad"}')
    assert (
        await c.recv()
        == '4/private,{"message":"not authorized","data":{"code":4001,"retry":false}}'
    )
    assert calls == ["check_token"]  # refused: the chain stops
    assert private.sockets == {}  # the connect handler did not run
    # the Engine.IO connection stays open; the same namespace may be tried again
    await c.connect("/")
    await c.connect("/private", {"token": "good"})
    assert calls == ["check_token", "check_token", "second"]
    await c.send('2/private,1["whoami"]')
    assert await c.recv() == '3/private,1["ann"]'


async def test_middleware_refusal_without_data_on_main_namespace(
    serve: Serve, raw: RawFactory
) -> None:
    sio = Server()
    Recorder(sio, "/open")

    def refuse_all(socket: Socket) -> None:
        raise ConnectRefused("closed for today")

    sio.use(refuse_all)
    app = await start(serve, sio)
    c = await raw(app.live)
    await c.send("0")
    assert await c.recv() == '4{"message":"closed for today"}'  # no "data" key when none given
    await c.connect("/open")


async def test_middleware_failing_unexpectedly_does_not_leave_the_client_hanging(
    serve: Serve, raw: RawFactory
) -> None:
    """A middleware with a bug (not ConnectRefused): the client must hear something — a
    CONNECT_ERROR, or its connection closed — and may not be stuck on that namespace forever."""
    sio = Server()
    Recorder(sio)

    def buggy(socket: Socket) -> None:
        raise KeyError("oops")

    sio.use(buggy, namespace="/buggy")
    app = await start(serve, sio)
    c = await raw(app.live)
    await c.send("0/buggy,")
    try:
        reply = await c.recv(timeout=3.0)
    except TimeoutError:
        pytest.fail(
            "a middleware raising KeyError left the client without a reply (no CONNECT_ERROR)"
        )
    except Exception:  # SessionClosed: acceptable
        return
    assert isinstance(reply, str) and reply.startswith("4/buggy,{"), reply


# -- acks from the clients -------------------------------------------------------------------


async def answer_ack(c: RawClient, event: str, *values: str) -> None:
    """Read the next message (an EVENT ``event`` with an ack id) and acknowledge it."""
    message = await c.recv()
    assert isinstance(message, str)
    match = re.fullmatch(r'2(\d+)\["' + re.escape(event) + r'".*\]', message)
    assert match, message
    await c.send(f"3{match[1]}[{','.join(values)}]")


async def test_broadcast_emit_with_ack_collects_one_value_per_client(
    serve: Serve, raw: RawFactory
) -> None:
    sio = Server()
    Recorder(sio)
    app = await start(serve, sio)
    clients = [
        await raw(app.live, transport) for transport in ("websocket", "polling", "websocket")
    ]
    for c in clients:
        await c.connect()

    task = asyncio.ensure_future(sio.timeout(5.0).emit_with_ack("question", 42))
    await answer_ack(clients[0], "question", '"a"')
    await answer_ack(clients[1], "question", '"b"', "2")  # several values → a tuple
    await answer_ack(clients[2], "question")  # no value → None
    values = await asyncio.wait_for(task, 5.0)
    assert sorted(map(repr, values)) == sorted(map(repr, ["a", ("b", 2), None]))

    # nobody to ask: no values, at once
    assert await asyncio.wait_for(sio.to("empty-room").timeout(0.5).emit_with_ack("q"), 5.0) == []


async def test_broadcast_emit_with_ack_times_out_when_one_client_is_silent(
    serve: Serve, raw: RawFactory
) -> None:
    sio = Server()
    Recorder(sio)
    app = await start(serve, sio)
    a, b, silent = [await raw(app.live) for _ in range(3)]
    for c in (a, b, silent):
        await c.connect()
    task = asyncio.ensure_future(sio.timeout(0.5).emit_with_ack("question"))
    await answer_ack(a, "question", "1")
    await answer_ack(b, "question", "2")
    assert (await silent.recv()).startswith("2")  # it got the question, and says nothing
    with pytest.raises(AckTimeoutError):
        await asyncio.wait_for(task, 5.0)


async def test_socket_emit_with_ack(serve: Serve, raw: RawFactory) -> None:
    sio = Server()
    rec = Recorder(sio)
    app = await start(serve, sio)
    c = await raw(app.live)
    await c.connect()
    socket = await asyncio.wait_for(rec.connected.get(), 5.0)

    task = asyncio.ensure_future(socket.emit_with_ack("question", {"q": 1}, timeout=5.0))
    await answer_ack(c, "question", '"yes"', '{"n":[1]}')
    assert await asyncio.wait_for(task, 5.0) == ("yes", {"n": [1]})

    task = asyncio.ensure_future(socket.emit_with_ack("question", timeout=0.3))
    assert (await c.recv()).startswith("2")  # received, never acknowledged
    with pytest.raises(AckTimeoutError):
        await asyncio.wait_for(task, 5.0)

    # a binary ACK from the client
    task = asyncio.ensure_future(socket.emit_with_ack("file", timeout=5.0))
    message = await c.recv()
    ack_id = re.fullmatch(r'2(\d+)\["file"\]', message)[1]  # type: ignore[index]
    await c.send(f"61-{ack_id}[{PH0}]", b"\x00\x01")
    assert await asyncio.wait_for(task, 5.0) == b"\x00\x01"


async def test_emit_with_callback(serve: Serve, raw: RawFactory) -> None:
    sio = Server()
    rec = Recorder(sio)
    app = await start(serve, sio)
    c = await raw(app.live)
    await c.connect()
    socket = await asyncio.wait_for(rec.connected.get(), 5.0)
    got: asyncio.Future[tuple] = asyncio.get_running_loop().create_future()
    socket.emit("question", 1, callback=lambda *values: got.set_result(values))
    await answer_ack(c, "question", '"x"', "3")
    assert await asyncio.wait_for(got, 5.0) == ("x", 3)
    # an ACK with an id nobody waits for is ignored
    await c.send('3777["late"]')
    assert await c.sync() == []


# -- volatile --------------------------------------------------------------------------------


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


async def test_volatile_is_dropped_for_polling_without_a_pending_get(
    serve: Serve, raw: RawFactory
) -> None:
    sio = Server()  # default heartbeat (25 s): no ping gets in the way
    rec = Recorder(sio)
    app = await start(serve, sio)
    c = await raw(app.live, "polling", poll=False)  # this test sends the GETs itself
    assert isinstance(c, RawPolling)
    await c.send("0")
    await asyncio.wait_for(rec.connected.get(), 5.0)
    assert (await c.get_once())[0].startswith('40{"sid":')
    # no GET pending now: a volatile packet cannot leave, so it is dropped
    sio.volatile.emit("volatile", 1)
    sio.emit("regular", 2)
    assert await c.get_once() == ['42["regular",2]']

    # with a GET pending, the volatile packet goes out
    get = asyncio.ensure_future(c.get_once())
    await wait_until(lambda: app.sio.engine.sessions[c.sid].get_waiter is not None)
    sio.volatile.emit("volatile", 3)
    assert await asyncio.wait_for(get, 5.0) == ['42["volatile",3]']


async def test_volatile_is_delivered_on_websocket(serve: Serve, raw: RawFactory) -> None:
    sio = Server()
    Recorder(sio)
    app = await start(serve, sio)
    c = await raw(app.live, "websocket")
    await c.connect()
    sio.volatile.emit("volatile", 1)
    sio.to("nowhere").volatile.emit("volatile", 2)  # nobody in that room
    sio.except_("nowhere").volatile.emit("volatile", 3)
    assert await c.recv() == '2["volatile",1]'
    assert await c.recv() == '2["volatile",3]'
    assert await c.sync() == []


# -- rooms, broadcast operators ----------------------------------------------------------------


async def test_rooms_and_broadcast_operators(serve: Serve, raw: RawFactory) -> None:
    sio = Server()
    rec, (a, b, c), (sa, sb, sc) = await three_clients(serve, raw, sio)
    sa.join("red", "blue")
    sb.join("red")
    assert sa.rooms == {sa.id, "red", "blue"}
    sio.to("red").emit("e", 1)  # a, b
    sio.to("red").except_("blue").emit("e", 2)  # b
    sio.to("blue", "red").emit("e", 3)  # a, b — once each
    sio.to(sc.id).emit("e", 4)  # c, by its own room
    sa.to("red").emit("e", 5)  # b: never back to the sender
    sa.broadcast.emit("e", 6)  # b, c
    sio.except_("red").emit("e", 7)  # c
    sb.leave("red")
    sio.to("red").emit("e", 8)  # a
    assert await a.sync() == ['2["e",1]', '2["e",3]', '2["e",8]']
    assert await b.sync() == ['2["e",1]', '2["e",2]', '2["e",3]', '2["e",5]', '2["e",6]']
    assert await c.sync() == ['2["e",4]', '2["e",6]', '2["e",7]']
    assert {s.id for s in sio.of("/").sockets_in("red")} == {sa.id}
    # leaving the namespace leaves every room
    await a.send("1")
    await rec.reason()
    assert sio.of("/").sockets_in("blue") == []


# -- catch-all listeners -----------------------------------------------------------------------


async def test_on_any_sees_incoming_events(serve: Serve, raw: RawFactory) -> None:
    sio = Server()
    Recorder(sio)
    seen: list[tuple] = []
    outgoing: list[tuple] = []
    sio.of("/").on_any(lambda socket, event, *args: seen.append((event, *args)))
    sio.of("/").on_any_outgoing(lambda socket, event, *args: outgoing.append((event, *args)))

    @sio.on("hello")
    def hello(socket: Socket, name: str) -> None:
        socket.emit("welcome", name)

    app = await start(serve, sio)
    c = await raw(app.live)
    await c.connect()
    await c.send('2["hello","ann"]', '27["no-handler",1,{"a":2}]', f'51-["bin",{PH0}]', b"\x09")
    assert await c.recv() == '2["welcome","ann"]'
    assert await c.sync() == []  # "no-handler" got no ACK
    assert seen == [
        ("hello", "ann"),
        ("no-handler", 1, {"a": 2}),
        ("bin", b"\x09"),
        ("message-with-ack", "sync"),
    ]
    assert outgoing == [("welcome", "ann")]


# -- disconnect reasons ----------------------------------------------------------------------


async def test_reason_client_namespace_disconnect(serve: Serve, raw: RawFactory) -> None:
    sio = Server()
    rec = Recorder(sio)
    app = await start(serve, sio)
    c = await raw(app.live)
    sid = await c.connect()
    await c.send("1")
    assert await rec.reason() == (sid, "client namespace disconnect")
    assert sio.of("/").sockets == {}
    await c.connect()  # the Engine.IO connection is still there


async def test_reason_server_namespace_disconnect(serve: Serve, raw: RawFactory) -> None:
    sio = Server()
    rec = Recorder(sio)
    Recorder(sio, "/other")
    app = await start(serve, sio)
    c = await raw(app.live)
    sid = await c.connect()
    await c.connect("/other")
    rec.sockets[sid].disconnect()
    assert await c.recv() == "1"  # DISCONNECT on /
    assert await rec.reason() == (sid, "server namespace disconnect")
    await c.send('2/other,1["message-with-ack","x"]')  # /other is still connected
    assert await c.recv() == '3/other,1["x"]'


async def test_reason_server_disconnect_with_close(serve: Serve, raw: RawFactory) -> None:
    sio = Server()
    rec = Recorder(sio)
    app = await start(serve, sio)
    c = await raw(app.live)
    sid = await c.connect()
    rec.sockets[sid].disconnect(close=True)
    assert await rec.reason() == (sid, "server namespace disconnect")
    await c.expect_closed()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_reason_transport_close(serve: Serve, raw: RawFactory, transport: str) -> None:
    sio = Server()
    rec = Recorder(sio)
    app = await start(serve, sio)
    c = await raw(app.live, transport)
    sid = await c.connect()
    if transport == "websocket":
        c.ws.close()  # type: ignore[attr-defined]
    else:
        await c.send_eio("1")  # the Engine.IO close packet
    assert await rec.reason() == (sid, "transport close")


@pytest.mark.parametrize(
    "body, recorded, reason",
    [
        ('42["record","bye"]\x1e1', ["bye"], "transport close"),
        (
            '42["record","a"]\x1e42["record","b"]\x1e41\x1e1',
            ["a", "b"],
            "client namespace disconnect",
        ),
        ("41\x1e1", [], "client namespace disconnect"),
    ],
    ids=["event-then-close", "events-disconnect-close", "disconnect-then-close"],
)
async def test_polling_packets_before_a_close_packet_are_delivered(
    serve: Serve, raw: RawFactory, body: str, recorded: list[str], reason: str
) -> None:
    """A client that sends its last packets and the Engine.IO close packet in one POST (python-socketio
    does: ``41\x1e1`` on disconnect) — the packets before the close are still the client's messages
    and are dispatched in order, as engine.io's ``onPacket`` does for each packet of a payload."""
    sio = Server()
    rec = Recorder(sio)
    got: list[str] = []
    sio.on("record", lambda socket, *args: got.extend(args))
    app = await start(serve, sio)
    c = await raw(app.live, "polling")
    assert isinstance(c, RawPolling)
    sid = await c.connect()
    response = await c.post(body)
    assert response.code == 200
    assert await rec.reason() == (sid, reason)
    assert got == recorded


async def test_reason_ping_timeout(serve: Serve, raw: RawFactory) -> None:
    sio = Server(ping_interval=0.1, ping_timeout=0.1)
    rec = Recorder(sio)
    app = await start(serve, sio)
    c = await raw(app.live, auto_pong=False)  # never answers a ping
    sid = await c.connect()
    assert await rec.reason() == (sid, "ping timeout")
    await c.expect_closed()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_reason_parse_error(serve: Serve, raw: RawFactory, transport: str) -> None:
    sio = Server()
    rec = Recorder(sio)
    rec_b = Recorder(sio, "/b")
    app = await start(serve, sio)
    c = await raw(app.live, transport)
    sid = await c.connect()
    sid_b = await c.connect("/b")
    await c.send('2["broken",')
    assert await rec.reason() == (sid, "parse error")
    assert await rec_b.reason() == (sid_b, "parse error")  # every namespace of the connection
    await c.expect_closed()


async def test_reason_server_shutting_down(serve: Serve, raw: RawFactory) -> None:
    sio = Server()
    rec = Recorder(sio)
    app = await start(serve, sio)
    c = await raw(app.live)
    sid = await c.connect()
    sio.close()
    assert await rec.reason() == (sid, "server shutting down")
    await c.expect_closed()


# -- encode once -----------------------------------------------------------------------------


@pytest.mark.parametrize("parser", ["json", "msgpack"])
async def test_broadcast_to_50_sockets_encodes_once(
    serve: Serve, raw: RawFactory, monkeypatch: pytest.MonkeyPatch, parser: str
) -> None:
    sio = Server(parser=parser)
    Recorder(sio)
    app = await start(serve, sio)
    clients = [await raw(app.live) for _ in range(50)]
    for c in clients:
        if parser == "json":
            await c.connect()
        else:
            await c.send(msgpack_encode(Packet.connect("/")))
            assert msgpack_decode(await c.recv()).type is PacketType.CONNECT

    calls = {"adapter": 0, "server": 0}
    real_encode = sio_teach.adapters.memory.encode

    def counting(name: str) -> Callable[..., Any]:
        def encode(*args: Any) -> Any:
            calls[name] += 1
            return real_encode(*args)

        return encode

    monkeypatch.setattr(sio_teach.adapters.memory, "encode", counting("adapter"))
    monkeypatch.setattr(sio_teach.server, "encode", counting("server"))
    sio.emit("news", {"n": 1}, b"\x01\x02")
    assert calls == {"adapter": 1, "server": 0}
    expected = Packet.event("/", "news", {"n": 1}, b"\x01\x02")
    for c in clients:
        if parser == "json":
            assert await c.recv() == f'51-["news",{{"n":1}},{PH0}]'
            assert await c.recv() == b"\x01\x02"
        else:  # one binary message, the bytes inside it
            assert msgpack_decode(await c.recv()) == expected

    sio.to(*[f"nowhere-{i}" for i in range(3)]).except_("x").emit("nobody")
    assert calls["adapter"] == 2 and calls["server"] == 0


# -- the benchmark example -----------------------------------------------------------------------


async def test_bench_server_joins_room_before_the_connect_reply(
    serve: Serve, raw: RawFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sio = bench_server.make_server()
    in_room_at_reply: list[bool] = []
    real_send = sio_teach.server.Connection.send

    def send(self: sio_teach.server.Connection, packet: Any) -> None:
        if packet.type == 0 and isinstance(packet.data, dict) and "sid" in packet.data:
            members = sio.of("/").adapter.rooms.get("r", set())
            in_room_at_reply.append(packet.data["sid"] in members)
        real_send(self, packet)

    monkeypatch.setattr(sio_teach.server.Connection, "send", send)
    app = await start(serve, sio)
    a = await raw(app.live, "websocket")
    b = await raw(app.live, "polling")
    sid_a = await a.connect()
    sid_b = await b.connect()
    assert in_room_at_reply == [True, True]
    assert {s.id for s in sio.of("/").sockets_in("r")} == {sid_a, sid_b}
    # bcast reaches the room, sender included (binary preserved)
    await b.send(f'51-["bcast","x",{PH0}]', b"\x05")
    for c in (a, b):
        assert await c.recv() == f'51-["msg","x",{PH0}]'
        assert await c.recv() == b"\x05"


async def test_bench_server_subprocess_smoke(raw: RawFactory) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sio_teach.examples.bench_server", "--port", str(port),
        cwd=ROOT, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        banner = await asyncio.wait_for(proc.stdout.readline(), 30.0)  # type: ignore[union-attr]
        assert b"bench server" in banner, banner
        a = await raw(base, "websocket")
        b = await raw(base, "polling")
        await a.connect()
        await b.connect()
        await a.send('21["echo",1,"two",{"3":[4]}]')
        assert await a.recv() == '31[1,"two",{"3":[4]}]'
        await a.send('22["echo"]')
        assert await a.recv() == "32[]"
        await a.send('2["echo","no ack asked"]', '2["ping",7]')
        assert await a.recv() == '2["pong",7]'  # and nothing for the echo without an ack id
        await a.send('2["bcast",{"t":1}]')
        for c in (a, b):
            assert await c.recv() == '2["msg",{"t":1}]'
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 5.0) == 0
        await a.expect_closed()  # the server said goodbye (close packet / WebSocket closed)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# -- more namespace / middleware details ---------------------------------------------------------


async def test_rooms_joined_by_a_refused_socket_are_left(serve: Serve, raw: RawFactory) -> None:
    """A middleware may join rooms before a later one refuses: the refused socket must not stay in
    them (socket.io namespace.ts ``_add``: on a middleware error, ``socket._cleanup()`` leaves all)."""
    sio = Server()
    Recorder(sio, "/private")
    gate, done = asyncio.Event(), asyncio.Event()

    def join_vip(socket: Socket) -> None:
        socket.join("vip")

    async def check(socket: Socket) -> None:
        if socket.handshake["auth"].get("wait"):
            await asyncio.wait_for(gate.wait(), 5.0)  # the client goes away meanwhile
            done.set()  # the rest of the CONNECT handling runs before the test wakes up
        if socket.handshake["auth"].get("token") != "good":
            raise ConnectRefused("no")

    sio.use(join_vip, namespace="/private")
    sio.use(check, namespace="/private")
    app = await start(serve, sio)
    adapter = sio.of("/private").adapter

    c = await raw(app.live)
    await c.send('0/private,{"token":"bad"}')
    assert await c.recv() == '4/private,{"message":"no"}'
    assert adapter.all_rooms() == set() and adapter.sids == {}, adapter.rooms

    # the connection closes while the middlewares run: nothing may stay behind either
    d = await raw(app.live)
    await d.send('0/private,{"token":"good","wait":true}')
    await d.close()
    session = app.sio.engine.sessions.get(d.sid)
    await wait_until(lambda: session is None or session.session.closed)
    gate.set()
    await asyncio.wait_for(done.wait(), 5.0)
    assert adapter.all_rooms() == set() and adapter.sids == {}, adapter.rooms
    assert sio.of("/private").sockets == {}


async def test_coroutine_catch_all_listeners_run(serve: Serve, raw: RawFactory) -> None:
    """Handlers and middlewares may be coroutine functions; so may the catch-all listeners (a
    coroutine function called without being awaited would silently do nothing)."""
    sio = Server()
    Recorder(sio)
    seen: asyncio.Queue[tuple] = asyncio.Queue()
    sent: asyncio.Queue[tuple] = asyncio.Queue()

    @sio.of("/").on_any
    async def incoming(socket: Socket, event: str, *args: Any) -> None:
        seen.put_nowait((event, *args))

    @sio.of("/").on_any_outgoing
    async def outgoing(socket: Socket, event: str, *args: Any) -> None:
        sent.put_nowait((event, *args))

    @sio.on("hello")
    def hello(socket: Socket) -> None:
        socket.emit("welcome", 1)

    app = await start(serve, sio)
    c = await raw(app.live)
    await c.connect()
    await c.send('2["hello"]')
    assert await c.recv() == '2["welcome",1]'
    assert await asyncio.wait_for(seen.get(), 5.0) == ("hello",)
    assert await asyncio.wait_for(sent.get(), 5.0) == ("welcome", 1)


async def test_dynamic_namespace_children_inherit_every_listener(
    serve: Serve, raw: RawFactory
) -> None:
    sio = Server()
    dyn = sio.of(re.compile(r"^/dyn-\d+$"))
    seen: list[tuple] = []
    sent: list[tuple] = []
    dyn.on_any(lambda socket, event, *args: seen.append((socket.nsp.name, event)))
    dyn.on_any_outgoing(lambda socket, event, *args: sent.append((socket.nsp.name, event)))

    @dyn.on("hello")
    def hello(socket: Socket) -> tuple:
        socket.emit("welcome")
        return ()

    app = await start(serve, sio)
    c = await raw(app.live)
    await c.connect("/dyn-1")
    await c.send('2/dyn-1,1["hello"]')
    assert await c.recv() == '2/dyn-1,["welcome"]'
    assert await c.recv() == "3/dyn-1,1[]"
    assert seen == [("/dyn-1", "hello")]
    assert sent == [("/dyn-1", "welcome")]


async def test_engine_options_pass_through(serve: Serve, http_client) -> None:
    """``Server(**engine options)``: ping settings, maxPayload, CORS origins, allow_request."""
    sio = Server(
        ping_interval=1.5,
        ping_timeout=2.25,
        max_payload=5000,
        cors_origins=["https://a.example"],
        allow_request=lambda request: request.headers.get("X-Token") == "ok",
    )
    app = await start(serve, sio)
    url = app.live.url("/socket.io/", EIO=4, transport="polling")
    refused = await http_client.fetch(url, raise_error=False)
    assert refused.code == 403
    assert json.loads(refused.body) == {"code": 4, "message": "Forbidden"}
    response = await http_client.fetch(
        url, headers={"X-Token": "ok", "Origin": "https://a.example"}, raise_error=False
    )
    assert response.code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://a.example"
    handshake = json.loads(response.body.decode()[1:])
    assert (handshake["pingInterval"], handshake["pingTimeout"], handshake["maxPayload"]) == (
        1500,
        2250,
        5000,
    )


# -- acks and disconnection ----------------------------------------------------------------------


async def test_emit_with_ack_on_a_disconnected_socket_fails_at_once(
    serve: Serve, raw: RawFactory
) -> None:
    """Without a timeout, an ACK that cannot come must not be awaited forever: a disconnected
    socket refuses at once, and a pending ack fails when its socket disconnects."""
    sio = Server()
    rec = Recorder(sio)
    app = await start(serve, sio)
    c = await raw(app.live)
    await c.connect()
    socket = await asyncio.wait_for(rec.connected.get(), 5.0)
    pending = asyncio.ensure_future(socket.emit_with_ack("question"))  # no timeout
    assert (await c.recv()).startswith("2")  # received; the client leaves without answering
    await c.send("1")
    await rec.reason()
    with pytest.raises(ConnectError, match="disconnected"):
        await asyncio.wait_for(pending, 1.0)
    with pytest.raises(ConnectError, match="disconnected"):
        await asyncio.wait_for(socket.emit_with_ack("again"), 1.0)


async def test_socket_broadcasts_never_reach_the_sender(serve: Serve, raw: RawFactory) -> None:
    """``socket.broadcast`` / ``socket.to(room)`` exclude the sender, whatever is chained after."""
    sio = Server()
    rec, (a, b, c), (sa, sb, sc) = await three_clients(serve, raw, sio)
    for s in (sa, sb, sc):
        s.join("red")
    sc.join("blue")
    sa.to("red").except_("blue").emit("e", 1)  # b
    sa.broadcast.except_("blue").emit("e", 2)  # b
    sa.to("red").to("blue").except_("nowhere").emit("e", 3)  # b, c
    sa.broadcast.volatile.timeout(1).emit("e", 4)  # b, c
    sa.in_("red").except_(sb.id).emit("e", 5)  # c
    assert await a.sync() == []
    assert await b.sync() == ['2["e",1]', '2["e",2]', '2["e",3]', '2["e",4]']
    assert await c.sync() == ['2["e",3]', '2["e",4]', '2["e",5]']


# -- the shell on a fake clock: no sockets, no sleeping ----------------------------------------------


class FakeLoop:
    """What :class:`sio_teach.server.Connection` uses of the IOLoop, on a clock moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[list[Any]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> list[Any]:
        self.timers.append(handle := [when, callback])
        return handle

    def remove_timeout(self, handle: list[Any]) -> None:
        self.timers.remove(handle)

    def advance(self, to: float) -> None:
        self.now = to
        while due := sorted((t for t in self.timers if t[0] <= to), key=lambda t: t[0]):
            self.timers.remove(due[0])
            due[0][1]()


class FakeEngineSocket:
    """An Engine.IO connection that records what the Socket.IO layer does with it."""

    def __init__(self, query: str = "") -> None:
        self.sid = "eio-1"
        uri = f"/socket.io/?EIO=4&transport=websocket{query}"
        self.request = HTTPServerRequest(
            start_line=RequestStartLine("GET", uri, "HTTP/1.1"), headers=HTTPHeaders(Host="test")
        )
        self.writable = True
        self.sent: list[str | bytes] = []
        self.closed: str | None = None
        self.on_message: Callable[[str | bytes], None] = lambda data: None
        self.on_close: Callable[[str], None] = lambda reason: None

    def send(self, data: str | bytes) -> None:
        self.sent.append(data)

    def close(self, reason: str = "forced close") -> None:
        if self.closed is None:
            self.closed = reason
            self.on_close(reason)


@pytest.fixture
def loop(monkeypatch: pytest.MonkeyPatch) -> FakeLoop:
    fake = FakeLoop()
    monkeypatch.setattr(tornado.ioloop.IOLoop, "current", staticmethod(lambda *a, **k: fake))
    return fake


async def settle() -> None:
    """Let the CONNECT handling (a background task) run its course."""
    for _ in range(10):
        await asyncio.sleep(0)


def test_connect_timeout_closes_at_exactly_connect_timeout(loop: FakeLoop) -> None:
    """Bounded on both sides: still open a moment before ``connect_timeout``, closed at it."""
    sio = Server(connect_timeout=2.0)
    loop.now = 50.0
    eio = FakeEngineSocket()
    sio._on_engine_connect(eio)  # type: ignore[arg-type]
    loop.advance(51.999)
    assert eio.closed is None
    loop.advance(52.0)
    assert eio.closed == "forced close" and eio.sent == []
    assert loop.timers == []


async def test_connect_timeout_spares_a_connection_that_connected(loop: FakeLoop) -> None:
    sio = Server(connect_timeout=2.0)
    eio = FakeEngineSocket()
    sio._on_engine_connect(eio)  # type: ignore[arg-type]
    eio.on_message("0")
    await settle()
    assert str(eio.sent[0]).startswith('0{"sid":')
    assert loop.timers == []  # nothing left to time
    loop.advance(100.0)
    assert eio.closed is None


async def test_ack_deadline_is_the_connections_one_timer(loop: FakeLoop) -> None:
    sio = Server()
    rec = Recorder(sio)
    eio = FakeEngineSocket()
    sio._on_engine_connect(eio)  # type: ignore[arg-type]
    eio.on_message("0")
    await settle()
    socket = rec.sockets.popitem()[1]
    outgoing: list[tuple] = []
    sio.of("/").on_any_outgoing(lambda socket, event, *args: outgoing.append((event, *args)))
    loop.now = 10.0
    pending = asyncio.ensure_future(socket.emit_with_ack("question", timeout=3.0))
    await settle()
    assert eio.sent[-1] == '20["question"]'
    assert [t[0] for t in loop.timers] == [13.0]
    loop.advance(12.99)
    assert not pending.done()
    loop.advance(13.0)
    with pytest.raises(AckTimeoutError):
        await pending
    eio.on_message('30["late"]')  # ignored
    assert loop.timers == []
    again = asyncio.ensure_future(socket.emit_with_ack("question", 2))  # the next ack id: 1
    await settle()
    assert eio.sent[-1] == '21["question",2]'
    eio.on_message('31["yes"]')
    assert await again == "yes" and loop.timers == []
    assert outgoing == [("question",), ("question", 2)]


async def test_handler_failures_are_logged_once_per_kind_then_counted(
    loop: FakeLoop, caplog: pytest.LogCaptureFixture
) -> None:
    """20,000 bad messages: one traceback per socket, handler and exception type, not 20,000."""
    sio = Server()
    Recorder(sio)

    @sio.on("boom")
    def boom(socket: Socket, value: Any) -> None:
        raise ValueError(value) if value else KeyError(value)

    @sio.on("later")
    async def later(socket: Socket) -> None:
        raise RuntimeError("in a coroutine")

    caplog.set_level(logging.ERROR, "sio_teach")
    eio = FakeEngineSocket()
    sio._on_engine_connect(eio)  # type: ignore[arg-type]
    eio.on_message("0")
    await settle()
    for i in range(20_000):
        eio.on_message(f'2{i}["boom",{i % 2}]')
    for _ in range(100):
        eio.on_message('2["later"]')
    await settle()
    assert sio.handler_errors == 20_100
    tracebacks = [r for r in caplog.records if r.exc_info]
    kinds = sorted(r.exc_info[0].__name__ for r in tracebacks)  # type: ignore[index]
    assert kinds == ["KeyError", "RuntimeError", "ValueError"]
    assert len(caplog.records) == 3
    assert eio.closed is None and eio.sent[1:] == []  # no ACK from a failed handler


async def test_a_non_utf8_query_still_connects(loop: FakeLoop) -> None:
    sio = Server()
    rec = Recorder(sio)
    eio = FakeEngineSocket("&x=%FF&name=%C3%A9")
    sio._on_engine_connect(eio)  # type: ignore[arg-type]
    eio.on_message("0")
    await settle()
    assert str(eio.sent[0]).startswith('0{"sid":')
    [socket] = rec.sockets.values()
    assert socket.handshake["query"]["x"] == "\ufffd"
    assert socket.handshake["query"]["name"] == "é"


async def test_any_failure_during_connect_answers_connect_error(loop: FakeLoop) -> None:
    """A bug on the way (here: a dynamic namespace's predicate) answers CONNECT_ERROR, and the
    namespace may be asked for again."""
    sio = Server()
    calls: list[str] = []

    def flaky(name: str, auth: dict) -> bool:
        calls.append(name)
        if len(calls) == 1:
            raise RuntimeError("first call fails")
        return True

    sio.of(flaky)
    eio = FakeEngineSocket()
    sio._on_engine_connect(eio)  # type: ignore[arg-type]
    eio.on_message("0/dyn,")
    await settle()
    assert eio.sent == ['4/dyn,{"message":"Internal server error"}']
    eio.on_message("0/dyn,")
    await settle()
    assert str(eio.sent[1]).startswith('0/dyn,{"sid":')


async def test_a_failing_middleware_is_logged_once_per_connection_then_counted(
    loop: FakeLoop, caplog: pytest.LogCaptureFixture
) -> None:
    sio = Server()

    def buggy(socket: Socket) -> None:
        raise KeyError("oops")

    sio.use(buggy)
    caplog.set_level(logging.ERROR, "sio_teach")
    eio = FakeEngineSocket()
    sio._on_engine_connect(eio)  # type: ignore[arg-type]
    for _ in range(50):
        eio.on_message("0")
        await settle()
    assert eio.sent == ['4{"message":"Internal server error"}'] * 50
    assert sio.handler_errors == 50 and len(caplog.records) == 1


async def test_a_stale_socket_cannot_disconnect_its_successor(loop: FakeLoop) -> None:
    """After the client left and came back to a namespace, the old Socket object is inert."""
    sio = Server()
    rec = Recorder(sio)
    eio = FakeEngineSocket()
    sio._on_engine_connect(eio)  # type: ignore[arg-type]
    eio.on_message("0")
    await settle()
    old = rec.sockets.popitem()[1]
    eio.on_message("1")
    eio.on_message("0")
    await settle()
    new = rec.sockets.popitem()[1]
    old.disconnect()
    old.disconnect(close=True)
    assert old.emit("x") is None and not old.connected
    assert new.connected and eio.closed is None and eio.sent[-1].startswith('0{"sid"')  # type: ignore[union-attr]


async def test_a_failing_ack_callback_is_contained(
    loop: FakeLoop, caplog: pytest.LogCaptureFixture
) -> None:
    sio = Server()
    rec = Recorder(sio)
    eio = FakeEngineSocket()
    sio._on_engine_connect(eio)  # type: ignore[arg-type]
    eio.on_message("0")
    await settle()
    socket = rec.sockets.popitem()[1]
    caplog.set_level(logging.ERROR, "sio_teach")
    for i in range(3):
        socket.emit("question", callback=lambda *values: 1 / 0)
        eio.on_message(f"3{i}[]")
    assert sio.handler_errors == 3 and len(caplog.records) == 1 and socket.connected
