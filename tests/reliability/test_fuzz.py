"""A bounded fuzzing run of the decoders, in CI (well under 20 s on a 2-core machine).

Seeds are a corpus of valid wire messages of every shape (the specs' examples and a few more,
written by our encoders); hypothesis picks seeds and mutates each a few times — truncated, a character or byte replaced, something inserted, a slice deleted
or repeated, the attachments dropped, duplicated or replaced — and fed to the decoder that would
get it on the wire:

* an Engine.IO polling body (as the POST's bytes) → ``decode_payload``;
* an Engine.IO WebSocket text frame → ``decode_ws``;
* a Socket.IO message and its attachments → :class:`Decoder`;
* the whole polling path: a body carrying Socket.IO messages → ``decode_payload`` → :class:`Decoder`.

The decoders may only raise :class:`ProtocolError`. What they accept must be a well-formed packet
that our encoder can write back (a server echoes what it gets), into valid UTF-8.

Runs are deterministic (``derandomize``), so CI sees the same cases every time: 2000 for the
Socket.IO decoder and for polling bodies, 800 for WebSocket text frames and for the whole polling
path. To search further by hand, change ``derandomize`` / ``max_examples`` locally. No shrinking:
a failure is reported as found (shrinking a 2000-case run can take a minute).
"""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sio_teach.eio.packet import Packet as EioPacket
from sio_teach.eio.packet import PacketType as EioType
from sio_teach.eio.packet import decode_payload, decode_ws, encode_payload, encode_ws
from sio_teach.errors import ProtocolError
from sio_teach.sio.packet import Decoder, encode
from sio_teach.sio.packet import Packet as SioPacket
from tests.reliability.conftest import CI, SEP, sio_decode

FUZZ = settings(
    max_examples=2000,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found, fast
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    **CI,
)
SMALL_FUZZ = settings(FUZZ, max_examples=800)  # simpler decoders: fewer cases cover them

# Characters that mean something to one of the parsers, to be inserted more often than noise.
SPECIAL = '0123456789-/,[]{}":\\b=+' + SEP + "eE.-_placeholdertruenum\x00\x7f\u00e9\ud7ff\U0001f600"
special_chars = st.sampled_from(SPECIAL) | st.characters()


@st.composite
def mutate_text(draw: st.DrawFn, text: str) -> str:
    """``text`` after one to four random edits."""
    for _ in range(draw(st.integers(1, 4))):
        n = len(text)
        i = draw(st.integers(0, n))
        op = draw(st.sampled_from(["truncate", "replace", "insert", "delete", "repeat"]))
        if op == "truncate":
            text = text[:i]
        elif op == "replace" and i < n:
            text = text[:i] + draw(special_chars) + text[i + 1 :]
        elif op == "insert":
            text = text[:i] + draw(st.text(special_chars, min_size=1, max_size=4)) + text[i:]
        elif op == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 8)) :]
        elif op == "repeat":
            j = draw(st.integers(i, min(n, i + 16)))
            text = text[:j] + text[i:j] * draw(st.integers(1, 3)) + text[j:]
    return text


