"""Namespaces and the sockets in them: events, acks, rooms, broadcasts (the Socket.IO server side).

:class:`~sio_teach.server.Server` creates a :class:`Namespace` per name; each client connected to
a namespace is a :class:`Socket`; ``nsp.to("room").emit(...)`` builds a :class:`BroadcastOperator`;
:class:`RemoteSocket` is a socket of another node, as ``fetch_sockets`` returns it.

Rules come from socket.io-protocol ``Readme.md`` and, where it is silent, from the reference
server (socket.io ``lib/namespace.ts``, ``lib/socket.ts``, ``lib/broadcast-operator.ts``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sio_teach.adapters.memory import BroadcastOptions
from sio_teach.errors import AckTimeoutError, ConnectError, DisconnectReason
from sio_teach.sio import recovery
from sio_teach.sio.events import Handler, Listeners
from sio_teach.sio.packet import RESERVED_EVENTS, Packet, PacketType
from sio_teach.sio.server_connection import AckReceived, AckTimedOut, Event
from sio_teach.tasks import spawn

if TYPE_CHECKING:
    from sio_teach.eio.packet import Packet as EioPacket
    from sio_teach.server import Connection, Server

log = logging.getLogger("sio_teach.server")  # one log for the whole server side


async def call(handler: Handler, *args: Any) -> Any:
    """Call a handler that may be a plain function or a coroutine function (middlewares)."""
    result = handler(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def contain(server: Server, owner: Socket | Connection, what: str, error: Exception) -> None:
    """``what`` (a handler, a middleware) raised: count it in ``server.handler_errors``, and log
    its traceback only the first time ``owner`` (a socket, a connection) meets this ``what`` and
    exception type (a client repeating a bad message floods no log)."""
    server.handler_errors += 1
    if owner.failures is None:
        owner.failures = set()  # made at the first failure: most sockets never need one
    if (what, type(error)) not in owner.failures:
        owner.failures.add((what, type(error)))
        log.error("%s failed: %r (from now on only counted)", what, error, exc_info=error)


def ack_args(result: Any) -> list[Any]:
    """A handler's return value as ACK arguments: a tuple → its items (``()`` → an empty ACK),
    anything else → ``[value]``. (``None`` means "no ACK": see :meth:`Socket._ack`.)"""
    return list(result) if isinstance(result, tuple) else [result]


def ack_value(args: list[Any]) -> Any:
    """ACK arguments as a Python value: [] → None, [x] → x, more → a tuple."""
    return None if not args else args[0] if len(args) == 1 else tuple(args)


class Socket:
    """A client connected to one namespace. Handlers receive it as their first argument."""

    failures: set[tuple[str, type]] | None = None  # what failed already (see contain())

    def __init__(
        self,
        nsp: Namespace,
        conn: Connection,
        auth: dict[str, Any],
        session: recovery.Session | None = None,
    ) -> None:
        self.nsp = nsp
        self.conn = conn
        self.recovered = session is not None  # True: same id, rooms and data as before the cut
        self.id = session.sid if session else nsp.server.sid_factory()
        self.pid = session.pid if session else nsp.recovery.new_pid() if nsp.recovery else None
        self.auth = auth
        self.data: dict[str, Any] = session.data if session else {}  # free for the application
        # ack id -> (what to do with the ACK's arguments, what to do if none comes)
        self.acks: dict[int, tuple[Callable[[list[Any]], Any], Callable[[Exception], Any] | None]]
        self.acks = {}

    @functools.cached_property
    def handshake(self) -> dict[str, Any]:
        """What the client sent to connect, as the reference's ``socket.handshake``: the HTTP
        request's headers, query, address and URL, and the CONNECT's ``auth`` (built when first
        read: an idle socket does not carry a copy of its headers)."""
        request = self.conn.eio.request
        query = {k: v[-1].decode(errors="replace") for k, v in request.query_arguments.items()}
        return {
            "headers": dict(request.headers),
            "query": query,
            "address": request.remote_ip,
            "auth": self.auth,
            "url": request.uri,
        }

    @property
    def connected(self) -> bool:
        return self.conn.sockets.get(self.nsp.name) is self

    def __repr__(self) -> str:
        return f"<Socket {self.id} on {self.nsp.name}>"

    # -- rooms --------------------------------------------------------------------------------

    @property
    def rooms(self) -> set[str]:
        return self.nsp.adapter.socket_rooms(self.id)

    def join(self, *rooms: str) -> None:
        self.nsp.adapter.add_all(self.id, rooms)

    def leave(self, room: str) -> None:
        self.nsp.adapter.delete(self.id, room)

    def to(self, *rooms: str) -> BroadcastOperator:
        """Broadcast from this socket: to ``rooms``, never back to this socket."""
        return BroadcastOperator(self.nsp, BroadcastOptions(frozenset(rooms), frozenset([self.id])))

    in_ = to

    @property
    def broadcast(self) -> BroadcastOperator:
        """Every other socket of this namespace."""
        return self.to()

    # -- emitting -----------------------------------------------------------------------------

    def emit(
        self, event: str, *args: Any, callback: Callable[..., Any] | None = None
    ) -> int | None:
        """Send ``event`` to this client. With ``callback``, the client's ACK calls it (the ack
        id is returned)."""
        if callback is not None:
            return self._ask(event, args, lambda values: callback(*values))
        if self.connected:
            for listener in self.nsp.any_outgoing:
                self._call(listener, (event, *args))
            if self.nsp.recovery is None:
                self.conn.send(Packet.event(self.nsp.name, event, *args))
            else:  # kept for recovery like a broadcast to this socket's own room (socket.ts emit)
                BroadcastOperator(self.nsp, BroadcastOptions(frozenset([self.id]))).emit(
                    event, *args
                )
        return None

    async def emit_with_ack(self, event: str, *args: Any, timeout: float | None = None) -> Any:
        """Send ``event`` and wait for the client's ACK; returns its value (see :func:`ack_value`).
        Raises :class:`AckTimeoutError` after ``timeout`` seconds, :class:`ConnectError` at once
        if the socket is disconnected, or when it disconnects before the ACK."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        ack_id = self._ask(
            event,
            args,
            lambda values: future.done() or future.set_result(values),
            lambda error: future.done() or future.set_exception(error),
            timeout,
        )
        if ack_id is None:
            raise ConnectError(f"socket {self.id} is disconnected: cannot emit {event!r}")
        return ack_value(await future)

    def _ask(
        self,
        event: str,
        args: tuple[Any, ...],
        on_ack: Callable[[list[Any]], Any],
        on_fail: Callable[[Exception], Any] | None = None,
        timeout: float | None = None,
    ) -> int | None:
        """Send ``event`` with a new ack id (returned; None: not connected) and await its ACK."""
        if not self.connected:
            return None
        for listener in self.nsp.any_outgoing:
            self._call(listener, (event, *args))
        ack_id = self.nsp.next_ack_id()
        self._expect_ack(ack_id, on_ack, on_fail, timeout)
        self.conn.send(Packet.event(self.nsp.name, event, *args, id=ack_id))
        return ack_id

    def _expect_ack(
        self,
        ack_id: int,
        on_ack: Callable[[list[Any]], Any],
        on_fail: Callable[[Exception], Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        """Wait for the ACK of ``ack_id`` (the adapter calls it for a broadcast with acks)."""
        self.acks[ack_id] = (on_ack, on_fail)
        self.conn.machine.expect_ack(self.nsp.name, ack_id, self.conn.loop.time(), timeout)
        if timeout is not None:
            self.conn.after()  # arm the timer for the deadline

    def disconnect(self, close: bool = False) -> None:
        """Leave this namespace (the client gets DISCONNECT), or close the whole connection."""
        if not self.connected:  # already gone (the namespace may have a new socket since)
            return
        if close:
            return self.conn.close(DisconnectReason.SERVER_NAMESPACE_DISCONNECT)
        self.conn.send(self.conn.machine.disconnect(self.nsp.name))  # type: ignore[arg-type]
        self.conn.after()

    # -- incoming -----------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        for listener in self.nsp.any_handlers:
            self._call(listener, (event.name, *event.args))
        handler = self.nsp.handlers.get(event.name)
        if handler is not None:  # an event nobody listens to gets no ACK
            self._call(handler, event.args, event.ack_id)

    def _call(self, handler: Handler, args: Sequence[Any], ack_id: int | None = None) -> None:
        """The one way to run a handler: ``handler(socket, *args)``. Its return value is the ACK
        for ``ack_id``; an awaitable one is awaited in the background (a plain function costs no
        Task). A failure is contained: see :func:`contain`."""
        try:
            result = handler(self, *args)
        except Exception as error:
            self._failed(handler, error)
            return
        if isinstance(result, Awaitable):
            spawn(self._finish(handler, result, ack_id), "handler")
        elif ack_id is not None:
            self._ack(ack_id, result)

    async def _finish(self, handler: Handler, pending: Awaitable[Any], ack_id: int | None) -> None:
        try:
            result = await pending
        except Exception as error:
            self._failed(handler, error)
            return
        if ack_id is not None:
            self._ack(ack_id, result)

    def _ack(self, ack_id: int, result: Any) -> None:
        # Returning None sends no ACK (the client's ack then times out), like a JS handler that
        # never calls its callback; return () for an empty ACK.
        if result is not None and self.connected:
            self.conn.send(Packet.ack(self.nsp.name, ack_id, *ack_args(result)))

    def _failed(self, handler: Handler, error: Exception) -> None:
        name = getattr(handler, "__qualname__", repr(handler))
        contain(self.nsp.server, self, f"handler {name} on {self!r}", error)

    def _on_ack(self, event: AckReceived | AckTimedOut) -> None:
        on_ack, on_fail = self.acks.pop(event.ack_id, (None, None))
        try:
            if isinstance(event, AckReceived) and on_ack is not None:
                on_ack(event.args)
            elif isinstance(event, AckTimedOut) and on_fail is not None:
                on_fail(AckTimeoutError(f"no ack for id {event.ack_id} on {self!r} in time"))
        except Exception as error:  # an application's ack callback
            self._failed(on_ack, error)

    def _closed(self, reason: str) -> None:
        """The machine says this namespace ended: recovery, rooms, pending acks, the handler."""
        if self.nsp.recovery is not None and reason in recovery.RECOVERABLE_REASONS:
            session = recovery.Session(self.id, self.pid, self.rooms, self.data)  # type: ignore[arg-type]
            self.nsp.adapter.persist_session(session)
        self.nsp._remove(self)
        for observer in self.nsp.server.observers:
            observer.socket_disconnected(self, reason)
        acks, self.acks = self.acks, {}
        for _, on_fail in acks.values():
            if on_fail is not None:
                on_fail(ConnectError(f"{self!r} disconnected ({reason}) before the ack"))
        handler = self.nsp.handlers.get("disconnect")
        if handler is not None:
            self._call(handler, (reason,))


class Broadcasts:
    """What a namespace (and the server, for ``/``) does to all its sockets, on every node that
    shares the adapter: each method starts a :class:`BroadcastOperator` (``nsp.to("r").emit(..)``)."""

    def _everyone(self) -> BroadcastOperator:
        raise NotImplementedError

    def to(self, *rooms: str) -> BroadcastOperator:
        return self._everyone().to(*rooms)

    in_ = to

    def except_(self, *rooms: str) -> BroadcastOperator:
        return self._everyone().except_(*rooms)

    def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` to every socket of the namespace."""
        self._everyone().emit(event, *args)

    def timeout(self, seconds: float) -> BroadcastOperator:
        return self._everyone().timeout(seconds)

    @property
    def volatile(self) -> BroadcastOperator:
        return self._everyone().volatile

    async def fetch_sockets(self) -> list[Socket | RemoteSocket]:
        return await self._everyone().fetch_sockets()

    def sockets_join(self, *rooms: str) -> None:
        self._everyone().sockets_join(*rooms)

    def sockets_leave(self, *rooms: str) -> None:
        self._everyone().sockets_leave(*rooms)

    def disconnect_sockets(self, close: bool = False) -> None:
        self._everyone().disconnect_sockets(close)


class Namespace(Broadcasts, Listeners):
    """A namespace: its handlers, middlewares, sockets and rooms (through its adapter). A handler
    of :meth:`on` gets the socket first: ``connect`` gets ``(socket, auth)``, ``disconnect``
    ``(socket, reason)``, any other event ``(socket, *args)``; so do the :meth:`on_any` and
    :meth:`on_any_outgoing` listeners: ``(socket, event, *args)``."""

    def __init__(self, server: Server, name: str) -> None:
        super().__init__()
        self.server = server
        self.name = name
        self.middlewares: list[Handler] = []
        self.sockets: dict[str, Socket] = {}
        self.parent: Namespace | None = None  # the dynamic namespace that created this one
        self.adapter = server.adapter_factory(name, self._deliver)
        self.adapter.namespace = self  # a remote request reaches our sockets through it
        self.adapter.parser = server.parser  # a broadcast is encoded once, with the server's parser
        self.server_side_handlers: dict[str, Handler] = {}  # events from the other servers
        options = server.recovery_options
        self.recovery = recovery.Recovery(options) if options else None
        self._ack_ids = itertools.count()
        for observer in server.observers:
            observer.namespace_created(self)

    def use(self, middleware: Handler) -> None:
        """Add a middleware ``(socket)``; it refuses a connection by raising :class:`ConnectRefused`."""
        self.middlewares.append(middleware)

    def next_ack_id(self) -> int:
        return next(self._ack_ids)

    # -- talking to the other servers (socket.io ``serverSideEmit``) ----------------------------

    def on_server_side(self, event: str, handler: Handler | None = None) -> Any:
        """Handle ``event`` sent by another server's :meth:`server_side_emit` (usable as a
        decorator). The handler gets ``(*args)``; its return value, unless None, is the reply."""
        if handler is None:
            return lambda h: self.on_server_side(event, h)
        self.server_side_handlers[event] = handler
        return handler

    def server_side_emit(self, event: str, *args: Any) -> None:
        """Send ``event(*args)`` to every *other* server of the cluster (args must be JSON)."""
        if event in RESERVED_EVENTS:  # socket.io namespace.ts: "is a reserved event name"
            raise ValueError(f"{event!r} is a reserved event name")
        self.adapter.server_side_emit([event, *args])

    async def server_side_emit_with_ack(
        self, event: str, *args: Any, timeout: float | None = None
    ) -> list[Any]:
        """Send ``event(*args)`` to the other servers and return their replies, one per server.
        Raises :class:`AckTimeoutError` (its ``responses`` holds the replies that did come) when
        some server did not reply within ``timeout`` (None: the adapter's requests timeout)."""
        if event in RESERVED_EVENTS:
            raise ValueError(f"{event!r} is a reserved event name")
        return await self.adapter.server_side_emit_with_ack([event, *args], timeout)

    def _on_server_side_emit(self, args: list[Any], reply: Callable[[Any], None] | None) -> None:
        """Called by the adapter for another server's event; ``reply`` (if asked) sends the ack."""
        handler = self.server_side_handlers.get(args[0]) if args else None
        if handler is None:
            return

        async def run() -> None:
            try:
                result = await call(handler, *args[1:])
            except Exception:
                log.exception("server-side handler %r failed", handler)
                return
            if reply is not None and result is not None:
                reply(result)

        spawn(run(), "server-side handler")

    def _add(self, socket: Socket) -> None:
        self.sockets[socket.id] = socket
        self.adapter.add_all(socket.id, [socket.id])  # every socket is in the room of its own id
        self.server.namespaces.setdefault(self.name, self)  # (dropped while its CONNECT waited)

    def _remove(self, socket: Socket) -> None:
        self.sockets.pop(socket.id, None)
        self.adapter.del_all(socket.id)
        self._drop_if_empty()

    def _drop_if_empty(self) -> None:
        """A child of a dynamic namespace goes with its last socket when the server's
        ``cleanup_empty_child_namespaces`` is on (socket.io 4.6 ``cleanupEmptyChildNamespaces``);
        a later CONNECT to its name creates it afresh. Call when a socket leaves or is refused."""
        server = self.server
        if self.sockets or self.parent is None or not server.cleanup_empty_child_namespaces:
            return
        if server.namespaces.get(self.name) is self:
            del server.namespaces[self.name]
            self.adapter.close()

    def _deliver(
        self, sid: str, text: EioPacket, attachments: list[EioPacket], volatile: bool
    ) -> None:
        socket = self.sockets.get(sid)
        if socket is not None and (not volatile or socket.conn.eio.writable):
            socket.conn.send_encoded(text, attachments)

    def _everyone(self) -> BroadcastOperator:
        return BroadcastOperator(self)

    def sockets_in(self, *rooms: str) -> list[Socket]:
        return self.to(*rooms).sockets()


class BroadcastOperator:
    """A broadcast being built: ``nsp.to("a").except_("b").volatile.emit(...)``. Immutable."""

    def __init__(
        self, nsp: Namespace, opts: BroadcastOptions | None = None, ack_timeout: float | None = None
    ) -> None:
        self.nsp = nsp
        self.opts = opts or BroadcastOptions()
        self.ack_timeout = ack_timeout

    def _with(self, **changes: Any) -> BroadcastOperator:
        return BroadcastOperator(self.nsp, replace(self.opts, **changes), self.ack_timeout)

    def to(self, *rooms: str) -> BroadcastOperator:
        return self._with(rooms=self.opts.rooms | set(rooms))

    in_ = to

    def except_(self, *rooms: str) -> BroadcastOperator:
        return self._with(except_=self.opts.except_ | set(rooms))

    @property
    def volatile(self) -> BroadcastOperator:
        return self._with(volatile=True)

    def timeout(self, seconds: float) -> BroadcastOperator:
        return BroadcastOperator(self.nsp, self.opts, seconds)

    def emit(self, event: str, *args: Any) -> None:
        """Send to every matching socket; the packet is encoded once for all of them."""
        data, opts, nsp = [event, *args], self.opts, self.nsp
        if nsp.recovery is not None and not opts.volatile:  # an offset, and a copy kept
            data = nsp.adapter.stamp(data, opts)
        nsp.adapter.broadcast(Packet(PacketType.EVENT, nsp.name, data), opts)

    async def emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        """Broadcast and collect one ACK value per recipient, on every node (within :meth:`timeout`).

        Each server says how many clients it asked; done when every server has said so and that
        many ACKs came (socket.io ``broadcast-operator.ts`` ``checkCompleteness``). Values come in
        arrival order. Raises :class:`AckTimeoutError` if some recipients did not answer in time.
        """
        adapter = self.nsp.adapter
        # one id for every recipient, as the reference does
        packet = Packet.event(self.nsp.name, event, *args, id=self.nsp.next_ack_id())
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        counts: list[int] = []  # one per server that has sent its client count
        values: list[Any] = []
        servers: list[int] = []  # the number of servers, once known

        def check() -> None:
            complete = servers and len(counts) >= servers[0] and len(values) >= sum(counts)
            if complete and not done.done():
                done.set_result(None)

        def on_count(count: int) -> None:
            counts.append(count)
            check()

        def on_ack(ack_args: list[Any]) -> None:
            values.append(ack_value(ack_args))
            check()

        adapter.broadcast_with_ack(packet, self.opts, on_count, on_ack, self.ack_timeout)
        servers.append(await adapter.server_count())
        check()
        try:
            await asyncio.wait_for(done, self.ack_timeout)
        except TimeoutError:
            raise AckTimeoutError(
                f"{len(values)} acks for {event!r} from {sum(counts)} clients "
                f"({len(counts)} of {servers[0]} servers answered)"
            ) from None
        return values

    def sockets(self) -> list[Socket]:
        """The matching sockets of *this* node (see :meth:`fetch_sockets` for every node's)."""
        here = self.nsp.sockets
        return [here[sid] for sid in self.nsp.adapter.recipients(self.opts) if sid in here]

    # On every node that shares the adapter (socket.io ``socketsJoin``, ``socketsLeave``,
    # ``disconnectSockets``, ``fetchSockets``); this node's sockets are handled at once.
    def sockets_join(self, *rooms: str) -> None:
        self.nsp.adapter.add_sockets(self.opts, rooms)

    def sockets_leave(self, *rooms: str) -> None:
        self.nsp.adapter.del_sockets(self.opts, rooms)

    def disconnect_sockets(self, close: bool = False) -> None:
        self.nsp.adapter.disconnect_sockets(self.opts, close)

    join, leave, disconnect = sockets_join, sockets_leave, disconnect_sockets

    async def fetch_sockets(self) -> list[Socket | RemoteSocket]:
        """The matching sockets of every node: :class:`Socket` here, :class:`RemoteSocket` for
        another node's. Raises TimeoutError if a node does not answer within the adapter's
        requests timeout."""
        found = await self.nsp.adapter.fetch_sockets(self.opts)
        return [s if isinstance(s, Socket) else RemoteSocket.from_dict(self.nsp, s) for s in found]


@dataclass
class RemoteSocket:
    """A socket on another node, as :meth:`BroadcastOperator.fetch_sockets` saw it (a snapshot of
    ``id``, ``handshake``, ``rooms``, ``data``). Its methods act through the adapter."""

    nsp: Namespace = field(repr=False)
    id: str
    handshake: dict[str, Any]
    rooms: set[str]
    data: Any

    @classmethod
    def from_dict(cls, nsp: Namespace, details: dict[str, Any]) -> RemoteSocket:
        """From a REMOTE_FETCH response item ``{id, handshake, rooms, data}``."""
        rooms = set(details.get("rooms") or ())
        return cls(nsp, details["id"], details.get("handshake") or {}, rooms, details.get("data"))

    def emit(self, event: str, *args: Any) -> None:
        self.nsp.to(self.id).emit(event, *args)

    def join(self, *rooms: str) -> None:
        self.nsp.to(self.id).sockets_join(*rooms)

    def leave(self, *rooms: str) -> None:
        self.nsp.to(self.id).sockets_leave(*rooms)

    def disconnect(self, close: bool = False) -> None:
        self.nsp.to(self.id).disconnect_sockets(close)
