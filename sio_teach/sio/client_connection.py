"""The client side of Socket.IO v5 as a state machine that does no I/O (socket.io-client
``lib/manager.ts`` for the connection, ``lib/socket.ts`` for a namespace). The shell
(``sio_teach/client.py``) opens and closes Engine.IO when told (OpenTransport, CloseTransport),
carries the packets (:meth:`~ClientConnection.take_outgoing`) and arms one timer at
:meth:`~ClientConnection.next_deadline`; time comes in as ``now``, events come out.

* The **connection** opens for the first namespace and closes when none is left. Lost (not closed
  on purpose), it **reconnects**: attempt n waits ``backoff.duration(n - 1, random())``.
* A **namespace** sends CONNECT once the connection is open (with ``pid`` and ``offset`` to
  recover its session); the reply connects it.
* The **send buffer**: what is emitted while the namespace is not connected waits, and leaves in
  order right after the CONNECT reply, before ``connect`` fires; ``volatile`` events are dropped.
* **Acks**: ids count from 0 per namespace; an ack timeout, like an unanswered CONNECT, expires
  in :meth:`~ClientConnection.handle_timeout`.
* **Retries** (socket.io-client 4.6 ``retries``, ``ackTimeout``): every emit but a volatile one
  joins a queue; one packet at a time is in flight (so order is kept), sent with an ack request,
  and sent again (with a new ack id) when its ack does not come within ``ack_timeout``, up to
  ``retries`` more times: at-least-once delivery. The server may see a packet twice.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from sio_teach.errors import DisconnectReason, ProtocolError
from sio_teach.sio.backoff import Backoff
from sio_teach.sio.events import AckReceived, AckTimedOut
from sio_teach.sio.packet import Packet, PacketType
from sio_teach.sio.parser import JSON_PARSER, Parser


class State(Enum):
    """The connection (the official client's Manager)."""

    DISCONNECTED = "disconnected"  # no connection, none planned
    CONNECTING = "connecting"  # the shell opens Engine.IO (the first time, or attempt n)
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"  # waiting for the backoff deadline of attempt n


TRANSITIONS: dict[tuple[State, str], State] = {
    (State.DISCONNECTED, "open"): State.CONNECTING,
    (State.CONNECTING, "opened"): State.CONNECTED,
    (State.CONNECTING, "open failed"): State.RECONNECTING,
    (State.CONNECTED, "lost"): State.RECONNECTING,
    (State.RECONNECTING, "attempt"): State.CONNECTING,
    (State.CONNECTING, "close"): State.DISCONNECTED,
    (State.CONNECTED, "close"): State.DISCONNECTED,
    (State.RECONNECTING, "close"): State.DISCONNECTED,
}


class NspState(Enum):
    """One namespace (the official client's Socket)."""

    IDLE = "disconnected"  # not asked for, left, refused or disconnected by the server
    CONNECTING = "connecting"  # wanted: CONNECT sent, or sent once the connection is open
    CONNECTED = "connected"


NSP_TRANSITIONS: dict[tuple[NspState, str], NspState] = {
    (NspState.IDLE, "connect"): NspState.CONNECTING,
    (NspState.CONNECTING, "CONNECT"): NspState.CONNECTED,  # the server's reply
    (NspState.CONNECTING, "CONNECT_ERROR"): NspState.IDLE,
    (NspState.CONNECTING, "give up"): NspState.IDLE,  # the connection is lost for good
    (NspState.CONNECTED, "lost"): NspState.CONNECTING,  # CONNECT again after the reconnection
    (NspState.CONNECTED, "DISCONNECT"): NspState.IDLE,
    (NspState.CONNECTING, "disconnect"): NspState.IDLE,
    (NspState.CONNECTED, "disconnect"): NspState.IDLE,
}


@dataclass(slots=True, eq=False)
class Namespace:
    """What the client knows of one namespace."""

    nsp: str
    auth: dict[str, Any] | None = None
    state: NspState = NspState.IDLE
    sid: str | None = None
    pid: str | None = None  # connection state recovery: the server's private session id...
    offset: str | None = None  # ...and the offset of the last event received
    recovered: bool = False
    buffer: list[Packet] = field(default_factory=list)  # emitted while not connected
    next_ack: int = 0
    acks: set[int] = field(default_factory=set)  # ack ids still awaited
    connect_deadline: float | None = None
    queue: deque[Queued] = field(default_factory=deque)  # with retries: emits not yet acked
    queue_acks: dict[int, Queued] = field(default_factory=dict)  # ack id of each try -> emit


@dataclass(slots=True, eq=False)
class Queued:
    """An emit of a client with ``retries``: sent, and sent again, until the server acks it."""

    ticket: int  # how the application knows it (Delivered, Undelivered)
    name: str
    args: tuple[Any, ...]
    timeout: float | None  # for each try
    tries: int = 0
    pending: bool = False  # a try is in flight


# -- what happens (events out) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenTransport:
    """For the shell: open Engine.IO, then call ``opened`` or ``open_failed``."""


@dataclass(frozen=True, slots=True)
class CloseTransport:
    """For the shell: close Engine.IO (after sending what is queued)."""


@dataclass(frozen=True, slots=True)
class Connected:
    nsp: str
    sid: str | None
    recovered: bool


@dataclass(frozen=True, slots=True)
class ConnectFailed:
    """``connect_error``: the server refused the namespace, or did not answer in time."""

    nsp: str
    data: Any


@dataclass(frozen=True, slots=True)
class Disconnected:
    nsp: str
    reason: DisconnectReason


@dataclass(frozen=True, slots=True)
class EventReceived:
    """An EVENT from the server; answer ``ack_id`` (if not None) with :meth:`send_ack`."""

    nsp: str
    name: str
    args: list[Any]
    ack_id: int | None


@dataclass(frozen=True, slots=True)
class Delivered:
    """A queued emit (``retries``) was acknowledged, on one of its tries."""

    nsp: str
    ticket: int
    args: list[Any]


@dataclass(frozen=True, slots=True)
class Undelivered:
    """A queued emit got no ack in ``retries + 1`` tries: it is dropped."""

    nsp: str
    ticket: int


@dataclass(frozen=True, slots=True)
class ReconnectAttempt:
    attempt: int


@dataclass(frozen=True, slots=True)
class ReconnectError:
    attempt: int
    message: str


@dataclass(frozen=True, slots=True)
class Reconnected:
    attempt: int


@dataclass(frozen=True, slots=True)
class ReconnectFailed:
    pass


Event = (
    OpenTransport | CloseTransport | Connected | ConnectFailed | Disconnected | EventReceived
    | AckReceived | AckTimedOut | Delivered | Undelivered | ReconnectAttempt | ReconnectError
    | Reconnected | ReconnectFailed
)  # fmt: skip


class ClientConnection:
    """A client's connection and its namespaces. ``random()`` gives the backoff's jitter in [0, 1)."""

    def __init__(
        self,
        *,
        random: Callable[[], float],
        reconnection: bool = True,
        reconnection_attempts: float = math.inf,
        backoff: Backoff = Backoff(),  # noqa: B008  (frozen: one instance serves all)
        retries: int = 0,
        ack_timeout: float | None = None,
        parser: Parser = JSON_PARSER,
    ) -> None:
        self.state = State.DISCONNECTED
        self.parser = parser  # how packets travel (sio/parser.py); the server must use the same
        self.retries = retries  # > 0: every emit but a volatile one goes through the queue
        self.ack_timeout = ack_timeout  # the default timeout of an ack (each try's, with retries)
        self._tickets = 0
        self.namespaces: dict[str, Namespace] = {}
        self.random = random
        self.reconnection = reconnection
        self.reconnection_attempts = reconnection_attempts
        self.backoff = backoff
        self.attempt = 0  # the reconnection attempt under way or awaited; 0: not reconnecting
        self.reconnect_at: float | None = None
        self.delays: list[float] = []  # every reconnection delay drawn, for the curious
        self._decoder = self.parser.decoder()
        self._outbox: list[Packet] = []
        self._events: list[Event] = []
        self._ack_deadlines: list[tuple[float, str, int]] = []  # a heap; answered acks stay

    def _go(self, event: str) -> None:
        try:
            self.state = TRANSITIONS[(self.state, event)]
        except KeyError:
            raise RuntimeError(f"{event!r} not allowed in state {self.state.value!r}") from None

    def namespace(self, nsp: str, auth: dict[str, Any] | None = None) -> Namespace:
        """The record of namespace ``nsp`` (created, with its ``auth``, on first use)."""
        if nsp not in self.namespaces:
            self.namespaces[nsp] = Namespace(nsp, auth)
        return self.namespaces[nsp]

    # -- the application ---------------------------------------------------------------------

    def connect(self, nsp: str, now: float, timeout: float | None = None) -> None:
        """Connect ``nsp``, opening the connection if needed; ConnectFailed after ``timeout``."""
        ns = self.namespace(nsp)
        if ns.state is NspState.CONNECTED:
            return
        ns.connect_deadline = None if timeout is None else now + timeout
        if ns.state is NspState.IDLE:  # else its CONNECT is on its way, or waits for the connection
            ns.state = NSP_TRANSITIONS[(ns.state, "connect")]
            if self.state is State.CONNECTED:
                self._send_connect(ns)
        if self.state is State.DISCONNECTED:  # never opened, closed, or given up: open it
            self.attempt = 0
            self._go("open")
            self._events.append(OpenTransport())

    def emit(
        self,
        nsp: str,
        name: str,
        args: tuple[Any, ...],
        now: float = 0.0,
        *,
        ack: bool = False,
        timeout: float | None = None,
        volatile: bool = False,
    ) -> int | None:
        """Send EVENT ``name(*args)``, or buffer it while ``nsp`` is not connected (drop it if
        ``volatile``). With ``ack``, returns the ack id (AckTimedOut after ``timeout`` s). With
        ``retries``, a non-volatile emit joins the queue: returns its ticket (Delivered or
        Undelivered will tell)."""
        ns = self.namespace(nsp)
        if timeout is None:
            timeout = self.ack_timeout
        if self.retries and not volatile:
            ticket, self._tickets = self._tickets, self._tickets + 1
            ns.queue.append(Queued(ticket, name, args, timeout))
            self._drain(ns, now)
            return ticket
        ack_id = None
        if ack:
            ack_id = ns.next_ack
            ns.next_ack += 1
            ns.acks.add(ack_id)
            if timeout is not None:
                heapq.heappush(self._ack_deadlines, (now + timeout, nsp, ack_id))
        packet = Packet.event(nsp, name, *args, id=ack_id)
        if ns.state is NspState.CONNECTED:
            self._outbox.append(packet)
        elif not volatile:
            ns.buffer.append(packet)
        return ack_id

    def send_ack(self, nsp: str, ack_id: int, value: Any) -> None:
        """Answer the server's EVENT ``ack_id`` with a handler's ``value``: ``None`` sends no ACK,
        a tuple sends several arguments (as on the server)."""
        if value is not None and self.namespaces[nsp].state is NspState.CONNECTED:
            args = value if isinstance(value, tuple) else (value,)
            self._outbox.append(Packet.ack(nsp, ack_id, *args))

    def disconnect(self, nsp: str | None = None) -> None:
        """Leave ``nsp`` (``None``: every namespace); the connection closes when none is left."""
        for ns in [self.namespaces[nsp]] if nsp else list(self.namespaces.values()):
            if ns.state is NspState.CONNECTED:
                self._outbox.append(Packet.disconnect(ns.nsp))
                self._events.append(Disconnected(ns.nsp, DisconnectReason.IO_CLIENT_DISCONNECT))
            ns.state, ns.sid, ns.connect_deadline = NspState.IDLE, None, None
        self._close_if_idle()

    # -- the transport -----------------------------------------------------------------------

    def opened(self, now: float) -> None:
        """The Engine.IO connection is open: CONNECT goes out for every namespace waiting."""
        if self.state is not State.CONNECTING:  # closed meanwhile: nobody wants it any more
            self._events.append(CloseTransport())
            return
        self._go("opened")
        self._decoder = self.parser.decoder()
        if self.attempt:
            self._events.append(Reconnected(self.attempt))
        self.attempt = 0
        for ns in self.namespaces.values():
            if ns.state is NspState.CONNECTING:
                self._send_connect(ns)
        self._close_if_idle()

    def open_failed(self, message: str, now: float) -> None:
        """The Engine.IO connection could not be opened (the shell told the callers of connect)."""
        if self.state is not State.CONNECTING:
            return
        for ns in self.namespaces.values():
            ns.connect_deadline = None
        if self.attempt:
            self._events.append(ReconnectError(self.attempt, message))
        self._reconnect_or_give_up("open failed", now, message)

    def lost(self, reason: str, now: float) -> None:
        """The Engine.IO connection ended without us (``reason``: its close reason)."""
        if self.state is not State.CONNECTED:
            return
        for ns in self.namespaces.values():
            if ns.state is NspState.CONNECTED:
                ns.state, ns.sid = NSP_TRANSITIONS[(ns.state, "lost")], None
                self._events.append(Disconnected(ns.nsp, DisconnectReason(reason)))
        self._reconnect_or_give_up("lost", now, reason)

    def receive(self, data: str | bytes, now: float) -> None:
        """A message from the server: a packet, or one binary attachment of a packet."""
        try:
            if isinstance(data, str):
                packet = self._decoder.receive_text(data)
            else:
                packet = self._decoder.receive_binary(data)
        except ProtocolError:  # manager.ts ondecoded error: close ("parse error") and reconnect
            self._events.append(CloseTransport())
            self.lost(DisconnectReason.PARSE_ERROR, now)
            return
        if packet is None or (ns := self.namespaces.get(packet.nsp)) is None:
            return
        kind = packet.type
        if kind is PacketType.EVENT and ns.state is NspState.CONNECTED:
            name, *args = packet.data
            if ns.pid is not None and packet.id is None and args and isinstance(args[-1], str):
                ns.offset = args[-1]  # as socket.ts: the last string argument is the offset
            self._events.append(EventReceived(ns.nsp, name, args, packet.id))
        elif kind is PacketType.ACK and packet.id in ns.acks:
            ns.acks.discard(packet.id)  # type: ignore[arg-type]
            self._events.append(AckReceived(ns.nsp, packet.id, packet.data))  # type: ignore[arg-type]
        elif kind is PacketType.ACK and packet.id in ns.queue_acks:
            self._queue_answer(ns, ns.queue_acks.pop(packet.id), packet.data, now)  # type: ignore[arg-type]
        elif (ns.state, kind.name) in NSP_TRANSITIONS:
            ns.state = NSP_TRANSITIONS[(ns.state, kind.name)]
            ns.connect_deadline = None
            if kind is PacketType.CONNECT:
                data = packet.data or {}
                ns.sid, pid = data.get("sid"), data.get("pid")
                ns.recovered = pid is not None and pid == ns.pid
                ns.pid = pid
                self._outbox.extend(ns.buffer)  # the buffer first, in order (socket.ts onconnect)
                ns.buffer.clear()
                self._drain(ns, now, force=True)  # the queue's head goes (again)
                self._events.append(Connected(ns.nsp, ns.sid, ns.recovered))
            elif kind is PacketType.CONNECT_ERROR:
                self._events.append(ConnectFailed(ns.nsp, packet.data))
            else:
                ns.sid = None
                self._events.append(Disconnected(ns.nsp, DisconnectReason.IO_SERVER_DISCONNECT))
            self._close_if_idle()

    # -- output ------------------------------------------------------------------------------

    def take_outgoing(self) -> list[Packet]:
        packets, self._outbox = self._outbox, []
        return packets

    def events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    # -- time --------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The next reconnection attempt, CONNECT timeout or ack timeout (None: no timer)."""
        deadlines = [ns.connect_deadline for ns in self.namespaces.values()]
        deadlines.append(self.reconnect_at)
        if self._ack_deadlines:
            deadlines.append(self._ack_deadlines[0][0])
        return min((d for d in deadlines if d is not None), default=None)

    def handle_timeout(self, now: float) -> None:
        if self.reconnect_at is not None and now >= self.reconnect_at:
            self.reconnect_at = None
            self._go("attempt")
            self._events += [ReconnectAttempt(self.attempt), OpenTransport()]
        for ns in self.namespaces.values():
            if ns.connect_deadline is not None and now >= ns.connect_deadline:
                ns.connect_deadline = None  # still wanted: CONNECT again after a reconnection
                self._events.append(ConnectFailed(ns.nsp, {"message": "timeout"}))
        while self._ack_deadlines and self._ack_deadlines[0][0] <= now:
            _, nsp, ack_id = heapq.heappop(self._ack_deadlines)
            ns = self.namespaces[nsp]
            if ack_id in ns.acks:  # not answered yet
                ns.acks.discard(ack_id)
                self._events.append(AckTimedOut(nsp, ack_id))
            elif ack_id in ns.queue_acks:  # a try of a queued emit: maybe send it again
                self._queue_answer(ns, ns.queue_acks.pop(ack_id), None, now)

    # -- rules -------------------------------------------------------------------------------

    def _drain(self, ns: Namespace, now: float, force: bool = False) -> None:
        """Send the head of the queue, unless a try of it is in flight (socket.ts _drainQueue)."""
        if ns.state is not NspState.CONNECTED or not ns.queue:
            return
        head = ns.queue[0]
        if head.pending and not force:
            return
        head.pending, head.tries = True, head.tries + 1
        ack_id, ns.next_ack = ns.next_ack, ns.next_ack + 1
        ns.queue_acks[ack_id] = head
        if head.timeout is not None:
            heapq.heappush(self._ack_deadlines, (now + head.timeout, ns.nsp, ack_id))
        self._outbox.append(Packet.event(ns.nsp, head.name, *head.args, id=ack_id))

    def _queue_answer(
        self, ns: Namespace, item: Queued, args: list[Any] | None, now: float
    ) -> None:
        """A try of ``item`` was acked (``args``) or timed out (``None``)."""
        if not ns.queue or ns.queue[0] is not item:
            return  # an earlier try of an emit already acknowledged
        if args is not None or item.tries > self.retries:
            ns.queue.popleft()
            for ack_id in [k for k, queued in ns.queue_acks.items() if queued is item]:
                del ns.queue_acks[ack_id]  # its other tries: their answers are ignored
            event = Undelivered(ns.nsp, item.ticket) if args is None else None
            self._events.append(event or Delivered(ns.nsp, item.ticket, args or []))
        item.pending = False
        self._drain(ns, now)

    def _send_connect(self, ns: Namespace) -> None:
        auth = ns.auth
        if ns.pid is not None and ns.offset is not None:  # ask to recover the session
            auth = {**(auth or {}), "pid": ns.pid, "offset": ns.offset}
        self._outbox.append(Packet.connect(ns.nsp, auth))

    def _reconnect_or_give_up(self, event: str, now: float, why: str) -> None:
        if self.reconnection and self.attempt < self.reconnection_attempts:
            self._go(event)
            delay = self.backoff.duration(self.attempt, self.random())
            self.delays.append(delay)
            self.attempt += 1
            self.reconnect_at = now + delay
            return
        self._go("close")
        if self.reconnection:
            self._events.append(ReconnectFailed())
        self.attempt = 0
        for ns in self.namespaces.values():
            if ns.state is NspState.CONNECTING:  # no connection will carry its CONNECT: fail now
                ns.state, ns.connect_deadline = NSP_TRANSITIONS[(ns.state, "give up")], None
                self._events.append(ConnectFailed(ns.nsp, {"message": why}))

    def _close_if_idle(self) -> None:
        """No namespace is wanted any more: close the connection (manager.ts ``_destroy``)."""
        if self.state is State.DISCONNECTED or any(
            ns.state is not NspState.IDLE for ns in self.namespaces.values()
        ):
            return
        if self.state is State.CONNECTED:
            self._events.append(CloseTransport())
        self._go("close")
        self.reconnect_at, self.attempt = None, 0
