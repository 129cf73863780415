"""Engine.IO v4 packets and payloads: the bytes on the wire.

Spec: socketio/engine.io-protocol, README.md, "Packet encoding" and "Payload".

A packet is a type digit followed by data::

    0{"sid":"..."}   open        3probe   pong
    1                close       4hello   message (text)
    2                ping        5        upgrade
    2probe           ping        6        noop

A binary message has no type digit on a WebSocket (the frame is binary), and is written as
``b`` + base64 inside an HTTP long-polling payload, where packets are joined by the record
separator ``\\x1e``::

    4hello\\x1ebAQIDBA==     ->  [message "hello", message b"\\x01\\x02\\x03\\x04"]

Call :func:`encode_ws` / :func:`decode_ws` for WebSocket frames and :func:`encode_payload` /
:func:`decode_payload` for polling bodies.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

from sio_teach.errors import ProtocolError

SEPARATOR = "\x1e"  # "the packets are separated by the record separator character: \x1e"


class PacketType(IntEnum):
    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


@dataclass(frozen=True, slots=True)
class Packet:
    """One Engine.IO packet. ``data`` is ``str`` for text, ``bytes`` for a binary message."""

    type: PacketType
    data: str | bytes = ""
    # The WebSocket frame that carries this packet from a server, once :meth:`server_frame` has
    # built it. Not part of the value: a broadcast queues *one* Packet to every recipient's
    # session, and the frame is built for the first and reused by the others.
    _frame: bytes | None = field(default=None, init=False, compare=False, repr=False)

    @property
    def binary(self) -> bool:
        return isinstance(self.data, bytes)

    def server_frame(self) -> bytes:
        """This packet as a server's WebSocket frame (see :func:`websocket_frame`), built once."""
        built = self._frame
        if built is None:
            built = websocket_frame(encode_ws(self))
            object.__setattr__(self, "_frame", built)  # the memo above; the value is unchanged
        return built


# Packets the protocol uses often, built once.
PING = Packet(PacketType.PING)
PONG = Packet(PacketType.PONG)
NOOP = Packet(PacketType.NOOP)
CLOSE = Packet(PacketType.CLOSE)
UPGRADE = Packet(PacketType.UPGRADE)
PING_PROBE = Packet(PacketType.PING, "probe")
PONG_PROBE = Packet(PacketType.PONG, "probe")


def encode_ws(packet: Packet) -> str | bytes:
    """Return the WebSocket frame for ``packet``: text ``"<type><data>"`` or raw bytes."""
    if isinstance(packet.data, bytes):
        if packet.type != PacketType.MESSAGE:
            raise ValueError("only message packets can carry binary data")
        return packet.data  # "binary payloads are sent as is" (no type prefix)
    return f"{packet.type}{packet.data}"


def websocket_frame(payload: str | bytes, deflate: Callable[[bytes], bytes] | None = None) -> bytes:
    """The WebSocket frame that carries ``payload`` from a server (RFC 6455 §5.2): FIN and the
    opcode (0x1 text, 0x2 binary), the length in 7, 16 or 64 bits, no mask (a server never masks),
    then the payload.

    With ``deflate`` (the connection's permessage-deflate compressor, when the client negotiated
    it: ``transports/compression.py``) the payload is compressed and RSV1 is set: "the RSV1 bit
    is set on the first frame of a compressed message" (RFC 7692 §6). Such a frame belongs to one
    connection (its compressor keeps the previous messages as context) and is never shared.

    The server writes these bytes straight to the TCP stream instead of calling Tornado's
    ``write_message``, which wraps every write in a new asyncio Task; with a frame built once per
    packet, a broadcast to 200 sessions builds one frame, not 200.
    """
    if isinstance(payload, str):
        opcode, payload = 0x81, payload.encode()
    else:
        opcode = 0x82
    if deflate is not None:
        opcode |= 0x40  # RSV1: this message is compressed
        payload = deflate(payload)
    n = len(payload)
    if n < 126:
        header = bytes((opcode, n))
    elif n < 65536:
        header = struct.pack("!BBH", opcode, 126, n)
    else:
        header = struct.pack("!BBQ", opcode, 127, n)
    return header + payload


def decode_ws(frame: str | bytes) -> Packet:
    """Parse one WebSocket frame. Raises :class:`ProtocolError` on a malformed frame."""
    if isinstance(frame, bytes):
        return Packet(PacketType.MESSAGE, frame)
    return _decode_text(frame)


def encode_payload(packets: list[Packet]) -> str:
    """Return the HTTP long-polling body carrying ``packets`` (binary as ``b`` + base64)."""
    parts = []
    for packet in packets:
        if isinstance(packet.data, bytes):
            if packet.type != PacketType.MESSAGE:
                raise ValueError("only message packets can carry binary data")
            parts.append("b" + base64.b64encode(packet.data).decode("ascii"))
        else:
            parts.append(f"{packet.type}{packet.data}")
    return SEPARATOR.join(parts)


def decode_payload(body: str | bytes) -> list[Packet]:
    """Parse an HTTP long-polling body. Raises :class:`ProtocolError` on any malformed packet."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("payload is not valid UTF-8") from None
    packets = []
    for part in body.split(SEPARATOR):
        if part.startswith("b"):
            try:
                data = base64.b64decode(part[1:], validate=True)
            except (binascii.Error, ValueError):
                raise ProtocolError("invalid base64 in binary packet") from None
            packets.append(Packet(PacketType.MESSAGE, data))
        else:
            packets.append(_decode_text(part))
    return packets


_TYPES = {str(int(kind)): kind for kind in PacketType}  # "0" → OPEN … "6" → NOOP
# a packet without data, shared (a noop, a pong)
_BARE = {kind: Packet(kind) for kind in PacketType}


def _decode_text(text: str) -> Packet:
    kind = _TYPES.get(text[:1])
    if kind is None:
        raise ProtocolError(f"unknown packet type in {text[:20]!r}")
    return _BARE[kind] if len(text) == 1 else Packet(kind, text[1:])
