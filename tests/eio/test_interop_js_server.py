"""Our Tornado Engine.IO client against real servers, over the loopback interface.

Two peers, the same tests:

* ``js`` — the official npm ``engine.io`` server (``tests/js/eio_server.js``), run with ``node`` as
  a subprocess on a free port of 127.0.0.1;
* ``ours`` — :class:`sio_teach.transports.eio_server.EngineServer` on a Tornado application in the
  test's own event loop.

Both ping every 300 ms and echo every message. Each test runs in three client modes: ``polling``
(never upgrades), ``websocket`` (WebSocket only) and ``default`` (polling, then the upgrade).

The heartbeat tests (and the dead-server tests) use pingTimeout 200 ms: the client gives the server
up after 500 ms without a ping. Everything else uses pingTimeout 2000 ms, so that a loaded 2-core
machine (a 300 ms stall of Node or of our loop) cannot turn an echo test into a heartbeat failure;
pings still flow every 300 ms through all of them.

A missing ``node`` or ``node_modules`` FAILS these tests: a skip would hide that the interop was not
checked. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web

from sio_teach.errors import ConnectError
from sio_teach.trace import Record, Tracer
from sio_teach.transports.eio_client import EngineClient
from sio_teach.transports.eio_server import EngineServer, EngineSocket

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "node_modules"
SERVER_SCRIPT = ROOT / "tests" / "js" / "eio_server.js"
HOST = "127.0.0.1"

PING_INTERVAL = 0.3  # seconds; both servers: pingInterval 300
PING_TIMEOUT = 0.2  # pingTimeout 200: the heartbeat and dead-server tests
SLACK_PING_TIMEOUT = 2.0  # every other test: pings still every 300 ms, 2 s of tolerance
STEP = 10.0  # the bound on any single wait that should take milliseconds

MODES: dict[str, tuple[str, ...]] = {
    "polling": ("polling",),
    "websocket": ("websocket",),
    "default": ("polling", "websocket"),
}
FINAL_TRANSPORT = {"polling": "polling", "websocket": "websocket", "default": "websocket"}


# -- helpers ---------------------------------------------------------------------------------


def free_port() -> int:
    """An unused TCP port on 127.0.0.1 (bind port 0, read it back, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def require_node() -> str:
    """The ``node`` binary. FAILS the test (never skips) when Node.js or node_modules is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "`node` is not on PATH: the Engine.IO interop tests need Node.js (>= 18). Install it, "
            f"then run `npm ci` in {ROOT} to install the pinned npm `engine.io` server.",
            pytrace=False,
        )
    if not (NODE_MODULES / "engine.io" / "package.json").is_file():
        pytest.fail(
            f"{NODE_MODULES / 'engine.io'} is missing: run `npm ci` in {ROOT} to install the "
            "official Engine.IO server pinned in package.json.",
            pytrace=False,
        )
    return node


async def wait_until(
    predicate: Callable[[], bool], what: str | Callable[[], str], timeout: float = STEP
) -> None:
    """Poll ``predicate`` every 10 ms; fail with ``what`` (or ``what()``) after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            text = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout} s waiting for {text}")
        await asyncio.sleep(0.01)


class Conn:
    """One of our clients, with what it received and why it closed."""

    def __init__(self, client: EngineClient, peer: Peer) -> None:
        self.client = client
        self.peer = peer
        self.tracer = client.tracer
        self.messages: list[str | bytes] = []
        self.close_reasons: list[str] = []
        client.on_message = self.messages.append
        client.on_close = self.close_reasons.append

    @property
    def sid(self) -> str:
        assert self.client.sid is not None
        return self.client.sid

    def diagnose(self) -> str:
        """Everything useful when a test fails: close reasons, the client trace, the server's view."""
        return (
            f"client closed: {self.close_reasons}; transport {self.client.transport}\n"
            f"client trace:\n{self.tracer.text(times=True)}\n"
            f"server close reason: {self.peer.close_reason(self.client.sid or '?')}\n"
            f"{self.peer.report()}"
        )

    async def wait_messages(self, count: int, timeout: float = STEP) -> list[str | bytes]:
        """Wait until ``count`` messages have arrived; fail at once if the client closes first."""

        def arrived() -> bool:
            if len(self.messages) >= count:
                return True
            if self.client.closed.is_set():
                raise AssertionError(
                    f"client closed after {len(self.messages)} of {count} messages\n"
                    + self.diagnose()
                )
            return False

        await wait_until(
            arrived,
            lambda: f"{count} messages (have {len(self.messages)})\n{self.diagnose()}",
            timeout,
        )
        return self.messages

    async def wait_upgrade(self) -> None:
        def upgraded() -> bool:
            if self.client.closed.is_set():
                raise AssertionError(f"client closed before the upgrade\n{self.diagnose()}")
            return self.client.transport == "websocket"

        await wait_until(upgraded, lambda: f"the upgrade to websocket\n{self.diagnose()}")

    async def roundtrip(self, data: str | bytes) -> None:
        """Send ``data`` and wait for its echo (which must be the next message)."""
        before = len(self.messages)
        self.client.send(data)
        await self.wait_messages(before + 1)
        assert self.messages[before:] == [data]


