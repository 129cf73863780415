"""The msgpack parser: each Socket.IO packet is ONE binary Engine.IO message holding a msgpack map.

The wire format of npm ``socket.io-msgpack-parser`` 3.x (its ``index.js``, on ``notepack.io``):

* ``Encoder.encode(packet)`` is ``[msgpack.encode(packet)]``: the packet object itself, as one
  map. Its keys are ``type``, ``data`` (left out when there is none), ``id`` (only with an ack id)
  and ``nsp`` (always, ``"/"`` included). We write them in that order, the order in which the
  reference server builds an emitted packet, so a server's EVENT is byte for byte the same.
* Binary values stay where they are, as msgpack ``bin``: no placeholders, no attachments, and so
  no BINARY_EVENT / BINARY_ACK on the wire ("invalid packet type" for 5 and 6).
* ``Decoder.add`` decodes one message and checks it (``checkPacket``): ``type`` an integer 0..4,
  ``nsp`` a string, ``data`` as the type requires (``isDataValid``: CONNECT none or an object,
  DISCONNECT none, CONNECT_ERROR a string or an object, EVENT and ACK an array), ``id`` none or
  an integer. Other keys are ignored (socket.io-client adds ``options: {compress: true}``).
  On top of that we apply the rules of the JSON parser (``packet.packet_problem``: an EVENT is a
  non-empty array with an event name that is not reserved, an ACK has an id, ids within
  0..2**53-1, a namespace starts with ``/``) and refuse trailing bytes, data nested deeper than
  MAX_DEPTH and maps whose keys are not strings.

notepack.io writes JavaScript's ``undefined`` as a fixext 1 of type 0 (``d4 00 00``); the
reference server's CONNECT reply holds one (``{sid, pid: undefined}``). It is read as the JSON
parser would have carried it: a key whose value is undefined is left out of its map, an
undefined array item becomes None. An ArrayBuffer or a typed array (what a browser sends as
binary) is an ext of type 0 too, with its bytes: it is read as bytes, like a ``bin``.

Anything refused raises ProtocolError: the connection closes with "parse error", as for bad JSON.
"""

from __future__ import annotations

import json
from typing import Any

from sio_teach.errors import ProtocolError
from sio_teach.sio.packet import MAX_DEPTH, Packet, PacketType, packet_problem

try:
    import msgpack
except ImportError:  # pragma: no cover - the error says what to install
    msgpack = None

MISSING = "the msgpack parser needs the msgpack package: pip install 'sio_teach[msgpack]'"
_PLAIN = {PacketType.BINARY_EVENT: PacketType.EVENT, PacketType.BINARY_ACK: PacketType.ACK}
_WIRE_TYPES = range(PacketType.CONNECT, PacketType.CONNECT_ERROR + 1)  # checkPacket: 0..4


class _Undefined:
    """JavaScript's ``undefined`` as notepack.io writes it (fixext 1, type 0)."""


UNDEFINED = _Undefined()


def _ext(code: int, data: bytes) -> Any:
    if code != 0:
        return msgpack.ExtType(code, data)
    # notepack.io's type 0: a fixext 1 is undefined; an ext 8/16/32 is an ArrayBuffer or a typed
    # array (a browser's binary, a Uint8Array), read as bytes. msgpack hands both over alike: a
    # one-byte ArrayBuffer is taken for undefined.
    return UNDEFINED if len(data) == 1 else data


def to_map(packet: Packet) -> dict[str, Any]:
    """The packet object the JS encoder is given: ``{type, data?, id?, nsp}``. Raises
    ValueError for a packet the spec forbids, as ``packet.encode`` does."""
    ptype = _PLAIN.get(packet.type, packet.type)
    problem = packet_problem(ptype, packet.nsp, packet.data, packet.data is not None, packet.id)
    if problem:
        raise ValueError(problem)
    out: dict[str, Any] = {"type": int(ptype)}
    if packet.data is not None:
        out["data"] = packet.data
    if packet.id is not None:
        out["id"] = packet.id
    out["nsp"] = packet.nsp
    return out


def encode(packet: Packet) -> bytes:
    """``packet`` as the one binary message that carries it. Raises ValueError for a packet the
    spec forbids, TypeError for data msgpack cannot hold."""
    if msgpack is None:
        raise ImportError(MISSING)
    try:
        return msgpack.packb(to_map(packet), use_bin_type=True)  # bytes → bin, str → str
    except OverflowError as exc:  # an int beyond 64 bits
        raise ValueError(f"cannot encode: {exc}") from None


