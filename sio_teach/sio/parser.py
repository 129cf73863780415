"""The parser seam: how a Socket.IO packet becomes Engine.IO messages, and back.

socket.io lets the application choose its parser (the ``parser`` option of ``Server`` and of
``io()``): an object with an ``Encoder`` and a ``Decoder``. Here a parser is any object with:

* ``encode(packet)`` — the Engine.IO messages that carry ``packet``, in order (``str`` for a text
  message, ``bytes`` for a binary one). Called once per packet, or once per broadcast: the result
  can be sent to any number of connections.
* ``decoder(max_bytes)`` — a fresh :class:`PacketDecoder` for one connection (it may hold half a
  packet between two messages).
* ``describe(data)`` — for the tracer: ``(packet type name, readable text)`` when the binary
  message ``data`` is a whole packet, None when it is not (a JSON attachment).

Two parsers exist: :data:`JSON_PARSER`, the default (npm ``socket.io-parser``: text with
binary attachments, ``sio/packet.py``), and ``MsgpackParser`` (npm ``socket.io-msgpack-parser``,
``sio_teach/msgpack_parser.py``). Both ends of a connection must use the same one. The machines
(``server_connection.py``, ``client_connection.py``) only ever call a decoder; the shells (server,
client, adapter) call ``encode``.
"""

from __future__ import annotations

from typing import Protocol

from sio_teach.sio import packet as json_packet
from sio_teach.sio.packet import Decoder, Packet


class PacketDecoder(Protocol):
    """What a connection's machine feeds its Engine.IO messages to (``packet.Decoder`` is one).

    Each ``receive_*`` returns the completed Packet, or None while a packet awaits more
    messages; both raise ProtocolError for input the parser refuses (the connection is then
    closed with "parse error")."""

    @property
    def awaiting(self) -> int:
        """How many more messages the pending packet needs (0: none pending)."""
        ...

    def receive_text(self, text: str) -> Packet | None: ...

    def receive_binary(self, data: bytes) -> Packet | None: ...


class Parser(Protocol):
    """A Socket.IO parser: give one to ``Server(parser=...)`` or ``Client(url, parser=...)``."""

    name: str

    def encode(self, packet: Packet) -> list[str | bytes]: ...

    def decoder(self, max_bytes: int | None = None) -> PacketDecoder: ...

    def describe(self, data: bytes) -> tuple[str, str] | None: ...


class JsonParser:
    """The default parser (socket.io-parser): one text message, then one per binary attachment."""

    name = "json"

    def encode(self, packet: Packet) -> list[str | bytes]:
        """``packet``'s messages: its text, then its attachments (see ``packet.encode``)."""
        text, attachments = json_packet.encode(packet)
        return [text, *attachments]

    def decoder(self, max_bytes: int | None = None) -> Decoder:
        """A decoder for one connection; ``max_bytes`` bounds one packet's attachments."""
        return Decoder(max_bytes=max_bytes)

    def describe(self, data: bytes) -> tuple[str, str] | None:
        """A binary message is an attachment, never a packet of its own."""
        return None


JSON_PARSER = JsonParser()  # stateless: one instance serves every connection


def encode(packet: Packet, parser: Parser = JSON_PARSER) -> list[str | bytes]:
    """``parser.encode(packet)``: the one call through which the server, its adapters and the
    client encode a packet (so counting the calls of this function counts encodings)."""
    return parser.encode(packet)


def get_parser(parser: str | Parser | None) -> Parser:
    """The parser named by ``parser`` (``"json"``, the default, or ``"msgpack"``), or ``parser``
    itself when it is already a parser object. Call it where an application passes ``parser=``.
    The msgpack parser needs the ``msgpack`` package (``pip install 'sio_teach[msgpack]'``)."""
    if parser is None or parser in ("json", "default"):
        return JSON_PARSER
    if parser == "msgpack":
        from sio_teach.msgpack_parser import MsgpackParser  # only when asked: msgpack is extra

        return MsgpackParser()
    if isinstance(parser, str):
        raise ValueError(f"unknown parser {parser!r}: 'json' or 'msgpack', or a parser object")
    return parser
