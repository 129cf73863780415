"""The Engine.IO server on Tornado: moves bytes and timers, decides nothing.

Every rule lives in the pure core: which requests are accepted in
:func:`sio_teach.eio.requests.check_request`, everything a session does in
:class:`sio_teach.eio.server_session.ServerSession`. HTTP requests arrive in
``transports/polling.py`` (the checks, long-polling); this module holds the sessions as the
application sees them (:class:`EngineSocket`), their WebSocket (:class:`EngineHandler`), and the
server's one timer (:class:`Deadlines`): it feeds frames to the session, writes what the session
says, and records each packet in the tracer where it crosses the wire.

Mount it on any Tornado application (and serve it with the limits of ``transports/http.py``)::

    engine = EngineServer(on_connect=lambda sock: ...)
    app = tornado.web.Application(engine.routes("/engine.io/"))
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import secrets
import time
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
    Verdict,
)
from sio_teach.eio.server_session import Config, ServerSession, State
from sio_teach.errors import DisconnectReason, ProtocolError
from sio_teach.trace import Tracer
from sio_teach.transports import compression
from sio_teach.transports.engine_events import EngineEvents
from sio_teach.transports.polling import EngineRequest, EngineRouter

log = logging.getLogger("sio_teach.eio")


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
        self.get_waiter: EngineRequest | None = None  # the long-polling GET held for a payload
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
            self.get_waiter.wake()

    def _arm_timer(self, deadline: float | None) -> None:
        """Note the session's next deadline. A new entry goes on the server's timer only when the
        deadline moves earlier than this socket's entry (a later one is seen when the entry is
        due): one live entry per socket, however often a client pongs."""
        self._timer_at = deadline
        entry = self._entry
        if deadline is not None and (entry is None or deadline < entry[0]):
            self._entry = self.server.deadlines.add(deadline, self.sid)

    def catch_up(self, now: float) -> None:
        """Run the session's deadline now if it has passed, rather than at the timer's next sweep:
        call when a request for this session arrives, so that it never finds alive a session
        whose time is up (a GET after pingInterval + pingTimeout without a pong gets 400)."""
        if self._timer_at is not None and self._timer_at <= now:
            self.session.handle_timeout(now)
            self.after()

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
        self.unsent: dict[EngineHandler, list[bytes]] = {}  # WebSocket frames, until write_unsent
        self.write_scheduled = False  # write_unsent will run at the loop's next iteration
        self.holding = False  # frames wait in unsent: more of a WebSocket's read is to be handled
        self.block_websocket = False  # fault injection: refuse WebSockets as a proxy would

    def routes(
        self,
        path: str = "/engine.io/",
        websocket_handler: type[EngineHandler] | None = None,
        request_class: type[EngineRequest] | None = None,
        **handler_kwargs: Any,
    ) -> list[tuple[str, EngineRouter]]:
        """Tornado URL rules that mount this server at ``path`` (with its trailing slash; also
        without it when ``add_trailing_slash`` is false, as the official client then asks).
        ``websocket_handler`` and ``request_class`` (subclasses of :class:`EngineHandler` and
        ``polling.EngineRequest``, with ``handler_kwargs``) are for injecting faults."""
        base = path.rstrip("/")
        paths = (base + "/",) if self.add_trailing_slash else (base + "/", base)
        handler = websocket_handler or EngineHandler
        router = EngineRouter(self, paths, handler, request_class, **handler_kwargs)
        return [(base + ("/" if self.add_trailing_slash else "/?"), router)]

    @staticmethod
    def now() -> float:
        """The clock of Tornado's timers (``IOLoop.time()``, which ``IOLoop.call_at`` counts in:
        ``time.time()``), read without looking up the current IOLoop."""
        return time.time()

    def write_unsent(self) -> None:
        """Write the WebSocket frames held back, all of a connection's in one write.

        A client with many messages in flight has several in each read (an event for each, say);
        with a frame written for each (its ack), each would cost a system call and Tornado's write
        path — about half of the server's time per message. So while a WebSocket's message is
        handled and more of the same read are waiting (``EngineHandler.on_message``), the frames
        it makes are held in ``unsent``, for every connection; the last message of the read writes
        them (or the loop, if the read ended in the middle of a frame). A frame made with nothing
        more to read — a lone client's ack, a ping, a broadcast from a timer — leaves at once.
        """
        unsent, self.unsent, self.write_scheduled = self.unsent, {}, False
        for handler, frames in unsent.items():
            handler.write_now(frames[0] if len(frames) == 1 else b"".join(frames))

    def write_soon(self) -> None:
        """Run :meth:`write_unsent` at the loop's next iteration (once, however many wait)."""
        if not self.write_scheduled:
            self.write_scheduled = True
            asyncio.get_running_loop().call_soon(self.write_unsent)

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