class Peer:
    """A server under test; subclasses start it. Clients made by :meth:`connect` close first."""

    name = "?"

    def __init__(self) -> None:
        self.conns: list[Conn] = []

    @property
    def url(self) -> str:
        raise NotImplementedError

    async def connect(
        self, mode: str, *, tracer: Tracer | None = None, wait_upgrade: bool = True
    ) -> Conn:
        """Connect a client in ``mode``; in default mode also wait for the upgrade unless told not."""
        tracer = tracer or Tracer("client")  # always traced: the trace explains a failure
        client = EngineClient(self.url, transports=MODES[mode], tracer=tracer)
        conn = Conn(client, self)
        self.conns.append(conn)
        await asyncio.wait_for(client.connect(), STEP)
        if wait_upgrade and mode == "default":
            await conn.wait_upgrade()
        return conn

    def received(self, sid: str) -> list[str | bytes]:
        """The messages the server got from session ``sid``, in order, so far."""
        raise NotImplementedError

    async def wait_received(self, sid: str, count: int) -> list[str | bytes]:
        """The messages the server got from ``sid`` once there are ``count`` of them.

        (An echo can reach the client before the Node script's report line reaches the test.)
        """
        await wait_until(
            lambda: len(self.received(sid)) >= count,
            f"the server to report {count} messages (has {len(self.received(sid))})\n{self.report()}",
        )
        return self.received(sid)

    def report(self) -> str:
        """What the server said (for a failure message)."""
        return ""

    async def query(self, sid: str) -> dict[str, str]:
        """The query string of the request that opened session ``sid``."""
        raise NotImplementedError

    def server_close(self, conn: Conn) -> None:
        """Make the server close ``conn``'s session (``socket.close()``)."""
        raise NotImplementedError

    def close_reason(self, sid: str) -> str | None:
        """Why the server closed session ``sid`` (``None``: not closed)."""
        raise NotImplementedError

    async def wait_server_closed(self, sid: str, timeout: float = STEP) -> str:
        await wait_until(
            lambda: self.close_reason(sid) is not None, f"server close of {sid}", timeout
        )
        reason = self.close_reason(sid)
        assert reason is not None
        return reason

    async def close_clients(self) -> None:
        for conn in self.conns:
            await asyncio.wait_for(conn.client.close(), STEP)

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError


PeerT = TypeVar("PeerT", bound=Peer)


