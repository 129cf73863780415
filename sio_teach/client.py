"""The Socket.IO v5 client: namespaces over one connection, acks, reconnection, a send buffer.

    client = Client("http://127.0.0.1:3000", auth={"token": "t"})

    @client.on("chat")
    def on_chat(text):
        print(text)

    await client.connect()
    reply = await client.emit_with_ack("chat", "hi", timeout=5.0)
    admin = client.socket("/admin")          # a second namespace, same Engine.IO connection
    await admin.connect()

``Client(url, retries=3, ack_timeout=0.5)`` delivers each emit at least once: it is sent again
until the server acknowledges it (socket.io-client's ``retries`` and ``ackTimeout``).

The rules (send buffer, acks, retries, reconnection) live in the pure ``sio.client_connection``; this shell
opens and closes the :class:`EngineClient` when told, carries packets, arms one timer at
``next_deadline()`` and turns the machine's events into handler calls and awaited results.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Callable
from typing import Any

import tornado.ioloop

from sio_teach.errors import AckTimeoutError, ConnectError
from sio_teach.sio import client_connection as sio
from sio_teach.sio.events import Handler, Listeners
from sio_teach.sio.packet import Packet, PacketType
from sio_teach.sio.parser import Parser, encode, get_parser
from sio_teach.tasks import spawn
from sio_teach.trace import Tracer
from sio_teach.transports.eio_client import EngineClient

log = logging.getLogger("sio_teach.client")


def settle(future: Any, result: Any) -> None:
    """Give a waiting Future its result (an exception is raised by its ``await``), once."""
    if isinstance(future, asyncio.Future) and not future.done():
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)


class ClientSocket(Listeners):
    """One namespace of a connection. Handlers get the event's arguments (no socket argument).

    Reserved events for :meth:`on`: ``connect``, ``disconnect`` (reason), ``connect_error`` (data);
    on the main socket also the manager's ``reconnect_attempt`` (n), ``reconnect`` (n),
    ``reconnect_error`` (error), ``reconnect_failed``. :meth:`on_any_outgoing` sees a buffered
    event when the namespace connects, a retried one at each try (socket.io-client
    ``onAnyOutgoing``)."""

    def __init__(self, manager: Client, nsp: str, auth: dict[str, Any] | None = None) -> None:
        self.manager = manager
        self.nsp = nsp
        super().__init__()
        self.acks: dict[int, Handler | asyncio.Future[list[Any]]] = {}  # ack id -> who waits
        self.tickets: dict[int, Handler | asyncio.Future[list[Any]]] = {}  # the same, retries
        self._waiter: asyncio.Future[None] | None = None  # the pending connect()
        self._state = manager.machine.namespace(nsp, auth)  # read-only views below

    @property
    def id(self) -> str | None:
        return self._state.sid

    @property
    def connected(self) -> bool:
        return self._state.state is sio.NspState.CONNECTED

    @property
    def recovered(self) -> bool:
        return self._state.recovered

    @property
    def send_buffer(self) -> list[Any]:
        return self._state.buffer

    def _fire(self, event: str, *args: Any) -> Any:
        handler = self.handlers.get(event)
        return None if handler is None else self._run(handler, *args)

    def _run(self, handler: Handler, *args: Any) -> Any:
        """Call one of the application's handlers: its result, a coroutine's Task (it runs in the
        background), or None if it raised (logged: a bug in a handler must not break the
        connection)."""
        try:
            result = handler(*args)
        except Exception:
            log.exception("handler %r failed", handler)
            return None
        return spawn(result, f"handler {handler!r}") if inspect.isawaitable(result) else result

    async def connect(self, timeout: float = 10.0) -> None:
        """Connect this namespace (and the connection if needed). Raises :class:`ConnectError`
        if the server refuses the namespace (its ``connect_error`` message) or does not answer."""
        if self.connected:
            return
        if self._waiter is None or self._waiter.done():
            self._waiter = asyncio.get_running_loop().create_future()
        waiter = self._waiter
        self.manager.machine.connect(self.nsp, self.manager._now(), timeout)
        self.manager._after()
        await waiter

    async def disconnect(self) -> None:
        """Leave this namespace; the connection closes when no namespace is left."""
        self.manager.machine.disconnect(self.nsp)
        await self.manager._after_closing()

    def emit(
        self, event: str, *args: Any, callback: Handler | None = None, volatile: bool = False
    ) -> int | None:
        """Send ``event``. While disconnected it is buffered (or dropped if ``volatile``).
        Returns the ack id when a ``callback`` waits for the server's ACK."""
        return self._emit(event, args, callback, None, volatile)

    async def emit_with_ack(self, event: str, *args: Any, timeout: float | None = None) -> Any:
        """Send ``event`` and wait for the server's ACK: its single value, ``None`` for an empty
        ACK, a tuple for several. Raises :class:`AckTimeoutError` after ``timeout`` seconds."""
        answer: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._emit(event, args, answer, timeout, False)
        try:
            values = await answer
        except AckTimeoutError:
            raise AckTimeoutError(f"no ack for {event!r} within {timeout} s") from None
        return None if not values else values[0] if len(values) == 1 else tuple(values)

    def _emit(
        self, event: str, args: tuple[Any, ...], waiter: Any, timeout: float | None, volatile: bool
    ) -> int | None:
        now = self.manager._now()
        ack_id = self.manager.machine.emit(
            self.nsp, event, args, now, ack=waiter is not None, timeout=timeout, volatile=volatile
        )
        if ack_id is not None and waiter is not None:
            queued = self.manager.machine.retries and not volatile
            (self.tickets if queued else self.acks)[ack_id] = waiter
        self.manager._after()
        return ack_id

    def _on_event(self, event: sio.EventReceived) -> None:
        for handler in self.any_handlers:
            self._run(handler, event.name, *event.args)
        result = self._fire(event.name, *event.args)
        if event.ack_id is None:
            return
        ack_id = event.ack_id

        def answer(value: Any) -> None:
            self.manager.machine.send_ack(self.nsp, ack_id, value)
            self.manager._after()

        if isinstance(result, asyncio.Future):  # a coroutine handler: ACK once it returns
            result.add_done_callback(lambda f: f.exception() or answer(f.result()))
        else:
            answer(result)

    def _on_ack(
        self, event: sio.AckReceived | sio.AckTimedOut | sio.Delivered | sio.Undelivered
    ) -> None:
        if isinstance(event, sio.Delivered | sio.Undelivered):
            waiter = self.tickets.pop(event.ticket, None)
        else:
            waiter = self.acks.pop(event.ack_id, None)
        if isinstance(event, sio.AckTimedOut | sio.Undelivered):
            settle(waiter, AckTimeoutError())
        elif isinstance(waiter, asyncio.Future):
            settle(waiter, event.args)
        elif waiter is not None:
            waiter(*event.args)


