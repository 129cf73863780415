"""The Engine.IO server on Tornado: moves bytes and timers, decides nothing.

Every rule lives in :class:`sio_teach.eio.server_session.ServerSession`; this module checks the
request line (the numbered HTTP errors of the spec), feeds bodies and frames to the session, writes
what the session says, arms its timer, and records each packet in the tracer where it crosses the
wire.

Mount it on any Tornado application::

    engine = EngineServer(on_connect=lambda sock: ...)
    app = tornado.web.Application(engine.routes("/engine.io/"))
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import secrets
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import tornado.ioloop
import tornado.iostream
import tornado.web
import tornado.websocket
from tornado.httputil import HTTPServerRequest

from sio_teach.eio.events import Message, Upgraded
from sio_teach.eio.packet import Packet, decode_ws, encode_ws
from sio_teach.eio.server_session import Config, ServerSession, State
from sio_teach.errors import ProtocolError
from sio_teach.trace import Tracer

log = logging.getLogger("sio_teach.eio")

# engine.io lib/server.ts `Server.errors`: code → message (status 403 for FORBIDDEN, else 400).
TRANSPORT_UNKNOWN = 0, "Transport unknown"
UNKNOWN_SID = 1, "Session ID unknown"
BAD_HANDSHAKE_METHOD = 2, "Bad handshake method"
BAD_REQUEST = 3, "Bad request"
FORBIDDEN = 4, "Forbidden"
UNSUPPORTED_PROTOCOL_VERSION = 5, "Unsupported protocol version"

AllowRequest = Callable[[HTTPServerRequest], bool | Awaitable[bool]]


def frame(payload: str | bytes) -> bytes:
    """The WebSocket frame that carries ``payload`` from a server (RFC 6455 §5.2: FIN + opcode,
    the length in 7, 16 or 64 bits, no mask, no compression — we never offer permessage-deflate).

    We write frames ourselves instead of calling Tornado's ``write_message``, which wraps every
    write in a new asyncio Task: at 200 recipients per broadcast that Task was a fifth of the cost.
    """
    if isinstance(payload, str):
        opcode, payload = 0x81, payload.encode()
    else:
        opcode = 0x82
    n = len(payload)
    if n < 126:
        header = bytes((opcode, n))
    elif n < 65536:
        header = struct.pack("!BBH", opcode, 126, n)
    else:
        header = struct.pack("!BBQ", opcode, 127, n)
    return header + payload


_last_message: tuple[object, bytes] = (None, b"")


def message_frame(data: str | bytes) -> bytes:
    """The frame of the Engine.IO message ``data`` (``4`` + text, or raw bytes).

    A broadcast hands the *same* ``str`` object to every recipient, so the last frame built is
    remembered by identity: 200 recipients, one encoding, one frame (the bytes are shared too).
    """
    global _last_message
    if _last_message[0] is data:
        return _last_message[1]
    built = frame("4" + data if isinstance(data, str) else data)
    _last_message = (data, built)
    return built


def new_sid() -> str:
    """A session id from a cryptographic source: 120 random bits, URL-safe (20 characters)."""
    return secrets.token_urlsafe(15)


class EngineSocket:
    """One client connection as the application sees it: ``send``, ``close``, two callbacks.

    Set ``on_message(data)`` and ``on_close(reason)`` in the server's ``on_connect`` callback.
    """

    def __init__(self, server: EngineServer, session: ServerSession, request: HTTPServerRequest):
        self.server = server
        self.session = session
        self.sid = session.sid
        self.request = request
        self.on_message: Callable[[str | bytes], None] = lambda data: None
        self.on_close: Callable[[str], None] = lambda reason: None
        self.get_waiter: asyncio.Future[None] | None = None  # the pending long-poll GET
        self.ws: EngineHandler | None = None  # the WebSocket once upgraded (or opened on it)
        self.probe: EngineHandler | None = None  # a WebSocket that is probing
        self._timer: object | None = None
        self._timer_at: float | None = None
        self.closed_by_server = False

    @property
    def transport(self) -> str:
        return self.session.transport

    @property
    def writable(self) -> bool:
        """Could a packet leave right now? (A WebSocket is open, or a GET is waiting.)"""
        return self.ws is not None or self.get_waiter is not None

    def send(self, data: str | bytes) -> None:
        """Send one message. Ignored once the session is closed."""
        session = self.session
        if (
            self.ws is not None
            and session.state is State.WEBSOCKET
            and not self.server.tracer.enabled
        ):
            # The fast path: on an open WebSocket the queue is always empty (``after`` drains it
            # at once), so the message can go straight out, with no bookkeeping to do.
            self.ws.write_frame(message_frame(data))
        elif not session.closed:
            session.send(data)
            self.after()

    def close(self, reason: str = "forced close") -> None:
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
            else:
                self.on_close(event.reason)
        if self.ws is not None:
            for packet in session.take_outgoing():
                self.ws.write_packet(packet)
            if session.closed:
                self.ws.close()
        elif self.get_waiter is not None and session.polling_ready():
            if not self.get_waiter.done():
                self.get_waiter.set_result(None)
        probe = self.probe
        if probe is not None and (
            session.closed or probe.probed and session.state is State.POLLING
        ):
            probe.close()  # the upgrade timed out, or the session ended, before the `5`
            self.probe = None
        if session.forgettable:
            self.server.sessions.pop(self.sid, None)
        self._arm_timer(session.next_deadline())

    def _arm_timer(self, deadline: float | None) -> None:
        if deadline == self._timer_at:
            return
        loop = tornado.ioloop.IOLoop.current()
        if self._timer is not None:
            loop.remove_timeout(self._timer)
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self.session.handle_timeout(self.server.now())
        self.after()


class EngineServer:
    """An Engine.IO v4 server: the session table, the options, and the Tornado handler."""

    def __init__(
        self,
        on_connect: Callable[[EngineSocket], None] = lambda socket: None,
        *,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        max_payload: int = 1_000_000,
        upgrade_timeout: float = 10.0,
        transports: tuple[str, ...] = ("polling", "websocket"),
        cors_origins: str | list[str] | None = None,
        cors_credentials: bool = False,
        allow_request: AllowRequest | None = None,
        cookie: str | None = None,
        tracer: Tracer | None = None,
        sid_factory: Callable[[], str] = new_sid,
    ) -> None:
        self.on_connect = on_connect
        self.config = Config(ping_interval, ping_timeout, max_payload, upgrade_timeout)
        self.transports = transports
        # one origin given as a string is a list of one (never a substring test)
        self.cors_origins = (
            [cors_origins]
            if isinstance(cors_origins, str) and cors_origins != "*"
            else cors_origins
        )
        self.cors_credentials = cors_credentials
        self.allow_request = allow_request
        self.cookie = cookie
        self.tracer = tracer or Tracer(enabled=False)
        self.sid_factory = sid_factory
        self.sessions: dict[str, EngineSocket] = {}
        self.block_websocket = False  # fault injection: refuse WebSockets as a proxy would

    def routes(self, path: str = "/engine.io/") -> list[tuple[str, type, dict[str, Any]]]:
        """Tornado URL rules that mount this server at ``path``."""
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
            socket.close("server shutting down")
            for handler in (socket.ws, socket.probe):
                if handler is not None:
                    handler.close()
            socket._arm_timer(None)
        self.sessions.clear()


class Refused(Exception):
    """A request the spec tells us to refuse, with its error code, HTTP status and message."""

    def __init__(self, error: tuple[int, str], status: int = 400, message: str | None = None):
        super().__init__(message or error[1])
        self.error, self.status, self.message = error, status, message


@tornado.web.stream_request_body  # to refuse an oversized POST before reading it
class EngineHandler(tornado.websocket.WebSocketHandler):
    """One handler for both transports: long-polling GET/POST, and the WebSocket upgrade."""

    SUPPORTED_METHODS = ("GET", "POST", "OPTIONS", "PUT", "DELETE", "PATCH")  # type: ignore[assignment]

    engine: EngineServer
    socket: EngineSocket | None

    def initialize(self, engine: EngineServer) -> None:
        self.engine = engine
        self.socket = None
        self.probed = False  # this WebSocket answered a `2probe` (it is upgrading a session)
        self.transport_name = ""  # the request's `transport`, once verify() has read it

    # -- request checks (engine.io lib/server.ts `verify`) -----------------------------------

    def refuse(self, refused: Refused) -> None:
        """Answer with the spec's status and ``{"code":N,"message":"..."}``."""
        (code, text), status, message = refused.error, refused.status, refused.message
        self.clear()  # a WebSocketHandler sets no defaults; this also drops stray headers
        self.set_status(status)
        self.set_cors_headers()
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"code": code, "message": message or text}, separators=(",", ":")))

    def prepare(self) -> None:
        """Before any body is read: refuse a POST that announces more than maxPayload (413)."""
        self.chunks: list[bytes] = []
        self.body_size = 0
        if self.request.method == "POST":
            limit = self.engine.config.max_payload
            length = self.request.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > limit:
                self.refuse(Refused(BAD_REQUEST, status=413, message="Payload too large"))
                return
            self.request.connection.set_max_body_size(limit)  # type: ignore[union-attr]

    def data_received(self, chunk: bytes) -> None:
        self.body_size += len(chunk)
        if self.body_size <= self.engine.config.max_payload:
            self.chunks.append(chunk)

    def compute_etag(self) -> None:  # long-poll answers must never be cached (no 304s)
        return None

    async def verify(self) -> EngineSocket | None:
        """Check the query: return the session, or ``None`` for a handshake; raise :class:`Refused`."""
        query = self.request.query_arguments  # raw bytes: read once, no per-call decoding

        def arg(name: str) -> str | None:
            values = query.get(name)
            return values[-1].decode("latin-1") if values else None

        transport = self.transport_name = arg("transport") or ""
        sid = arg("sid")
        if arg("EIO") != "4":
            raise Refused(UNSUPPORTED_PROTOCOL_VERSION)
        if transport not in self.engine.transports or len(query.get("transport", [])) != 1:
            raise Refused(TRANSPORT_UNKNOWN)
        if sid is not None:
            socket = self.engine.sessions.get(sid)
            if socket is None or socket.session.forgettable:
                raise Refused(UNKNOWN_SID)
            upgrade = transport == "websocket" and socket.transport == "polling"
            if socket.transport != transport and not upgrade:
                raise Refused(BAD_REQUEST)  # e.g. polling on a WebSocket session
            if transport == "websocket" and (socket.probe or socket.ws or socket.session.closed):
                raise Refused(BAD_REQUEST)  # at most one WebSocket per session
            return socket
        if self.request.method != "GET":
            raise Refused(BAD_HANDSHAKE_METHOD)
        if self.engine.allow_request is not None:
            allowed = self.engine.allow_request(self.request)
            if inspect.isawaitable(allowed):
                allowed = await allowed
            if not allowed:
                raise Refused(FORBIDDEN, status=403)
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

    async def get(self, *args: Any, **kwargs: Any) -> None:
        try:
            socket = await self.verify()
            if self.transport_name == "websocket":
                if self.engine.block_websocket:
                    raise Refused(BAD_REQUEST, message="WebSocket blocked (fault injection)")
                if self.request.headers.get("Upgrade", "").lower() != "websocket":
                    raise Refused(BAD_REQUEST)
            elif socket is not None and socket.get_waiter is not None:
                # "only one GET at a time": refuse the overlap and close the session
                socket.close("transport error")
                raise Refused(BAD_REQUEST, message="overlapping GET")
        except Refused as refused:
            return self.refuse(refused)
        if self.transport_name == "websocket":
            self.socket = socket
            await super().get(*args, **kwargs)
            return
        if socket is None:
            socket = self.engine.open_session("polling", self.request)
            if self.engine.cookie:
                self.set_cookie(self.engine.cookie, socket.sid, path="/", httponly=True)
            # the open packet is queued: answered at once below
        self.socket = socket
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
        self.finish(body)

    async def post(self, *args: Any, **kwargs: Any) -> None:
        try:
            socket = await self.verify()
            if socket is None:
                raise Refused(BAD_HANDSHAKE_METHOD)
            if self.transport_name != "polling":
                raise Refused(BAD_REQUEST)  # a POST is a long-polling request
            if self.request.headers.get("Content-Type", "").startswith("application/octet-stream"):
                socket.close("transport error")  # EIO4 sends binary as base64 text
                raise Refused(BAD_REQUEST, message="invalid content")
        except Refused as refused:
            return self.refuse(refused)
        body = b"".join(self.chunks)
        if self.engine.tracer.enabled and self.body_size <= self.engine.config.max_payload:
            self.engine.tracer.record_payload(
                socket.sid, "<", "POST", body.decode(errors="replace")
            )
        try:
            if self.body_size > self.engine.config.max_payload:
                raise ProtocolError("Payload too large", status=413)
            socket.session.receive_payload(body, self.engine.now())
        except ProtocolError as error:
            socket.after()
            return self.refuse(Refused(BAD_REQUEST, status=error.status, message=error.message))
        socket.after()
        self.set_cors_headers()
        self.set_header("Content-Type", "text/html")
        self.finish("ok")

    async def put(self, *args: Any, **kwargs: Any) -> None:
        """Any other method: code 2 for a handshake, code 3 on a session."""
        try:
            await self.verify()
            raise Refused(BAD_REQUEST, message="Bad method")
        except Refused as refused:
            self.refuse(refused)

    delete = patch = put

    def on_connection_close(self) -> None:
        # A long-poll GET whose client went away: wake it so that it returns without writing.
        if self.socket is not None and self.ws_connection is None:
            waiter = self.socket.get_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        if self.ws_connection is None:  # a POST cut off mid-body: end it quietly (no 500)
            tornado.web.RequestHandler.on_connection_close(self)
        super().on_connection_close()

    # -- WebSocket -------------------------------------------------------------------------

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.set_nodelay(True)
        if self.socket is None:  # a WebSocket-only session: the open packet is the first frame
            self.socket = self.engine.open_session("websocket", self.request)
            self.socket.ws = self
            self.socket.after()
        else:
            self.socket.probe = self

    def on_message(self, message: str | bytes) -> None:
        socket = self.socket
        assert socket is not None
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
            self.close()
        socket.after()

    def write_packet(self, packet: Packet) -> None:
        payload = encode_ws(packet)
        if self.engine.tracer.enabled and self.socket is not None:
            self.engine.tracer.record(self.socket.sid, ">", "ws", payload)
        self.write_frame(frame(payload))

    def write_frame(self, data: bytes) -> None:
        """Write one ready-made frame (see :func:`frame`); a closed connection drops it."""
        connection = self.ws_connection
        if connection is not None and not connection.is_closing():
            try:
                connection.stream.write(data)  # type: ignore[attr-defined]
            except tornado.iostream.StreamClosedError:
                pass

    def on_close(self) -> None:
        socket = self.socket
        if socket is None:
            return
        if socket.probe is self:
            socket.probe = None
            socket.session.probe_failed()
        elif socket.ws is self:
            socket.session.lost("transport close", self.engine.now())
        socket.after()