class NodeServer(Peer):
    """``node tests/js/eio_server.js PORT --report``: the official engine.io echo server."""

    name = "js"

    def __init__(self, *args: str, ping_timeout: float = SLACK_PING_TIMEOUT) -> None:
        super().__init__()
        # extra command-line options for the script
        self.args = (*args, f"--ping-timeout={round(ping_timeout * 1000)}")
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.records: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self._readers: list[asyncio.Task[None]] = []

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self) -> None:
        node = require_node()
        port = free_port()
        self.proc = await asyncio.create_subprocess_exec(
            node,
            str(SERVER_SCRIPT),
            str(port),
            "--report",
            *self.args,
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "NODE_OPTIONS": ""},
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            asyncio.ensure_future(self._read_stdout(self.proc.stdout)),
            asyncio.ensure_future(self._read_stderr(self.proc.stderr)),
        ]

        def ready() -> bool:
            if self.proc is not None and self.proc.returncode is not None:
                raise AssertionError(f"node {SERVER_SCRIPT.name} exited early\n{self.report()}")
            return any(r.get("event") == "listening" for r in self.records)

        await wait_until(ready, f"node {SERVER_SCRIPT.name} to listen\n{self.report()}")
        self.port = next(r["port"] for r in self.records if r.get("event") == "listening")
        assert self.port == port

    async def _read_stdout(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            text = line.decode("utf-8", errors="replace").strip()
            if text:
                try:
                    self.records.append(json.loads(text))
                except json.JSONDecodeError:
                    self.stderr.append(f"(stdout, not JSON) {text}")

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.stderr.append(line.decode("utf-8", errors="replace").rstrip())

    def report(self) -> str:
        return (
            "stdout:\n"
            + "\n".join(map(json.dumps, self.records))
            + "\nstderr:\n"
            + "\n".join(self.stderr)
        )

    def events(self, event: str, sid: str | None = None) -> list[dict[str, Any]]:
        return [
            r for r in self.records if r.get("event") == event and (sid is None or r["sid"] == sid)
        ]

    def received(self, sid: str) -> list[str | bytes]:
        return [
            base64.b64decode(r["data"]) if r["type"] == "binary" else r["data"]
            for r in self.events("message", sid)
        ]

    def close_reason(self, sid: str) -> str | None:
        closes = self.events("close", sid)
        return closes[0]["reason"] if closes else None

    async def connection(self, sid: str) -> dict[str, Any]:
        """The server's "connection" record of session ``sid`` (waits for the report line)."""
        await wait_until(lambda: bool(self.events("connection", sid)), f"connection {sid}")
        (connection,) = self.events("connection", sid)
        return connection

    async def query(self, sid: str) -> dict[str, str]:
        return (await self.connection(sid))["query"]

    def server_close(self, conn: Conn) -> None:
        conn.client.send("!close")  # the script closes the socket instead of echoing

    def signal(self, signum: int) -> None:
        assert self.proc is not None and self.proc.returncode is None
        self.proc.send_signal(signum)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
        if self.proc is not None:
            await asyncio.wait_for(self.proc.wait(), STEP)
        for reader in self._readers:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(reader, STEP)


class TornadoServer(Peer):
    """Our :class:`EngineServer` in the test's loop, echoing (``sock.on_message = sock.send``)."""

    name = "ours"

    def __init__(self, *, ping_timeout: float = SLACK_PING_TIMEOUT, **options: Any) -> None:
        super().__init__()
        self.tracer = Tracer("server")
        self.sockets: dict[str, EngineSocket] = {}
        self.messages: dict[str, list[str | bytes]] = {}
        self.closed: dict[str, str] = {}
        self.engine = EngineServer(
            self.on_connect,
            ping_interval=PING_INTERVAL,
            ping_timeout=ping_timeout,
            tracer=self.tracer,
            **options,
        )
        self.http_server: tornado.httpserver.HTTPServer | None = None
        self.port = 0

    def on_connect(self, sock: EngineSocket) -> None:
        self.sockets[sock.sid] = sock
        self.messages[sock.sid] = received = []

        def on_message(data: str | bytes) -> None:
            received.append(data)
            sock.send(data)  # echo

        sock.on_message = on_message
        sock.on_close = lambda reason: self.closed.setdefault(sock.sid, reason)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self) -> None:
        app = tornado.web.Application(self.engine.routes("/engine.io/"))
        sockets = tornado.netutil.bind_sockets(0, HOST)  # port 0 in-process: no race
        self.http_server = tornado.httpserver.HTTPServer(app)
        self.http_server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]

    def received(self, sid: str) -> list[str | bytes]:
        return self.messages.get(sid, [])

    def close_reason(self, sid: str) -> str | None:
        return self.closed.get(sid)

    async def query(self, sid: str) -> dict[str, str]:
        args = self.sockets[sid].request.query_arguments
        return {name: values[-1].decode() for name, values in args.items()}

    def server_close(self, conn: Conn) -> None:
        self.sockets[conn.sid].close()

    async def stop(self) -> None:
        self.engine.close_all()
        if self.http_server is not None:
            self.http_server.stop()
            await asyncio.sleep(0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.http_server.close_all_connections(), STEP)


@contextlib.asynccontextmanager
async def serving(server: PeerT) -> AsyncIterator[PeerT]:
    """Start ``server``; at the end close its clients, then stop it (even after a failure)."""
    try:
        await server.start()
        yield server
    finally:
        try:
            await server.close_clients()
        finally:
            await server.stop()


