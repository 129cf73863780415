"""Socket.IO v5 packets: the value type, the encoder, and the decoder that reassembles attachments.

Pure code: text and bytes go in, packets come out (and back). No sockets, no clock, no event loop.

The wire format (socket.io-protocol ``Readme.md``, "Packet encoding")::

    <packet type>[<# of binary attachments>-][<namespace>,][<acknowledgment id>][JSON-stringified payload without binary]
    + binary attachments extracted

Design choice: BINARY_EVENT and BINARY_ACK are *wire* types. A :class:`Packet` you build holds an
EVENT or ACK whose data may contain ``bytes`` anywhere; :func:`encode` sends it as BINARY_EVENT /
BINARY_ACK exactly when bytes are inside, and :class:`Decoder` hands back EVENT / ACK with the bytes
put back, as the reference decoder (socket.io-parser ``Decoder.add``) does. So, for any valid packet
``p`` of type EVENT or ACK, decoding ``encode(p)`` gives ``p`` again. A packet built as BINARY_* is
encoded as if it said EVENT / ACK (and as plain text when it holds no bytes).

Where this decoder is stricter than socket.io-parser, it follows the spec's words: EVENT and ACK
payloads are mandatory, an ACK needs an ack id, only EVENT and ACK carry an ack id, ack ids stop at
2**53 - 1 (what a JS Number holds exactly), placeholder ``num`` must be an integer, and JSON's
``NaN``/``Infinity`` (refused by ``JSON.parse``) are refused.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any

from sio_teach.errors import ProtocolError

MAX_ATTACHMENTS = 10  # socket.io-parser DecoderOptions.maxAttachments, "@default 10"
MAX_DEPTH = 100  # nesting levels we accept: deeper data could not be encoded again (recursion)
MAX_ACK_ID = 2**53 - 1  # JS Number.MAX_SAFE_INTEGER: the largest id a JS peer holds exactly
# socket.io-parser: "These strings must not be used as event names, as they have a special meaning."
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)
_DIGITS = "0123456789"  # ASCII only: str.isdigit() would also accept "²" and "٣"
_BINARY_TYPES = (bytes, bytearray, memoryview)
_SCALARS = (str, int, float, type(None))  # what holds no bytes for sure (bool is an int)


class PacketType(IntEnum):
    """The seven Socket.IO packet types; the value is the first character on the wire."""

    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


_PLAIN = {PacketType.BINARY_EVENT: PacketType.EVENT, PacketType.BINARY_ACK: PacketType.ACK}
_WIRE_TYPES = {str(int(t)): t for t in PacketType}  # the first character -> the type
_BINARY = {plain: binary for binary, plain in _PLAIN.items()}


@dataclass(frozen=True, slots=True)
class Packet:
    """One Socket.IO packet, an immutable value. ``data`` is the JSON payload (``None``: absent)."""

    type: PacketType
    nsp: str = "/"
    data: Any = None
    id: int | None = None  # the "acknowledgment id"

    def __post_init__(self) -> None:
        if type(self.type) is not PacketType:  # so Packet(2, ...) works too
            object.__setattr__(self, "type", PacketType(self.type))

    @classmethod
    def connect(cls, nsp: str = "/", data: dict[str, Any] | None = None) -> Packet:
        """CONNECT: from a client, ``data`` is the auth object; from a server, ``{"sid": ...}``."""
        return cls(PacketType.CONNECT, nsp, data)

    @classmethod
    def connect_error(cls, nsp: str, message: str, data: Any = None) -> Packet:
        """CONNECT_ERROR, a server refusing a namespace: ``{"message": ...[, "data": ...]}``."""
        payload: dict[str, Any] = {"message": message}
        if data is not None:
            payload["data"] = data
        return cls(PacketType.CONNECT_ERROR, nsp, payload)

    @classmethod
    def disconnect(cls, nsp: str = "/") -> Packet:
        """DISCONNECT from one namespace; it has no payload and expects no reply."""
        return cls(PacketType.DISCONNECT, nsp)

    @classmethod
    def event(cls, nsp: str, name: str, *args: Any, id: int | None = None) -> Packet:
        """EVENT ``name(*args)``; give ``id`` to ask the receiver for an ACK with that id."""
        return cls(PacketType.EVENT, nsp, [name, *args], id)

    @classmethod
    def ack(cls, nsp: str, id: int, *args: Any) -> Packet:
        """ACK answering the EVENT that carried ``id``; ``args`` are the handler's return values."""
        return cls(PacketType.ACK, nsp, list(args), id)


def has_binary(data: Any) -> bool:
    """Whether ``data`` holds bytes anywhere in its lists and dicts (socket.io-parser hasBinary).
    (A loop, not ``any(...)`` over a generator: it runs for every EVENT and ACK sent.)"""
    if isinstance(data, _BINARY_TYPES):
        return True
    if isinstance(data, dict):
        data = data.values()
    elif not isinstance(data, (list, tuple)):
        return False
    for item in data:
        if not isinstance(item, _SCALARS) and has_binary(item):
            return True
    return False


