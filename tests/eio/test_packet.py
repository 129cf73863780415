"""Engine.IO v4 packet and payload codec: the spec's golden vectors, round trips, rejections.

Spec: socketio/engine.io-protocol README.md (v4), "Packet encoding" and "Payload"; the reference
codec is engine.io-parser (``encodePacket`` / ``decodePacket`` / ``encodePayload`` / ``decodePayload``).
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sio_teach.eio.packet import (
    SEPARATOR,
    Packet,
    PacketType,
    decode_payload,
    decode_ws,
    encode_payload,
    encode_ws,
)
from sio_teach.errors import ProtocolError

T = PacketType
OPEN_JSON = (
    '{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],'
    '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
)

# (packet, its text encoding) — one per packet type, as in the spec's table.
TEXT_VECTORS = [
    (Packet(T.OPEN, OPEN_JSON), "0" + OPEN_JSON),
    (Packet(T.CLOSE), "1"),
    (Packet(T.PING), "2"),
    (Packet(T.PONG), "3"),
    (Packet(T.MESSAGE, "hello"), "4hello"),
    (Packet(T.UPGRADE), "5"),
    (Packet(T.NOOP), "6"),
    (Packet(T.PING, "probe"), "2probe"),
    (Packet(T.PONG, "probe"), "3probe"),
    (Packet(T.MESSAGE, ""), "4"),
    (Packet(T.MESSAGE, "€ 😀 \x1f"), "4€ 😀 \x1f"),
]


def test_packet_type_numbers_follow_the_spec() -> None:
    names = ["OPEN", "CLOSE", "PING", "PONG", "MESSAGE", "UPGRADE", "NOOP"]
    assert [(t.name, t.value) for t in PacketType] == list(zip(names, range(7), strict=True))


def test_packets_are_immutable_values() -> None:
    packet = Packet(T.MESSAGE, "hello")
    assert packet == Packet(T.MESSAGE, "hello")
    assert hash(packet) == hash(Packet(T.MESSAGE, "hello"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        packet.data = "other"  # type: ignore[misc]
    assert Packet(T.MESSAGE, b"\x01").binary and not packet.binary


@pytest.mark.parametrize(("packet", "wire"), TEXT_VECTORS, ids=[w[:8] for _, w in TEXT_VECTORS])
def test_text_packet_ws_golden_vectors(packet: Packet, wire: str) -> None:
    assert encode_ws(packet) == wire
    assert decode_ws(wire) == packet


@pytest.mark.parametrize(("packet", "wire"), TEXT_VECTORS, ids=[w[:8] for _, w in TEXT_VECTORS])
def test_single_text_packet_payload_golden_vectors(packet: Packet, wire: str) -> None:
    assert encode_payload([packet]) == wire
    assert decode_payload(wire) == [packet]
    assert decode_payload(wire.encode("utf-8")) == [packet]


def test_encode_ws_returns_str_for_text_and_bytes_for_binary() -> None:
    assert type(encode_ws(Packet(T.MESSAGE, "hello"))) is str
    assert type(encode_ws(Packet(T.MESSAGE, b"hello"))) is bytes


def test_binary_ws_frame_is_raw_bytes_without_type_prefix() -> None:
    # "binary payloads are sent as is": <Buffer 01 02 03 04>, no leading 4 / 0x04
    assert encode_ws(Packet(T.MESSAGE, b"\x01\x02\x03\x04")) == b"\x01\x02\x03\x04"
    assert decode_ws(b"\x01\x02\x03\x04") == Packet(T.MESSAGE, b"\x01\x02\x03\x04")
    # a frame whose first byte happens to be b"4" is still raw data
    assert decode_ws(b"4hello") == Packet(T.MESSAGE, b"4hello")
    assert decode_ws(b"") == Packet(T.MESSAGE, b"")


def test_binary_only_allowed_on_message_packets() -> None:
    with pytest.raises(ValueError):
        encode_ws(Packet(T.PING, b"\x01"))


def test_payload_golden_vector_encode() -> None:
    packets = [Packet(T.MESSAGE, "hello"), Packet(T.MESSAGE, b"\x01\x02\x03\x04")]
    assert encode_payload(packets) == "4hello\x1ebAQIDBA=="


def test_payload_golden_vector_decode() -> None:
    expected = [Packet(T.MESSAGE, "hello"), Packet(T.MESSAGE, b"\x01\x02\x03\x04")]
    assert decode_payload("4hello\x1ebAQIDBA==") == expected
    assert decode_payload(b"4hello\x1ebAQIDBA==") == expected


def test_payload_of_many_packets_keeps_order() -> None:
    packets = [
        Packet(T.PING),
        Packet(T.MESSAGE, "a"),
        Packet(T.NOOP),
        Packet(T.MESSAGE, b""),
        Packet(T.CLOSE),
    ]
    wire = "2\x1e4a\x1e6\x1eb\x1e1"
    assert encode_payload(packets) == wire
    assert decode_payload(wire) == packets


def test_probe_vectors() -> None:
    assert decode_ws("2probe") == Packet(T.PING, "probe")
    assert encode_ws(Packet(T.PONG, "probe")) == "3probe"
    assert decode_payload("2probe") == [Packet(T.PING, "probe")]


def test_separator_is_record_separator() -> None:
    assert SEPARATOR == "\x1e"


MALFORMED_TEXT = ["", "7", "7hello", "9", "x", "xhello", "-1", " 4hello", "\x1e"]


@pytest.mark.parametrize("frame", MALFORMED_TEXT)
def test_malformed_ws_text_frames_are_protocol_errors(frame: str) -> None:
    with pytest.raises(ProtocolError):
        decode_ws(frame)


@pytest.mark.parametrize(
    "body",
    [
        "",
        b"",
        "7",
        "x",
        "4hello\x1e",  # trailing separator: an empty packet
        "\x1e4hello",
        "4a\x1e\x1e4b",
        "4hello\x1e7",
        "bAQID!!",  # invalid base64
        "b====",
        "bAQIDBA",  # missing padding
        b"4\xff\xfe",  # invalid UTF-8
        b"4hello\x1e4\xc3\x28",
    ],
)
def test_malformed_payloads_are_protocol_errors(body: str | bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_payload(body)
    assert info.value.status == 400


def test_invalid_utf8_error_names_the_fault() -> None:
    with pytest.raises(ProtocolError, match="UTF-8"):
        decode_payload(b"4\xff")


def test_empty_binary_packet_in_payload() -> None:
    assert decode_payload("b") == [Packet(T.MESSAGE, b"")]
    assert encode_payload([Packet(T.MESSAGE, b"")]) == "b"


# -- properties ---------------------------------------------------------------------------

text_data = st.text().filter(lambda s: SEPARATOR not in s)
packets = st.one_of(
    st.builds(Packet, st.sampled_from(list(PacketType)), text_data),
    st.builds(Packet, st.just(T.MESSAGE), st.binary()),
)


@given(st.lists(packets, min_size=1, max_size=20))
def test_payload_round_trip(items: list[Packet]) -> None:
    wire = encode_payload(items)
    assert decode_payload(wire) == items
    assert decode_payload(wire.encode("utf-8")) == items


@given(packets)
def test_ws_round_trip(packet: Packet) -> None:
    assert decode_ws(encode_ws(packet)) == packet


@given(st.binary(max_size=200))
def test_decode_payload_never_raises_anything_but_protocol_error(body: bytes) -> None:
    try:
        result = decode_payload(body)
    except ProtocolError:
        return
    assert result and all(isinstance(p, Packet) for p in result)


@given(st.text(max_size=200))
def test_decode_ws_text_never_raises_anything_but_protocol_error(frame: str) -> None:
    try:
        packet = decode_ws(frame)
    except ProtocolError:
        return
    assert encode_ws(packet) == frame