def make_server(kind: str, *, ping_timeout: float = SLACK_PING_TIMEOUT) -> Peer:
    if kind == "js":
        return NodeServer(ping_timeout=ping_timeout)
    return TornadoServer(ping_timeout=ping_timeout)


@pytest.fixture
async def js_server() -> AsyncIterator[NodeServer]:
    async with serving(NodeServer()) as server:
        yield server


@pytest.fixture
async def strict_js_server() -> AsyncIterator[NodeServer]:
    """The Node server with pingTimeout 200 ms (a dead server is noticed within 500 ms)."""
    async with serving(NodeServer(ping_timeout=PING_TIMEOUT)) as server:
        yield server


@pytest.fixture
async def our_server() -> AsyncIterator[TornadoServer]:
    async with serving(TornadoServer()) as server:
        yield server


@pytest.fixture(params=["js", "ours"])
async def peer(request: pytest.FixtureRequest) -> AsyncIterator[Peer]:
    """Each test that takes ``peer`` runs against both servers."""
    async with serving(make_server(request.param)) as server:
        yield server


@pytest.fixture(params=["js", "ours"])
async def strict_peer(request: pytest.FixtureRequest) -> AsyncIterator[Peer]:
    """Both servers with pingInterval 300 ms and pingTimeout 200 ms."""
    async with serving(make_server(request.param, ping_timeout=PING_TIMEOUT)) as server:
        yield server


def wires(
    records: list[Record], *, direction: str | None = None, transport: str | None = None
) -> list[str]:
    return [
        r.wire
        for r in records
        if (direction is None or r.direction == direction)
        and (transport is None or r.transport == transport)
    ]


def index_of(records: list[Record], direction: str, transport: str, wire: str) -> int:
    for i, r in enumerate(records):
        if (r.direction, r.transport, r.wire) == (direction, transport, wire):
            return i
    raise AssertionError(
        f"no record {direction} {transport} {wire!r} in trace:\n"
        + "\n".join(r.line() for r in records)
    )


# -- the Node harness itself -----------------------------------------------------------------


def test_missing_node_fails_instead_of_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match="node.*not on PATH"):
        require_node()


