"""Tests for sio_teach.sio.packet: the spec's golden vectors, round trips, every rejection."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

from sio_teach.errors import ProtocolError
from sio_teach.sio import packet as packet_module
from sio_teach.sio.packet import (
    MAX_ACK_ID,
    MAX_ATTACHMENTS,
    RESERVED_EVENTS,
    Decoder,
    Packet,
    PacketType,
    deconstruct,
    encode,
    has_binary,
    reconstruct,
)

T = PacketType
BUF = b"\x01\x02\x03\x04"
PH0 = '{"_placeholder":true,"num":0}'
PH1 = '{"_placeholder":true,"num":1}'


def decode(text: str, *attachments: bytes) -> Packet:
    """Feed one packet (text, attachments) to a new Decoder; it must complete exactly at the end."""
    decoder = Decoder()
    result = decoder.receive_text(text)
    for attachment in attachments:
        assert result is None
        result = decoder.receive_binary(attachment)
    assert result is not None and decoder.awaiting == 0
    return result


# --- golden vectors: socket.io-protocol Readme.md "Packet encoding", "Sample session", "Test suite"

GOLDEN: list[tuple[Packet, str, list[bytes]]] = [
    (Packet(T.CONNECT), "0", []),
    (
        Packet(T.CONNECT, data={"sid": "wZX3oN0bSVIhsaknAAAI"}),
        '0{"sid":"wZX3oN0bSVIhsaknAAAI"}',
        [],
    ),
    (Packet(T.CONNECT, "/admin"), "0/admin,", []),
    (
        Packet.connect("/admin", {"sid": "oSO0OpakMV_3jnilAAAA"}),
        '0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}',
        [],
    ),
    (Packet.connect("/admin", {"token": "123"}), '0/admin,{"token":"123"}', []),
    (Packet.connect("/", {"token": "123"}), '0{"token":"123"}', []),
    (Packet.connect_error("/", "Not authorized"), '4{"message":"Not authorized"}', []),
    (Packet.connect_error("/", "no", {"a": 1}), '4{"message":"no","data":{"a":1}}', []),
    (Packet(T.CONNECT_ERROR, "/x", "plain string"), '4/x,"plain string"', []),
    (Packet.event("/", "foo"), '2["foo"]', []),
    (Packet.event("/admin", "bar"), '2/admin,["bar"]', []),
    (Packet.event("/", "foo", id=12), '212["foo"]', []),
    (Packet.ack("/", 12), "312[]", []),
    (Packet.event("/admin", "foo", id=13), '2/admin,13["foo"]', []),
    (Packet.ack("/admin", 13, "bar"), '3/admin,13["bar"]', []),
    (Packet.ack("/", 14, "bar"), '314["bar"]', []),
    (
        Packet.event("/custom", "message-with-ack", "y", id=12),
        '2/custom,12["message-with-ack","y"]',
        [],
    ),
    (Packet.disconnect(), "1", []),
    (Packet.disconnect("/admin"), "1/admin,", []),
    (Packet.event("/", "baz", BUF), f'51-["baz",{PH0}]', [BUF]),
    (
        Packet.event("/admin", "baz", b"\x01\x02", b"\x03\x04"),
        f'52-/admin,["baz",{PH0},{PH1}]',
        [b"\x01\x02", b"\x03\x04"],
    ),
    (Packet.event("/", "foo", BUF, id=14), f'51-14["foo",{PH0}]', [BUF]),
    (Packet.ack("/", 15, "bar", BUF), f'61-15["bar",{PH0}]', [BUF]),
    # the spec's sample session, "461-/admin,1[...]" without the Engine.IO "4"
    (Packet.ack("/admin", 1, b"\xff"), f"61-/admin,1[{PH0}]", [b"\xff"]),
    (Packet.event("/", "héllo ☃", "ünïcode"), '2["héllo ☃","ünïcode"]', []),  # ensure_ascii=False
]


@pytest.mark.parametrize(("packet", "text", "attachments"), GOLDEN)
def test_encode_golden(packet: Packet, text: str, attachments: list[bytes]) -> None:
    assert encode(packet) == (text, attachments)


@pytest.mark.parametrize(("packet", "text", "attachments"), GOLDEN)
def test_decode_golden(packet: Packet, text: str, attachments: list[bytes]) -> None:
    assert decode(text, *attachments) == packet


def test_nested_placeholders_are_numbered_depth_first() -> None:
    data = ["upload", {"a": {"x": b"0"}, "b": [b"1", {"c": b"2"}]}, b"3"]
    text, attachments = encode(Packet(T.EVENT, "/", data))
    assert text == (
        '54-["upload",{"a":{"x":{"_placeholder":true,"num":0}},'
        '"b":[{"_placeholder":true,"num":1},{"c":{"_placeholder":true,"num":2}}]},'
        '{"_placeholder":true,"num":3}]'
    )
    assert attachments == [b"0", b"1", b"2", b"3"]
    assert decode(text, *attachments) == Packet(T.EVENT, "/", data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the namespace ends at the end of the string (the protocol's test suite sends this)
        ("0/custom", Packet(T.CONNECT, "/custom")),
        ('0/custom,{"token":"abc"}', Packet(T.CONNECT, "/custom", {"token": "abc"})),
        ('2/,["x"]', Packet.event("/", "x")),  # an explicit main namespace
        ("1/admin", Packet(T.DISCONNECT, "/admin")),
        ('2[1,"a"]', Packet(T.EVENT, "/", [1, "a"])),  # the reference allows a numeric event name
        ('2007["a"]', Packet.event("/", "a", id=7)),  # leading zeros: JS Number("007") is 7
        ('2 ["a"] ', Packet.event("/", "a")),  # whitespace around JSON, as JSON.parse allows
        (  # in a plain EVENT a placeholder-shaped dict is just data
            '2["a",{"_placeholder":true,"num":0}]',
            Packet.event("/", "a", {"_placeholder": True, "num": 0}),
        ),
        (f'2{MAX_ACK_ID}["a"]', Packet.event("/", "a", id=MAX_ACK_ID)),
    ],
)
def test_decode_accepts(text: str, expected: Packet) -> None:
    assert decode(text) == expected


def test_decode_accepts_max_attachments() -> None:
    placeholders = ",".join(f'{{"_placeholder":true,"num":{i}}}' for i in range(MAX_ATTACHMENTS))
    buffers = [bytes([i]) for i in range(MAX_ATTACHMENTS)]
    assert decode(f'5{MAX_ATTACHMENTS}-["many",{placeholders}]', *buffers).data == [
        "many",
        *buffers,
    ]


# --- binary types are a wire detail ---------------------------------------------------------------


def test_binary_packets_decode_as_event_and_ack() -> None:
    assert decode(f'51-["baz",{PH0}]', BUF).type is T.EVENT
    assert decode(f'61-15["bar",{PH0}]', BUF).type is T.ACK


def test_encode_upgrades_and_downgrades() -> None:
    assert encode(Packet(T.EVENT, data=["a", BUF]))[0].startswith("51-")
    assert encode(Packet(T.ACK, data=[BUF], id=1))[0].startswith("61-1")
    assert encode(Packet(T.BINARY_EVENT, data=["a"])) == ('2["a"]', [])
    assert encode(Packet(T.BINARY_ACK, data=[], id=2)) == ("32[]", [])
    assert encode(Packet(T.BINARY_EVENT, data=["a", BUF])) == encode(
        Packet(T.EVENT, data=["a", BUF])
    )


def test_encode_accepts_bytearray_memoryview_and_tuples() -> None:
    text, attachments = encode(Packet(T.EVENT, data=["a", (bytearray(b"x"), memoryview(b"y"))]))
    assert text == f'52-["a",[{PH0},{PH1}]]'
    assert attachments == [b"x", b"y"] and all(type(a) is bytes for a in attachments)


ROUND_TRIPS = [
    Packet.connect(),
    Packet.connect("/a/b", {"token": "t", "n": [1, 2.5, None, True]}),
    Packet.connect_error("/a", "boom"),
    Packet.disconnect("/chat"),
    Packet.event("/", "x", {"deep": [[[{"b": b""}]]]}, None, 3, id=0),
    Packet.event("/n", "x", *[bytes([i]) * i for i in range(5)], id=MAX_ACK_ID),
    Packet.ack("/n", 99, {"k": [b"\x00", "v"]}, b"\xff" * 1000),
    Packet.ack("/", 1),
    Packet(2, "/", ["x"]),  # a plain int type is turned into a PacketType
]


@pytest.mark.parametrize("packet", ROUND_TRIPS)
def test_round_trip(packet: Packet) -> None:
    text, attachments = encode(packet)
    assert decode(text, *attachments) == packet


def test_one_decoder_many_packets_in_wire_order() -> None:
    decoder = Decoder()
    assert decoder.receive_text(f'52-["a",{PH0},{PH1}]') is None
    assert decoder.awaiting == 2
    assert decoder.receive_binary(b"1") is None
    assert decoder.awaiting == 1
    assert decoder.receive_binary(bytearray(b"2")) == Packet.event("/", "a", b"1", b"2")
    assert decoder.receive_text('2["b"]') == Packet.event("/", "b")
    assert decoder.receive_text(f"61-3[{PH0}]") is None
    assert decoder.receive_binary(b"3") == Packet.ack("/", 3, b"3")


def test_helpers() -> None:
    assert has_binary(["a", {"b": [1, b"x"]}]) and not has_binary(["a", {"b": [1, "x"]}])
    assert not has_binary(None)
    data, attachments = deconstruct({"k": b"v"})
    assert data == {"k": {"_placeholder": True, "num": 0}} and attachments == [b"v"]
    assert reconstruct(data, attachments) == {"k": b"v"}


def test_packet_is_frozen() -> None:
    with pytest.raises(AttributeError):
        Packet.event("/", "a").nsp = "/b"  # type: ignore[misc]


# --- local misuse: ValueError / TypeError --------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RESERVED_EVENTS))
def test_encode_refuses_reserved_event_names(name: str) -> None:
    with pytest.raises(ValueError, match="reserved"):
        encode(Packet.event("/", name))


@pytest.mark.parametrize(
    "packet",
    [
        Packet.event("admin", "a"),  # nsp must start with "/"
        Packet.event("/a,b", "a"),  # a comma would end the namespace early
        Packet(T.EVENT, "/", []),
        Packet(T.EVENT, "/", "notalist"),
        Packet(T.EVENT, "/", [None]),
        Packet(T.EVENT, "/", [True]),
        Packet(T.ACK, "/", []),  # no ack id
        Packet(T.ACK, "/", "x", 1),
        Packet(T.CONNECT, "/", ["auth"]),
        Packet(T.CONNECT, "/", {}, 1),  # only EVENT and ACK carry an id
        Packet(T.DISCONNECT, "/", {}),
        Packet(T.CONNECT_ERROR),
        Packet.event("/", "a", id=-1),
        Packet.event("/", "a", id=MAX_ACK_ID + 1),
        Packet(T.EVENT, "/", ["a"], True),  # type: ignore[arg-type]
        Packet.event("/", "a", float("nan")),  # not JSON
    ],
)
def test_encode_refuses_invalid_packets(packet: Packet) -> None:
    with pytest.raises(ValueError):
        encode(packet)


def test_encode_refuses_bytes_outside_event_and_ack() -> None:
    with pytest.raises(TypeError):
        encode(Packet.connect("/", {"key": b"x"}))


def test_packet_refuses_unknown_type() -> None:
    with pytest.raises(ValueError):
        Packet(7)  # type: ignore[arg-type]


# --- remote violations: ProtocolError ------------------------------------------------------------

ATTACH, TYPE, LONG, JSON, NO_ID = (
    "illegal attachments",
    "unknown packet type",
    "too long",
    "JSON",
    "ack id",
)
BAD_TEXT: dict[str, tuple[str, str]] = {  # rule: (text, what the error message must say)
    # type must be 0..6
    "empty": ("", TYPE),
    "type 7": ('7["a"]', TYPE),
    "type 9": ("9", TYPE),
    "type letter": ('a["a"]', TYPE),
    "type minus": ('-1["a"]', TYPE),
    # attachments: "<digits>-" required for BINARY_*, 1..MAX_ATTACHMENTS
    "no attachment count": (f'5["a",{PH0}]', ATTACH),
    "no count before dash": (f'5-["a",{PH0}]', ATTACH),
    "no dash": (f'51["a",{PH0}]', ATTACH),
    "zero attachments": ('50-["a"]', ATTACH),
    "non-numeric count": (f'5x-["a",{PH0}]', ATTACH),
    "count with space": (f'5 1-["a",{PH0}]', ATTACH),
    "too many attachments": (f'5{MAX_ATTACHMENTS + 1}-["a",{PH0}]', "too many attachments"),
    "absurd count": (f'599999-["a",{PH0}]', LONG),
    "binary ack no count": (f'6["a",{PH0}]', ATTACH),
    # ack id: ASCII digits, at most 2**53 - 1, only on EVENT/ACK, mandatory on ACK
    "id beyond 2**53-1": (f'2{MAX_ACK_ID + 1}["a"]', NO_ID),
    "id of 17 digits": ('212345678901234567["a"]', LONG),
    "id of 5000 digits": ("2" + "1" * 5000 + '["a"]', LONG),
    "non-ascii digit id": ('2\u0663["a"]', JSON),  # ARABIC-INDIC DIGIT THREE is not a digit here
    "id on CONNECT": ("05{}", "CONNECT packet carries no ack id"),
    "id on DISCONNECT": ("1/a,5", "DISCONNECT packet carries no ack id"),
    "id on CONNECT_ERROR": ('45{"message":"x"}', "CONNECT_ERROR packet carries no ack id"),
    "ACK without id": ("3[]", "needs the ack id"),
    "BINARY_ACK without id": (f"61-[{PH0}]", "needs the ack id"),
    # JSON payload must parse
    "truncated JSON": ('2["foo"', JSON),
    "garbage JSON": ("2{bad}", JSON),
    "trailing garbage": ('2["foo"]x', JSON),
    "single quotes": ("2['foo']", JSON),
    "NaN": ('2["a",NaN]', "NaN is not JSON"),
    "Infinity": ('2["a",-Infinity]', "Infinity is not JSON"),
    "int too long": ('2["a",' + "9" * 5000 + "]", JSON),
    "deep nesting": ("2" + "[" * 100_000 + "]" * 100_000, "nested deeper than"),
    "deep nesting in dict": ("0" + '{"a":' * 100_000 + "1" + "}" * 100_000, "nested deeper than"),
    "nesting the encoder could not repeat": (
        '2["a",' + "[" * 101 + "]" * 101 + "]",
        "nested deeper than",
    ),
    "number out of range": ('2["a",1e400]', "out of range"),
    # CONNECT: object or absent
    "CONNECT list": ('0["a"]', "invalid CONNECT payload"),
    "CONNECT string": ('0"token"', "invalid CONNECT payload"),
    "CONNECT null": ("0null", "invalid CONNECT payload"),
    "CONNECT bool": ("0true", "invalid CONNECT payload"),
    "CONNECT trailing garbage": ("0/a,{}x", JSON),
    # DISCONNECT: no payload
    "DISCONNECT object": ("1{}", "invalid DISCONNECT payload"),
    "DISCONNECT nsp object": ("1/admin,{}", "invalid DISCONNECT payload"),
    "DISCONNECT null": ("1null", "invalid DISCONNECT payload"),
    # CONNECT_ERROR: object or string
    "CONNECT_ERROR absent": ("4", "invalid CONNECT_ERROR payload"),
    "CONNECT_ERROR list": ('4["x"]', "invalid CONNECT_ERROR payload"),
    "CONNECT_ERROR null": ("4/a,null", "invalid CONNECT_ERROR payload"),
    # EVENT: non-empty list, name a non-reserved string or a number
    "EVENT absent": ("2", "invalid EVENT payload"),
    "EVENT absent with nsp": ("2/admin,", "invalid EVENT payload"),
    "EVENT nsp to the end": ("2/admin", "invalid EVENT payload"),
    "EVENT absent with id": ("212", "invalid EVENT payload"),
    "EVENT empty list": ("2[]", "invalid EVENT payload"),
    "EVENT object": ('2{"a":1}', "invalid EVENT payload"),
    "EVENT string": ('2"foo"', "invalid EVENT payload"),
    "EVENT null name": ("2[null]", "invalid EVENT payload"),
    "EVENT bool name": ("2[true]", "invalid EVENT payload"),
    "EVENT list name": ('2[["a"]]', "invalid EVENT payload"),
    "EVENT dict name": ('2[{"a":1}]', "invalid EVENT payload"),
    "BINARY_EVENT no list": (f"51-{PH0}", "invalid EVENT payload"),
    "BINARY_EVENT placeholder name": (f"51-[{PH0}]", "invalid EVENT payload"),
    # ACK: a list
    "ACK absent": ("31", "invalid ACK payload"),
    "ACK object": ("31{}", "invalid ACK payload"),
    "ACK string": ('31"x"', "invalid ACK payload"),
    "BINARY_ACK object": (f'61-1{{"a":{PH0}}}', "invalid ACK payload"),
}
for _name in sorted(RESERVED_EVENTS):
    BAD_TEXT[f"reserved {_name}"] = (f'2["{_name}"]', "reserved")
    BAD_TEXT[f"reserved {_name} binary"] = (f'51-["{_name}",{PH0}]', "reserved")


@pytest.mark.parametrize(("text", "reason"), BAD_TEXT.values(), ids=BAD_TEXT.keys())
def test_decode_rejects_text(text: str, reason: str) -> None:
    with pytest.raises(ProtocolError, match=re.escape(reason)):
        Decoder().receive_text(text)


BAD_PLACEHOLDERS = {
    "num out of range": '{"_placeholder":true,"num":1}',
    "num negative": '{"_placeholder":true,"num":-1}',
    "num string": '{"_placeholder":true,"num":"0"}',
    "num float": '{"_placeholder":true,"num":0.0}',
    "num bool": '{"_placeholder":true,"num":false}',
    "num null": '{"_placeholder":true,"num":null}',
    "num missing": '{"_placeholder":true}',
    "num huge": '{"_placeholder":true,"num":1e300}',
}


@pytest.mark.parametrize("placeholder", BAD_PLACEHOLDERS.values(), ids=BAD_PLACEHOLDERS.keys())
def test_decode_rejects_bad_placeholders(placeholder: str) -> None:
    decoder = Decoder()
    assert decoder.receive_text(f'51-["a",{{"x":[{placeholder}]}}]') is None
    with pytest.raises(ProtocolError, match="illegal attachments"):
        decoder.receive_binary(BUF)


def test_binary_without_pending_packet() -> None:
    with pytest.raises(ProtocolError, match="not reconstructing"):
        Decoder().receive_binary(BUF)


def test_binary_after_packet_completed() -> None:
    decoder = Decoder()
    decoder.receive_text(f'51-["a",{PH0}]')
    decoder.receive_binary(BUF)
    with pytest.raises(ProtocolError, match="not reconstructing"):
        decoder.receive_binary(BUF)


def test_text_while_awaiting_attachments() -> None:
    decoder = Decoder()
    decoder.receive_text(f'52-["a",{PH0},{PH1}]')
    decoder.receive_binary(BUF)
    with pytest.raises(ProtocolError, match="got plaintext data when reconstructing a packet"):
        decoder.receive_text('2["b"]')


@pytest.mark.parametrize("value", [b'2["a"]', bytearray(b"0"), None, 2, ["2"]])
def test_receive_text_rejects_non_str(value: Any) -> None:
    with pytest.raises(ProtocolError, match="text message"):
        Decoder().receive_text(value)


@pytest.mark.parametrize("value", ["\x01", None, 1, [1], memoryview(b"x")])
def test_receive_binary_rejects_non_bytes(value: Any) -> None:
    decoder = Decoder()
    decoder.receive_text(f'51-["a",{PH0}]')
    with pytest.raises(ProtocolError, match="binary message"):
        decoder.receive_binary(value)


def test_decoder_is_unusable_after_an_error() -> None:
    decoder = Decoder()
    with pytest.raises(ProtocolError):
        decoder.receive_text("9")
    with pytest.raises(RuntimeError):
        decoder.receive_text('2["a"]')
    with pytest.raises(RuntimeError):
        decoder.receive_binary(BUF)


def test_custom_attachment_limit() -> None:
    with pytest.raises(ProtocolError, match="too many"):
        Decoder(max_attachments=1).receive_text(f'52-["a",{PH0},{PH1}]')


def test_protocol_errors_are_400_without_code() -> None:
    with pytest.raises(ProtocolError) as info:
        Decoder().receive_text("2[]")
    assert info.value.status == 400 and info.value.code is None


# --- purity ---------------------------------------------------------------------------------------


def test_module_is_pure() -> None:
    tree = ast.parse(Path(packet_module.__file__).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert not imported & {"tornado", "asyncio", "time", "socket", "redis"}
    assert imported <= {"__future__", "json", "math", "enum", "dataclasses", "typing", "sio_teach"}


def test_json_is_compact() -> None:
    text, _ = encode(Packet.event("/", "a", {"k": [1, 2]}))
    assert " " not in text and json.loads(text[1:]) == ["a", {"k": [1, 2]}]