def unpack(data: bytes) -> dict[str, Any]:
    """The map of one message, undefined keys left out; ProtocolError if it is not one map."""
    if msgpack is None:
        raise ImportError(MISSING)
    if not isinstance(data, (bytes, bytearray)):
        raise ProtocolError(f"expected a binary message, got {type(data).__name__}")
    try:  # one object, nothing after it (notepack.io: "N trailing bytes"); keys are strings
        obj = msgpack.unpackb(data, raw=False, ext_hook=_ext, strict_map_key=True)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise ProtocolError(f"invalid msgpack: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"a msgpack packet is a map, got {type(obj).__name__}")
    return _defined(obj, 0)


def _defined(value: Any, depth: int) -> Any:
    """``value`` with undefined left out of maps and None in arrays; ProtocolError past
    MAX_DEPTH (what cannot be nested could not be encoded again)."""
    if depth > MAX_DEPTH:
        raise ProtocolError(f"msgpack payload nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, list):
        return [None if v is UNDEFINED else _defined(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {k: _defined(v, depth + 1) for k, v in value.items() if v is not UNDEFINED}
    return value


def from_map(obj: dict[str, Any]) -> Packet:
    """The packet a decoded map stands for; ProtocolError if ``checkPacket`` (or the spec)
    refuses it."""
    ptype = obj.get("type")
    if type(ptype) is not int or ptype not in _WIRE_TYPES:
        raise ProtocolError(f"invalid packet type {ptype!r}")
    nsp = obj.get("nsp")
    if not isinstance(nsp, str):
        raise ProtocolError(f"invalid namespace {nsp!r}")
    if "id" in obj and obj["id"] is None:
        raise ProtocolError("invalid packet id None")
    data, ack_id = obj.get("data"), obj.get("id")
    problem = packet_problem(PacketType(ptype), nsp, data, "data" in obj, ack_id)
    if problem:
        raise ProtocolError(problem)
    return Packet(PacketType(ptype), nsp, data, ack_id)


def decode(data: bytes) -> Packet:
    """The packet in one binary message; ProtocolError if it is not a valid one."""
    return from_map(unpack(data))


def show(value: Any) -> str:
    """``value`` written like JSON, bytes as ``<bin 01 02 03>`` (for the tracer and people)."""
    if isinstance(value, (bytes, bytearray)):
        return f"<bin {bytes(value).hex(' ')}>" if value else "<bin>"
    if isinstance(value, list):
        return "[" + ",".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{show(k)}:{show(v)}" for k, v in value.items()) + "}"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


class MsgpackDecoder:
    """Decodes the messages of one connection: each binary message is one whole packet, so
    nothing is ever awaited. A text message is refused. After a ProtocolError it refuses all
    input (RuntimeError), as ``packet.Decoder`` does: the connection is to be closed."""

    awaiting = 0

    def __init__(self) -> None:
        self._failed = False

    def receive_text(self, text: str) -> Packet | None:
        self._check_usable()
        self._failed = True
        raise ProtocolError("the msgpack parser expects binary messages, got text")

    def receive_binary(self, data: bytes) -> Packet | None:
        self._check_usable()
        try:
            return decode(data)
        except ProtocolError:
            self._failed = True
            raise

    def _check_usable(self) -> None:
        if self._failed:
            raise RuntimeError("this decoder saw a protocol error; close the connection")


class MsgpackParser:
    """The parser of npm ``socket.io-msgpack-parser`` 3.x: ``Server(parser="msgpack")`` or
    ``Client(url, parser="msgpack")``. Raises ImportError, naming the extra, without msgpack."""

    name = "msgpack"

    def __init__(self) -> None:
        if msgpack is None:
            raise ImportError(MISSING)

    def encode(self, packet: Packet) -> list[str | bytes]:
        """One binary message per packet."""
        return [encode(packet)]

    def decoder(self, max_bytes: int | None = None) -> MsgpackDecoder:
        """A decoder for one connection (``max_bytes`` is for attachments: there are none, and
        each message is already bounded by the Engine.IO maxPayload)."""
        return MsgpackDecoder()

    def describe(self, data: bytes) -> tuple[str, str] | None:
        """``("EVENT", 'msgpack {"type":2,...}')`` for a valid packet, None otherwise."""
        try:
            obj = unpack(data)
            packet = from_map(obj)
        except ProtocolError:
            return None
        return packet.type.name, "msgpack " + show(obj)
