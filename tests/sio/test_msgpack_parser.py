"""Tests for sio_teach.msgpack_parser and the parser seam (sio_teach.sio.parser).

The golden vectors are the bytes that the official encoder (npm ``socket.io-msgpack-parser``
3.0.2, ``new Encoder().encode(packet)``) produced for the packet objects of
``tests/js/msgpack_vectors.js``; ``test_vectors_are_what_the_official_encoder_writes`` runs that
script again and checks that it still prints exactly these.
"""

from __future__ import annotations

import base64
import builtins
import importlib
import sys
from typing import Any

import msgpack
import pytest

from sio_teach import Client, Server, msgpack_parser
from sio_teach.adapters.memory import BroadcastOptions, MemoryAdapter
from sio_teach.errors import ProtocolError
from sio_teach.msgpack_parser import MsgpackDecoder, MsgpackParser, decode, encode, show
from sio_teach.sio.packet import MAX_DEPTH, Packet, PacketType
from sio_teach.sio.parser import JSON_PARSER, JsonParser, get_parser
from sio_teach.sio.server_connection import CloseConnection, ServerConnection
from sio_teach.trace import Tracer
from tests.conftest import run_node

T = PacketType

# name -> (the packet, the official encoder's bytes for it), keys in our order {type,data,id,nsp}
GOLDEN: dict[str, tuple[Packet, str]] = {
    "event": (
        Packet.event("/", "chat", "hi"),
        "83a47479706502a46461746192a463686174a26869a36e7370a12f",
    ),
    "event-with-ack-on-custom": (
        Packet.event("/custom", "message-with-ack", 1, "2", {"3": [True]}, id=12),
        "84a47479706502a46461746194b06d6573736167652d776974682d61636b01a13281a13391c3a269640c"
        "a36e7370a72f637573746f6d",
    ),
    "binary": (
        Packet.event("/", "message", b"\x01\x02\x03", {"nested": [b"\x04\x05"]}),
        "83a47479706502a46461746193a76d657373616765c40301020381a66e657374656491c4020405a36e73"
        "70a12f",
    ),
    "ack": (Packet.ack("/", 1, "ok"), "84a47479706503a46461746191a26f6ba2696401a36e7370a12f"),
    "connect-with-auth": (
        Packet.connect("/", {"token": "123"}),
        "83a47479706500a46461746181a5746f6b656ea3313233a36e7370a12f",
    ),
    "connect-custom": (Packet.connect("/custom"), "82a47479706500a36e7370a72f637573746f6d"),
    "disconnect": (Packet.disconnect("/custom"), "82a47479706501a36e7370a72f637573746f6d"),
    "connect-error": (
        Packet.connect_error("/random", "Invalid namespace"),
        "83a47479706504a46461746181a76d657373616765b1496e76616c6964206e616d657370616365a36e73"
        "70a72f72616e646f6d",
    ),
    "numbers": (
        Packet.event("/", "n", 1.5, -3, 300, 70000, "é☃", None, False),
        "83a47479706502a46461746198a16ecb3ff8000000000000fdcd012cce00011170a5c3a9e29883c0c2a3"
        "6e7370a12f",
    ),
}
# as the reference peers build their packets: other key orders, `undefined`, the client's options
READ_ONLY: dict[str, tuple[Packet, str]] = {
    "server-ack": (
        Packet.ack("/", 1, "ok"),
        "84a2696401a47479706503a46461746191a26f6ba36e7370a12f",
    ),
    "server-connect": (
        Packet.connect("/", {"sid": "abc"}),  # {sid, pid: undefined}: pid is left out
        "83a47479706500a46461746182a3736964a3616263a3706964d40000a36e7370a12f",
    ),
    "client-event": (
        Packet.event("/", "chat", "hi", id=0),
        "85a47479706502a46461746192a463686174a26869a76f7074696f6e7381a8636f6d7072657373c3a269"
        "6400a36e7370a12f",
    ),
    "typed-array": (  # a Uint8Array is an ext of type 0 with its bytes; undefined becomes None
        Packet.event("/", "file", b"\x01\x02\x03", None),
        "83a47479706502a46461746193a466696c65c70300010203d40000a36e7370a12f",
    ),
}


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


# -- golden vectors ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(GOLDEN))
def test_encode_gives_the_official_encoders_bytes(name: str) -> None:
    packet, expected = GOLDEN[name]
    got = encode(packet).hex()
    print(f"{name}: got {got}\n{' ' * len(name)}  expected {expected}")
    assert got == expected


@pytest.mark.parametrize("name", list(GOLDEN) + list(READ_ONLY))
def test_decode_reads_the_official_encoders_bytes(name: str) -> None:
    packet, hexed = {**GOLDEN, **READ_ONLY}[name]
    assert decode(bytes.fromhex(hexed)) == packet