def test_missing_node_modules_fails_instead_of_skipping(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(f"{__name__}.NODE_MODULES", tmp_path / "node_modules")
    with pytest.raises(pytest.fail.Exception, match="npm ci"):
        require_node()


# -- echo, both servers, three modes ---------------------------------------------------------

MESSAGES: list[str | bytes] = [
    "hello",
    "héllo ✓ 😀",  # multi-byte UTF-8
    "",  # an empty message is still a message
    "4 looks like a packet\x1e2",  # the payload separator: only a WebSocket can carry it
    b"\x00\x01\x02\xff",
    b"",
    bytes(range(256)) * 4,
]


def has_separator(data: str | bytes) -> bool:
    return isinstance(data, str) and "\x1e" in data


@pytest.mark.parametrize("mode", MODES)
async def test_echo_text_and_binary(peer: Peer, mode: str) -> None:
    conn = await peer.connect(mode)
    assert conn.client.transport == FINAL_TRANSPORT[mode]
    # "\x1e" separates the packets of a polling payload: a text message cannot carry it there
    messages = [m for m in MESSAGES if mode == "websocket" or not has_separator(m)]
    for data in messages:
        await conn.roundtrip(data)
    assert [type(m) for m in conn.messages] == [type(m) for m in messages]  # str stays str
    assert await peer.wait_received(conn.sid, len(messages)) == messages
    assert conn.client.transport == FINAL_TRANSPORT[mode]
    assert not conn.client.closed.is_set()


async def test_js_server_sees_the_upgrade(js_server: NodeServer) -> None:
    conn = await js_server.connect("default")
    await conn.roundtrip("x")
    assert (await js_server.connection(conn.sid))["transport"] == "polling"
    await wait_until(lambda: bool(js_server.events("upgrade", conn.sid)), "the server's upgrade")
    assert js_server.events("upgrade", conn.sid)[0]["transport"] == "websocket"


@pytest.mark.parametrize("mode", ["polling", "websocket"])
async def test_js_server_sees_the_first_transport_only(js_server: NodeServer, mode: str) -> None:
    conn = await js_server.connect(mode)
    await conn.roundtrip("x")
    assert (await js_server.connection(conn.sid))["transport"] == mode
    assert js_server.events("upgrade", conn.sid) == []


# -- no message lost or duplicated across the upgrade ------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_no_message_lost_or_duplicated(peer: Peer, mode: str) -> None:
    """100 numbered messages from right after connect(), across the upgrade in default mode."""
    tracer = Tracer("client")
    conn = await peer.connect(mode, tracer=tracer, wait_upgrade=False)
    expected = [f"m{i:03d}" for i in range(100)]
    for i, text in enumerate(expected):
        conn.client.send(text)
        if i % 2:
            await asyncio.sleep(0.002)  # spread the sends over the upgrade window
    await conn.wait_messages(100)
    await conn.roundtrip("end")  # anything duplicated would have come before the end marker
    assert conn.messages == [*expected, "end"]
    assert await peer.wait_received(conn.sid, 101) == [*expected, "end"]
    assert conn.client.transport == FINAL_TRANSPORT[mode]
    sent = [w for w in wires(tracer.records, direction=">") if w.startswith("4m")]
    assert sent == ["4" + t for t in expected]  # each went out exactly once, on some transport


async def test_messages_sent_at_each_upgrade_step(peer: Peer) -> None:
    """Messages queued when 2probe leaves, when 3probe arrives and when 5 leaves all arrive once,
    in order: the ones before the pause on polling, the rest on the WebSocket after ``5``."""
    tracer = Tracer("client")
    sent: list[str] = []
    steps = {
        (">", "2probe"): "probe-sent",
        ("<", "3probe"): "probe-answered",
        (">", "5"): "upgrade",
    }
    conn_box: list[Conn] = []

    def at_step(record: Record) -> None:
        step = steps.get((record.direction, record.wire))
        if record.transport == "ws" and step and conn_box:
            for k in range(3):
                sent.append(f"{step}-{k}")
                conn_box[0].client.send(sent[-1])

    tracer.listeners.append(at_step)
    conn = await peer.connect("default", tracer=tracer, wait_upgrade=False)
    conn_box.append(conn)
    conn.client.send("first")
    sent.insert(0, "first")  # sent before the upgrade task could write 2probe
    await conn.wait_upgrade()
    conn.client.send("last")
    sent.append("last")
    assert len(sent) == 1 + 3 * 3 + 1, f"not every upgrade step was seen: {sent}\n{conn.diagnose()}"
    await conn.wait_messages(len(sent))
    await conn.roundtrip("end")  # anything duplicated would have come before the end marker
    sent.append("end")
    assert conn.messages == sent
    assert await peer.wait_received(conn.sid, len(sent)) == sent


# -- the trace of each mode --------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_trace_shows_the_transport_and_the_upgrade(peer: Peer, mode: str) -> None:
    tracer = Tracer("client")
    conn = await peer.connect(mode, tracer=tracer)
    await conn.roundtrip("ping me")
    records = list(tracer.records)
    assert records[0].direction == "<" and records[0].kind == "open"
    if mode == "polling":
        assert records[0].transport == "GET"
        assert {r.transport for r in records} <= {"GET", "POST"}
    elif mode == "websocket":
        assert records[0].transport == "ws"
        assert {r.transport for r in records} == {"ws"}
    else:
        assert records[0].transport == "GET"
        probe = index_of(records, ">", "ws", "2probe")
        answer = index_of(records, "<", "ws", "3probe")
        upgrade = index_of(records, ">", "ws", "5")
        assert probe < answer < upgrade
        # polling is over once 5 is sent: everything after it is on the WebSocket
        assert {r.transport for r in records[upgrade:]} == {"ws"}
        # the echo travelled on the WebSocket
        assert ("4ping me", "ws") in [(r.wire, r.transport) for r in records[upgrade:]]
    if isinstance(peer, TornadoServer):
        server = [r for r in peer.tracer.records if r.session == peer.tracer.alias(conn.sid)]
        assert server[0].direction == ">" and server[0].kind == "open"
        if mode == "default":
            probe = index_of(server, "<", "ws", "2probe")
            answer = index_of(server, ">", "ws", "3probe")
            upgrade = index_of(server, "<", "ws", "5")
            assert probe < answer < upgrade
        else:
            assert "2probe" not in wires(server)


# -- heartbeat -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_heartbeat_keeps_the_session_alive(strict_peer: Peer, mode: str) -> None:
    """Connected for more than 5 ping intervals: every ping is answered, nobody times out."""
    peer = strict_peer
    conn = await peer.connect(mode)
    handshake = conn.client.session.handshake
    assert handshake is not None
    assert (handshake.ping_interval, handshake.ping_timeout) == (PING_INTERVAL, PING_TIMEOUT)
    await asyncio.sleep(7 * PING_INTERVAL)
    assert not conn.client.closed.is_set(), conn.diagnose()
    assert peer.close_reason(conn.sid) is None, conn.diagnose()
    pings = wires(conn.tracer.records, direction="<").count("2")
    pongs = wires(conn.tracer.records, direction=">").count("3")
    # Both sides are alive, so pings kept coming and were answered. (With a ping at most every
    # pingInterval + pingTimeout, 2.1 s hold 3 or more; 2 leaves room for a stalled machine.)
    assert pings >= 2, conn.diagnose()
    assert pongs >= pings - 1, conn.diagnose()  # the last pong may still be on its way
    await conn.roundtrip("still here")
    assert conn.client.transport == FINAL_TRANSPORT[mode]


# -- clean close ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_clean_close_is_seen_by_the_server(peer: Peer, mode: str) -> None:
    conn = await peer.connect(mode)
    await conn.roundtrip("bye")
    await asyncio.wait_for(conn.client.close(), STEP)
    assert conn.client.closed.is_set()
    assert conn.close_reasons == ["io client disconnect"], conn.diagnose()
    # engine.io: the close packet on polling, or the WebSocket closing, is a "transport close"
    reason = await peer.wait_server_closed(conn.sid)
    if reason == "transport error" and isinstance(peer, NodeServer) and mode != "polling":
        # One known race, on the server's side: its ping timer fired between our close frame
        # and the TCP close, and `ws` refused the write ("WebSocket is not open: readyState 2
        # (CLOSING)"), which engine.io reports as a "write error". Anything else is a failure.
        (close,) = peer.events("close", conn.sid)
        assert close["description"] == "write error", conn.diagnose()
        assert "not open" in (close["detail"] or ""), conn.diagnose()
    else:
        assert reason == "transport close", conn.diagnose()
    with pytest.raises(RuntimeError):
        conn.client.send("after close")


@pytest.mark.parametrize("mode", MODES)
async def test_close_does_not_keep_the_session_alive(peer: Peer, mode: str) -> None:
    """close() with nothing queued sends the close packet at once: the heartbeat does not go on.

    engine.io-client closes as soon as its write buffer is empty; it does not wait for the pending
    long-poll GET (which only ends when the server answers it). At most one pong that was already
    queued may leave before the ``1``; nothing leaves after it.
    """
    conn = await peer.connect(mode)
    await conn.roundtrip("x")
    mark = len(conn.tracer.records)
    await asyncio.wait_for(conn.client.close(), STEP)
    sent = [r.wire for r in conn.tracer.records[mark:] if r.direction == ">"]
    assert "1" in sent, conn.diagnose()
    close_at = sent.index("1")
    assert sent[close_at + 1 :] == [], conn.diagnose()
    assert sent[:close_at].count("3") <= 1, f"pongs after close() was called\n{conn.diagnose()}"


@pytest.mark.parametrize("mode", MODES)
async def test_server_close_reaches_the_client(peer: Peer, mode: str) -> None:
    conn = await peer.connect(mode)
    await conn.roundtrip("x")
    peer.server_close(conn)
    await asyncio.wait_for(conn.client.closed.wait(), STEP)
    # a close packet (polling) or the WebSocket closing: either way a "transport close"
    assert conn.close_reasons == ["transport close"], conn.diagnose()
    assert await peer.wait_server_closed(conn.sid) == "forced close", conn.diagnose()


# -- handshake query, and POST bodies sized by maxPayload ------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_query_reaches_the_server(peer: Peer, mode: str) -> None:
    conn = await peer.connect(mode)
    # connect() already talked to the server; the query is that of the handshake request
    conn.client.query["late"] = "ignored"
    query = await peer.query(conn.sid)
    assert query["EIO"] == "4"
    assert query["transport"] == MODES[mode][0]
    assert "sid" not in query  # the handshake has no sid yet


@pytest.mark.parametrize("kind", ["js", "ours"])
@pytest.mark.parametrize("mode", ["polling", "default"])
async def test_post_bodies_fit_a_small_max_payload(kind: str, mode: str) -> None:
    """maxPayload 200: 100 messages of 30 bytes need many POSTs; none may be refused (413)."""
    server = NodeServer("--max-payload=200") if kind == "js" else TornadoServer(max_payload=200)
    async with serving(server):
        conn = await server.connect(mode, wait_upgrade=False)
        assert conn.client.session.handshake is not None
        assert conn.client.session.handshake.max_payload == 200
        expected = [f"n{i:03d}".ljust(29, "-") for i in range(100)]
        for text in expected:
            conn.client.send(text)  # all queued at once: batching is up to take_payload
        await conn.wait_messages(100)
        assert conn.messages == expected
        assert await server.wait_received(conn.sid, 100) == expected
        assert conn.close_reasons == []


# -- a server that dies or hangs ---------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_killed_js_server_is_detected(strict_js_server: NodeServer, mode: str) -> None:
    js_server = strict_js_server
    conn = await js_server.connect(mode)
    await conn.roundtrip("x")
    js_server.signal(signal.SIGKILL)
    await asyncio.wait_for(conn.client.closed.wait(), PING_INTERVAL + PING_TIMEOUT + 5.0)
    assert len(conn.close_reasons) == 1, conn.diagnose()
    assert conn.close_reasons[0] in {"ping timeout", "transport error", "transport close"}


@pytest.mark.parametrize("mode", MODES)
async def test_frozen_js_server_is_detected_by_ping_timeout(
    strict_js_server: NodeServer, mode: str
) -> None:
    """SIGSTOP: the TCP connections stay open but no ping comes; the heartbeat alone notices."""
    js_server = strict_js_server
    conn = await js_server.connect(mode)
    await conn.roundtrip("x")
    js_server.signal(signal.SIGSTOP)
    try:
        await asyncio.wait_for(conn.client.closed.wait(), PING_INTERVAL + PING_TIMEOUT + 5.0)
        assert conn.close_reasons == ["ping timeout"], conn.diagnose()
    finally:
        js_server.signal(signal.SIGKILL)


async def test_close_during_the_upgrade_pause_reaches_the_server(peer: Peer) -> None:
    """close() called just after ``3probe`` arrives (polling is being paused for the upgrade):
    the close packet must still reach the server, on one transport or the other."""
    tracer = Tracer("client")
    closing: list[asyncio.Task[None]] = []
    conn_box: list[Conn] = []

    def at_probe_answer(record: Record) -> None:
        if (record.direction, record.transport, record.wire) == ("<", "ws", "3probe") and conn_box:
            closing.append(asyncio.ensure_future(conn_box[0].client.close()))

    tracer.listeners.append(at_probe_answer)
    conn = await peer.connect("default", tracer=tracer, wait_upgrade=False)
    conn_box.append(conn)
    await wait_until(lambda: bool(closing), "3probe to arrive")
    await asyncio.wait_for(closing[0], STEP)
    assert conn.close_reasons == ["io client disconnect"], conn.diagnose()
    reason = await peer.wait_server_closed(conn.sid)
    assert reason == "transport close", f"the close packet never left?\n{conn.diagnose()}"


@pytest.mark.parametrize("mode", MODES)
async def test_connect_to_a_closed_port_raises_connect_error(mode: str) -> None:
    client = EngineClient(f"http://{HOST}:{free_port()}", transports=MODES[mode])
    closes: list[str] = []
    client.on_close = closes.append
    with pytest.raises(ConnectError):
        await asyncio.wait_for(client.connect(), STEP)
    assert client.closed.is_set()
    assert closes == ["transport error"]
    await asyncio.wait_for(client.close(), STEP)


async def test_refused_upgrade_stays_on_polling(our_server: TornadoServer) -> None:
    """A proxy that blocks WebSockets: the probe fails, the session carries on over polling."""
    our_server.engine.block_websocket = True
    tracer = Tracer("client")
    conn = await our_server.connect("default", tracer=tracer, wait_upgrade=False)
    await conn.roundtrip("one")
    await asyncio.sleep(2 * PING_INTERVAL)  # time for the probe to fail, and for a ping or two
    for i in range(20):
        await conn.roundtrip(f"after {i}")
    assert conn.client.transport == "polling", conn.diagnose()
    assert not conn.client.closed.is_set(), conn.diagnose()
    assert "2probe" not in wires(tracer.records)  # the WebSocket never opened
