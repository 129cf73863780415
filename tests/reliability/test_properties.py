"""Properties of the two codecs, checked with hypothesis.

* Round trips: for every packet shape (every type, text and binary, any namespace, ack id and JSON
  payload, up to 10 attachments), decoding what the encoder wrote gives the packet back: Engine.IO
  ``encode_ws``/``decode_ws`` and ``encode_payload``/``decode_payload`` (as text and as UTF-8
  bytes), Socket.IO ``encode`` + :class:`Decoder`.
* Hostile input: arbitrary strings and bytes into every decoder either decode or raise
  :class:`sio_teach.errors.ProtocolError` — never another exception type.
* What the decoder accepts, the encoder can send back: a server echoes what it receives (the
  conformance app's ``message`` → ``message-back``), so a packet the Socket.IO decoder accepts must
  encode again, into text that is valid UTF-8 (the only thing a WebSocket text frame or a polling
  body can carry), and decode to the same packet.

Example counts are modest (the whole file runs in a few seconds) and runs are deterministic
(``derandomize``); ``test_fuzz.py`` runs the long, mutation-based search.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sio_teach.eio.client_session import ClientSession
from sio_teach.eio.packet import Packet as EioPacket
from sio_teach.eio.packet import PacketType as EioType
from sio_teach.eio.packet import decode_payload, decode_ws, encode_payload, encode_ws
from sio_teach.eio.server_session import Config, ServerSession
from sio_teach.errors import ProtocolError
from sio_teach.sio.packet import MAX_ACK_ID, Decoder, decode_text, encode
from sio_teach.sio.packet import Packet as SioPacket
from tests.reliability.conftest import (
    CI,
    SEP,
    eio_packets,
    eio_payload_packets,
    sio_decode,
    sio_packets,
)

PROPERTY = settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], **CI)

# Input that looks like the real thing more often than uniform noise does.
EIO_ALPHABET = "0123456b=/+A" + SEP + "é\x00"
SIO_ALPHABET = '0123456789-/,[]{}":._placeholdertruenum' + "\x1e é\\"
hostile_text = st.text() | st.text(EIO_ALPHABET) | st.text(SIO_ALPHABET)
hostile_input = hostile_text | st.binary()


# -- Engine.IO round trips ------------------------------------------------------------------


@PROPERTY
@given(eio_packets)
def test_eio_websocket_frame_round_trip(packet: EioPacket) -> None:
    frame = encode_ws(packet)
    assert isinstance(frame, bytes) == packet.binary  # binary frames carry raw bytes, no type
    assert decode_ws(frame) == packet


@PROPERTY
@given(st.lists(eio_payload_packets, min_size=1, max_size=12))
def test_eio_polling_payload_round_trip(packets: list[EioPacket]) -> None:
    body = encode_payload(packets)
    assert decode_payload(body) == packets
    assert decode_payload(body.encode("utf-8")) == packets  # as it arrives in a POST


@PROPERTY
@given(st.binary(max_size=64))
def test_eio_binary_message_travels_as_base64_in_a_payload(data: bytes) -> None:
    body = encode_payload([EioPacket(EioType.MESSAGE, data)])
    assert body.startswith("b") and body.isascii()
    assert decode_payload(body) == [EioPacket(EioType.MESSAGE, data)]


def test_eio_encoders_agree_on_binary_non_message_packets() -> None:
    """Only a message can carry binary data: ``encode_ws`` refuses a binary ping (a local
    misuse, ``ValueError``), and so must ``encode_payload`` — today it silently writes the ping
    as a ``b``+base64 *message*, which the peer decodes as a different packet."""
    packet = EioPacket(EioType.PING, b"\x01")
    with pytest.raises(ValueError):
        encode_ws(packet)
    with pytest.raises(ValueError):
        encode_payload([packet])


# -- Engine.IO hostile input ------------------------------------------------------------------


@PROPERTY
@given(hostile_input)
@example(b"\xff\xfe")  # not UTF-8
@example("b" + "A" * 5)  # bad base64 padding
@example("bAQ=x")
@example(SEP * 3)
@example("")
def test_eio_decode_payload_raises_only_protocol_error(body: str | bytes) -> None:
    try:
        packets = decode_payload(body)
    except ProtocolError:
        return
    assert packets and all(isinstance(p, EioPacket) for p in packets)
    # what was accepted decodes the same once written again
    assert decode_payload(encode_payload(packets)) == packets


@PROPERTY
@given(hostile_input)
@example("")
@example("9")
@example("\u0664")  # an Arabic-Indic digit four: not a packet type
def test_eio_decode_ws_raises_only_protocol_error(frame: str | bytes) -> None:
    try:
        packet = decode_ws(frame)
    except ProtocolError:
        assert isinstance(frame, str)  # a binary frame is always a binary message
        return
    assert decode_ws(encode_ws(packet)) == packet


@PROPERTY
@given(st.lists(hostile_input.map(lambda b: b if isinstance(b, bytes) else b.encode()), max_size=4))
@example([b"2", b"4hello"])  # a ping from a client: refused, then more data
@example([b"\xff", b"6"])
def test_eio_server_session_takes_any_post_body(bodies: list[bytes]) -> None:
    """The server session's door for POST bodies: any bytes, one body after another (also after
    it closed the session): decoded, or ProtocolError."""
    session = ServerSession("sid", Config(), now=0.0)
    for body in bodies:
        try:
            session.receive_payload(body, now=1.0)
        except ProtocolError:
            assert session.closed or len(body) > session.config.max_payload
        session.events()


@PROPERTY
@given(hostile_input | hostile_text.map(lambda t: "0" + t))
@example('0{"sid":1,"upgrades":[],"pingInterval":300,"pingTimeout":200}')
@example('0{"sid":"s","upgrades":"websocket","pingInterval":"300","pingTimeout":200}')
@example('0["sid"]')
@example("0null")
def test_eio_client_session_takes_any_handshake_body(body: str | bytes) -> None:
    """The client's door for the first GET (the open packet): decoded, or ProtocolError."""
    session = ClientSession("polling")
    try:
        session.receive_payload(body, now=0.0)
    except ProtocolError:
        return
    assert session.handshake is not None and isinstance(session.sid, str)


