"""The client side of one Engine.IO v4 session, as a state machine that does no I/O.

The Tornado shell (``sio_teach/transports/eio_client.py``) makes the requests and opens the
WebSocket; this class owns the rules:

* the handshake (:meth:`receive_payload` / :meth:`receive` with the open packet) gives the ``sid``,
  the server's ``pingInterval``, ``pingTimeout``, ``maxPayload`` and the ``upgrades`` on offer;
* the heartbeat: answer each ``2`` (ping) with a ``3`` (pong); if no ping arrives within
  pingInterval + pingTimeout, the server is gone (:meth:`next_deadline`, :meth:`handle_timeout`);
* the upgrade: :meth:`start_upgrade` gives ``2probe`` for the new WebSocket, :meth:`receive_probe`
  checks the ``3probe`` and *pauses* polling: no new GET or POST; once the GET in flight has
  returned (:meth:`receive_payload`) and the POST too (:meth:`post_done`), :meth:`finish_upgrade`
  gives the ``5`` to send and moves the session to the WebSocket;
* sending: :meth:`send` queues; :meth:`take_payload` gives one POST body of at most maxPayload
  bytes, :meth:`take_outgoing` gives WebSocket frames.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

from sio_teach.eio.events import Closed, Event, Message, Upgraded
from sio_teach.eio.packet import CLOSE, PONG, Packet, PacketType, decode_payload, encode_payload
from sio_teach.errors import ProtocolError


class State(Enum):
    OPENING = "opening"  # handshake request sent, no open packet yet
    POLLING = "open (polling)"
    UPGRADING = "upgrading"  # 2probe sent on the new WebSocket; polling still carries data
    WEBSOCKET = "open (websocket)"
    CLOSED = "closed"


TRANSITIONS: dict[tuple[State, str], State] = {
    (State.OPENING, "open polling"): State.POLLING,
    (State.OPENING, "open websocket"): State.WEBSOCKET,
    (State.POLLING, "probe"): State.UPGRADING,
    (State.UPGRADING, "upgrade"): State.WEBSOCKET,
    (State.UPGRADING, "probe failed"): State.POLLING,
    **{(state, "close"): State.CLOSED for state in State if state is not State.CLOSED},
}


@dataclass(frozen=True, slots=True)
class Handshake:
    """What the open packet told the client."""

    sid: str
    upgrades: list[str]
    ping_interval: float  # seconds
    ping_timeout: float
    max_payload: int


class ClientSession:
    """One Engine.IO session seen from the client. Create it just before the handshake."""

    def __init__(self, transport: str = "polling") -> None:
        self.state = State.OPENING
        self.transport = transport
        self.handshake: Handshake | None = None
        self.close_reason: str | None = None
        self._outbox: list[Packet] = []
        self._events: list[Event] = []
        self._dead_at: float | None = None  # no ping by then: the server is gone
        # polling keeps one GET waiting at the server: the shell polls again after each payload
        self._get_in_flight = False
        self._post_in_flight = False  # take_payload() gave a body whose POST has not returned
        self.pausing = False  # the probe succeeded: polling starts no new request

    @property
    def sid(self) -> str | None:
        return self.handshake.sid if self.handshake else None

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    def _go(self, event: str) -> None:
        try:
            self.state = TRANSITIONS[(self.state, event)]
        except KeyError:
            raise ProtocolError(f"{event!r} not allowed in state {self.state.value!r}") from None

    # -- input ------------------------------------------------------------------------------

    def receive_payload(self, body: str | bytes, now: float) -> None:
        """A polling GET answered with ``body``. Unless paused, the shell sends the next GET."""
        self._get_in_flight = False
        for packet in decode_payload(body):
            self.receive(packet, now)
        self._get_in_flight = self.state in (State.POLLING, State.UPGRADING) and not self.pausing

    def receive(self, packet: Packet, now: float) -> None:
        """A packet arrived from the server on the current transport."""
        if self.closed:
            return
        kind = packet.type
        if self.state is State.OPENING:
            if kind is not PacketType.OPEN:
                raise ProtocolError(f"expected the open packet, got {packet}")
            self._open(packet, now)
        elif kind is PacketType.MESSAGE:
            self._events.append(Message(packet.data))
        elif kind is PacketType.PING:
            self._outbox.append(PONG)  # "the client must answer with a pong packet"
            self._arm_heartbeat(now)
        elif kind is PacketType.CLOSE:
            self._close("transport close")
        elif kind is not PacketType.NOOP:  # a noop asks for nothing
            raise ProtocolError(f"unexpected {kind.name.lower()} packet from the server")

    def _open(self, packet: Packet, now: float) -> None:
        try:
            info = json.loads(packet.data)
            handshake = Handshake(
                sid=info["sid"],
                upgrades=info.get("upgrades", []),
                ping_interval=info["pingInterval"] / 1000,
                ping_timeout=info["pingTimeout"] / 1000,
                max_payload=info.get("maxPayload", 1_000_000),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ProtocolError(f"bad open packet: {error}") from None
        typed = (handshake.sid, str), (handshake.upgrades, list), (handshake.max_payload, int)
        if not all(isinstance(value, kind) for value, kind in typed):
            raise ProtocolError(f"bad open packet: {packet.data[:100]}")
        self.handshake = handshake
        self._go("open " + self.transport)
        self._arm_heartbeat(now)

    def _arm_heartbeat(self, now: float) -> None:
        assert self.handshake is not None
        self._dead_at = now + self.handshake.ping_interval + self.handshake.ping_timeout

    # -- upgrade ----------------------------------------------------------------------------

    def start_upgrade(self) -> Packet:
        """Call when the new WebSocket is open: returns ``2probe`` to send on it."""
        self._go("probe")
        return Packet(PacketType.PING, "probe")

    def receive_probe(self, packet: Packet) -> None:
        """The first frame on the probing WebSocket. Raises ProtocolError unless it is ``3probe``.
        A good probe pauses polling (engine.io-client ``Polling.pause``)."""
        if packet != Packet(PacketType.PONG, "probe"):
            self.probe_failed()
            raise ProtocolError(f"probe answered with {packet}")
        self.pausing = self.state is State.UPGRADING

    @property
    def paused(self) -> bool:
        """Polling is paused: the probe succeeded and neither a GET nor a POST is in flight."""
        return self.pausing and not (self._get_in_flight or self._post_in_flight)

    def finish_upgrade(self) -> Packet:
        """Call once :attr:`paused`: returns ``5`` for the WebSocket. Raises ProtocolError before
        (the spec: the upgrade waits until the pending GET and POST have returned)."""
        if self.state is State.UPGRADING and not self.paused:
            raise ProtocolError("polling is not paused: a GET or POST is still in flight")
        self._go("upgrade")
        self.pausing = False
        self.transport = "websocket"
        self._events.append(Upgraded())
        return Packet(PacketType.UPGRADE)

    def probe_failed(self) -> None:
        if self.state is State.UPGRADING:
            self._go("probe failed")
        if self.pausing:  # polling resumes: the shell sends a GET again
            self.pausing, self._get_in_flight = False, True

    # -- output -----------------------------------------------------------------------------

    def send(self, data: str | bytes) -> None:
        """Queue a message. Raises ``RuntimeError`` once closed."""
        if self.closed:
            raise RuntimeError("session is closed")
        self._outbox.append(Packet(PacketType.MESSAGE, data))

    def close(self) -> None:
        """Close from the client side: a close packet is queued for the server."""
        if not self.closed:
            self._outbox.append(CLOSE)
            self._close("io client disconnect")

    def lost(self, reason: str) -> None:
        """The transport failed (connection refused, WebSocket closed, HTTP error)."""
        if not self.closed:
            self._close(reason)

    def has_outgoing(self) -> bool:
        return bool(self._outbox)

    def take_outgoing(self) -> list[Packet]:
        """Everything queued, in order (for a WebSocket: one frame each)."""
        packets, self._outbox = self._outbox, []
        return packets

    def take_payload(self) -> str:
        """One POST body: as many queued packets as fit in the server's maxPayload (at least one)."""
        limit = self.handshake.max_payload if self.handshake else 1_000_000
        # n packets need n - 1 separators (engine.io-client _getWritablePackets)
        count, size = 0, -1
        for packet in self._outbox:
            size += len(encode_payload([packet]).encode()) + 1
            if count and size > limit:
                break
            count += 1
        batch, self._outbox = self._outbox[:count], self._outbox[count:]
        self._post_in_flight = True
        return encode_payload(batch)

    def post_done(self) -> None:
        """The POST of the last :meth:`take_payload` body has returned."""
        self._post_in_flight = False

    def events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    # -- time -------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self._dead_at  # None once closed

    def handle_timeout(self, now: float) -> None:
        """No ping for pingInterval + pingTimeout: the server (or the network) is gone."""
        if self._dead_at is not None and now >= self._dead_at:
            self._close("ping timeout")

    def _close(self, reason: str) -> None:
        self._go("close")
        self.close_reason = reason
        self._dead_at = None
        self.pausing = False
        self._events.append(Closed(reason))
