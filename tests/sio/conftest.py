"""Helpers for the Socket.IO server tests: raw wire clients, the conformance app, Node processes.

* :class:`RawClient` — a hand-driven Socket.IO client that speaks raw Engine.IO, over a WebSocket
  (:class:`RawWebSocket`) or HTTP long-polling (:class:`RawPolling`). It answers pings by itself
  (unless ``auto_pong=False``) and queues every Socket.IO message (the text after the Engine.IO
  ``4``, or the bytes of a binary message) for :meth:`RawClient.recv`.
* ``raw`` fixture — ``client = await raw(live, transport="websocket")``; closed at teardown.
* ``conformance`` fixture — the conformance app (``sio_teach.examples.conformance``) started in the
  test's event loop on a free port, as a :class:`ConformanceApp` (``.live``, ``.sio``).
* ``restartable`` fixture — a server that can be stopped and started again on the same port.
* ``node_process`` fixture — a Node script run in the background whose JSON lines are read one by one
  while the test goes on (``tests/conftest.py``'s ``run_node`` only returns them at exit).
* ``no_server_errors`` fixture — fails a test when asyncio / Tornado logged an unhandled exception
  (the server must not crash: its errors are logged, not raised, so a test would not see them).

Every wait is bounded; nothing here sleeps to wait for something that can be awaited.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

from sio_teach.errors import ConnectRefused
from sio_teach.examples import conformance as conformance_app
from sio_teach.server import Server, Socket
from tests.conftest import HOST, JS_DIR, ROOT, LiveServer, node_executable

SEP = "\x1e"
SID_RE = re.compile(r'^0(?P<nsp>/[^,]*,)?\{"sid":"(?P<sid>[^"]+)"\}$')

# The conformance document says pingInterval 300 ms / pingTimeout 200 ms. In-process, the server and
# the raw clients share one event loop, and on a busy 2-core machine a 200 ms stall would kill a
# session for reasons that have nothing to do with the test. We keep the 300 ms ping (so every test
# exercises the heartbeat) and give the pong a generous deadline.
RELAXED_HEARTBEAT = dict(ping_interval=0.3, ping_timeout=5.0)


class SessionClosed(Exception):
    """The Engine.IO session of a raw client is over (close packet, WebSocket closed, HTTP error)."""


_CLOSED = object()


class RawClient:
    """A Socket.IO client driven by hand, one raw Engine.IO packet at a time.

    Messages are Socket.IO packets as on the wire, without the Engine.IO ``4``: ``'2["x"]'``, or
    ``bytes`` for a binary message (an attachment).
    """

    transport = "?"

    def __init__(self, base_url: str, path: str = "/socket.io/", *, auto_pong: bool = True):
        self.base_url = base_url
        self.path = path
        self.auto_pong = auto_pong
        self.handshake: dict[str, Any] = {}
        self.sid = ""
        self.eio_log: list[str | bytes] = []  # every Engine.IO packet received, in order
        self.pings = 0
        self.close_reason: str | None = None
        self._inbox: asyncio.Queue[Any] = asyncio.Queue()
        self._tasks: set[asyncio.Future[Any]] = set()

    # -- to implement -------------------------------------------------------------------------

    async def open(self, timeout: float = 5.0) -> RawClient:
        raise NotImplementedError

    async def send_eio(self, *packets: str | bytes, timeout: float = 5.0) -> None:
        """Send raw Engine.IO packets (text ``"4..."``/``"3"``…, or bytes for a binary message)."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    # -- receiving ----------------------------------------------------------------------------

    def _feed(self, packet: str | bytes) -> None:
        """One Engine.IO packet arrived."""
        self.eio_log.append(packet)
        if isinstance(packet, bytes):
            self._inbox.put_nowait(packet)
        elif packet.startswith("4"):
            self._inbox.put_nowait(packet[1:])
        elif packet.startswith("2"):
            self.pings += 1
            if self.auto_pong:
                self._spawn(self._pong("3" + packet[1:]))
        elif packet.startswith("1"):
            self._closed("close packet")
        # noop (6) and anything else: nothing to do

    async def _pong(self, packet: str) -> None:
        try:
            await self.send_eio(packet)
        except Exception:  # the session may be gone already
            pass

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _closed(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
            self._inbox.put_nowait(_CLOSED)

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    async def recv(self, timeout: float = 5.0) -> str | bytes:
        """The next Socket.IO message. Raises :class:`SessionClosed` once the session is over, and
        ``TimeoutError`` when nothing arrives within ``timeout`` seconds."""
        try:
            item = await asyncio.wait_for(self._inbox.get(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{self.transport} client {self.sid}: no message within {timeout} s"
            ) from None
        if item is _CLOSED:
            self._inbox.put_nowait(_CLOSED)  # stays closed for the next reader
            raise SessionClosed(self.close_reason)
        return item

    async def recv_text(self, timeout: float = 5.0) -> str:
        message = await self.recv(timeout)
        assert isinstance(message, str), f"expected a text message, got {message!r}"
        return message

    async def recv_json(self, prefix: str, timeout: float = 5.0) -> Any:
        """The next message, which must start with ``prefix``; returns the JSON after it."""
        message = await self.recv_text(timeout)
        assert message.startswith(prefix), f"expected {prefix!r}…, got {message!r}"
        return json.loads(message[len(prefix) :])

    async def expect_closed(self, timeout: float = 5.0) -> list[str | bytes]:
        """Wait until the session is closed; return the messages received before that."""
        seen: list[str | bytes] = []

        async def drain() -> None:
            while True:
                try:
                    seen.append(await self.recv(timeout=3600))
                except SessionClosed:
                    return

        try:
            await asyncio.wait_for(drain(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{self.transport} session {self.sid} still open after {timeout} s; got {seen!r}"
            ) from None
        return seen

    # -- sending ------------------------------------------------------------------------------

    async def send(self, *messages: str | bytes, timeout: float = 5.0) -> None:
        """Send Socket.IO messages: text gets the Engine.IO ``4``; bytes go as binary messages."""
        await self.send_eio(
            *(m if isinstance(m, bytes) else "4" + m for m in messages), timeout=timeout
        )

    async def connect(
        self, nsp: str = "/", auth: dict[str, Any] | None = None, timeout: float = 5.0
    ) -> str:
        """Send CONNECT for ``nsp`` and wait for the reply; returns the Socket.IO sid."""
        head = "0" if nsp == "/" else f"0{nsp},"
        await self.send(
            head + (json.dumps(auth, separators=(",", ":")) if auth is not None else "")
        )
        reply = await self.recv_text(timeout)
        match = SID_RE.match(reply)
        assert match, f"expected the CONNECT reply for {nsp}, got {reply!r}"
        assert (match["nsp"] or "/,").rstrip(",") == nsp, reply
        return match["sid"]

    async def sync(
        self, nsp: str = "/", ack_id: int = 9999, timeout: float = 5.0
    ) -> list[str | bytes]:
        """A round trip through the conformance app's ``message-with-ack``: returns every message
        that arrived before its ACK. The server writes to one client in order, so whatever it
        queued for this client before handling this event has arrived once this returns."""
        prefix = "" if nsp == "/" else f"{nsp},"
        await self.send(f'2{prefix}{ack_id}["message-with-ack","sync"]')
        expected = f'3{prefix}{ack_id}["sync"]'
        before: list[str | bytes] = []

        async def wait() -> None:
            while (message := await self.recv(timeout=3600)) != expected:
                before.append(message)

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"no {expected!r} within {timeout} s; got {before!r}") from None
        return before


class RawWebSocket(RawClient):
    """A raw client on a WebSocket-only session (``transport=websocket``, no upgrade)."""

    transport = "websocket"

    async def open(self, timeout: float = 5.0) -> RawWebSocket:
        url = "ws" + self.base_url[len("http") :] + self.path + "?EIO=4&transport=websocket"
        self.ws = await asyncio.wait_for(tornado.websocket.websocket_connect(url), timeout)
        first = await asyncio.wait_for(self.ws.read_message(), timeout)
        assert isinstance(first, str) and first.startswith("0"), (
            f"expected an open packet, got {first!r}"
        )
        self.handshake = json.loads(first[1:])
        self.sid = self.handshake["sid"]
        self._spawn(self._read_loop())
        return self

    async def _read_loop(self) -> None:
        while True:
            message = await self.ws.read_message()
            if message is None:
                self._closed(f"websocket closed ({self.ws.close_code})")
                return
            self._feed(message)

    async def send_eio(self, *packets: str | bytes, timeout: float = 5.0) -> None:
        for packet in packets:
            try:
                await asyncio.wait_for(
                    self.ws.write_message(packet, binary=isinstance(packet, bytes)), timeout
                )
            except tornado.websocket.WebSocketClosedError:
                self._closed("websocket closed (write)")
                raise SessionClosed(self.close_reason) from None

    async def close(self) -> None:
        self.ws.close()
        self._closed("closed by the test")
        for task in list(self._tasks):
            task.cancel()


class RawPolling(RawClient):
    """A raw client on HTTP long-polling: one GET always pending, POSTs one at a time."""

    transport = "polling"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
        self._post_lock = asyncio.Lock()
        self.poll = True  # False: no GET is kept pending (the test polls by hand with get_once)

    def url(self, **query: Any) -> str:
        return f"{self.base_url}{self.path}?" + urlencode(
            {"EIO": 4, "transport": "polling", **query}
        )

    async def open(self, timeout: float = 5.0, poll: bool = True) -> RawPolling:
        response = await asyncio.wait_for(
            self.http.fetch(self.url(), request_timeout=timeout), timeout
        )
        body = response.body.decode()
        assert body.startswith("0"), f"expected an open packet, got {body!r}"
        first, *rest = body.split(SEP)
        self.handshake = json.loads(first[1:])
        self.sid = self.handshake["sid"]
        for part in rest:
            self._feed_part(part)
        self.poll = poll
        if poll:
            self._spawn(self._poll_loop())
        return self

    def _feed_part(self, part: str) -> None:
        self._feed(base64.b64decode(part[1:]) if part.startswith("b") else part)

    async def get_once(self, timeout: float = 5.0) -> list[str | bytes]:
        """One GET by hand (when not polling in the background): the packets it returned."""
        response = await asyncio.wait_for(
            self.http.fetch(self.url(sid=self.sid), request_timeout=timeout, raise_error=False),
            timeout,
        )
        assert response.code == 200, (response.code, response.body)
        parts = response.body.decode().split(SEP)
        for part in parts:
            self._feed_part(part)
        return [base64.b64decode(p[1:]) if p.startswith("b") else p for p in parts]

    async def _poll_loop(self) -> None:
        while not self.closed:
            try:
                response = await self.http.fetch(
                    self.url(sid=self.sid), request_timeout=3600, raise_error=False
                )
            except Exception as error:  # the server went away
                self._closed(f"GET failed: {error!r}")
                return
            if response.code != 200:
                self._closed(f"GET answered {response.code} {response.body!r}")
                return
            for part in response.body.decode().split(SEP):
                self._feed_part(part)

    async def post(self, body: str, timeout: float = 10.0) -> tornado.httpclient.HTTPResponse:
        """POST a raw payload; returns the response (whatever its status)."""
        async with self._post_lock:
            return await asyncio.wait_for(
                self.http.fetch(
                    self.url(sid=self.sid),
                    method="POST",
                    body=body,
                    headers={"Content-Type": "text/plain;charset=UTF-8"},
                    request_timeout=timeout,
                    raise_error=False,
                ),
                timeout,
            )

    async def send_eio(self, *packets: str | bytes, timeout: float = 10.0) -> None:
        body = SEP.join(
            "b" + base64.b64encode(p).decode() if isinstance(p, bytes) else p for p in packets
        )
        response = await self.post(body, timeout)
        if response.code != 200:
            self._closed(f"POST answered {response.code} {response.body!r}")
            raise SessionClosed(self.close_reason)

    async def close(self) -> None:
        if not self.closed:
            try:
                await self.post("1", timeout=2.0)
            except Exception:
                pass
        self._closed("closed by the test")
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
        for task in list(self._tasks):
            task.cancel()
        self.http.close()


RawFactory = Callable[..., Awaitable[RawClient]]


@pytest.fixture
async def raw() -> AsyncIterator[RawFactory]:
    """Factory fixture: ``client = await raw(live_or_url, transport="websocket"|"polling", …)``."""
    opened: list[RawClient] = []

    async def _open(
        target: LiveServer | str,
        transport: str = "websocket",
        *,
        path: str = "/socket.io/",
        auto_pong: bool = True,
        poll: bool = True,
    ) -> RawClient:
        base = target if isinstance(target, str) else target.base_url
        if transport == "websocket":
            client: RawClient = RawWebSocket(base, path, auto_pong=auto_pong)
            opened.append(client)
            return await client.open()
        client = RawPolling(base, path, auto_pong=auto_pong)
        opened.append(client)
        return await client.open(poll=poll)  # type: ignore[call-arg]

    yield _open
    for client in opened:
        try:
            await asyncio.wait_for(client.close(), 5.0)
        except Exception:
            pass


# -- servers ----------------------------------------------------------------------------------


@dataclass
class ConformanceApp:
    live: LiveServer
    sio: Server

    @property
    def base_url(self) -> str:
        return self.live.base_url


@pytest.fixture
async def conformance(serve: Callable[..., Awaitable[LiveServer]]) -> ConformanceApp:
    """The conformance app's Socket.IO part (namespaces ``/`` and ``/custom``, connect timeout
    1 s) on a free port, with a relaxed pong deadline (see :data:`RELAXED_HEARTBEAT`)."""
    sio = conformance_app.socketio_server(**RELAXED_HEARTBEAT)
    live = await serve(sio.routes("/socket.io/"), engines=[sio.engine])
    return ConformanceApp(live, sio)


def interop_server(recorded: list[Any] | None = None, reasons: list[str] | None = None) -> Server:
    """The conformance app plus ``/private`` (token "good" only), ``record``, disconnect reasons."""
    sio = conformance_app.socketio_server(**RELAXED_HEARTBEAT)
    private = sio.of("/private")

    def check_token(socket: Socket) -> None:
        if socket.handshake["auth"].get("token") != "good":
            raise ConnectRefused("not authorized", {"code": 4001, "hint": "use a good token"})

    private.use(check_token)

    @private.on("whoami")
    def whoami(socket: Socket) -> str:
        return f"private:{socket.handshake['auth']['token']}"

    @sio.on("record")
    def record(socket: Socket, *args: Any) -> str:
        if recorded is not None:
            recorded.extend(args)
        return "recorded"

    for nsp in ("/", "/custom"):

        @sio.on("disconnect", namespace=nsp)
        def on_disconnect(socket: Socket, reason: str, nsp: str = nsp) -> None:
            if reasons is not None:
                reasons.append(f"{nsp} {reason}")

    return sio


class RestartableServer:
    """A Socket.IO server that can be stopped and started again on the same port.

    ``factory()`` builds a new :class:`Server` for every start (nothing survives a restart, as for
    the conformance app).
    """

    def __init__(self, factory: Callable[[], Server]) -> None:
        self.factory = factory
        self.port = 0
        self.sio: Server | None = None
        self.http: tornado.httpserver.HTTPServer | None = None
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self) -> None:
        assert self.http is None, "already running"
        sockets = tornado.netutil.bind_sockets(self.port, HOST)  # SO_REUSEADDR: TIME_WAIT is fine
        self.port = sockets[0].getsockname()[1]
        self.sio = self.factory()
        self.http = tornado.httpserver.HTTPServer(tornado.web.Application(self.sio.routes()))
        self.http.add_sockets(sockets)
        self.starts += 1

    async def stop(self, timeout: float = 5.0) -> None:
        if self.http is None:
            return
        assert self.sio is not None
        self.sio.close()  # every session gets its close packet, WebSockets are closed
        self.http.stop()  # stop listening
        await asyncio.sleep(0)  # let answered long-polls write their close packet
        try:
            await asyncio.wait_for(self.http.close_all_connections(), timeout)
        except TimeoutError:
            pass
        self.http = None


@pytest.fixture
async def restartable() -> AsyncIterator[
    Callable[[Callable[[], Server]], Awaitable[RestartableServer]]
]:
    """Factory fixture: ``server = await restartable(factory)`` — started; stopped at teardown."""
    servers: list[RestartableServer] = []

    async def _start(factory: Callable[[], Server]) -> RestartableServer:
        server = RestartableServer(factory)
        servers.append(server)
        await server.start()
        return server

    yield _start
    for server in servers:
        await server.stop()


# -- Node ---------------------------------------------------------------------------------------


class NodeProcess:
    """A Node script running in the background; its stdout is read one JSON line at a time."""

    def __init__(self, script: str, args: list[str]) -> None:
        self.script = script
        self.args = args
        self.records: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> NodeProcess:
        node = node_executable()  # fails (never skips) without node / node_modules
        path = JS_DIR / self.script
        if not Path(path).is_file():
            pytest.fail(f"Node script {path} does not exist", pytrace=False)
        self.proc = await asyncio.create_subprocess_exec(
            node,
            str(path),
            *self.args,
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._stderr_task = asyncio.ensure_future(self._pump_stderr())
        return self

    async def _pump_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.stderr.append(line.decode(errors="replace").rstrip("\n"))

    def report(self) -> str:
        return (
            f"node {self.script} {' '.join(self.args)}\nstdout records:\n"
            + "\n".join(json.dumps(r) for r in self.records)
            + "\nstderr:\n"
            + "\n".join(self.stderr[-40:])
        )

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next JSON line; fails if the script ends or says nothing in time."""
        assert self.proc is not None and self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            raise AssertionError(f"no output within {timeout} s\n{self.report()}") from None
        if not line:
            await asyncio.wait_for(self.proc.wait(), 5.0)
            await asyncio.sleep(0.05)
            raise AssertionError(f"the script ended ({self.proc.returncode})\n{self.report()}")
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"non-JSON line {line!r}\n{self.report()}") from None
        self.records.append(record)
        if record.get("event") == "error":
            raise AssertionError(f"the script failed: {record}\n{self.report()}")
        return record

    async def expect(self, event: str, timeout: float = 10.0) -> dict[str, Any]:
        """Read lines until one has ``"event": event`` (earlier lines stay in :attr:`records`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            record = await self.next(max(0.01, deadline - loop.time()))
            if record.get("event") == event:
                return record

    async def wait(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"still running after {timeout} s\n{self.report()}") from None
        return code

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await asyncio.wait_for(self.proc.wait(), 5.0)
        if hasattr(self, "_stderr_task"):
            try:
                await asyncio.wait_for(self._stderr_task, 5.0)
            except Exception:
                pass


@pytest.fixture
async def node_process() -> AsyncIterator[Callable[..., Awaitable[NodeProcess]]]:
    """Factory fixture: ``proc = await node_process("sio_client.js", *args)``; killed at teardown."""
    started: list[NodeProcess] = []

    async def _start(script: str, *args: Any) -> NodeProcess:
        proc = NodeProcess(script, [str(a) for a in args])
        started.append(proc)
        return await proc.start()

    yield _start
    for proc in started:
        await proc.kill()


# -- crash detection ------------------------------------------------------------------------------


class _ErrorCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def no_server_errors() -> Any:
    """Fail the test when asyncio or Tornado logged an unhandled exception (a crashed callback or
    task, an uncaught exception in a request handler) while it ran."""
    collector = _ErrorCollector()
    loggers = [
        logging.getLogger(name) for name in ("asyncio", "tornado.application", "tornado.general")
    ]
    for logger in loggers:
        logger.addHandler(collector)
    yield collector
    for logger in loggers:
        logger.removeHandler(collector)
    errors = [
        f"{r.name}: {r.getMessage()}\n{logging.Formatter().formatException(r.exc_info) if r.exc_info else ''}"
        for r in collector.records
    ]
    assert not errors, "unhandled errors were logged:\n" + "\n".join(errors)