# -- Socket.IO round trips --------------------------------------------------------------------


@PROPERTY
@given(sio_packets)
def test_sio_round_trip(packet: SioPacket) -> None:
    text, attachments = encode(packet)
    assert isinstance(text, str) and all(isinstance(a, bytes) for a in attachments)
    assert len(attachments) <= 10
    text.encode("utf-8")  # a text frame / polling body must be valid UTF-8
    assert sio_decode(text, attachments) == packet


@PROPERTY
@given(sio_packets)
def test_sio_wire_type_is_binary_exactly_when_bytes_travel(packet: SioPacket) -> None:
    text, attachments = encode(packet)
    binary = text[0] in "56"
    assert binary == bool(attachments)
    if binary:
        assert text[1 : 1 + len(str(len(attachments))) + 1] == f"{len(attachments)}-"


@PROPERTY
@given(st.integers(0, MAX_ACK_ID), st.sampled_from(["/", "/custom"]))
def test_sio_every_ack_id_up_to_2_53_minus_1_round_trips(ack_id: int, nsp: str) -> None:
    for packet in (
        SioPacket.event(nsp, "message-with-ack", 1, id=ack_id),
        SioPacket.ack(nsp, ack_id, b"\x01"),
    ):
        assert sio_decode(*encode(packet)) == packet


# -- Socket.IO hostile input ------------------------------------------------------------------


@PROPERTY
@given(hostile_text)
@example("2" + "9" * 30 + '["x"]')  # a huge ack id
@example("2" + "[" * 100_000)  # deeply nested JSON
@example("511-[]")  # too many attachments
@example('2["x",NaN]')
@example('2["x",' + "1" * 5000 + "]")  # an integer too long to convert
@example("5" + "9" * 50 + "-[]")
def test_sio_decode_text_raises_only_protocol_error(text: str) -> None:
    try:
        decode_text(text)
    except ProtocolError:
        pass


