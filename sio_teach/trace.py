"""The packet tracer: one record for every packet that crosses the wire.

The transports call :meth:`Tracer.record` at the exact point where bytes are written to or read
from a socket. A record says when (seconds since the tracer started), where (node), which session
(a stable alias ``S1``, ``S2``… in order of first appearance, so outputs are deterministic), which way
(``>`` sent, ``<`` received — the websockets library's convention), over what (``GET``, ``POST``,
``ws``), and what the packet looked like on the wire. For an Engine.IO ``message`` that carries a
Socket.IO packet, the line names both layers::

    S1 > GET  eio open     0{"sid":"…","upgrades":["websocket"],"pingInterval":300,…}
    S1 < POST sio CONNECT  40{"token":"abc"}
    S1 > ws   sio EVENT    42["chat","hi"]

A binary message is an attachment of the JSON parser (``eio binary``), unless
:attr:`Tracer.describe_binary` (set by a server or client to its parser's ``describe``) says it is
a packet of its own, as with the msgpack parser::

    S1 > ws   sio EVENT    msgpack {"type":2,"data":["chat","hi"],"nsp":"/"}

Beside the packets, the long-polling transport notes its HTTP requests (:meth:`Tracer.request`):
when a GET arrives and is held (``opened``), when it is ``answered``, and the same for each POST.
They are kept apart, in :attr:`Tracer.requests`, so the text trace stays a list of packets; the
sequence diagram draws them as spans (a held GET is a bar from its arrival to its answer).

A disabled tracer costs one attribute test per packet (the callers check :attr:`enabled`).
"""

from __future__ import annotations

import binascii
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

EIO_TYPES = ["open", "close", "ping", "pong", "message", "upgrade", "noop"]
SIO_TYPES = ["CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK"]


@dataclass(frozen=True, slots=True)
class Record:
    time: float  # seconds since the tracer started (or was cleared)
    node: str  # "server", "client", "node-a" …
    session: str  # stable alias: S1, S2 …
    direction: str  # ">" sent, "<" received
    transport: str  # "GET", "POST" or "ws"
    layer: str  # "eio", or "sio" for a message carrying a Socket.IO packet
    kind: str  # "open", "ping", "message", "EVENT", "binary" …
    wire: str  # the packet as on the wire, trimmed
    size: int  # bytes on the wire

    def line(self, width: int = 100, times: bool = False) -> str:
        """The record as one text line (without the time unless ``times``)."""
        head = f"{self.session} {self.direction} {self.transport:<4} {self.layer} {self.kind:<13}"
        text = f"{head} {self.wire}"
        if len(text) > width:
            text = text[: width - 1] + "…"
        return f"{self.time * 1000:9.1f} ms {text}" if times else text


@dataclass(frozen=True, slots=True)
class Request:
    """One end of an HTTP request of long-polling: it arrived (``opened``) or was ``answered``."""

    time: float  # seconds since the tracer started (or was cleared)
    node: str
    session: str  # the same alias as the packets': S1, S2 …
    method: str  # "GET" or "POST"
    phase: str  # "opened" or "answered"

    def line(self) -> str:
        """The event as one text line, without its time (deterministic)."""
        return f"{self.session}   {self.method:<4} {self.phase}"


def _unbase64(text: str) -> bytes:
    try:
        return binascii.a2b_base64(text)
    except binascii.Error:
        return b""