async def test_vectors_are_what_the_official_encoder_writes() -> None:
    [printed] = await run_node("msgpack_vectors.js")
    expected = {name: hexed for name, (_, hexed) in {**GOLDEN, **READ_ONLY}.items()}
    assert printed == expected


# -- round trips ------------------------------------------------------------------------------

ROUND_TRIPS = [
    Packet.event("/", "e"),
    Packet.event("/admin", "e", {"a": [1, 2.5, None, True]}, id=0),
    Packet.event("/", "e", b"", bytearray(b"\xff" * 300), id=2**53 - 1),
    Packet.ack("/x", 7),
    Packet.ack("/", 3, {"deep": [[[b"\x00"]]]}),
    Packet.connect("/", {"pid": "p", "offset": "o"}),
    Packet.connect_error("/", "nope", {"code": 4001}),
    Packet(T.CONNECT_ERROR, "/", "a plain string"),
    Packet.event("/", 42, "a number as the event name"),
    Packet.event("/", "s" * 70_000, -(2**63)),
]


@pytest.mark.parametrize("packet", ROUND_TRIPS, ids=lambda p: p.type.name)
def test_round_trip(packet: Packet) -> None:
    back = decode(encode(packet))
    assert back.type is packet.type and back.nsp == packet.nsp and back.id == packet.id
    assert back.data == (list(packet.data) if isinstance(packet.data, tuple) else packet.data)


def test_binary_types_are_sent_as_plain_event_and_ack() -> None:
    """No BINARY_EVENT / BINARY_ACK with msgpack: bytes are native ``bin``, in place."""
    event = Packet(T.BINARY_EVENT, "/", ["e", b"\x01"])
    assert decode(encode(event)) == Packet.event("/", "e", b"\x01")
    ack = Packet(T.BINARY_ACK, "/", [b"\x02"], 4)
    assert decode(encode(ack)) == Packet.ack("/", 4, b"\x02")


def test_undefined_is_read_as_json_would_carry_it() -> None:
    undefined = msgpack.ExtType(0, b"\x00")
    raw = pack({"type": 2, "nsp": "/", "data": ["e", undefined, {"a": undefined, "b": 1}]})
    assert decode(raw) == Packet.event("/", "e", None, {"b": 1})
    # an undefined id or data is no id, no data
    assert decode(pack({"type": 1, "nsp": "/", "data": undefined, "id": undefined})) == (
        Packet.disconnect("/")
    )


def test_encode_refuses_what_the_spec_forbids() -> None:
    with pytest.raises(ValueError):
        encode(Packet(T.EVENT, "/", []))
    with pytest.raises(ValueError):
        encode(Packet(T.DISCONNECT, "no-slash"))
    with pytest.raises(ValueError):
        encode(Packet.event("/", "e", 2**64))  # beyond msgpack's 64 bits
    with pytest.raises(TypeError):
        encode(Packet.event("/", "e", object()))


# -- malformed input: a parse error -----------------------------------------------------------


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