def deconstruct(data: Any) -> tuple[Any, list[bytes]]:
    """Replace each bytes value by ``{"_placeholder": true, "num": i}``, numbered depth-first in
    traversal order (socket.io-parser deconstructPacket). Returns (new data, attachments). Call it
    yourself only to inspect; :func:`encode` calls it when needed."""
    attachments: list[bytes] = []

    def walk(value: Any) -> Any:
        if isinstance(value, _BINARY_TYPES):
            attachments.append(bytes(value))
            return {"_placeholder": True, "num": len(attachments) - 1}
        if isinstance(value, (list, tuple)):
            return [walk(item) for item in value]
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        return value

    return walk(data), attachments


def reconstruct(data: Any, attachments: list[bytes]) -> Any:
    """Put each attachment back where its placeholder stands (socket.io-parser reconstructPacket).
    Raises ProtocolError for a placeholder whose ``num`` is not an index into ``attachments``."""
    if isinstance(data, list):
        return [reconstruct(item, attachments) for item in data]
    if isinstance(data, dict):
        if data.get("_placeholder") is True:
            num = data.get("num")
            if type(num) is not int or not 0 <= num < len(attachments):
                raise ProtocolError(f"illegal attachments: placeholder num {num!r}")
            return attachments[num]
        return {key: reconstruct(item, attachments) for key, item in data.items()}
    return data


def packet_problem(
    ptype: PacketType, nsp: str, data: Any, present: bool, ack_id: int | None
) -> str | None:
    """Why this packet breaks the spec, or None. One rule table for both directions: encode() turns
    a problem into ValueError (our bug), the Decoder into ProtocolError (the peer's)."""
    ptype = _PLAIN.get(ptype, ptype)
    if not isinstance(nsp, str) or not nsp.startswith("/") or "," in nsp:
        # a comma ends the namespace on the wire (socket.io-parser isNamespaceValid)
        return f"invalid namespace {nsp!r}: must start with '/' and contain no ','"
    if ack_id is not None:
        if ptype not in (PacketType.EVENT, PacketType.ACK):
            return f"a {ptype.name} packet carries no ack id"
        if type(ack_id) is not int or not 0 <= ack_id <= MAX_ACK_ID:
            return f"ack id {ack_id!r} is not an integer in 0..2**53-1"
    if ptype is PacketType.CONNECT:  # the payload is optional: the auth object, or {"sid": ...}
        ok = not present or isinstance(data, dict)
    elif ptype is PacketType.DISCONNECT:
        ok = not present
    elif ptype is PacketType.CONNECT_ERROR:  # socket.io-parser isPayloadValid: string or object
        ok = isinstance(data, (dict, str))
    elif ptype is PacketType.EVENT:
        # spec: "The payload is mandatory and MUST be a non-empty array." The reference also lets
        # the event name be a number, but not one of the reserved names.
        first = data[0] if isinstance(data, list) and data else None
        if isinstance(first, str) and first in RESERVED_EVENTS:
            return f"event name {first!r} is reserved"
        ok = isinstance(first, (str, int, float)) and not isinstance(first, bool)
    else:  # ACK: "The payload is mandatory and MUST be an array (possibly empty)."
        if ack_id is None:
            return "an ACK packet needs the ack id of the event it answers"
        ok = isinstance(data, list)
    return None if ok else f"invalid {ptype.name} payload: {data!r:.80}"


def encode(packet: Packet) -> tuple[str, list[bytes]]:
    """Turn a packet into its wire form; call once per packet, or once per broadcast (the result
    can be sent to any number of sockets). Returns ``(text, attachments)``: send ``text`` as one
    Engine.IO message, then each attachment as one binary message, in order. Raises ValueError (or
    TypeError, for data JSON cannot hold) for a packet the spec forbids. The receiver's limit of
    MAX_ATTACHMENTS is not enforced here."""
    ptype = _PLAIN.get(packet.type, packet.type)
    problem = packet_problem(ptype, packet.nsp, packet.data, packet.data is not None, packet.id)
    if problem:
        raise ValueError(problem)
    data, attachments = packet.data, []
    if ptype in _BINARY and has_binary(data):
        data, attachments = deconstruct(data)
    text = str(int(ptype))
    if attachments:  # "<# of binary attachments>-"
        text = f"{int(_BINARY[ptype])}{len(attachments)}-"
    # "the namespace is only included if it is different from the main namespace (`/`)"
    if packet.nsp != "/":
        text += packet.nsp + ","
    if packet.id is not None:
        text += str(packet.id)
    if data is not None:
        body = _TO_JSON(data)
        if not body.isascii() and not _utf8_safe(body):
            # a lone surrogate ("\ud800") cannot travel as UTF-8: escape it, as JSON.stringify does
            body = _TO_ASCII_JSON(data)
        text += body
    return text, attachments


# JSON as JSON.stringify writes it (no spaces; NaN refused), with encoders built once
_TO_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_TO_ASCII_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def _utf8_safe(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):  # "1e400": JSON.parse gives Infinity, which JSON cannot carry back
        raise ValueError(f"number out of range: {literal[:20]}")
    return value