class Tracer:
    """Collects :class:`Record` objects; renders them as text, rows, or plots (see ``lab.py``).

    ``sio=True`` names the Socket.IO packet inside each Engine.IO message. ``listeners`` are called
    with each new record (a notebook uses one to grow a live display).
    """

    def __init__(
        self,
        node: str = "server",
        *,
        enabled: bool = True,
        sio: bool = False,
        clock: Callable[[], float] = time.monotonic,
        limit: int = 100_000,
    ) -> None:
        self.node = node
        self.enabled = enabled
        self.sio = sio
        self.clock = clock
        self.limit = limit
        self.records: list[Record] = []
        self.requests: list[Request] = []  # the HTTP requests of long-polling, opened/answered
        self.listeners: list[Callable[[Record], None]] = []
        self._aliases: dict[str, str] = {}
        self._start = clock()
        # a binary message -> (packet type, readable text), or None: not a packet of its own
        self.describe_binary: Callable[[bytes], tuple[str, str] | None] | None = None

    def alias(self, sid: str) -> str:
        """The stable name of a session id: S1 for the first one seen, S2 for the next…"""
        if sid not in self._aliases:
            self._aliases[sid] = f"S{len(self._aliases) + 1}"
        return self._aliases[sid]

    def record(self, sid: str, direction: str, transport: str, wire: str | bytes) -> None:
        """Note one packet, as written to or read from the wire."""
        if isinstance(wire, bytes):
            layer, kind, shown = self._binary(wire)
        else:
            layer, kind = self._describe(wire)
            shown = wire.replace(sid, self.alias(sid)) if sid in wire else wire
            if kind == "binary" and self.describe_binary is not None:  # polling: b<base64>
                layer, kind, described = self._binary(_unbase64(wire[1:]))
                if layer == "sio":
                    shown = described
        rec = Record(
            round(self.clock() - self._start, 6),
            self.node,
            self.alias(sid),
            direction,
            transport,
            layer,
            kind,
            shown[:200],
            len(wire) if isinstance(wire, bytes) else len(wire.encode()),
        )
        if len(self.records) < self.limit:
            self.records.append(rec)
        for listener in self.listeners:
            listener(rec)

    def record_payload(self, sid: str, direction: str, transport: str, body: str) -> None:
        """Note each packet of a long-polling payload (packets are separated by ``\\x1e``)."""
        for part in body.split("\x1e"):
            self.record(sid, direction, transport, part)

    def request(self, sid: str, method: str, phase: str) -> None:
        """Note that an HTTP request of session ``sid`` was ``opened`` (it arrived; a GET is then
        held until there is something to send) or ``answered``. Call it where the transport
        starts and ends serving the request."""
        if len(self.requests) < self.limit:
            now = round(self.clock() - self._start, 6)
            self.requests.append(Request(now, self.node, self.alias(sid), method, phase))

    def spans(self) -> list[tuple[Request, Request | None]]:
        """Each request as (opened, answered), in the order they were opened; ``None``: not
        answered yet (a GET still held)."""
        spans: list[tuple[Request, Request | None]] = []
        waiting: dict[tuple[str, str], list[int]] = {}
        for event in self.requests:
            key = (event.session, event.method)
            if event.phase == "opened":
                waiting.setdefault(key, []).append(len(spans))
                spans.append((event, None))
            elif waiting.get(key):
                index = waiting[key].pop(0)
                spans[index] = (spans[index][0], event)
        return spans

    def _binary(self, data: bytes) -> tuple[str, str, str]:
        """(layer, kind, shown) of a binary message."""
        described = self.describe_binary(data) if self.sio and self.describe_binary else None
        if described is not None:
            return "sio", described[0], described[1]
        return "eio", "binary", f"<binary {len(data)} B: {data[:8].hex(' ')}>"

    def _describe(self, wire: str) -> tuple[str, str]:
        if wire.startswith("b"):
            return "eio", "binary"
        if not wire or not "0" <= wire[0] <= "6":
            return "eio", "?"
        if wire[0] == "4" and self.sio and len(wire) > 1 and "0" <= wire[1] <= "6":
            return "sio", SIO_TYPES[int(wire[1])]
        return "eio", EIO_TYPES[int(wire[0])]

    def clear(self) -> None:
        """Forget every record and restart the clock (aliases are kept)."""
        self.records.clear()
        self.requests.clear()
        self._start = self.clock()

    def lines(self, records: Iterable[Record] | None = None, **kwargs: object) -> list[str]:
        return [r.line(**kwargs) for r in (self.records if records is None else records)]  # type: ignore[arg-type]

    def text(self, **kwargs: object) -> str:
        return "\n".join(self.lines(**kwargs))

    def rows(self) -> list[dict[str, object]]:
        """The records as dictionaries (for a table or a plot)."""
        return [asdict(r) for r in self.records]

    def __str__(self) -> str:
        return self.text()