@st.composite
def mutate_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` after one to four random edits (a flipped byte may break the UTF-8)."""
    for _ in range(draw(st.integers(1, 4))):
        n = len(data)
        i = draw(st.integers(0, n))
        op = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "repeat"]))
        if op == "truncate":
            data = data[:i]
        elif op == "flip" and i < n:
            data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
        elif op == "insert":
            data = data[:i] + draw(st.binary(min_size=1, max_size=4)) + data[i:]
        elif op == "delete":
            data = data[:i] + data[i + draw(st.integers(1, 8)) :]
        elif op == "repeat":
            j = draw(st.integers(i, min(n, i + 16)))
            data = data[:j] + data[i:j] * draw(st.integers(1, 3)) + data[j:]
    return data


@st.composite
def mutate_attachments(draw: st.DrawFn, attachments: list[bytes]) -> list[bytes]:
    op = draw(st.sampled_from(["keep", "keep", "drop", "duplicate", "add", "replace"]))
    attachments = list(attachments)
    if op == "drop" and attachments:
        del attachments[draw(st.integers(0, len(attachments) - 1))]
    elif op == "duplicate" and attachments:
        attachments.append(attachments[draw(st.integers(0, len(attachments) - 1))])
    elif op == "add":
        attachments.append(draw(st.binary(max_size=8)))
    elif op == "replace" and attachments:
        attachments[draw(st.integers(0, len(attachments) - 1))] = draw(st.binary(max_size=8))
    return attachments


def sio_wire(packet: SioPacket) -> list[str | bytes]:
    """The messages that carry ``packet``: its text, then one binary message per attachment."""
    text, attachments = encode(packet)
    return [text, *attachments]


def as_payload(messages: list[str | bytes]) -> str:
    """Socket.IO messages as one polling body (Engine.IO message packets, binary as base64)."""
    return encode_payload([EioPacket(EioType.MESSAGE, m) for m in messages])


def check_sio_accepted(packet: Any) -> None:
    """A packet the decoder accepted: a real packet, which encodes again to the same packet."""
    assert isinstance(packet, SioPacket)
    text, attachments = encode(packet)
    text.encode("utf-8")
    assert sio_decode(text, attachments) == packet


def feed(decoder: Decoder, message: str | bytes) -> Any:
    if isinstance(message, str):
        return decoder.receive_text(message)
    return decoder.receive_binary(message)


# -- the seed corpus: valid messages of every shape ----------------------------------------------

B1, B2 = b"\x01\x02\x03", b"\x04\x05\x06"
SIO_SEEDS: list[SioPacket] = [
    SioPacket.connect(),
    SioPacket.connect("/custom", {"token": "123"}),
    SioPacket.connect("/", {"sid": "wZX3oN0bSVIhsaknAAAI", "pid": "p", "offset": "MzUPkW0"}),
    SioPacket.disconnect("/admin"),
    SioPacket.disconnect(),
    SioPacket.connect_error("/random", "Invalid namespace"),
    SioPacket.connect_error("/", "not authorized", {"code": 4001, "hint": ["a", None, 1.5]}),
    SioPacket.event("/", "message", 1, "2", {"3": [True]}),
    SioPacket.event("/", "message-with-ack", 1, "2", {"3": [False]}, id=456),
    SioPacket.event("/custom", "message-with-ack", "y", id=12),
    SioPacket.event("/", "message", B1, B2),
    SioPacket.event("/", "message-with-ack", {"a": [B1, {"b": B2}]}, id=789),
    SioPacket.event("/", "chat", 'é 😀 \x1e \\ "', -0.5, 1e300, 2**53, None),
    SioPacket.event("/", 42),
    SioPacket.event("/a,b".replace(",", ""), "x", [[[[]]]], id=2**53 - 1),
    SioPacket.event("/", "ten", *[bytes([i]) for i in range(10)]),
    SioPacket.ack("/", 456, 1, "2", {"3": [False]}),
    SioPacket.ack("/", 13, "y", {"z": 1}),
    SioPacket.ack("/custom", 15, B1, "bar"),
    SioPacket.ack("/", 0),
]
SIO_WIRES = [sio_wire(p) for p in SIO_SEEDS]
EIO_SEEDS = [
    "0" + '{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":300}',
    "1",
    "2",
    "3",
    "2probe",
    "3probe",
    "5",
    "6",
    "4hello",
    "4",
    "4€ 😀",
]
EIO_BODIES = [
    SEP.join(EIO_SEEDS),
    "4hello" + SEP + "bAQIDBA==",
    "b" + SEP + "6" + SEP + "3",
    *(as_payload(wire) for wire in SIO_WIRES),
    as_payload([m for wire in SIO_WIRES for m in wire]),
]


# -- Engine.IO ------------------------------------------------------------------------------


@FUZZ
@given(st.sampled_from(EIO_BODIES).map(str.encode).flatmap(mutate_bytes))
def test_fuzz_eio_polling_body(body: bytes) -> None:
    try:
        packets = decode_payload(body)
    except ProtocolError:
        return
    assert packets and all(isinstance(p, EioPacket) for p in packets)
    for packet in packets:
        assert isinstance(packet.type, EioType) and isinstance(packet.data, (str, bytes))
        assert not packet.binary or packet.type is EioType.MESSAGE
    # what was accepted reads the same once written again (text without the separator)
    assert decode_payload(encode_payload(packets)) == packets


@SMALL_FUZZ
@given(st.sampled_from(EIO_SEEDS).flatmap(mutate_text))
def test_fuzz_eio_websocket_text_frame(frame: str) -> None:
    try:
        packet = decode_ws(frame)
    except ProtocolError:
        return
    assert decode_ws(encode_ws(packet)) == packet


# -- Socket.IO ------------------------------------------------------------------------------


@FUZZ
@given(
    st.sampled_from(SIO_WIRES).flatmap(
        lambda wire: st.tuples(mutate_text(wire[0]), mutate_attachments(wire[1:]))
    )
)
def test_fuzz_sio_decoder(wire: tuple[str, list[bytes]]) -> None:
    text, attachments = wire
    decoder = Decoder()
    try:
        packet = decoder.receive_text(text)
        for attachment in attachments:
            packet = decoder.receive_binary(attachment)  # one too many must be refused
    except ProtocolError:
        return
    if packet is not None:
        check_sio_accepted(packet)


@SMALL_FUZZ
@given(
    st.lists(st.sampled_from(SIO_WIRES), min_size=1, max_size=3)
    .map(lambda wires: as_payload([m for wire in wires for m in wire]).encode())
    .flatmap(mutate_bytes)
)
def test_fuzz_polling_path_eio_then_sio(body: bytes) -> None:
    """The whole polling path: bytes of a POST → Engine.IO packets → Socket.IO packets."""
    try:
        packets = decode_payload(body)
    except ProtocolError:
        return
    decoder = Decoder()
    for eio in packets:
        if eio.type is not EioType.MESSAGE:
            continue  # handled by the Engine.IO session, not the Socket.IO decoder
        try:
            packet = feed(decoder, eio.data)
        except ProtocolError:
            return  # the server closes the connection here
        if packet is not None:
            check_sio_accepted(packet)


def test_the_seeds_are_valid() -> None:
    """A sanity check of the fuzzer itself: every seed decodes before it is mutated."""
    for packet, wire in zip(SIO_SEEDS, SIO_WIRES, strict=True):
        assert sio_decode(wire[0], wire[1:]) == packet  # type: ignore[arg-type]
    for body in EIO_BODIES:
        assert decode_payload(body.encode())
    assert [p.data for p in decode_payload(as_payload(SIO_WIRES[10]))] == SIO_WIRES[10]
    assert as_payload([B1]) == "b" + base64.b64encode(B1).decode()