MALFORMED = {
    "not msgpack": b"\xc1",
    "truncated": bytes.fromhex(GOLDEN["event"][1])[:-1],
    "trailing bytes": bytes.fromhex(GOLDEN["event"][1]) + b"\x00",
    "empty": b"",
    "not a map": pack([2, "/", ["e"]]),
    "no type": pack({"nsp": "/", "data": ["e"]}),
    "type 5": pack({"type": 5, "nsp": "/", "data": ["e", b"\x01"]}),
    "type as a string": pack({"type": "2", "nsp": "/", "data": ["e"]}),
    "type true": pack({"type": True, "nsp": "/", "data": ["e"]}),
    "no nsp": pack({"type": 2, "data": ["e"]}),
    "nsp not a string": pack({"type": 2, "nsp": 1, "data": ["e"]}),
    "event without data": pack({"type": 2, "nsp": "/"}),
    "event data not an array": pack({"type": 2, "nsp": "/", "data": {"e": 1}}),
    "empty event": pack({"type": 2, "nsp": "/", "data": []}),
    "reserved event name": pack({"type": 2, "nsp": "/", "data": ["disconnect"]}),
    "ack without id": pack({"type": 3, "nsp": "/", "data": []}),
    "id not an integer": pack({"type": 2, "nsp": "/", "data": ["e"], "id": "1"}),
    "id nil": pack({"type": 2, "nsp": "/", "data": ["e"], "id": None}),
    "negative id": pack({"type": 2, "nsp": "/", "data": ["e"], "id": -1}),
    "connect data an array": pack({"type": 0, "nsp": "/", "data": [1]}),
    "connect data nil": pack({"type": 0, "nsp": "/", "data": None}),
    "disconnect with data": pack({"type": 1, "nsp": "/", "data": {}}),
    "connect_error data a number": pack({"type": 4, "nsp": "/", "data": 1}),
    "integer map keys": pack({"type": 2, "nsp": "/", "data": ["e", {1: 2}]}),
    "invalid utf-8": b"\x83\xa4type\x02\xa3nsp\xa1\xff\xa4data\x91\xa1e",
    "too deep": pack({"type": 2, "nsp": "/", "data": ["e", nested(MAX_DEPTH)]}),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_input_is_a_protocol_error(name: str) -> None:
    decoder = MsgpackParser().decoder()
    with pytest.raises(ProtocolError):
        decoder.receive_binary(MALFORMED[name])
    with pytest.raises(RuntimeError):  # refused for good: the connection is to be closed
        decoder.receive_binary(bytes.fromhex(GOLDEN["event"][1]))


def test_a_text_message_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        MsgpackDecoder().receive_text('42["e"]')


def test_bad_msgpack_closes_the_connection_with_parse_error() -> None:
    machine = ServerConnection(0.0, parser=MsgpackParser())
    machine.receive(bytes.fromhex(GOLDEN["connect-with-auth"][1]), 0.0)
    machine.events()
    machine.receive(b"\xc1", 1.0)
    assert CloseConnection("parse error") in machine.events()


# -- the seam ---------------------------------------------------------------------------------


def test_get_parser() -> None:
    assert get_parser(None) is JSON_PARSER and get_parser("json") is JSON_PARSER
    assert isinstance(get_parser("msgpack"), MsgpackParser)
    mine = JsonParser()
    assert get_parser(mine) is mine
    with pytest.raises(ValueError, match="unknown parser"):
        get_parser("protobuf")


def test_json_parser_frames_are_text_then_attachments() -> None:
    assert JSON_PARSER.encode(Packet.event("/", "e", b"\x01")) == [
        '51-["e",{"_placeholder":true,"num":0}]',
        b"\x01",
    ]


def test_without_msgpack_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_msgpack(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "msgpack":
            raise ImportError("No module named 'msgpack'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_msgpack)
    monkeypatch.delitem(sys.modules, "sio_teach.msgpack_parser")
    try:
        module = importlib.import_module("sio_teach.msgpack_parser")
        with pytest.raises(ImportError, match=r"sio_teach\[msgpack\]"):
            module.MsgpackParser()
    finally:
        monkeypatch.undo()
        sys.modules["sio_teach.msgpack_parser"] = msgpack_parser


# -- the tracer -------------------------------------------------------------------------------


def test_show_writes_bytes_readably() -> None:
    assert show({"data": ["e", b"\x01\x02", b""], "n": None}) == (
        '{"data":["e",<bin 01 02>,<bin>],"n":null}'
    )


def test_tracer_describes_msgpack_messages() -> None:
    tracer = Tracer(sio=True, clock=lambda: 0.0)
    tracer.describe_binary = MsgpackParser().describe
    raw = bytes.fromhex(GOLDEN["binary"][1])
    tracer.record("sid", ">", "ws", raw)
    tracer.record("sid", "<", "POST", "b" + base64.b64encode(raw).decode())
    tracer.record("sid", ">", "ws", b"\x01\x02")  # not a packet: plain binary
    expected = [
        'S1 > ws   sio EVENT         msgpack {"type":2,"data":["message",<bin 01 02 03>,'
        '{"nested":[<bin 04 05>]}],"nsp":"/"}',
        'S1 < POST sio EVENT         msgpack {"type":2,"data":["message",<bin 01 02 03>,'
        '{"nested":[<bin 04 05>]}],"nsp":"/"}',
        "S1 > ws   eio binary        <binary 2 B: 01 02>",
    ]
    assert tracer.lines(width=200) == expected


# -- a broadcast is encoded once --------------------------------------------------------------


def test_a_broadcast_is_encoded_once_for_every_recipient() -> None:
    sent: list[tuple[str, Any, list[Any]]] = []
    adapter = MemoryAdapter("/", lambda sid, first, rest, volatile: sent.append((sid, first, rest)))
    adapter.parser = MsgpackParser()
    adapter.add_all("a", ["room"])
    adapter.add_all("b", ["room"])
    packet = Packet.event("/", "e", b"\x01")
    adapter.broadcast(packet, BroadcastOptions(rooms=frozenset({"room"})))
    (_, first_a, rest_a), (_, first_b, rest_b) = sent
    assert first_a is first_b  # the same Engine.IO message object: one encoding, one frame
    assert rest_a == rest_b == []  # no attachments with msgpack
    assert decode(first_a.data) == packet


def test_server_and_client_take_a_parser_by_name_or_object() -> None:
    parser = MsgpackParser()
    server = Server(parser=parser)
    assert server.parser is parser and server.of("/x").adapter.parser is parser
    assert isinstance(Server(parser="msgpack").parser, MsgpackParser)
    assert Server().parser is JSON_PARSER
    client = Client("http://127.0.0.1:1", parser="msgpack")
    assert isinstance(client.parser, MsgpackParser)
    assert client.machine.parser is client.parser
