"""Faults, nothing lost: a server restart, a WebSocket that breaks during the upgrade or under an
established session, clients that stop answering pings.

Every test sends numbered ``message`` events through the conformance app (``message`` →
``message-back`` with the same args) and fails if a number is lost, doubled or out of order on
either side. Socket.IO promises *at most once* for a packet written into a transport that then
dies, and *exactly once, in order* for what the client emits while disconnected (its send buffer).
So the numbers checked are those whose fate the protocol decides: emitted while connected on a
healthy transport, or while disconnected; packets in flight at a cut are only checked for
duplicates and order.

The server runs in the test's event loop behind :class:`FaultHandler`, the Engine.IO handler plus
fault knobs (a probe fault, a silent partition, a TCP reset); :class:`FaultLab` restarts it on the
same port. Our clients are :class:`Peer`; the official npm ``socket.io-client`` runs
``tests/js/reliability_restart.js``. Every wait is bounded; no assertion is on a duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket as socketlib
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import tornado.httpserver
import tornado.ioloop
import tornado.iostream
import tornado.netutil
import tornado.web

from sio_teach import Client
from sio_teach.examples.conformance import socketio_server
from sio_teach.server import Server, Socket
from sio_teach.transports.eio_server import EngineHandler, EngineServer
from tests.client.conftest import FAST_BACKOFF
from tests.conftest import HOST
from tests.reliability.conftest import TIMEOUT, App, until
from tests.sio.conftest import RELAXED_HEARTBEAT, SID_RE, NodeProcess, RawClient, RawPolling

MODES = {"polling": ("polling",), "websocket": ("websocket",), "upgrade": ("polling", "websocket")}
CLIENT_EVENTS = (
    "connect",
    "disconnect",
    "connect_error",
    "reconnect_attempt",
    "reconnect",
    "reconnect_error",
    "reconnect_failed",
)


def reset(stream: tornado.iostream.IOStream | None) -> None:
    """Abort a TCP connection with a reset (RST), as a crashed peer or a middlebox would:
    ``SO_LINGER`` on with a zero timeout, then close."""
    if stream is None or stream.closed():
        return
    with contextlib.suppress(OSError):
        stream.socket.setsockopt(socketlib.SOL_SOCKET, socketlib.SO_LINGER, struct.pack("ii", 1, 0))
    stream.close()


# -- the server with fault knobs ---------------------------------------------------------------


class FaultHandler(EngineHandler):
    """The Engine.IO handler plus fault knobs; at rest it changes nothing.

    * ``lab.probe_fault`` — the next ``2probe`` is held ``lab.probe_delay`` seconds, then either
      the probing WebSocket is reset without an answer (``"cut before 3probe"``), or ``3probe`` is
      written and the WebSocket closed right after it (``"cut after 3probe"``).
    * ``silenced`` — a partition: frames and closes vanish both ways while TCP stays up.
    """

    lab: FaultLab

    def initialize(self, engine: EngineServer, lab: FaultLab, **checked: Any) -> None:  # type: ignore[override]
        super().initialize(engine, **checked)
        self.lab = lab
        self.silenced = False

    def prepare(self) -> None:
        self.lab.handlers.add(self)

    def on_finish(self) -> None:
        self.lab.handlers.discard(self)

    def stream(self) -> tornado.iostream.IOStream | None:
        """The TCP stream under this request or WebSocket."""
        if self.ws_connection is not None:
            return self.ws_connection.stream  # type: ignore[attr-defined, no-any-return]
        return getattr(self.request.connection, "stream", None)

    def on_message(self, message: str | bytes) -> None:  # type: ignore[override]
        if self.silenced:
            return
        fault = self.lab.probe_fault
        if fault and message == "2probe" and self.socket is not None and self.socket.probe is self:
            self.lab.probe_fault = None  # one shot
            loop = tornado.ioloop.IOLoop.current()
            loop.call_later(self.lab.probe_delay, self._probe_fault, fault, message)
            return
        super().on_message(message)

    def _probe_fault(self, fault: str, message: str) -> None:
        if self.ws_connection is None or self.socket is None or self.socket.probe is not self:
            return  # the probe is gone already: no fault injected (the test sees it)
        if fault == "cut before 3probe":
            reset(self.stream())
        else:  # "cut after 3probe"
            super().on_message(message)  # 3probe written; the pending GET answered with a noop
            assert self.ws_connection is not None
            self.ws_connection.stream.close()  # type: ignore[attr-defined]
        self.lab.faults.append(fault)

    # Every frame the server writes goes through one of these (``write_frame`` where the handler
    # writes ready-made frames itself, ``write_message`` otherwise): a partition drops them.
    def write_frame(self, data: bytes) -> None:
        if not self.silenced:
            super().write_frame(data)  # type: ignore[misc]

    def write_message(self, message: Any, binary: bool = False) -> Any:
        if self.silenced:
            return None
        return super().write_message(message, binary)

    def on_ws_connection_close(self, code: int | None = None, reason: str | None = None) -> None:
        if not self.silenced:  # a partition hides the peer's close too
            super().on_ws_connection_close(code, reason)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if not self.silenced:
            super().close(code, reason)

    def on_close(self) -> None:
        self.lab.handlers.discard(self)
        super().on_close()


class FaultLab:
    """The conformance app (relaxed pong deadline) on 127.0.0.1 behind :class:`FaultHandler`.

    :meth:`start` again after :meth:`stop` serves a brand-new app on the same port (a process
    restart: no session, socket or room survives). ``received`` holds every event of ``/`` as
    ``(generation, event, args)``; ``disconnects`` every server-side disconnect as
    ``(generation, socket id, reason)``.
    """

    def __init__(self, **options: Any) -> None:
        self.options = {**RELAXED_HEARTBEAT, **options}
        self.port = 0
        self.generation = 0
        self.received: list[tuple[int, str, tuple[Any, ...]]] = []
        self.disconnects: list[tuple[int, str, str]] = []
        self.handlers: set[FaultHandler] = set()
        self.probe_fault: str | None = None
        self.probe_delay = 0.0
        self.faults: list[str] = []  # the probe faults injected
        self.sio: Server | None = None
        self.http: tornado.httpserver.HTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def server(self) -> Server:
        assert self.sio is not None, "not running"
        return self.sio

    def start(self) -> None:
        assert self.http is None, "already running"
        self.generation += 1
        generation = self.generation
        sio = socketio_server(**self.options)

        def record(socket: Socket, event: str, *args: Any) -> None:
            self.received.append((generation, event, args))

        def on_disconnect(socket: Socket, reason: str) -> None:
            self.disconnects.append((generation, socket.id, reason))

        sio.of("/").on_any(record)
        sio.on("disconnect", on_disconnect)
        app = tornado.web.Application(sio.engine.routes("/socket.io/", FaultHandler, lab=self))
        sockets = tornado.netutil.bind_sockets(self.port, HOST)  # SO_REUSEADDR: the same port again
        self.port = sockets[0].getsockname()[1]
        self.http = tornado.httpserver.HTTPServer(app)
        self.http.add_sockets(sockets)
        self.sio = sio

    async def stop(self, crash: bool = False) -> None:
        """Stop listening and end every connection: gracefully (every session gets its close
        packet), or as a crash (``crash=True``: every TCP connection reset, no goodbye)."""
        if self.http is None:
            return
        http, sio, self.http = self.http, self.server, None
        http.stop()
        handlers = list(self.handlers)
        for handler in handlers:
            handler.silenced = False
            if crash:
                reset(handler.stream())
        if crash:  # the HTTP connections too: held GETs, keep-alives (Tornado's own set of them)
            for connection in list(http._connections):  # type: ignore[attr-defined]
                if connection.stream is not None and not connection.stream.closed():
                    reset(connection.stream)
        sio.close()  # after a crash this only stops the old sessions' timers
        for handler in handlers:
            if handler.ws_connection is not None:
                handler.close()
        self.handlers.clear()
        await asyncio.sleep(0.05)  # let the close packets and frames leave
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(http.close_all_connections(), 5.0)  # idle keep-alives too

    def events(self, tag: str, generation: int | None = None) -> list[Any]:
        """The numbers of the ``message`` events tagged ``tag`` the server received, in order."""
        return [
            args[1]
            for gen, event, args in self.received
            if event == "message" and args and args[0] == tag and generation in (None, gen)
        ]

    def ws_handler(self, eio_sid: str) -> FaultHandler:
        socket = self.server.engine.sessions[eio_sid]
        assert isinstance(socket.ws, FaultHandler), f"session {eio_sid} is not on a WebSocket"
        return socket.ws


@pytest.fixture
async def lab_factory() -> AsyncIterator[Callable[..., FaultLab]]:
    """Factory fixture: ``lab = lab_factory(**Server_options)`` — started; stopped at teardown."""
    labs: list[FaultLab] = []

    def _start(**options: Any) -> FaultLab:
        lab = FaultLab(**options)
        labs.append(lab)
        lab.start()
        return lab

    yield _start
    for lab in labs:
        await lab.stop()


# -- our clients -------------------------------------------------------------------------------


class Peer:
    """One of our :class:`Client`\\ s sending numbered ``message`` events tagged ``tag``; it
    records its special events and the numbers of the ``message-back``\\ s, in arrival order."""

    def __init__(self, url: str, mode: str, tag: str) -> None:
        self.mode, self.tag = mode, tag
        self.client = Client(url, transports=MODES[mode], backoff=FAST_BACKOFF)
        self.sent = 0  # numbers 0 … sent-1 were emitted
        self.backs: list[Any] = []
        self.log: list[tuple[str, tuple[Any, ...]]] = []
        self.on_next_disconnect: Callable[[], None] | None = None  # a one-shot hook
        for name in CLIENT_EVENTS:
            self.client.on(name, self._recorder(name))
        self.client.on("message-back", self._on_back)

    def _recorder(self, name: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            self.log.append((name, args))
            if name == "disconnect" and self.on_next_disconnect is not None:
                hook, self.on_next_disconnect = self.on_next_disconnect, None
                hook()  # synchronously: the reconnection has not begun

        return record

    def _on_back(self, tag: Any = None, number: Any = None, *rest: Any) -> None:
        if tag == self.tag:
            self.backs.append(number)

    def count(self, name: str) -> int:
        return sum(1 for event, _ in self.log if event == name)

    async def wait(self, name: str, count: int = 1, timeout: float = TIMEOUT) -> None:
        await until(
            lambda: self.count(name) >= count, timeout, f"{self.tag}: {name} x{count} ({self.log})"
        )

    async def connect(self) -> Peer:
        await asyncio.wait_for(self.client.connect(TIMEOUT), TIMEOUT + 1)
        if self.mode == "upgrade":
            await until(
                lambda: self.client.transport == "websocket", TIMEOUT, f"{self.tag} upgrade"
            )
        return self

    def emit(self, count: int = 1) -> None:
        """Emit the next ``count`` numbers."""
        for _ in range(count):
            self.client.emit("message", self.tag, self.sent)
            self.sent += 1

    async def sync(self, timeout: float = TIMEOUT) -> None:
        """A round trip on the current connection: every ``message-back`` the server sent before
        its answer (to what this client emitted before it) has arrived when this returns."""
        reply = await self.client.emit_with_ack("message-with-ack", "sync", timeout=timeout)
        assert reply == "sync"

    async def settle(self, timeout: float = 3.0) -> None:
        """Wait (a little) for every ``message-back``, then :meth:`sync`: whatever is missing then
        is lost, and a duplicate would have shown. (The wait is for numbers that a reconnection
        left on an older connection; on the current one :meth:`sync` is enough.)"""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_back(), timeout)
        await self.sync()

    async def _all_back(self) -> None:
        while len(self.backs) < self.sent:
            await asyncio.sleep(0.01)

    def check(self, lab: FaultLab) -> None:
        """Every number emitted reached the server once, in order, and came back once, in order."""
        expected, got = list(range(self.sent)), lab.events(self.tag)
        missing = sorted(set(expected) - set(got))
        events = [event for event, _ in self.log]
        assert got == expected, f"{self.tag}: the server missed {missing}, got {got}; {events}"
        missing = sorted(set(expected) - set(self.backs))
        assert self.backs == expected, f"{self.tag}: message-back missed {missing}: {self.backs}"

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.disconnect(), 5.0)


@pytest.fixture
async def peers() -> AsyncIterator[Callable[[str, str, str], Peer]]:
    """Factory fixture: ``peer = peers(url, mode, tag)`` (not connected); closed at teardown."""
    made: list[Peer] = []

    def _make(url: str, mode: str, tag: str) -> Peer:
        peer = Peer(url, mode, tag)
        made.append(peer)
        return peer

    yield _make
    for peer in made:
        await peer.close()


@pytest.fixture
async def node() -> AsyncIterator[Callable[..., Any]]:
    """Factory fixture: ``proc = await node(script, *args)`` — a Node script read line by line;
    killed at teardown."""
    started: list[NodeProcess] = []

    async def _start(script: str, *args: Any) -> NodeProcess:
        proc = NodeProcess(script, [str(a) for a in args])
        started.append(proc)
        return await proc.start()

    yield _start
    for proc in started:
        await proc.kill()


# -- 1. a server restart -----------------------------------------------------------------------

BEFORE = 10  # numbers emitted and delivered before the restart
WHILE_DOWN = 20  # numbers emitted while the server is down


@pytest.mark.parametrize("crash", [False, True], ids=["graceful", "crash"])
async def test_server_restart_every_client_reconnects_and_its_buffer_arrives_once_in_order(
    lab_factory: Callable[..., FaultLab],
    peers: Callable[[str, str, str], Peer],
    node: Callable[..., Any],
    crash: bool,
    no_errors_logged: Any,
) -> None:
    """Six of our clients (two per transport mode) and the official npm client are connected;
    the server stops (closing every session, or resetting every connection as a crash would) and
    starts again on the same port. What each client emitted while the server was down arrives
    exactly once, in order, after the restart; each client reconnected by itself."""
    lab = lab_factory()
    group = [peers(lab.url, mode, f"{mode}-{i}") for mode in MODES for i in range(2)]
    for peer in group:
        await peer.connect()
        peer.emit(BEFORE)
    js = await node("reliability_restart.js", lab.url, "default", "js", BEFORE, WHILE_DOWN, 60)
    await js.expect("ready", timeout=15.0)
    for peer in group:
        await peer.settle()
        assert peer.backs == list(range(BEFORE))

    await lab.stop(crash=crash)
    js_down = await js.expect("disconnect")
    assert js_down["active"] is True, js_down  # it will reconnect by itself

    async def emit_while_down(peer: Peer) -> None:
        await peer.wait("disconnect")
        for _ in range(WHILE_DOWN):
            assert not peer.client.connected, f"{peer.tag} connected while the server is down"
            peer.emit()
            await asyncio.sleep(0.005)
        assert len(peer.client.send_buffer) == WHILE_DOWN
        await peer.wait("reconnect_error")  # a failed attempt does not lose the buffer

    await asyncio.gather(*(emit_while_down(peer) for peer in group))
    assert (await js.expect("buffered"))["sendBuffer"] == WHILE_DOWN
    await js.expect("reconnect_error")

    lab.start()  # the same port, a brand-new server
    done = await js.expect("done", timeout=20.0)
    for peer in group:
        await peer.wait("reconnect", timeout=15.0)
        await until(lambda peer=peer: peer.client.connected, TIMEOUT, f"{peer.tag} connected")
        await peer.settle()

    for peer in group:
        peer.check(lab)
        assert lab.events(peer.tag, generation=2) == list(range(BEFORE, BEFORE + WHILE_DOWN))
        assert peer.count("connect") == 2 and peer.count("reconnect") == 1, (peer.tag, peer.log)
        assert peer.client.send_buffer == []
    assert lab.events("js") == list(range(BEFORE + WHILE_DOWN))
    assert lab.events("js", generation=2) == list(range(BEFORE, BEFORE + WHILE_DOWN))
    assert done["backs"] == list(range(BEFORE + WHILE_DOWN)) and done["connects"] == 2
    assert done["sendBuffer"] == 0
    assert await js.wait(10.0) == 0


async def test_the_send_buffer_goes_out_before_what_the_connect_handler_emits(
    lab_factory: Callable[..., FaultLab], peers: Callable[[str, str, str], Peer]
) -> None:
    """After a reconnection, what was emitted while disconnected was emitted *earlier* than what
    a ``connect`` handler emits, so it must reach the server first. socket.io-client
    ``Socket.onconnect`` flushes the send buffer, then fires ``connect``."""
    lab = lab_factory()
    peer = await peers(lab.url, "websocket", "ws").connect()
    peer.emit(BEFORE)
    await peer.settle()

    def on_connect() -> None:
        peer.log.append(("connect", ()))
        peer.emit()  # e.g. an application that says "hello again" on every (re)connection

    await lab.stop()
    await peer.wait("disconnect")
    peer.emit(WHILE_DOWN)
    peer.client.on("connect", on_connect)
    lab.start()
    await peer.wait("reconnect", timeout=15.0)
    await peer.settle()

    peer.check(lab)  # BEFORE + WHILE_DOWN buffered numbers, then the connect handler's, in order


# -- 2. a WebSocket that breaks during the upgrade --------------------------------------------

# numbered messages after the fault, one every 2 ms (the polling requests are always busy)
STREAM = 150


@pytest.mark.parametrize("fault", ["cut before 3probe", "cut after 3probe"])
async def test_a_websocket_broken_during_the_upgrade_loses_nothing(
    lab_factory: Callable[..., FaultLab],
    peers: Callable[[str, str, str], Peer],
    fault: str,
    no_errors_logged: Any,
) -> None:
    """The probing WebSocket is cut while a stream of numbered messages flows both ways over
    polling (the server holds the ``2probe`` 0.3 s, so the stream is well under way): reset
    before it could answer, or closed right after ``3probe`` (the client has paused polling and
    is about to send ``5``). The session must go on over polling (or reconnect) and every
    message, both ways, is delivered exactly once, in order."""
    lab = lab_factory()
    lab.probe_fault, lab.probe_delay = fault, 0.3
    peer = peers(lab.url, "upgrade", "stream")
    await asyncio.wait_for(peer.client.connect(TIMEOUT), TIMEOUT + 1)
    after_fault = 0  # the stream goes on for STREAM numbers after the fault
    while after_fault < STREAM and peer.sent < 20 * STREAM:
        peer.emit()
        after_fault += bool(lab.faults)
        await asyncio.sleep(0.002)
    await peer.settle()

    assert lab.faults == [fault], "the fault was not injected (the probe never came?)"
    reconnected = peer.count("disconnect")
    peer.check(lab)
    if fault == "cut before 3probe":  # the probe failed: polling never stopped
        assert reconnected == 0 and peer.client.transport == "polling", peer.log


# -- 3. a WebSocket cut under an established session --------------------------------------------

CUTS = ["server resets", "client resets", "silent partition"]


@pytest.mark.parametrize("mode", ["websocket", "upgrade"])
@pytest.mark.parametrize("cut", CUTS)
async def test_a_websocket_cut_under_an_established_session(
    lab_factory: Callable[..., FaultLab],
    peers: Callable[[str, str, str], Peer],
    mode: str,
    cut: str,
    no_errors_logged: Any,
) -> None:
    """The WebSocket of an established session is cut: its TCP connection reset by the server or
    by the client, or silently partitioned (TCP up, nothing passes: only the heartbeat can tell).
    The client detects it, reconnects by itself, and what it emitted meanwhile (its send buffer)
    is delivered once, in order. The numbers in flight at the cut may be lost (at most once),
    never doubled or reordered."""
    # a partition is detected after pingInterval + pingTimeout: keep that short
    lab = lab_factory(ping_timeout=1.5) if cut == "silent partition" else lab_factory()
    peer = await peers(lab.url, mode, "cut").connect()
    peer.emit(BEFORE)
    await peer.settle()
    assert peer.client.engine is not None
    old_eio_sid, old_sid = peer.client.engine.sid, peer.client.id

    buffered: list[int] = []

    def emit_while_disconnected() -> None:
        start = peer.sent
        peer.emit(WHILE_DOWN)
        buffered.extend(range(start, peer.sent))

    peer.on_next_disconnect = emit_while_disconnected
    peer.emit(5)  # in flight at the cut
    in_flight = list(range(BEFORE, peer.sent))
    if cut == "server resets":
        reset(lab.ws_handler(old_eio_sid).stream())
    elif cut == "client resets":
        ws = peer.client.engine.ws
        assert ws is not None and ws.protocol is not None
        reset(ws.protocol.stream)
    else:
        lab.ws_handler(old_eio_sid).silenced = True

    await peer.wait("disconnect", timeout=15.0)
    assert len(peer.client.send_buffer) == WHILE_DOWN  # buffered while disconnected
    await peer.wait("reconnect", timeout=15.0)
    await peer.sync()  # the numbers in flight may be lost: no waiting for them

    reason = peer.log[[e for e, _ in peer.log].index("disconnect")][1][0]
    if cut == "silent partition":
        assert reason == "ping timeout", peer.log
    else:
        assert reason in ("transport close", "transport error"), peer.log
    got = lab.events("cut")
    assert got == sorted(set(got)), f"doubled or reordered: {got}"
    assert set(got) - set(in_flight) == set(range(BEFORE)) | set(buffered), got
    assert peer.backs == sorted(set(peer.backs)), f"doubled or reordered: {peer.backs}"
    assert set(peer.backs) >= set(range(BEFORE)) | set(buffered), peer.backs
    assert peer.client.id != old_sid and peer.client.send_buffer == []
    # the server let the old session go, and knows why
    await until(
        lambda: old_eio_sid not in lab.server.engine.sessions, TIMEOUT, "the old session gone"
    )
    old = [reason for _, sid, reason in lab.disconnects if sid == old_sid]
    expected_reason = "ping timeout" if cut == "silent partition" else "transport close"
    assert old == [expected_reason], lab.disconnects


# -- 4. sessions that stop answering pings ------------------------------------------------------


async def _raw_connect(client: RawClient, nsp: str = "/") -> str:
    """CONNECT on a raw polling client that does not poll by itself: POST it, GET the reply."""
    assert isinstance(client, RawPolling)
    await client.send("0" if nsp == "/" else f"0{nsp},")
    for part in await client.get_once():
        if isinstance(part, str) and (match := SID_RE.match(part[1:])):
            return match["sid"]
    raise AssertionError(f"no CONNECT reply in {client.eio_log}")


async def test_sessions_that_stop_answering_pings_are_reaped(
    app_factory: Callable[..., Any],
    raw: Callable[..., Any],
    witnesses: Callable[[App], Any],
    no_errors_logged: Any,
) -> None:
    """Clients that stop answering pings (a WebSocket on two namespaces; a long-poller that keeps
    polling; one that stopped polling altogether) are closed after pingInterval + pingTimeout:
    every socket disconnected with reason "ping timeout", the session table, the namespaces and
    the rooms emptied of them. Two healthy clients connected all along notice nothing."""
    app = await app_factory(ping_interval=0.3, ping_timeout=2.0)
    reasons: list[tuple[str, str, str]] = []
    for nsp in ("/", "/custom"):
        app.sio.on(
            "disconnect",
            lambda socket, reason: reasons.append((socket.nsp.name, socket.id, reason)),
            namespace=nsp,
        )
    healthy = await witnesses(app)

    ws = await raw(app.live, "websocket", auto_pong=False)
    ws_ids = []
    for nsp in ("/", "/custom"):
        ws_ids.append(await ws.connect(nsp))
        assert await ws.recv_text() == "2" + ("" if nsp == "/" else f"{nsp},") + '["auth",{}]'
    poller = await raw(app.live, "polling", auto_pong=False)
    poller_id = await poller.connect("/")
    stopped = await raw(app.live, "polling", auto_pong=False, poll=False)
    stopped_id = await _raw_connect(stopped)
    silent = {ws.sid, poller.sid, stopped.sid}
    silent_ids = {("/", ws_ids[0]), ("/custom", ws_ids[1]), ("/", poller_id), ("/", stopped_id)}

    await until(
        lambda: not silent & set(app.sessions) and len(reasons) >= len(silent_ids),
        15.0,
        "the silent sessions reaped and their sockets disconnected",
    )

    assert {(nsp, sid) for nsp, sid, _ in reasons} == silent_ids, reasons
    assert [reason for *_, reason in reasons] == ["ping timeout"] * len(silent_ids), reasons
    assert set(app.sessions) == {w.eio_sid for w in healthy}
    assert set(app.sio.of("/").sockets) == {w.id for w in healthy}
    assert app.sio.of("/custom").sockets == {}
    assert set(app.sio.of("/").adapter.sids) == {w.id for w in healthy}
    assert app.sio.of("/custom").adapter.rooms == {}
    await ws.expect_closed()  # the close packet, then the WebSocket closed
    await poller.expect_closed()  # its pending GET got the close packet
    assert ws.pings >= 1 and poller.pings >= 1
    for witness in healthy:
        await witness.check()

    for witness in healthy:
        await witness.close()
    await until(lambda: not app.sessions, TIMEOUT, "every session gone")
    assert app.sio.of("/").sockets == {} and app.sio.of("/").adapter.rooms == {}