@PROPERTY
@given(st.lists(hostile_input, min_size=1, max_size=6))
@example(['51-["x",{"_placeholder":true,"num":1}]', b"\x01"])  # placeholder out of range
@example([b"\x01"])  # an attachment nobody announced
@example(['51-["x"]', '2["y"]'])  # text while an attachment is awaited
def test_sio_decoder_raises_only_protocol_error(messages: list[str | bytes]) -> None:
    """Any sequence of text and binary messages: each one decodes, waits for more, or raises
    ProtocolError; after a ProtocolError the decoder refuses to go on (the connection is to be
    closed), with RuntimeError, as documented."""
    decoder = Decoder()
    for message in messages:
        try:
            if isinstance(message, str):
                packet = decoder.receive_text(message)
            else:
                packet = decoder.receive_binary(message)
        except ProtocolError:
            with pytest.raises(RuntimeError):
                decoder.receive_text('2["x"]')
            return
        assert packet is None or isinstance(packet, SioPacket)


@PROPERTY
@given(hostile_input)
def test_sio_decoder_refuses_the_wrong_kind_of_message(message: str | bytes) -> None:
    """``receive_text`` with bytes or ``receive_binary`` with text is a ProtocolError too (a
    transport hands the decoder whatever the peer sent)."""
    receive = Decoder().receive_binary if isinstance(message, str) else Decoder().receive_text
    with pytest.raises(ProtocolError):
        receive(message)  # type: ignore[arg-type]


# -- what the decoder accepts, the encoder can send back --------------------------------------


def reencodes(text: str, attachments: list[bytes] | None = None) -> None:
    """Assert: if the Decoder accepts ``text`` (+ attachments), the packet encodes again, into
    valid UTF-8, and decodes to the same packet."""
    try:
        packet = sio_decode(text, attachments or [])
    except ProtocolError:
        return  # refused at the door: fine
    assert packet is not None
    again, again_attachments = encode(packet)  # must not raise: the server echoes such packets
    again.encode("utf-8")  # must not raise: the only thing a text frame / polling body carries
    assert sio_decode(again, again_attachments) == packet


def json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@PROPERTY
@given(
    st.sampled_from(["2", "21", "2/custom,", "2/custom,7", "31", "3/custom,1"]),
    st.lists(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
            max_leaves=8,
        ).map(json_text),
        max_size=4,
    ),
)
def test_sio_accepted_json_payloads_encode_again(head: str, args: list[str]) -> None:
    """EVENT / ACK payloads written as JSON text by any peer (infinities are written as JSON
    cannot hold them: ``Infinity``, refused at the door)."""
    items = (['"message"'] if head[0] == "2" else []) + args
    reencodes(head + "[" + ",".join(items) + "]")


def test_out_of_range_number_is_refused_or_encodes_again() -> None:
    """``1e400`` is valid JSON (JSON.parse gives Infinity). Python's json gives ``inf``, which
    ``encode`` then refuses (``allow_nan=False``): the decoder must refuse such a number (as it
    refuses ``Infinity``), or the encoder must be able to write it back (JSON.stringify writes
    ``null``)."""
    reencodes('2["message",1e400]')
    reencodes('21["message-with-ack",-1e400]')


def test_lone_surrogate_escape_is_refused_or_encodes_to_valid_utf8() -> None:
    """``"\\ud800"`` is valid JSON text (a lone surrogate, escaped; JSON.parse accepts it and
    JSON.stringify escapes it again). ``encode`` writes it raw (``ensure_ascii=False``), which no
    UTF-8 text frame or polling body can carry."""
    reencodes('2["message","\\ud800"]')
    reencodes('21["message-with-ack",{"k":"a\\udfffb"}]')


@pytest.mark.parametrize("depth", [50, 200, 400, 800])
def test_nesting_the_decoder_accepts_encodes_again(depth: int) -> None:
    """Valid JSON nested ``depth`` levels: whatever depth the decoder lets in, ``encode`` must
    handle (``has_binary`` / ``deconstruct`` recurse in Python, about two frames per level)."""
    nested = "[" * depth + "1" + "]" * depth
    reencodes(f'2["message",{nested}]')
    reencodes(f"31[{nested}]")
