"""The Socket.IO v5 client: namespaces over one connection, acks, reconnection, a send buffer.

    client = Client("http://127.0.0.1:3000", auth={"token": "t"})

    @client.on("chat")
    def on_chat(text):
        print(text)

    await client.connect()
    reply = await client.emit_with_ack("chat", "hi", timeout=5.0)
    admin = client.socket("/admin")          # a second namespace, same Engine.IO connection
    await admin.connect()

As in the official client (socket.io-client ``lib/manager.ts``, ``lib/socket.ts``):

* the :class:`Client` is the socket of the main namespace and owns the connection (the *manager*);
* an event emitted while disconnected is kept in a **send buffer** and sent, in order, when the
  namespace is connected again (``volatile=True`` events are dropped instead);
* when the connection is lost (not closed by us), it **reconnects** by itself: attempt n waits
  :class:`~sio_teach.sio.backoff.Backoff` ``.duration(n)`` — 1 s, 2 s, 4 s, 5 s… ± 50 %; each attempt
  fires ``reconnect_attempt``, a failure ``reconnect_error``, success ``reconnect``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import random
from collections.abc import Callable
from typing import Any

from sio_teach.errors import AckTimeoutError, ConnectError, ProtocolError
from sio_teach.sio.backoff import Backoff
from sio_teach.sio.packet import Decoder, Packet, PacketType, encode
from sio_teach.trace import Tracer
from sio_teach.transports.eio_client import EngineClient

log = logging.getLogger("sio_teach.client")

Handler = Callable[..., Any]
DEFAULT_BACKOFF = Backoff()  # the official defaults; frozen, so one instance serves all


def _ack_value(args: list[Any]) -> Any:
    return None if not args else args[0] if len(args) == 1 else tuple(args)


class ClientSocket:
    """One namespace of a connection. Handlers get the event's arguments (no socket argument)."""

    def __init__(self, manager: Client, nsp: str, auth: dict[str, Any] | None = None) -> None:
        self.manager = manager
        self.nsp = nsp
        self.auth = auth
        self.id: str | None = None
        self.connected = False
        self.active = False  # connect() was called and disconnect() was not
        self.handlers: dict[str, Handler] = {}
        self.any_handlers: list[Handler] = []
        self.send_buffer: list[Packet] = []
        self.acks: dict[int, Callable[[list[Any]], None]] = {}
        self._next_ack = 0
        # connection state recovery: the server's private session id and the last offset seen
        self.pid: str | None = None
        self.last_offset: str | None = None
        self.recovered = False
        self._connected_future: asyncio.Future[None] | None = None

    # -- handlers -------------------------------------------------------------------------------

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Register a handler (usable as a decorator). Reserved events: ``connect``,
        ``disconnect`` (reason), ``connect_error`` (data); on the main socket also the manager's
        ``reconnect_attempt`` (n), ``reconnect`` (n), ``reconnect_error`` (error)."""
        if handler is None:
            return lambda h: self.on(event, h)
        self.handlers[event] = handler
        return handler

    def on_any(self, handler: Handler) -> Handler:
        """A catch-all: ``handler(event, *args)`` for every incoming event."""
        self.any_handlers.append(handler)
        return handler

    def _fire(self, event: str, *args: Any) -> Any:
        handler = self.handlers.get(event)
        if handler is None:
            return None
        try:
            result = handler(*args)
        except Exception:  # a bug in a handler must not break the connection
            log.exception("handler for %r failed", event)
            return None
        if inspect.isawaitable(result):
            return asyncio.ensure_future(result)
        return result

    # -- connecting ----------------------------------------------------------------------------

    async def connect(self, timeout: float = 10.0) -> None:
        """Connect this namespace (and the connection if needed). Raises :class:`ConnectError`
        if the server refuses the namespace (its ``connect_error`` message) or does not answer."""
        if self.connected:
            return  # a second CONNECT would be a protocol error for the server
        self.active = True
        loop = asyncio.get_running_loop()
        self._connected_future = loop.create_future()
        closing = self.manager._close_task
        if closing is not None and not closing.done():
            await closing  # the connection is being closed (no namespace was left): wait, reopen
        if self.manager.engine is None or self.manager.engine.session.closed:
            await self.manager.open()
        else:
            self._send_connect()
        try:
            await asyncio.wait_for(asyncio.shield(self._connected_future), timeout)
        except TimeoutError:
            raise ConnectError(f"no answer to CONNECT {self.nsp} within {timeout} s") from None

    def _send_connect(self) -> None:
        auth = self.auth
        if self.pid is not None and self.last_offset is not None:  # ask to recover the session
            auth = {**(auth or {}), "pid": self.pid, "offset": self.last_offset}
        self.manager.send(Packet.connect(self.nsp, auth))

    async def disconnect(self) -> None:
        """Leave this namespace; the connection closes when no namespace is left."""
        if self.connected:
            self.manager.send(Packet.disconnect(self.nsp))
        self.active = False
        self._on_disconnect("io client disconnect")
        if not any(s.active for s in self.manager.sockets.values()):
            await self.manager.close()

    # -- emitting ------------------------------------------------------------------------------

    def emit(
        self, event: str, *args: Any, callback: Handler | None = None, volatile: bool = False
    ) -> int | None:
        """Send ``event``. While disconnected it is buffered (or dropped if ``volatile``).
        Returns the ack id when a ``callback`` waits for the server's ACK."""
        ack_id = None
        if callback is not None:
            ack_id = self._next_ack
            self._next_ack += 1
            self.acks[ack_id] = lambda values: callback(*values)
        packet = Packet.event(self.nsp, event, *args, id=ack_id)
        if self.connected:
            self.manager.send(packet)
        elif not volatile:
            self.send_buffer.append(packet)
        return ack_id

    async def emit_with_ack(self, event: str, *args: Any, timeout: float | None = None) -> Any:
        """Send ``event`` and wait for the server's ACK: its single value, ``None`` for an empty
        ACK, a tuple for several. Raises :class:`AckTimeoutError` after ``timeout`` seconds."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        ack_id = self.emit(
            event, *args, callback=lambda *v: future.done() or future.set_result(list(v))
        )
        try:
            return _ack_value(await asyncio.wait_for(future, timeout))
        except TimeoutError:
            self.acks.pop(ack_id, None)  # type: ignore[arg-type]  # a late ACK is ignored
            raise AckTimeoutError(f"no ack for {event!r} within {timeout} s") from None

    # -- incoming ------------------------------------------------------------------------------

    def _on_packet(self, packet: Packet) -> None:
        kind = packet.type
        if kind is PacketType.CONNECT:
            self.id = (packet.data or {}).get("sid")
            pid = (packet.data or {}).get("pid")
            self.recovered = pid is not None and pid == self.pid
            self.pid = pid
            self.connected = True
            # the buffer goes out first, in order, then the connect handler runs (socket.io-client
            # onconnect: emitBuffered, then "connect"), so nothing it emits overtakes the buffer
            buffered, self.send_buffer = self.send_buffer, []
            for buffered_packet in buffered:
                self.manager.send(buffered_packet)
            self._fire("connect")
            if self._connected_future and not self._connected_future.done():
                self._connected_future.set_result(None)
        elif kind is PacketType.CONNECT_ERROR:
            self.active = False
            self.manager._close_if_idle()
            data = packet.data
            self._fire("connect_error", data)
            message = data.get("message") if isinstance(data, dict) else str(data)
            if self._connected_future and not self._connected_future.done():
                self._connected_future.set_exception(ConnectError(message))
        elif kind is PacketType.DISCONNECT:
            self.active = False
            self._on_disconnect("io server disconnect")
            self.manager._close_if_idle()
        elif kind is PacketType.EVENT and self.connected:
            event, *args = packet.data
            if self.pid is not None and packet.id is None and args and isinstance(args[-1], str):
                # like the official client: the last string argument is the offset to recover
                # from (handlers still see it, as in JavaScript)
                self.last_offset = args[-1]
            for handler in self.any_handlers:
                try:
                    handler(event, *args)
                except Exception:
                    log.exception("catch-all handler failed")
            result = self._fire(event, *args)
            if packet.id is not None:
                self._ack_when_done(packet.id, result)
        elif kind is PacketType.ACK:
            callback = self.acks.pop(packet.id, None)  # type: ignore[arg-type]
            if callback is not None:
                callback(packet.data)

    def _ack_when_done(self, ack_id: int, result: Any) -> None:
        def send(value: Any) -> None:
            if value is not None:  # as on the server: None means "no ACK"
                args = list(value) if isinstance(value, tuple) else [value]
                self.manager.send(Packet.ack(self.nsp, ack_id, *args))

        if isinstance(result, asyncio.Future):
            result.add_done_callback(lambda f: send(f.result()) if not f.exception() else None)
        else:
            send(result)

    def _on_disconnect(self, reason: str) -> None:
        if self.connected:
            self.connected = False
            self.id = None
            self._fire("disconnect", reason)


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
        reconnection: bool = True,
        reconnection_attempts: float = math.inf,
        backoff: Backoff = DEFAULT_BACKOFF,
        rand: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(self, "/", auth)
        self.url = url
        self.path = path
        self.transports = tuple(transports)
        self.headers = headers
        self.tracer = tracer or Tracer("client", enabled=False, sio=True)
        self.tracer.sio = True
        self.reconnection = reconnection
        self.reconnection_attempts = reconnection_attempts
        self.backoff = backoff
        self.rand = rand
        self.sockets: dict[str, ClientSocket] = {"/": self}
        self.engine: EngineClient | None = None
        self._decoder = Decoder()
        self._closing = False
        self._reconnect_task: asyncio.Task[None] | None = None
        self._close_task: asyncio.Future[None] | None = None
        self.delays: list[float] = []  # every reconnection delay used, for the curious

    def socket(self, nsp: str, auth: dict[str, Any] | None = None) -> ClientSocket:
        """The socket of namespace ``nsp`` on this connection (created on first use)."""
        if nsp not in self.sockets:
            self.sockets[nsp] = ClientSocket(self, nsp, auth)
        return self.sockets[nsp]

    @property
    def transport(self) -> str | None:
        return self.engine.transport if self.engine else None

    # -- the connection ------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the Engine.IO connection and send CONNECT for every active namespace."""
        self._closing = False
        self._decoder = Decoder()
        engine = EngineClient(
            self.url,
            path=self.path,
            transports=self.transports,
            headers=self.headers,
            tracer=self.tracer,
        )
        engine.on_message = self._on_message
        engine.on_close = self._on_close
        await engine.connect()  # raises ConnectError
        self.engine = engine
        for socket in self.sockets.values():
            if socket.active:
                socket._send_connect()

    def send(self, packet: Packet) -> None:
        """Encode and send one packet (and its attachments) on the connection."""
        if self.engine is None or self.engine.session.closed:
            return
        text, attachments = encode(packet)
        self.engine.send(text)
        for attachment in attachments:
            self.engine.send(attachment)

    async def close(self) -> None:
        """Close the connection for good (no reconnection)."""
        self._closing = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        if self.engine is not None:
            await self.engine.close()

    def _close_if_idle(self) -> None:
        """No namespace is left (refused or disconnected by the server): close the connection,
        as the official client's ``Manager._destroy`` does."""
        if not any(s.active for s in self.sockets.values()):
            self._closing = True
            self._close_task = asyncio.ensure_future(self.close())

    def _on_message(self, data: str | bytes) -> None:
        try:
            packet = (
                self._decoder.receive_text(data)
                if isinstance(data, str)
                else self._decoder.receive_binary(data)
            )
        except ProtocolError as error:
            log.info("bad packet from server: %s", error)
            if self.engine is not None:
                asyncio.ensure_future(self.engine.close())
            return
        if packet is not None and packet.nsp in self.sockets:
            self.sockets[packet.nsp]._on_packet(packet)

    def _on_close(self, reason: str) -> None:
        for socket in self.sockets.values():
            socket._on_disconnect(reason)
        if self.reconnection and not self._closing and reason != "io client disconnect":
            if self._reconnect_task is None or self._reconnect_task.done():
                self._reconnect_task = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        attempt = 0
        while attempt < self.reconnection_attempts and not self._closing:
            delay = self.backoff.duration(attempt, self.rand())
            self.delays.append(delay)
            await asyncio.sleep(delay)
            attempt += 1
            self._fire("reconnect_attempt", attempt)
            try:
                await self.open()
            except ConnectError as error:
                self._fire("reconnect_error", error)
                continue
            self._fire("reconnect", attempt)
            return
        self._fire("reconnect_failed")

    async def disconnect(self) -> None:
        """Leave every namespace and close the connection (no reconnection)."""
        self._closing = True
        for socket in list(self.sockets.values()):
            if socket.connected:
                self.send(Packet.disconnect(socket.nsp))
            socket.active = False
            socket._on_disconnect("io client disconnect")
        await self.close()