class Client(ClientSocket):
    """A Socket.IO client: the main namespace's socket, and the connection under every namespace."""

    def __init__(
        self,
        url: str,
        *,
        path: str = "/socket.io/",
        transports: tuple[str, ...] | list[str] = ("polling", "websocket"),
        auth: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        tracer: Tracer | None = None,
        rand: Callable[[], float] = random.random,
        parser: str | Parser | None = None,
        **options: Any,
    ) -> None:
        """``options`` are the machine's (:class:`~sio_teach.sio.client_connection.ClientConnection`):
        ``reconnection``, ``reconnection_attempts``, ``backoff``, ``retries``, ``ack_timeout``."""
        self.parser = get_parser(parser)  # "json" (the default), "msgpack": as the server's
        self.machine = sio.ClientConnection(random=rand, parser=self.parser, **options)
        super().__init__(self, "/", auth)
        self.url = url
        self.path = path
        self.transports = tuple(transports)
        self.headers = headers
        self.tracer = tracer or Tracer("client", enabled=False, sio=True)
        self.tracer.sio = True
        self.tracer.describe_binary = self.parser.describe
        self.sockets: dict[str, ClientSocket] = {"/": self}
        self.engine: EngineClient | None = None
        self._closing: asyncio.Future[Any] | None = None  # the engine being closed
        self._timer: object | None = None
        self._timer_at: float | None = None

    def socket(self, nsp: str, auth: dict[str, Any] | None = None) -> ClientSocket:
        """The socket of namespace ``nsp`` on this connection (created on first use)."""
        if nsp not in self.sockets:
            self.sockets[nsp] = ClientSocket(self, nsp, auth)
        return self.sockets[nsp]

    @property
    def transport(self) -> str | None:
        return self.engine.transport if self.engine else None

    @property
    def delays(self) -> list[float]:
        """Every reconnection delay drawn so far."""
        return self.machine.delays

    async def disconnect(self) -> None:
        """Leave every namespace and close the connection (no reconnection)."""
        self.machine.disconnect()
        await self._after_closing()

    close = disconnect  # the connection closes with the last namespace

    # -- the shell -----------------------------------------------------------------------------

    def _now(self) -> float:
        return tornado.ioloop.IOLoop.current().time()

    async def _after_closing(self) -> None:
        self._after()
        if self._closing is not None:
            await self._closing

    def _after(self) -> None:
        """After every call into the machine: send its packets, act on its events, re-arm the
        timer. (Handlers run here may call into the machine again: the loop picks that up.)"""
        machine = self.machine
        while True:
            packets, events = machine.take_outgoing(), machine.events()
            if not packets and not events:
                break
            for packet in packets:
                self._send(packet)
            for event in events:
                self._handle(event)
        deadline = machine.next_deadline()
        if deadline != self._timer_at:
            loop = tornado.ioloop.IOLoop.current()
            if self._timer is not None:
                loop.remove_timeout(self._timer)
            self._timer_at = deadline
            self._timer = None if deadline is None else loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self.machine.handle_timeout(self._now())
        self._after()

    def _send(self, packet: Packet) -> None:
        if self.engine is not None and not self.engine.session.closed:
            socket = self.sockets.get(packet.nsp)
            if socket is not None and socket.any_outgoing and packet.type is PacketType.EVENT:
                for listener in socket.any_outgoing:
                    socket._run(listener, *packet.data)
            for message in encode(packet, self.parser):
                self.engine.send(message)

    def _handle(self, event: sio.Event) -> None:
        match event:
            case sio.EventReceived(nsp=nsp):
                self.sockets[nsp]._on_event(event)
            case (
                sio.AckReceived(nsp=nsp)
                | sio.AckTimedOut(nsp=nsp)
                | sio.Delivered(nsp=nsp)
                | sio.Undelivered(nsp=nsp)
            ):
                self.sockets[nsp]._on_ack(event)
            case sio.Connected(nsp=nsp):
                socket = self.sockets[nsp]
                socket._fire("connect")
                settle(socket._waiter, None)
            case sio.ConnectFailed(nsp=nsp, data=data):
                socket = self.sockets[nsp]
                socket._fire("connect_error", data)
                message = data.get("message") if isinstance(data, dict) else str(data)
                settle(socket._waiter, ConnectError(message))
            case sio.Disconnected(nsp=nsp, reason=reason):
                self.sockets[nsp]._fire("disconnect", reason)
            case sio.OpenTransport():
                spawn(self._open(), "opening the connection")
            case sio.CloseTransport():
                engine, self.engine = self.engine, None
                if engine is not None:
                    self._closing = spawn(engine.close(), "closing the connection")
            case sio.ReconnectAttempt(attempt=n):
                self._fire("reconnect_attempt", n)
            case sio.Reconnected(attempt=n):
                self._fire("reconnect", n)
            case sio.ReconnectError(message=message):
                self._fire("reconnect_error", ConnectError(message))
            case sio.ReconnectFailed():
                self._fire("reconnect_failed")

    async def _open(self) -> None:
        engine = EngineClient(
            self.url,
            path=self.path,
            transports=self.transports,
            headers=self.headers,
            tracer=self.tracer,
        )
        engine.on_message = self._on_message
        engine.on_close = lambda reason: self._on_close(engine, reason)
        try:
            await engine.connect()
        except Exception as failure:  # refused, unreachable, or a URL that cannot work
            error = failure if isinstance(failure, ConnectError) else ConnectError(str(failure))
            for socket in self.sockets.values():
                settle(socket._waiter, error)
            self.machine.open_failed(str(error), self._now())
        else:
            self.engine = engine
            self.machine.opened(self._now())
        self._after()

    def _on_message(self, data: str | bytes) -> None:
        self.machine.receive(data, self._now())
        self._after()

    def _on_close(self, engine: EngineClient, reason: str) -> None:
        if engine is self.engine:  # not one we closed on purpose
            self.engine = None
            self.machine.lost(reason, self._now())
            self._after()
