"""The Engine.IO server on Tornado: moves bytes and timers, decides nothing.

Every rule lives in the pure core: which requests are accepted in
:func:`sio_teach.eio.requests.check_request`, everything a session does in
:class:`sio_teach.eio.server_session.ServerSession`. This module asks the checks when a request's
headers arrive (before any body is read), feeds bodies and frames to the session, writes what the
session says, keeps its deadline on the server's one timer (:class:`Deadlines`), and records each
packet in the tracer where it crosses the wire.

Mount it on any Tornado application (and serve it with the limits of ``transports/http.py``)::

    engine = EngineServer(on_connect=lambda sock: ...)
    app = tornado.web.Application(engine.routes("/engine.io/"))
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import inspect
import itertools
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import tornado.ioloop
import tornado.iostream
import tornado.web
import tornado.websocket
from tornado.httputil import HTTPServerRequest

from sio_teach.eio.events import Message, Upgraded
from sio_teach.eio.packet import Packet, decode_ws, encode_ws
from sio_teach.eio.requests import (
    BAD_REQUEST,
    FORBIDDEN,
    Request,
    Verdict,
    check_request,
    refusal,
)
from sio_teach.eio.server_session import Config, ServerSession, State
from sio_teach.errors import DisconnectReason, ProtocolError
from sio_teach.trace import Tracer
from sio_teach.transports import compression
from sio_teach.transports.engine_events import EngineEvents, RequestRefused

log = logging.getLogger("sio_teach.eio")

PACKETS_PER_SLICE = 2000  # a POST body is delivered in slices of this many packets

AllowRequest = Callable[[HTTPServerRequest], bool | Awaitable[bool]]


def new_sid() -> str:
    """A session id from a cryptographic source: 120 random bits, URL-safe (20 characters)."""
    return secrets.token_urlsafe(15)


class EngineSocket:
    """One client connection as the application sees it: ``send``, ``close``, two callbacks.

    Set ``on_message(data)`` and ``on_close(reason)`` (and, if wanted, ``on_upgrade()``) in the
    server's ``on_connect`` callback.
    """

    def __init__(self, server: EngineServer, session: ServerSession, request: HTTPServerRequest):
        self.server = server
        self.session = session
        self.sid = session.sid
        self.request = request
        self.on_message: Callable[[str | bytes], None] = lambda data: None
        self.on_close: Callable[[str], None] = lambda reason: None
        self.on_upgrade: Callable[[], None] = lambda: None
        self.get_waiter: asyncio.Future[None] | None = None  # the pending long-poll GET
        self.pushing = False  # a POST body is being read
        self.ws: EngineHandler | None = None  # the WebSocket once upgraded (or opened on it)
        self.probe: EngineHandler | None = None  # a WebSocket that is probing
        self._timer_at: float | None = None  # when the session next wants handle_timeout()
        self._entry: Entry | None = None  # this socket's live entry in the server's Deadlines
        self.closed_by_server = False

    @property
    def transport(self) -> str:
        return self.session.transport

    # what the request checks read (``eio/requests.py`` ``Attached``)
    @property
    def polling(self) -> bool:
        return self.get_waiter is not None

    @property
    def websocket(self) -> bool:
        return self.ws is not None or self.probe is not None

    @property
    def writable(self) -> bool:
        """Could a packet leave right now? A GET is waiting, or a WebSocket is open and has
        written everything so far (as engine.io: a volatile packet is dropped otherwise)."""
        if self.ws is not None:
            connection = self.ws.ws_connection
            return connection is not None and not connection.stream.writing()  # type: ignore[attr-defined]
        return self.get_waiter is not None

    def send(self, data: str | bytes | Packet) -> None:
        """Send one message (its data, or a message :class:`Packet` that a broadcast built once
        for all its recipients). Ignored once the session is closed."""
        session = self.session
        if session.state is State.CLOSED:
            return
        session.send(data)
        if session.state is State.CLOSED:  # past max_buffer: the whole after() has work to do
            self.after()
        else:  # a send changes the outbox only (no event, no deadline): write it, nothing more
            self._write()

    def close(self, reason: str = DisconnectReason.FORCED_CLOSE) -> None:
        """Close the session from the server side (the client gets a close packet)."""
        self.closed_by_server = True
        self.session.close(reason, now=self.server.now())
        self.after()

    def after(self) -> None:
        """Call after every change to the session: deliver events, write, re-arm the timer."""
        session = self.session
        for event in session.events():
            if isinstance(event, Message):
                if not self.closed_by_server:  # the app closed on a bad message: drop the rest
                    try:
                        self.on_message(event.data)
                    except Exception:
                        log.exception("session %s: on_message failed", self.sid)
            elif isinstance(event, Upgraded):
                self.ws, self.probe = self.probe, None
                self.on_upgrade()
            else:
                self.on_close(event.reason)
        closed = session.state is State.CLOSED
        self._write()
        if closed and self.ws is not None:
            self.ws.close()
        probe = self.probe
        if probe is not None and (closed or probe.probed and session.state is State.POLLING):
            probe.close()  # the upgrade timed out, or the session ended, before the `5`
            self.probe = None
        if closed and session.forgettable:
            self.server.sessions.pop(self.sid, None)
        self._arm_timer(session.next_deadline())

    def _write(self) -> None:
        """Write what the session has queued: on a WebSocket, a frame per packet at once; on
        long-polling, wake the GET that is waiting (it takes the payload)."""
        if self.ws is not None:
            for packet in self.session.take_outgoing():
                self.ws.write_packet(packet)
        elif self.get_waiter is not None and self.session.polling_ready():
            if not self.get_waiter.done():
                self.get_waiter.set_result(None)

    def _arm_timer(self, deadline: float | None) -> None:
        """Note the session's next deadline. A new entry goes on the server's timer only when the
        deadline moves earlier than this socket's entry (a later one is seen when the entry is
        due): one live entry per socket, however often a client pongs."""
        self._timer_at = deadline
        entry = self._entry
        if deadline is not None and (entry is None or deadline < entry[0]):
            self._entry = self.server.deadlines.add(deadline, self.sid)

    def _on_timer(self, now: float) -> None:
        """The server's timer found this socket's entry due (``now`` is the loop's time)."""
        self._entry = None
        deadline = self._timer_at
        if deadline is None:
            return
        if deadline > now:  # the deadline moved later since the entry was made
            self._arm_timer(deadline)
            return
        self.session.handle_timeout(now)
        self.after()


Entry = tuple[float, int, str]  # (deadline, sequence number, sid): a heap orders them by deadline


class Deadlines:
    """The one timer of all the sessions of an :class:`EngineServer`.

    Every session has a deadline (its next ping, a pong awaited, an upgrade under way); thousands
    of sessions pinging every few hundred milliseconds would each need an IOLoop timeout, armed,
    cancelled and re-armed at every ping. Instead, the sockets' deadlines sit in one heap of
    ``(deadline, seq, sid)`` and a single IOLoop timeout is armed at the earliest. An entry is never
    removed: one whose socket has gone, or has a newer entry, is skipped when it comes due.

    When the timeout fires, the sessions that are due are handled **one loop iteration later**
    (``add_callback``), not at once. A pong that has reached the server already has its read
    waiting (Tornado reads a WebSocket frame in a coroutine, which resumes in the next iteration);
    handled at once, the pong deadline would beat it whenever the loop runs late (as when many
    clients connect). One iteration later, every frame that had arrived has been read, and the
    session's own rule decides, with the loop's true time: a client that never pongs is still
    closed at pingInterval + pingTimeout.
    """

    def __init__(self, server: EngineServer) -> None:
        self.server = server
        self.heap: list[Entry] = []
        self.seq = itertools.count()
        self.wakeup: object | None = None  # the IOLoop timeout, armed at ``wakeup_at``
        self.wakeup_at: float | None = None
        self.sweeping = False  # a sweep is scheduled for the next loop iteration

    def add(self, deadline: float, sid: str) -> Entry:
        """Call socket ``sid``'s ``_on_timer`` at ``deadline`` (unless its entry changed)."""
        entry = (deadline, next(self.seq), sid)
        heapq.heappush(self.heap, entry)
        if not self.sweeping:
            self._arm(deadline)
        return entry

    def clear(self) -> None:
        """Forget every entry and disarm the timeout (the server is closing)."""
        self.heap.clear()
        self.sweeping = False
        if self.wakeup is not None:
            tornado.ioloop.IOLoop.current().remove_timeout(self.wakeup)
        self.wakeup = self.wakeup_at = None

    def _arm(self, deadline: float) -> None:
        if self.wakeup_at is not None and self.wakeup_at <= deadline:
            return  # armed early enough
        loop = tornado.ioloop.IOLoop.current()
        if self.wakeup is not None:
            loop.remove_timeout(self.wakeup)
        self.wakeup_at = deadline
        self.wakeup = loop.call_at(deadline, self._on_wakeup)

    def _on_wakeup(self) -> None:
        self.wakeup = self.wakeup_at = None
        self.sweeping = True
        tornado.ioloop.IOLoop.current().add_callback(self._sweep)  # reads already due go first

    def _sweep(self) -> None:
        """Hand every due entry to its socket, then re-arm at the earliest one left."""
        heap, sessions = self.heap, self.server.sessions
        now = self.server.now()
        due = []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            socket = sessions.get(entry[2])
            if socket is not None and socket._entry is entry:
                due.append(socket)
        try:
            for socket in due:
                try:
                    socket._on_timer(now)
                except Exception:
                    log.exception("session %s: timer failed", socket.sid)
        finally:
            self.sweeping = False
            if heap:
                self._arm(heap[0][0])


class EngineServer(EngineEvents):
    """An Engine.IO v4 server: the session table, the options, and the Tornado handler.

    ``http_compression`` / ``per_message_deflate``: see ``transports/compression.py``;
    ``add_trailing_slash=False`` serves ``/engine.io`` as well as ``/engine.io/`` (engine.io
    matches its path as a prefix); ``on("connection_error" | "initial_headers" | "headers")``:
    see ``transports/engine_events.py``.
    """

    def __init__(
        self,
        on_connect: Callable[[EngineSocket], None] = lambda socket: None,
        *,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        max_payload: int = 1_000_000,
        upgrade_timeout: float = 10.0,
        max_buffer: int = 10_000_000,
        packets_per_poll: int = 16,
        transports: tuple[str, ...] = ("polling", "websocket"),
        cors_origins: str | list[str] | None = None,
        cors_credentials: bool = False,
        allow_request: AllowRequest | None = None,
        cookie: str | None = None,
        tracer: Tracer | None = None,
        sid_factory: Callable[[], str] = new_sid,
        http_compression: bool | dict[str, int] = True,
        per_message_deflate: bool | dict[str, int] = False,
        add_trailing_slash: bool = True,
    ) -> None:
        super().__init__()
        self.on_connect = on_connect
        self.http_compression = compression.compression_options(http_compression)
        self.per_message_deflate = compression.compression_options(per_message_deflate)
        self.add_trailing_slash = add_trailing_slash
        self.config = Config(
            ping_interval, ping_timeout, max_payload, upgrade_timeout, max_buffer, packets_per_poll
        )
        self.transports = transports
        # one origin given as a string is a list of one (never a substring test)
        self.cors_origins = (
            [cors_origins]
            if isinstance(cors_origins, str) and cors_origins != "*"
            else cors_origins
        )
        if cors_origins == "*" and cors_credentials:
            # "Access-Control-Allow-Origin: *" with credentials is refused by every browser
            raise ValueError("cors_origins='*' cannot go with cors_credentials: list the origins")
        self.cors_credentials = cors_credentials
        self.allow_request = allow_request
        self.cookie = cookie
        self.tracer = tracer or Tracer(enabled=False)
        self.sid_factory = sid_factory
        self.sessions: dict[str, EngineSocket] = {}
        self.deadlines = Deadlines(self)  # the one timer of all the sessions
        self.block_websocket = False  # fault injection: refuse WebSockets as a proxy would

    def routes(self, path: str = "/engine.io/") -> list[tuple[str, type, dict[str, Any]]]:
        """Tornado URL rules that mount this server at ``path`` (with its trailing slash; also
        without it when ``add_trailing_slash`` is false, as the official client then asks)."""
        path = path.rstrip("/") + ("/" if self.add_trailing_slash else "/?")
        return [(path, EngineHandler, {"engine": self})]

    def now(self) -> float:
        return tornado.ioloop.IOLoop.current().time()

    def open_session(self, transport: str, request: HTTPServerRequest) -> EngineSocket:
        sid = self.sid_factory()
        upgrades = tuple(t for t in self.transports if t == "websocket")
        session = ServerSession(sid, self.config, self.now(), transport, upgrades)
        socket = EngineSocket(self, session, request)
        self.sessions[sid] = socket
        self.on_connect(socket)
        return socket

    def close_all(self) -> None:
        """Close every session (call before stopping the HTTP server)."""
        for socket in list(self.sessions.values()):
            socket.close(DisconnectReason.SERVER_SHUTTING_DOWN)
            for handler in (socket.ws, socket.probe):
                if handler is not None:
                    handler.close()
            socket._arm_timer(None)
        self.sessions.clear()
        self.deadlines.clear()


@tornado.web.stream_request_body  # the checks run before a body is read: see prepare()
class EngineHandler(tornado.websocket.WebSocketHandler):
    """One handler for both transports: long-polling GET/POST, and the WebSocket upgrade."""

    SUPPORTED_METHODS = ("GET", "POST", "OPTIONS", "PUT", "DELETE", "PATCH")  # type: ignore[assignment]

    engine: EngineServer
    socket: EngineSocket | None

    def initialize(self, engine: EngineServer) -> None:
        self.engine = engine
        self.socket = None
        self.verdict: Verdict | None = None  # what check_request() made of this request
        self.chunks: list[bytes] | None = None  # the body of an accepted POST, as it arrives
        self.probed = False  # this WebSocket answered a `2probe` (it is upgrading a session)
        self.deflate: Callable[[bytes], bytes] | None = None  # permessage-deflate, negotiated

    # -- request checks (the rules: eio/requests.py) ----------------------------------------

    def refuse(self, error: ProtocolError) -> Awaitable[None] | None:
        """Answer with the spec's status and ``{"code":N,"message":"..."}``."""
        self.clear()  # a WebSocketHandler sets no defaults; this also drops stray headers
        self.set_status(error.status)
        self.set_cors_headers()
        self.set_header("Content-Type", "application/json")
        code = BAD_REQUEST[0] if error.code is None else error.code
        body = {"code": code, "message": error.message}
        return self.finish(json.dumps(body, separators=(",", ":")))

    async def prepare(self) -> None:
        """When the headers have arrived, before any body is read: accept, or refuse at once.

        A refused POST never has its body read: the answer goes out and the connection is closed
        (a client announcing a megabyte for an unknown session costs us nothing).
        """
        request = self.request
        if request.method == "OPTIONS":
            return
        headers = request.headers
        checked = Request(
            request.method or "",
            request.query_arguments,
            headers.get("Upgrade", ""),
            headers.get("Content-Type", ""),
            headers.get("Content-Length", ""),
        )
        engine = self.engine
        try:
            self.verdict, self.socket = check_request(  # type: ignore[assignment]
                checked,
                engine.sessions,
                transports=engine.transports,
                max_payload=engine.config.max_payload,
            )
            if self.verdict is Verdict.HANDSHAKE and engine.allow_request is not None:
                allowed = engine.allow_request(request)
                if inspect.isawaitable(allowed):
                    allowed = await allowed
                if not allowed:
                    raise refusal(FORBIDDEN, status=403)
            if engine.block_websocket and checked.arg("transport") == "websocket":
                raise refusal(BAD_REQUEST, "WebSocket blocked (fault injection)")
        except ProtocolError as error:
            self.verdict = self.socket = None  # refused: this request is not the session's
            engine.emit("connection_error", RequestRefused.of(request, error))
            attached = engine.sessions.get(checked.arg("sid") or "")
            if error.close_session and attached is not None:
                attached.session.fail(DisconnectReason.TRANSPORT_ERROR, engine.now())
                attached.after()
            sent = self.refuse(error)
            if request.method == "POST" and sent is not None:
                with contextlib.suppress(tornado.iostream.StreamClosedError):
                    await sent  # the answer is out (unless the client left first) …
                request.connection.close()  # type: ignore[union-attr]  # … the body stays unread
            return
        if self.verdict is Verdict.PUSH:
            assert self.socket is not None
            self.socket.pushing = True
            self.chunks = []
            request.connection.set_max_body_size(engine.config.max_payload)  # type: ignore[union-attr]

    def data_received(self, chunk: bytes) -> None:
        if self.chunks is not None:
            self.chunks.append(chunk)  # Tornado stops a chunked body past maxPayload

    def add_event_headers(self, initial: bool) -> None:
        """Add the headers of the ``initial_headers`` / ``headers`` listeners to this answer."""
        for name, value in self.engine.response_headers(self.request, initial):
            self.add_header(name, value)

    def get_compression_options(self) -> dict[str, Any] | None:  # permessage-deflate offered?
        return compression.tornado_compression_options(self.engine.per_message_deflate)

    def compute_etag(self) -> None:  # long-poll answers must never be cached (no 304s)
        return None

    def set_cors_headers(self) -> None:
        origins = self.engine.cors_origins
        origin = self.request.headers.get("Origin")
        if origins == "*":
            self.set_header(
                "Access-Control-Allow-Origin", "*"
            )  # browsers refuse it with credentials
        elif origins and origin in origins:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Vary", "Origin")
        else:
            return
        if self.engine.cors_credentials:
            self.set_header("Access-Control-Allow-Credentials", "true")

    def options(self) -> None:
        """CORS preflight."""
        self.set_cors_headers()
        self.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.set_header("Access-Control-Allow-Headers", "content-type")
        self.set_status(204)
        self.finish()

    def check_origin(self, origin: str) -> bool:
        origins = self.engine.cors_origins
        if origins == "*" or (origins and origin in origins):
            return True
        return super().check_origin(origin)  # same origin only

    @property
    def max_message_size(self) -> int:  # a larger WebSocket message closes it (1009)
        return self.engine.config.max_payload

    # -- long-polling ----------------------------------------------------------------------

    def get(self, *args: Any, **kwargs: Any) -> Awaitable[None]:
        if self.verdict in (Verdict.UPGRADE, Verdict.IGNORE) or (
            self.verdict is Verdict.HANDSHAKE
            and self.get_query_argument("transport") == "websocket"
        ):
            self.add_event_headers(initial=self.verdict is Verdict.HANDSHAKE)
            # the WebSocket handshake, then open(); Tornado awaits it for the connection's life,
            # so it is returned, not awaited here (no frame of ours held per WebSocket)
            return super().get(*args, **kwargs)
        return self.poll()

    async def poll(self) -> None:
        """A long-polling GET: the handshake's open packet, or a wait for what the session has."""
        socket, initial = self.socket, self.socket is None
        if socket is None:  # a handshake: the open packet is queued, answered at once below
            socket = self.socket = self.engine.open_session("polling", self.request)
            if self.engine.cookie:
                self.set_cookie(
                    self.engine.cookie, socket.sid, path="/", httponly=True, samesite="Lax"
                )
        if not socket.session.polling_ready():
            socket.get_waiter = asyncio.get_running_loop().create_future()
            socket.after()  # a packet may be due already
            await socket.get_waiter
            socket.get_waiter = None
        if self.request.connection.stream.closed():  # type: ignore[union-attr]
            return
        body = socket.session.take_payload()
        if self.engine.tracer.enabled:
            self.engine.tracer.record_payload(socket.sid, ">", "GET", body)
        socket.after()
        self.set_cors_headers()
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.add_event_headers(initial)
        data, options = body.encode(), self.engine.http_compression
        encoding = compression.http_encoding(
            options, len(data), self.request.headers.get("Accept-Encoding", "")
        )
        if encoding is not None:
            assert options is not None
            data = compression.compress_body(data, encoding, options)
            self.set_header("Content-Encoding", encoding)
        self.finish(data)

    async def post(self, *args: Any, **kwargs: Any) -> None:
        socket = self.socket
        assert socket is not None and self.chunks is not None
        body = b"".join(self.chunks)
        if self.engine.tracer.enabled:
            self.engine.tracer.record_payload(
                socket.sid, "<", "POST", body.decode(errors="replace")
            )
        session = socket.session
        try:
            packets = session.decode_payload(body, self.engine.now())
            for start in range(0, len(packets), PACKETS_PER_SLICE):
                if start:  # a body of many small packets: let other clients in between slices
                    await asyncio.sleep(0)
                now = self.engine.now()
                for packet in packets[start : start + PACKETS_PER_SLICE]:
                    session.receive(packet, now)
                socket.after()
        except ProtocolError as error:
            socket.after()
            self.refuse(error)
            return
        finally:
            socket.pushing = False  # (still true while the slices go: no second POST meanwhile)
        self.set_cors_headers()
        self.set_header("Content-Type", "text/html")
        self.add_event_headers(initial=False)
        self.finish("ok")

    async def put(self, *args: Any, **kwargs: Any) -> None:
        """Never reached: prepare() refuses every other method (code 2 or 3)."""
        self.refuse(refusal(BAD_REQUEST, "Bad method"))

    delete = patch = put

    def on_connection_close(self) -> None:
        socket = self.socket
        if socket is not None and self.ws_connection is None:
            # A long-poll GET whose client went away: wake it so that it returns without writing.
            waiter = socket.get_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            if self.chunks is not None:
                socket.pushing = False  # a POST cut off mid-body
        if self.ws_connection is None:  # end a cut-off request quietly (no 500)
            tornado.web.RequestHandler.on_connection_close(self)
        super().on_connection_close()

    # -- WebSocket -------------------------------------------------------------------------

    def _detach_stream(self) -> tornado.iostream.IOStream:
        """Tornado's, without its guards: Tornado replaces seven HTTP methods (``write``,
        ``finish``…) on the handler *instance* by ones that raise, which turns the handler's
        ``__dict__`` into a full dict — 1.5 KiB more per open WebSocket. This handler never calls
        them once the WebSocket is open."""
        return self.detach()

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.set_nodelay(True)
        self.deflate = compression.negotiated_deflate(self.ws_connection)
        # what a client that does not read can make us hold: past it, write() raises (write_frame)
        self.ws_connection.stream.max_write_buffer_size = self.engine.config.max_buffer  # type: ignore[union-attr]
        socket = self.socket
        if socket is None:  # a WebSocket-only session: the open packet is the first frame
            socket = self.socket = self.engine.open_session("websocket", self.request)
            socket.ws = self
            socket.after()
        elif self.verdict is Verdict.UPGRADE and not socket.websocket and not socket.session.closed:
            socket.probe = self
        else:  # the session has its WebSocket already: this one is closed at once
            self.socket = None
            self.close()

    def on_message(self, message: str | bytes) -> None:
        socket = self.socket
        if socket is None:
            return
        tracer = self.engine.tracer
        if tracer.enabled:
            tracer.record(socket.sid, "<", "ws", message)
        now = self.engine.now()
        try:
            packet = decode_ws(message)
            if socket.probe is self:
                reply = socket.session.receive_probe(packet, now)
                if reply is not None:
                    self.probed = True
                    self.write_packet(reply)
            else:
                socket.session.receive(packet, now)
        except ProtocolError as error:
            log.info("session %s: %s", socket.sid, error)
            if socket.probe is self:
                socket.session.probe_failed()
                socket.probe = None
            else:  # as engine.io: a frame that is no packet ends the session, "parse error"
                socket.session.lost(DisconnectReason.PARSE_ERROR, now)
            self.close()
        socket.after()

    def write_packet(self, packet: Packet) -> None:
        """Write one packet as a frame (built once per packet: see ``Packet.server_frame``;
        compressed for this connection alone when permessage-deflate is on and it is large)."""
        engine = self.engine
        if engine.tracer.enabled and self.socket is not None:
            engine.tracer.record(self.socket.sid, ">", "ws", encode_ws(packet))
        if self.deflate is None:
            self.write_frame(packet.server_frame())
        else:
            threshold = engine.per_message_deflate.threshold  # type: ignore[union-attr]
            self.write_frame(compression.frame(packet, self.deflate, threshold))

    def write_frame(self, data: bytes) -> None:
        """Write one ready-made frame; a closed connection drops it."""
        connection = self.ws_connection
        if connection is not None and not connection.is_closing():
            try:
                connection.stream.write(data)  # type: ignore[attr-defined]
            except tornado.iostream.StreamClosedError:
                pass
            except tornado.iostream.StreamBufferFullError:  # the client does not read
                socket = self.socket
                if socket is not None and socket.ws is self:
                    log.warning(
                        "session %s: client not reading, max_buffer full: closed", socket.sid
                    )
                    socket.session.backlog(
                        self.engine.config.max_buffer + len(data), self.engine.now()
                    )
                connection.stream.close()  # type: ignore[attr-defined]  # no closing handshake: unread

    def on_close(self) -> None:
        socket = self.socket
        if socket is None:
            return
        if socket.probe is self:
            socket.probe = None
            socket.session.probe_failed()
        elif socket.ws is self:
            socket.session.lost(DisconnectReason.TRANSPORT_CLOSE, self.engine.now())
        socket.after()