class EngineHandler(tornado.websocket.WebSocketHandler):
    """The WebSocket of a session: its handshake (a WebSocket-only session) or its upgrade.

    Made by ``transports/polling.py`` once the request's checks have passed, with their
    ``verdict`` and the ``socket`` (session) the request belongs to."""

    engine: EngineServer
    socket: EngineSocket | None

    def initialize(
        self,
        engine: EngineServer,
        verdict: Verdict | None = None,
        socket: EngineSocket | None = None,
    ) -> None:
        self.engine = engine
        self.verdict = verdict  # what check_request() made of this request
        self.socket = socket
        self.probed = False  # this WebSocket answered a `2probe` (it is upgrading a session)
        self.deflate: Callable[[bytes], bytes] | None = None  # permessage-deflate, negotiated

    def get_compression_options(self) -> dict[str, Any] | None:  # permessage-deflate offered?
        return compression.tornado_compression_options(self.engine.per_message_deflate)

    def check_origin(self, origin: str) -> bool:
        origins = self.engine.cors_origins
        if origins == "*" or (origins and origin in origins):
            return True
        return super().check_origin(origin)  # same origin only

    @property
    def max_message_size(self) -> int:  # a larger WebSocket message closes it (1009)
        return self.engine.config.max_payload

    def get(self, *args: Any, **kwargs: Any) -> Awaitable[None]:
        initial = self.verdict is Verdict.HANDSHAKE
        for name, value in self.engine.response_headers(self.request, initial):
            self.add_header(name, value)
        # the WebSocket handshake, then open(); Tornado awaits it for the connection's life,
        # so it is returned, not awaited here (no frame of ours held per WebSocket)
        return super().get(*args, **kwargs)

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
        socket, engine = self.socket, self.engine
        if socket is None:
            return
        connection = self.ws_connection
        # more messages already read and waiting in Tornado's buffer: what this one makes waits
        more = connection is not None and bool(connection.stream._read_buffer_size)  # type: ignore[attr-defined]
        engine.holding = more
        try:
            self.receive(socket, message)
        finally:
            engine.holding = False
        if engine.unsent and not more:  # the last message of the read: what waits goes now
            engine.write_unsent()
        elif engine.unsent:  # the next message of the read writes it (or the loop, if it is cut)
            engine.write_soon()

    def receive(self, socket: EngineSocket, message: str | bytes) -> None:
        """One frame of the client: to the session (or, while it probes, to the upgrade)."""
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
        """Write one ready-made frame, after those of this connection still unsent; while more of
        a read is to be handled, it waits with them (see :meth:`EngineServer.write_unsent`)."""
        engine, socket = self.engine, self.socket
        if engine.holding and socket is not None and socket.ws is self:  # (a probe's never waits)
            engine.unsent.setdefault(self, []).append(data)
            return
        frames = engine.unsent.pop(self, None)
        self.write_now(data if frames is None else b"".join([*frames, data]))

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close the WebSocket, after the frames still unsent (the close frame comes last)."""
        frames = self.engine.unsent.pop(self, None)
        if frames:
            self.write_now(b"".join(frames))
        super().close(code, reason)

    def write_now(self, data: bytes) -> None:
        """Write frames to the socket; a closed connection drops them."""
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