def _too_deep(text: str) -> bool:
    """Nesting deeper than MAX_DEPTH? Only payloads with many brackets are walked (cheap)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # JSON.parse refuses NaN and Infinity; so do we


_JSON = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)  # built once


def _read_digits(text: str, start: int, max_digits: int) -> tuple[int | None, int]:
    """Read the run of ASCII digits at ``text[start:]``: (its value or None, the index after it)."""
    end = start
    while end < len(text) and text[end] in _DIGITS:
        end += 1
        if end - start > max_digits:
            raise ProtocolError(f"number too long at index {start}")
    return (int(text[start:end]) if end > start else None), end


def decode_text(text: str, max_attachments: int = MAX_ATTACHMENTS) -> tuple[Packet, int]:
    """Parse one text message: (packet, number of attachments still to come). With attachments,
    the packet's data still holds placeholders: prefer :class:`Decoder`, which puts bytes back."""
    if not text or text[0] not in "0123456":
        raise ProtocolError(f"unknown packet type {text[:1]!r}")
    wire_type = _WIRE_TYPES[text[0]]
    i, attachments = 1, 0
    if wire_type in _PLAIN:  # "<# of binary attachments>-" is mandatory for the binary types
        count, i = _read_digits(text, 1, 4)
        if count is None or count < 1 or text[i : i + 1] != "-":
            raise ProtocolError("illegal attachments: expected '<count>-' after the type")
        if count > max_attachments:
            raise ProtocolError(f"too many attachments: {count} > {max_attachments}")
        attachments, i = count, i + 1
    nsp = "/"
    if text.startswith("/", i):  # the namespace runs to the next ',' or to the end ("40/custom")
        comma = text.find(",", i)
        end = len(text) if comma == -1 else comma
        nsp, i = text[i:end], end + 1
    ack_id, i = _read_digits(text, i, 16)
    body = text[i:]
    if _too_deep(body):
        raise ProtocolError(f"JSON payload nested deeper than {MAX_DEPTH} levels")
    try:
        data = _JSON.decode(body) if body else None
    except RecursionError:
        raise ProtocolError("JSON payload nested too deeply") from None
    except ValueError as exc:  # json.JSONDecodeError, NaN/Infinity, ints too long to convert
        raise ProtocolError(f"invalid JSON payload: {exc}") from None
    problem = packet_problem(wire_type, nsp, data, bool(body), ack_id)
    if problem:
        raise ProtocolError(problem)
    return Packet(_PLAIN.get(wire_type, wire_type), nsp, data, ack_id), attachments


class Decoder:
    """Turns the messages of one connection back into packets, reassembling binary attachments.

    Call :meth:`receive_text` for each text message and :meth:`receive_binary` for each binary
    message, in wire order; each returns the completed Packet, or None while attachments are still
    awaited. Both raise ProtocolError on any violation; after that the decoder refuses further input
    (RuntimeError): the connection is to be closed.
    """

    def __init__(
        self, max_attachments: int = MAX_ATTACHMENTS, max_bytes: int | None = None
    ) -> None:
        self.max_attachments = max_attachments
        self.max_bytes = max_bytes  # the attachments of one packet, together (None: no bound)
        self._bytes = 0
        self._partial: Packet | None = None  # a binary packet whose placeholders await their bytes
        self._expected = 0
        self._buffers: list[bytes] = []
        self._failed = False

    @property
    def awaiting(self) -> int:
        """How many binary messages are still expected before the pending packet is complete."""
        return self._expected - len(self._buffers)

    def receive_text(self, text: str) -> Packet | None:
        """Feed one text message (without the Engine.IO ``4`` prefix)."""
        self._check_usable()
        try:
            if not isinstance(text, str):
                raise ProtocolError(f"expected a text message, got {type(text).__name__}")
            if self._partial is not None:
                raise ProtocolError("got plaintext data when reconstructing a packet")
            packet, self._expected = decode_text(text, self.max_attachments)
        except ProtocolError:
            self._failed = True
            raise
        if self._expected == 0:
            return packet
        self._partial = packet
        return None

    def receive_binary(self, data: bytes) -> Packet | None:
        """Feed one binary message: the next attachment of the pending BINARY_EVENT / BINARY_ACK."""
        self._check_usable()
        try:
            if not isinstance(data, (bytes, bytearray)):
                raise ProtocolError(f"expected a binary message, got {type(data).__name__}")
            if self._partial is None:
                raise ProtocolError("got binary data when not reconstructing a packet")
            self._bytes += len(data)
            if self.max_bytes is not None and self._bytes > self.max_bytes:
                raise ProtocolError(f"attachments over {self.max_bytes} bytes")
            self._buffers.append(bytes(data))
            if self.awaiting:
                return None
            packet = replace(self._partial, data=reconstruct(self._partial.data, self._buffers))
        except ProtocolError:  # (no RecursionError: decode_text bounded the depth)
            self._failed = True
            raise
        self._partial, self._expected, self._buffers, self._bytes = None, 0, [], 0
        return packet

    def _check_usable(self) -> None:
        if self._failed:
            raise RuntimeError("this Decoder saw a protocol error; close the connection")
