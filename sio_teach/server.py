"""The Socket.IO v5 server: namespaces, sockets, events, acks, rooms and broadcasts.

It sits on the Engine.IO server (``transports/eio_server.py``): every Socket.IO packet travels in
one Engine.IO ``message`` (plus one binary message per attachment). One Engine.IO connection (a
:class:`Connection`) carries many namespaces; each connected namespace is a :class:`Socket`
(``namespace.py``: sockets, namespaces, rooms and broadcasts). The protocol's rules for one
connection (which namespaces are connected, the connect timeout, ack deadlines) live in the pure
state machine ``sio/server_connection.py``; this module does what it says.

    sio = Server()

    @sio.on("connect")
    async def on_connect(socket, auth):
        socket.join("lobby")

    @sio.on("chat")
    async def on_chat(socket, text):
        sio.to("lobby").except_(socket.id).emit("chat", text)
        return "delivered"                 # the return value is the ACK

    app = tornado.web.Application(sio.routes())

The rules quoted below come from socket.io-protocol ``Readme.md``; where it is silent, from the
reference server (socket.io ``lib/client.ts``, ``lib/namespace.ts``, ``lib/socket.ts``).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from typing import Any

import tornado.ioloop

from sio_teach.adapters.memory import MemoryAdapter
from sio_teach.eio.packet import Packet as EioPacket
from sio_teach.errors import ConnectRefused, DisconnectReason
from sio_teach.namespace import (  # noqa: F401  (re-exported: the server's public classes)
    BroadcastOperator,
    Broadcasts,
    Handler,
    Namespace,
    RemoteSocket,
    Socket,
    call,
    contain,
)
from sio_teach.observer import Observer
from sio_teach.sio import recovery
from sio_teach.sio.packet import Packet, PacketType
from sio_teach.sio.parser import Parser, encode, get_parser
from sio_teach.sio.server_connection import (
    CloseConnection,
    ConnectRequested,
    Disconnected,
    Event,
    ServerConnection,
)
from sio_teach.tasks import spawn
from sio_teach.trace import Tracer
from sio_teach.transports.eio_server import EngineServer, EngineSocket

log = logging.getLogger("sio_teach.server")

NamespaceMatcher = str | re.Pattern[str] | Callable[[str, dict[str, Any]], bool]


class Server(Broadcasts):
    """A Socket.IO server. Mount :meth:`routes` on a Tornado application.

    Engine.IO options (seconds and bytes) are passed through; ``connect_timeout`` is how long a new
    connection may wait before sending its first CONNECT (45 s in the reference server).
    ``cleanup_empty_child_namespaces``: a namespace created by a dynamic one (``of(regex)``) is
    forgotten when its last socket leaves (socket.io 4.6's option of that name).
    """

    def __init__(
        self,
        *,
        connect_timeout: float = 45.0,
        tracer: Tracer | None = None,
        adapter: Callable[[str, Any], MemoryAdapter] = MemoryAdapter,
        sid_factory: Callable[[], str] | None = None,
        connection_state_recovery: recovery.Options | bool = False,
        cleanup_empty_child_namespaces: bool = False,
        parser: str | Parser | None = None,
        **engine_options: Any,
    ) -> None:
        # "json" (the default) or "msgpack", or a parser object (sio/parser.py); every namespace
        # speaks it, and the clients must too
        self.parser = get_parser(parser)
        self.tracer = tracer or Tracer(enabled=False, sio=True)
        self.tracer.sio = True
        self.tracer.describe_binary = self.parser.describe
        if sid_factory is not None:
            engine_options["sid_factory"] = sid_factory
        self.engine = EngineServer(self._on_engine_connect, tracer=self.tracer, **engine_options)
        self.connect_timeout = connect_timeout
        self.handler_errors = 0  # handler failures so far (each kind is logged once per socket)
        self.adapter_factory = adapter
        self.sid_factory = sid_factory or (lambda: secrets.token_urlsafe(15))
        # connection state recovery (see sio/recovery.py): off by default, as in the reference
        if connection_state_recovery is True:
            connection_state_recovery = recovery.Options()
        self.recovery_options = connection_state_recovery or None
        self.namespaces: dict[str, Namespace] = {}
        self.cleanup_empty_child_namespaces = cleanup_empty_child_namespaces  # see Namespace
        self.parent_namespaces: list[tuple[NamespaceMatcher, Namespace]] = []
        self.observers: list[Observer] = []  # tools watching this server (observer.py)
        self.of("/")

    # -- namespaces --------------------------------------------------------------------------

    def of(self, name: NamespaceMatcher) -> Namespace:
        """The namespace ``name`` (created on first use). A regex or a predicate ``(name, auth)``
        makes a *dynamic* namespace: its handlers serve every matching name, created on demand."""
        if isinstance(name, str):
            if name not in self.namespaces:
                self.namespaces[name] = Namespace(self, name)
            return self.namespaces[name]
        parent = Namespace(self, str(getattr(name, "pattern", name)))
        self.parent_namespaces.append((name, parent))
        return parent

    def _find_namespace(self, name: str, auth: dict[str, Any]) -> Namespace | None:
        if name in self.namespaces:
            return self.namespaces[name]
        for matcher, parent in self.parent_namespaces:
            matched = (
                matcher.fullmatch(name) if isinstance(matcher, re.Pattern) else matcher(name, auth)  # type: ignore[operator]
            )
            if matched:
                child = self.of(name)
                child.parent = parent
                child.handlers, child.middlewares = parent.handlers, parent.middlewares
                child.any_handlers, child.any_outgoing = parent.any_handlers, parent.any_outgoing
                child.server_side_handlers = parent.server_side_handlers
                return child
        return None

    # -- the API of the main namespace (and Broadcasts: to, emit, fetch_sockets...) -------------

    def on(self, event: str, handler: Handler | None = None, namespace: str = "/") -> Any:
        """Register a handler (usable as a decorator). ``connect`` gets ``(socket, auth)``,
        ``disconnect`` gets ``(socket, reason)``, any other event ``(socket, *args)``."""
        return self.of(namespace).on(event, handler)

    def use(self, middleware: Handler, namespace: str = "/") -> None:
        self.of(namespace).use(middleware)

    def _everyone(self) -> BroadcastOperator:
        return BroadcastOperator(self.of("/"))

    def on_server_side(
        self, event: str, handler: Handler | None = None, namespace: str = "/"
    ) -> Any:
        return self.of(namespace).on_server_side(event, handler)

    def server_side_emit(self, event: str, *args: Any) -> None:
        self.of("/").server_side_emit(event, *args)

    async def server_side_emit_with_ack(
        self, event: str, *args: Any, timeout: float | None = None
    ) -> list[Any]:
        return await self.of("/").server_side_emit_with_ack(event, *args, timeout=timeout)

    def routes(self, path: str = "/socket.io/") -> list[tuple[str, type, dict[str, Any]]]:
        return self.engine.routes(path)

    def close(self) -> None:
        """Disconnect everyone (each socket gets its disconnect handler called) and close the
        adapters (a Redis adapter stops listening; await ``adapter.aclose()`` to wait for it)."""
        self.engine.close_all()
        for nsp in self.namespaces.values():
            nsp.adapter.close()
        for observer in self.observers:
            observer.server_closed()

    def instrument(self, **options: Any) -> Any:
        """Serve the official Admin UI's namespace (``/admin``): see :func:`sio_teach.admin.instrument`."""
        from sio_teach.admin import instrument  # bcrypt is an extra: imported only when used

        return instrument(self, **options)

    # -- connections ---------------------------------------------------------------------------

    def _on_engine_connect(self, eio: EngineSocket) -> None:
        Connection(self, eio)


class Connection:
    """One Engine.IO connection: its :class:`ServerConnection` machine decides, this class acts
    (calls handlers, sends packets, arms the machine's one timer). One :class:`Socket` per
    connected namespace."""

    failures: set[tuple[str, type]] | None = None  # what failed already (see contain())

    def __init__(self, server: Server, eio: EngineSocket) -> None:
        self.server = server
        self.eio = eio
        self.loop = tornado.ioloop.IOLoop.current()
        self.machine = ServerConnection(
            self.loop.time(),
            server.connect_timeout,
            max_attachment_bytes=server.engine.config.max_buffer,  # what a client may make us hold
            parser=server.parser,
        )
        self.sockets: dict[str, Socket] = {}
        self._timer: object | None = None
        self._timer_at: float | None = None
        eio.on_message = self.on_message
        eio.on_close = self.on_close
        eio.on_upgrade = self.on_upgrade
        self.observers = server.observers  # the server's list: tools watching (observer.py)
        for observer in self.observers:
            observer.connection_opened(self)
        self.after()

    def send(self, packet: Packet) -> None:
        first, *rest = encode(packet, self.server.parser)
        self.send_encoded(first, rest)

    def send_encoded(
        self, text: str | bytes | EioPacket, attachments: list[str | bytes] | list[EioPacket]
    ) -> None:
        """Send a packet already encoded: its first message (the JSON parser's text, the msgpack
        parser's only message) and the rest (attachments), or the Engine.IO message packets that a
        broadcast built once for all its recipients (``adapters/memory.py``)."""
        self.eio.send(text)
        for attachment in attachments:
            self.eio.send(attachment)
        if self.observers:
            for message in (text, *attachments):
                size = _size(message.data if isinstance(message, EioPacket) else message)
                for observer in self.observers:
                    observer.message_sent(self, size)

    def on_message(self, data: str | bytes) -> None:
        if self.observers:
            for observer in self.observers:
                observer.message_received(self, _size(data))
        self.machine.receive(data, self.loop.time())
        self.after()

    def on_upgrade(self) -> None:
        for observer in self.observers:
            observer.connection_upgraded(self)

    def on_close(self, reason: str) -> None:
        self.machine.lost(reason)
        self.after()
        for observer in self.observers:
            observer.connection_closed(self, reason)

    def after(self) -> None:
        """Call after every change to the machine: act on its events, re-arm its timer."""
        for event in self.machine.events():
            if isinstance(event, Event):  # the common case first
                if (socket := self.sockets.get(event.nsp)) is not None:
                    socket._on_event(event)
            elif isinstance(event, ConnectRequested):
                spawn(self.connect(event), "CONNECT handling")
            elif isinstance(event, CloseConnection):
                log.info("connection %s: closing (%s)", self.eio.sid, event.reason)
                self.eio.close(event.reason)
            elif isinstance(event, Disconnected):
                if (socket := self.sockets.pop(event.nsp, None)) is not None:
                    socket._closed(event.reason)
            elif (socket := self.sockets.get(event.nsp)) is not None:
                socket._on_ack(event)  # AckReceived or AckTimedOut
        deadline = self.machine.next_deadline()
        if deadline != self._timer_at:
            if self._timer is not None:
                self.loop.remove_timeout(self._timer)
            self._timer_at, self._timer = deadline, None
            if deadline is not None:
                self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self.machine.handle_timeout(self.loop.time())
        self.after()

    async def connect(self, request: ConnectRequested) -> None:
        """CONNECT: find the namespace, run its middlewares, reply, then call its connect handler.
        Any failure on the way answers CONNECT_ERROR: the namespace may be asked for again."""
        name, auth, socket, session = request.nsp, request.auth, None, None
        try:
            nsp = self.server._find_namespace(name, auth)
            if nsp is None:
                return self._refuse(name, "Invalid namespace")
            if nsp.recovery is not None and request.pid is not None:
                session = await nsp.adapter.restore_session(request.pid, request.offset)
            socket = Socket(nsp, self, auth, session)
            if session is None or not nsp.recovery.options.skip_middlewares:  # type: ignore[union-attr]
                for middleware in nsp.middlewares:
                    await call(middleware, socket)
        except Exception as error:  # a refusal, or a bug: the client must hear
            if socket is not None:
                socket.nsp._remove(socket)  # forget rooms a middleware joined
            if isinstance(error, ConnectRefused):
                return self._refuse(name, error.message, error.data)
            contain(self.server, self, f"CONNECT to {name}", error)
            return self._refuse(name, "Internal server error")
        reply = self.machine.accept(name, socket.id, socket.pid)
        if reply is None:  # the connection closed while the middlewares ran
            return nsp._remove(socket)
        self.sockets[name] = socket
        nsp._add(socket)
        self.send(reply)
        if session is not None:  # recovered: the same rooms, then every event missed meanwhile
            socket.join(*session.rooms)
            for data in session.missed:
                self.send(Packet(PacketType.EVENT, name, data))
        for observer in self.observers:
            observer.socket_connected(socket)
        handler = nsp.handlers.get("connect")
        if handler is not None:
            socket._call(handler, (auth,))
        self.after()  # the connect timeout is gone

    def _refuse(self, name: str, message: str, data: Any = None) -> None:
        packet = self.machine.refuse(name, message, data)
        if packet is not None:
            self.send(packet)

    def close(self, reason: DisconnectReason) -> None:
        """Close the whole connection: every namespace ends with ``reason``."""
        self.machine.close(reason)
        self.after()


def _size(data: str | bytes) -> int:
    """A message's size in bytes, as an observer is told it."""
    return len(data) if isinstance(data, bytes) else len(data.encode())
