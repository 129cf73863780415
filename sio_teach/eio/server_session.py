"""The server side of one Engine.IO v4 session, as a state machine that does no I/O.

The Tornado shell (``sio_teach/transports/eio_server.py``) owns sockets and timers; this class owns
every rule. The shell:

* feeds what arrives: :meth:`receive_payload` (a polling POST body), :meth:`receive` (a WebSocket
  frame, already decoded), :meth:`receive_probe` (a frame on a WebSocket that is still probing);
* writes what the session says: :meth:`take_payload` answers a GET once :meth:`polling_ready`,
  :meth:`take_outgoing` gives the frames for an open WebSocket;
* arms one timer at :meth:`next_deadline` and calls :meth:`handle_timeout` when it fires;
* reads :meth:`events` (messages, upgrade, close) and hands them to the application.

Time is always passed in as ``now`` (seconds, monotonic): a test drives the heartbeat with a fake
clock, a notebook drives a whole session by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

from sio_teach.eio.events import Closed, Event, Message, Upgraded
from sio_teach.eio.packet import (
    CLOSE,
    NOOP,
    PING,
    PING_PROBE,
    PONG_PROBE,
    Packet,
    PacketType,
    decode_payload,
    encode_payload,
)
from sio_teach.errors import DisconnectReason, ProtocolError


@dataclass(frozen=True, slots=True)
class Config:
    """Engine.IO server options, in seconds and bytes (the wire says milliseconds)."""

    ping_interval: float = 25.0  # pingInterval 25000
    ping_timeout: float = 20.0  # pingTimeout 20000
    max_payload: int = 1_000_000  # maxPayload = maxHttpBufferSize
    upgrade_timeout: float = 10.0  # upgradeTimeout 10000
    # Bytes that may wait for a client that does not read (in the queue of a polling session, or
    # in a WebSocket's write buffer); past it the session is closed. Not in the spec: a bound on
    # what a slow or hostile client can make the server hold.
    max_buffer: int = 10_000_000
    # Packets in one polling answer. The spec sets no limit, but python-engineio's client refuses
    # a payload of more than 16 ("Too many packets in payload"); the others just poll again.
    packets_per_poll: int = 16

    def handshake(self, sid: str, upgrades: list[str]) -> Packet:
        """The open packet: ``0{"sid":..,"upgrades":..,"pingInterval":..,...}``."""
        body = {
            "sid": sid,
            "upgrades": upgrades,
            "pingInterval": ms(self.ping_interval),
            "pingTimeout": ms(self.ping_timeout),
            "maxPayload": self.max_payload,
        }
        return Packet(PacketType.OPEN, json.dumps(body, separators=(",", ":")))


def ms(seconds: float) -> int:
    """Seconds to whole milliseconds, rounded (never truncated: 0.3 s is 300 ms)."""
    return round(seconds * 1000)


class State(Enum):
    POLLING = "open (polling)"
    UPGRADING = "upgrading"  # probe answered; polling still carries data, GETs return at once
    WEBSOCKET = "open (websocket)"
    CLOSED = "closed"


# Every allowed transition, in one table (a notebook draws the diagram from it).
TRANSITIONS: dict[tuple[State, str], State] = {
    (State.POLLING, "probe"): State.UPGRADING,
    (State.UPGRADING, "upgrade"): State.WEBSOCKET,
    (State.UPGRADING, "upgrade timeout"): State.POLLING,
    (State.UPGRADING, "probe failed"): State.POLLING,
    (State.POLLING, "close"): State.CLOSED,
    (State.UPGRADING, "close"): State.CLOSED,
    (State.WEBSOCKET, "close"): State.CLOSED,
}


class ServerSession:
    """One client's Engine.IO session. Create it when the handshake request arrives."""

    def __init__(
        self,
        sid: str,
        config: Config,
        now: float,
        transport: str = "polling",
        upgrades: tuple[str, ...] = ("websocket",),
    ) -> None:
        self.sid = sid
        self.config = config
        self.transport = transport
        self.state = State.POLLING if transport == "polling" else State.WEBSOCKET
        # the open packet offers the upgrades "the server supports" from this transport
        upgrades = upgrades if transport == "polling" else ()
        self.close_reason: str | None = None
        self._outbox: list[Packet] = [config.handshake(sid, list(upgrades))]
        self._queued = 0  # bytes of data in the outbox
        self._events: list[Event] = []
        # Heartbeat (v4): the server pings every pingInterval and waits pingTimeout for the pong.
        self._next_ping: float | None = now + config.ping_interval
        self._pong_deadline: float | None = None
        self._upgrade_deadline: float | None = None
        self._forget_at: float | None = None  # a closed polling session waits for its last GET

    # -- state ------------------------------------------------------------------------------

    def _go(self, event: str) -> None:
        try:
            self.state = TRANSITIONS[(self.state, event)]
        except KeyError:
            raise ProtocolError(f"{event!r} not allowed in state {self.state.value!r}") from None

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    # -- input ------------------------------------------------------------------------------

    def receive_payload(self, body: bytes, now: float) -> None:
        """A polling POST body arrived. Raises :class:`ProtocolError` (and closes) if malformed.

        The shell has already refused a body over maxPayload (``eio/requests.py``).
        """
        for packet in self.decode_payload(body, now):
            self.receive(packet, now)

    def decode_payload(self, body: bytes, now: float) -> list[Packet]:
        """The packets of a POST body, all checked before any is delivered (so a malformed body
        delivers nothing: the session closes with ``parse error`` and this raises
        :class:`ProtocolError`). Feed them to :meth:`receive`, in slices if there are many."""
        try:
            return decode_payload(body)
        except ProtocolError:
            self._close(DisconnectReason.PARSE_ERROR, send_close=True, now=now)
            raise

    def receive(self, packet: Packet, now: float) -> None:
        """A packet arrived on the session's current transport."""
        if self.closed:
            return
        kind = packet.type
        if kind is PacketType.MESSAGE:
            self._events.append(Message(packet.data))
        elif kind is PacketType.PONG:
            self._pong_deadline = None
            self._next_ping = now + self.config.ping_interval
        elif kind is PacketType.CLOSE:
            # The client closes: no close packet back; a pending GET gets a noop.
            self._close(DisconnectReason.TRANSPORT_CLOSE, send_close=False, now=now)
        elif kind is PacketType.NOOP:
            pass
        else:  # open, upgrade, or a ping (v4 reversed the heartbeat: clients never ping)
            self._close(DisconnectReason.TRANSPORT_ERROR, send_close=True, now=now)
            raise ProtocolError(f"unexpected {kind.name.lower()} packet from the client")

    def receive_probe(self, packet: Packet, now: float) -> Packet | None:
        """A packet arrived on a WebSocket that is probing this polling session.

        ``2probe`` → returns ``3probe`` to write on that WebSocket; ``5`` (upgrade) → returns
        ``None`` and the session now belongs to the WebSocket. Anything else raises
        :class:`ProtocolError`: the shell closes the probing WebSocket, the session stays on polling.
        """
        if packet == PING_PROBE and self.state is State.POLLING:
            self._go("probe")
            self._upgrade_deadline = now + self.config.upgrade_timeout
            return PONG_PROBE
        if packet.type is PacketType.UPGRADE and self.state is State.UPGRADING:
            self._go("upgrade")
            self.transport = "websocket"
            self._upgrade_deadline = None
            self._events.append(Upgraded())
            return None
        raise ProtocolError(f"unexpected packet during upgrade: {packet}")

    def lost(self, reason: str, now: float) -> None:
        """The transport broke under the session (e.g. the WebSocket closed): it is over."""
        if not self.closed:
            self._close(reason, send_close=False, now=now)

    def probe_failed(self) -> None:
        """The probing WebSocket broke or misbehaved: the session stays on polling."""
        if self.state is State.UPGRADING:
            self._go("probe failed")
            self._upgrade_deadline = None

    # -- output -----------------------------------------------------------------------------

    def send(self, data: str | bytes | Packet) -> None:
        """Queue a message for the client: its data, or a message :class:`Packet` built once for
        several sessions (a broadcast). Raises ``RuntimeError`` once the session is closed."""
        if self.state is State.CLOSED:
            raise RuntimeError("session is closed")
        packet = data if isinstance(data, Packet) else Packet(PacketType.MESSAGE, data)
        self._outbox.append(packet)
        self._queued += len(packet.data)
        if self._queued > self.config.max_buffer:
            self.backlog(self._queued, now=0.0)

    def close(self, reason: str = DisconnectReason.FORCED_CLOSE, now: float = 0.0) -> None:
        """Close from the server side: a close packet is queued for the client (on polling, the
        session waits up to pingTimeout for the GET that reads it)."""
        if not self.closed:
            self._close(reason, send_close=True, now=now, linger=True)

    def fail(self, reason: str, now: float) -> None:
        """The client broke a rule of the session (two GETs at once, a binary body …): closed at
        once, as for a parse error — a GET held open gets the close packet, nothing lingers."""
        if not self.closed:
            self._close(reason, send_close=True, now=now)

    def backlog(self, nbytes: int, now: float) -> None:
        """``nbytes`` wait for the client (the shell reports a WebSocket's write buffer; the
        polling queue counts itself). Past ``max_buffer`` the client is not keeping up: closed."""
        if nbytes > self.config.max_buffer and not self.closed:
            self._outbox.clear()
            self._close(DisconnectReason.TRANSPORT_ERROR, send_close=False, now=now)

    def polling_ready(self) -> bool:
        """Should a pending GET be answered now? (Packets waiting, or not plain polling any more.)"""
        return bool(self._outbox) or self.state is not State.POLLING

    def take_payload(self) -> str:
        """The body for a GET: everything queued, or a noop when nothing is.

        While upgrading, a GET is answered at once (a noop if nothing is queued) so that the client
        can pause polling; after the upgrade, a stray GET gets a noop and the queue stays for the
        WebSocket.
        """
        if self.state is State.WEBSOCKET:
            return encode_payload([NOOP])
        # at most maxPayload bytes (at least one packet) and packets_per_poll packets per answer:
        # the rest waits for the next GET, which is answered at once
        outbox, size, count = self._outbox, 0, 0
        for packet in outbox[: self.config.packets_per_poll]:
            data = packet.data  # counted in characters, with the type digit and a separator
            size += len(data) + 2 if isinstance(data, str) else 4 * (len(data) + 2) // 3 + 2
            if count and size > self.config.max_payload:
                break
            count += 1
        packets, self._outbox = outbox[:count] or [NOOP], outbox[count:]
        self._queued = sum(len(packet.data) for packet in self._outbox) if self._outbox else 0
        if self.closed and not self._outbox:
            self._forget_at = None  # the client has had its last answer
        return encode_payload(packets)

    def take_outgoing(self) -> list[Packet]:
        """Everything queued for the client, in order (for a WebSocket: one frame each)."""
        packets = self._outbox
        if packets:  # (an empty outbox is handed out as it is: nothing to allocate)
            self._outbox, self._queued = [], 0
        return packets

    def events(self) -> list[Event]:
        """What happened since the last call, in order, for the application."""
        events = self._events
        if events:
            self._events = []
        return events

    # -- time -------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeout` must next be called (``None``: never)."""
        if self.state is State.CLOSED:
            return self._forget_at
        soonest = None
        for t in (self._next_ping, self._pong_deadline, self._upgrade_deadline):
            if t is not None and (soonest is None or t < soonest):
                soonest = t
        return soonest

    def handle_timeout(self, now: float) -> None:
        """Run the timers that are due: send a ping, or close on a missing pong."""
        if self.closed:
            if self._forget_at is not None and now >= self._forget_at:
                self._forget_at = None
            return
        if self._pong_deadline is not None and now >= self._pong_deadline:
            self._close(DisconnectReason.PING_TIMEOUT, send_close=True, now=now)
            return
        if self._upgrade_deadline is not None and now >= self._upgrade_deadline:
            self._go("upgrade timeout")
            self._upgrade_deadline = None
        if self._next_ping is not None and now >= self._next_ping:
            self._outbox.append(PING)
            self._next_ping = None
            self._pong_deadline = now + self.config.ping_timeout

    @property
    def forgettable(self) -> bool:
        """True once the session is closed and nothing more is owed to the client."""
        return self.closed and self._forget_at is None

    # -- internals --------------------------------------------------------------------------

    def _close(self, reason: str, *, send_close: bool, now: float, linger: bool = False) -> None:
        self._go("close")
        self.close_reason = reason
        self._next_ping = self._pong_deadline = self._upgrade_deadline = None
        if send_close:
            self._outbox.append(CLOSE)  # a GET held open now answers with it
            # Closed on purpose over polling: keep the session a little so that the client's next
            # GET reads the close. Closed for a fault (ping timeout, parse error), the session is
            # gone at once, as in engine.io: the next request gets 400 "Session ID unknown".
            if linger and self.transport == "polling":
                self._forget_at = now + self.config.ping_timeout
        self._events.append(Closed(reason))
