"""The server side of one Engine.IO connection at the Socket.IO layer, as a state machine that
does no I/O.

One Engine.IO connection carries many namespaces; each is CONNECTING (a CONNECT arrived, the
middlewares run), CONNECTED, or DISCONNECTED (also: never connected). The shell
(``sio_teach/server.py``, ``sio_teach/namespace.py``) owns sockets, handlers and timers; this class
owns the rules. The shell:

* feeds every Engine.IO message to :meth:`receive`, and tells :meth:`lost` when the connection ends;
* answers each :class:`ConnectRequested` with :meth:`accept` or :meth:`refuse` (they return the
  packet to send), and leaves a namespace with :meth:`disconnect` or everything with :meth:`close`;
* calls :meth:`expect_ack` for each EVENT it sends with an ack id;
* arms one timer at :meth:`next_deadline` and calls :meth:`handle_timeout` when it fires;
* reads :meth:`events` (typed, below) after each of those calls, and acts on them.

Time is passed in as ``now`` (seconds): a test drives the connect timeout and the ack deadlines on
a fake clock. Rules: socket.io-protocol ``Readme.md``; where it is silent, socket.io
``lib/client.ts`` (``connectTimeout``, ``_remove``) and ``lib/socket.ts`` (``onack``).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sio_teach.errors import DisconnectReason, ProtocolError
from sio_teach.sio.events import AckReceived, AckTimedOut
from sio_teach.sio.packet import Packet, PacketType
from sio_teach.sio.parser import JSON_PARSER, Parser


class State(Enum):
    """Where one namespace of the connection stands."""

    CONNECTING = "connecting"  # its CONNECT arrived; the middlewares decide
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"  # left, refused, or never asked for


# CONNECT_ERROR only travels from server to client; a CONNECT comes once per namespace
_NEVER_FROM_CLIENT = frozenset({PacketType.CONNECT, PacketType.CONNECT_ERROR})

# Every allowed transition of a namespace, in one table (a notebook draws the diagram from it).
# Upper case: a packet from the client; lower case: the server's decision or the connection's end.
TRANSITIONS: dict[tuple[State, str], State] = {
    (State.DISCONNECTED, "CONNECT"): State.CONNECTING,
    (State.CONNECTING, "accept"): State.CONNECTED,
    (State.CONNECTING, "refuse"): State.DISCONNECTED,
    (State.CONNECTING, "close"): State.DISCONNECTED,
    (State.CONNECTED, "DISCONNECT"): State.DISCONNECTED,
    (State.CONNECTED, "disconnect"): State.DISCONNECTED,
    (State.CONNECTED, "close"): State.DISCONNECTED,
}


# -- what the machine tells the shell (see ServerConnection.events) ------------------------------


@dataclass(frozen=True, slots=True)
class ConnectRequested:
    """A CONNECT: run the middlewares, then accept() or refuse(). ``pid`` and ``offset`` (both or
    neither) ask to recover a session (``sio/recovery.py``)."""

    nsp: str
    auth: dict[str, Any]
    pid: str | None = None
    offset: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """An EVENT on a connected namespace: call the handler of ``name``; answer ``ack_id`` if set."""

    nsp: str
    name: str
    args: list[Any]
    ack_id: int | None


@dataclass(frozen=True, slots=True)
class Disconnected:
    """A connected namespace ended; its pending acks are forgotten."""

    nsp: str
    reason: DisconnectReason | str


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """Close the Engine.IO connection (each connected namespace got its Disconnected first)."""

    reason: DisconnectReason


ServerEvent = ConnectRequested | Event | AckReceived | AckTimedOut | Disconnected | CloseConnection


class ServerConnection:
    """The Socket.IO state of one Engine.IO connection. Create it when the handshake is done."""

    def __init__(
        self,
        now: float,
        connect_timeout: float = 45.0,
        attachments_timeout: float = 60.0,
        max_attachment_bytes: int | None = None,
        parser: Parser = JSON_PARSER,
    ) -> None:
        self.decoder = parser.decoder(max_bytes=max_attachment_bytes)  # see sio/parser.py
        # A binary packet's attachments must all arrive within attachments_timeout of its header
        # and weigh at most max_attachment_bytes together (not in the spec: bounds on what a
        # half-sent BINARY_EVENT holds)
        self.attachments_timeout = attachments_timeout
        self._attachments_deadline: float | None = None
        self.states: dict[str, State] = {}  # a namespace not in it is DISCONNECTED
        self.close_reason: str | None = None
        # "a client must send a CONNECT packet" within connectTimeout, else the server closes
        self._connect_deadline: float | None = now + connect_timeout
        self._acks: dict[tuple[str, int], float] = {}  # (nsp, ack id) -> deadline (inf: none)
        self._deadlines: list[tuple[float, str, int]] = []  # a heap; stale entries skipped
        self._events: list[ServerEvent] = []

    def state(self, nsp: str) -> State:
        return self.states.get(nsp, State.DISCONNECTED)

    def _go(self, nsp: str, event: str) -> None:
        state = self.states.get(nsp, State.DISCONNECTED)
        try:
            new = TRANSITIONS[(state, event)]
        except KeyError:  # a bug in the shell: the client's packets are checked before
            raise RuntimeError(f"{event!r} not allowed on {nsp} ({state.value})") from None
        if new is State.DISCONNECTED:
            self.states.pop(nsp, None)
        else:
            self.states[nsp] = new

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    # -- input --------------------------------------------------------------------------------

    def receive(self, data: str | bytes, now: float | None = None) -> None:
        """One Engine.IO message from the client (text, or one binary attachment). With ``now``
        (the shell always gives it), a binary packet's attachments are awaited for at most
        ``attachments_timeout``."""
        if self.closed:
            return
        try:
            if isinstance(data, str):
                packet = self.decoder.receive_text(data)
            else:
                packet = self.decoder.receive_binary(data)
        except ProtocolError:
            self.close(DisconnectReason.PARSE_ERROR)
            return
        if not self.decoder.awaiting:
            self._attachments_deadline = None
        elif self._attachments_deadline is None and now is not None:
            self._attachments_deadline = now + self.attachments_timeout
        if packet is not None:
            self._on_packet(packet)

    def _on_packet(self, packet: Packet) -> None:
        kind, nsp = packet.type, packet.nsp
        state = self.states.get(nsp, State.DISCONNECTED)
        if kind is PacketType.CONNECT and state is State.DISCONNECTED:
            self._go(nsp, "CONNECT")
            auth = packet.data or {}
            pid, offset = auth.get("pid"), auth.get("offset")
            if not (isinstance(pid, str) and isinstance(offset, str)):
                pid = offset = None
            self._events.append(ConnectRequested(nsp, auth, pid, offset))
        elif kind is PacketType.CONNECT and state is State.CONNECTING:
            return  # the same CONNECT again while the middlewares run: one answer is coming
        elif state is not State.CONNECTED or kind in _NEVER_FROM_CLIENT:
            # "If the server does not receive a CONNECT packet first, then it MUST close the
            # connection immediately" (as lib/client.ts ondecoded: a packet for a namespace this
            # client is not connected to, a second CONNECT, or a CONNECT_ERROR)
            self._end_all(DisconnectReason.FORCED_SERVER_CLOSE)
            self._events.append(CloseConnection(DisconnectReason.FORCED_CLOSE))
        elif kind is PacketType.EVENT:
            name, *args = packet.data
            self._events.append(Event(nsp, name, args, packet.id))
        elif kind is PacketType.ACK:
            if self._acks.pop((nsp, packet.id), None) is not None:  # type: ignore[arg-type]
                self._events.append(AckReceived(nsp, packet.id, packet.data))  # type: ignore[arg-type]
        else:
            self._leave(nsp, "DISCONNECT", DisconnectReason.CLIENT_NAMESPACE_DISCONNECT)

    def lost(self, reason: str) -> None:
        """The Engine.IO connection ended (``reason`` as Engine.IO names it)."""
        if not self.closed:
            self._end_all(reason)

    # -- the server's decisions -------------------------------------------------------------

    def accept(self, nsp: str, sid: str, pid: str | None = None) -> Packet | None:
        """The middlewares let ``nsp`` in: the CONNECT reply to send (``{"sid"[, "pid"]}``), or
        None when the namespace is not CONNECTING any more (the connection closed meanwhile)."""
        if self.state(nsp) is not State.CONNECTING:
            return None
        self._go(nsp, "accept")
        self._connect_deadline = None  # lib/client.ts doConnect clears connectTimeout
        return Packet.connect(nsp, {"sid": sid} if pid is None else {"sid": sid, "pid": pid})

    def refuse(self, nsp: str, message: str, data: Any = None) -> Packet | None:
        """``nsp`` is refused: the CONNECT_ERROR to send (None if the connection closed); the
        namespace may be asked for again. The connect timeout keeps running."""
        if self.state(nsp) is not State.CONNECTING:
            return None
        self._go(nsp, "refuse")
        return Packet.connect_error(nsp, message, data)

    def disconnect(self, nsp: str) -> Packet | None:
        """The server leaves ``nsp``: the DISCONNECT to send, or None if it was not connected."""
        if self.state(nsp) is not State.CONNECTED:
            return None
        self._leave(nsp, "disconnect", DisconnectReason.SERVER_NAMESPACE_DISCONNECT)
        return Packet.disconnect(nsp)

    def close(self, reason: DisconnectReason) -> None:
        """End every namespace and ask the shell to close the Engine.IO connection."""
        if not self.closed:
            self._end_all(reason)
            self._events.append(CloseConnection(reason))

    def expect_ack(self, nsp: str, ack_id: int, now: float, timeout: float | None = None) -> None:
        """An EVENT with ``ack_id`` leaves for ``nsp``: await its ACK (for ``timeout`` seconds,
        else until the namespace ends). Ids come from the namespace (a broadcast shares one)."""
        deadline = math.inf if timeout is None else now + timeout
        self._acks[(nsp, ack_id)] = deadline
        if timeout is not None:
            heapq.heappush(self._deadlines, (deadline, nsp, ack_id))

    # -- time ---------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeout` must next be called (``None``: never)."""
        heap = self._deadlines
        while heap and self._acks.get((heap[0][1], heap[0][2])) != heap[0][0]:
            heapq.heappop(heap)  # answered, or its namespace ended: forget it
        soonest = heap[0][0] if heap else None
        for t in (self._connect_deadline, self._attachments_deadline):
            if t is not None and (soonest is None or t < soonest):
                soonest = t
        return soonest

    def handle_timeout(self, now: float) -> None:
        """Run what is due: close a connection that never connected, expire ack deadlines."""
        if self._connect_deadline is not None and now >= self._connect_deadline:
            self._connect_deadline = None
            self.close(DisconnectReason.FORCED_CLOSE)  # as lib/client.ts does: conn.close()
        if self._attachments_deadline is not None and now >= self._attachments_deadline:
            self._attachments_deadline = None
            self.close(DisconnectReason.PARSE_ERROR)  # the packet can never be completed
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            deadline, nsp, ack_id = heapq.heappop(heap)
            if self._acks.get((nsp, ack_id)) == deadline:
                del self._acks[(nsp, ack_id)]
                self._events.append(AckTimedOut(nsp, ack_id))

    # -- output -------------------------------------------------------------------------------

    def events(self) -> list[ServerEvent]:
        """What happened since the last call, in order, for the shell."""
        events = self._events
        if events:  # (an empty list is handed out as it is: nothing to allocate per message)
            self._events = []
        return events

    # -- internals ----------------------------------------------------------------------------

    def _leave(self, nsp: str, event: str, reason: DisconnectReason | str) -> None:
        self._go(nsp, event)
        for key in [key for key in self._acks if key[0] == nsp]:
            del self._acks[key]
        self._events.append(Disconnected(nsp, reason))

    def _end_all(self, reason: DisconnectReason | str) -> None:
        self.close_reason = reason
        self._connect_deadline = self._attachments_deadline = None
        for nsp, state in list(self.states.items()):
            if state is State.CONNECTED:
                self._leave(nsp, "close", reason)
            else:
                self._go(nsp, "close")
        self._acks.clear()
        self._deadlines.clear()
