"""Properties of the two codecs and of the state machines, checked with hypothesis.

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
from sio_teach.eio.client_session import State as EioClientState
from sio_teach.eio.events import Message as EioMessage
from sio_teach.eio.packet import Packet as EioPacket
from sio_teach.eio.packet import PacketType as EioType
from sio_teach.eio.packet import decode_payload, decode_ws, encode_payload, encode_ws
from sio_teach.eio.server_session import Config, ServerSession
from sio_teach.errors import ProtocolError
from sio_teach.sio.client_connection import (
    ClientConnection,
    CloseTransport,
    EventReceived,
    NspState,
    OpenTransport,
)
from sio_teach.sio.packet import MAX_ACK_ID, Decoder, decode_text, encode
from sio_teach.sio.packet import Packet as SioPacket
from sio_teach.sio.packet import PacketType as SioType
from sio_teach.sio.server_connection import CloseConnection, ConnectRequested, ServerConnection
from sio_teach.sio.server_connection import Event as SioServerEvent
from sio_teach.sio.server_connection import State as SioServerState
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


# -- Engine.IO: a client session and a server session, the test as the network --------------------


class EioNetwork:
    """A :class:`ClientSession` and a :class:`ServerSession` in memory, on a fake clock. The test
    is the network and both shells: it carries polling requests (one GET and one POST at a time,
    each answered later) and WebSocket frames (in order), and does what the shells do after every
    change (``EngineSocket.after``, ``EngineClient._after``): the client polls again whenever it
    is polling and not paused, POSTs what is queued, and writes on the WebSocket once upgraded;
    the server answers a held GET once :meth:`~ServerSession.polling_ready`, and writes its queue
    on the WebSocket once upgraded.

    Each step is one thing the network may do next (:meth:`steps` lists the possible ones, and
    "probe breaks" while :attr:`probing`); hypothesis picks the order. The heartbeat runs
    (pingInterval 1 s) but never times out (pingTimeout 1000 s): every message must arrive.
    """

    def __init__(self, max_payload: int, packets_per_poll: int) -> None:
        self.now = 0.0
        config = Config(
            ping_interval=1.0,
            ping_timeout=1000.0,
            max_payload=max_payload,
            upgrade_timeout=1000.0,
            packets_per_poll=packets_per_poll,
        )
        self.server = ServerSession("sid", config, now=self.now)
        self.client = ClientSession("polling")
        self.sent: dict[str, list[str | bytes]] = {"client": [], "server": []}
        self.received: dict[str, list[str | bytes]] = {"client": [], "server": []}
        self.get_held = False  # a GET waits at the server
        self.get_answer: str | None = None  # a GET's answer on its way back
        self.post_body: str | None = None  # a POST on its way to the server
        self.post_answer = False  # a POST's "ok" on its way back
        self.ws_up: list[EioPacket] | None = None  # the WebSocket's frames, client → server
        self.ws_down: list[EioPacket] = []  # server → client
        self.server_probing = True  # the server sees the WebSocket as a probe until the `5`
        self.client_probing = True  # the client waits for `3probe` as the first frame
        # the handshake: the first GET, answered at once with the open packet
        self.client.receive_payload(self.server.take_payload(), self.now)
        self.settle()

    # -- what the shells do after every change --------------------------------------------------

    def settle(self) -> None:
        client, server = self.client, self.server
        for event in client.events():
            if isinstance(event, EioMessage):
                self.received["client"].append(event.data)
        for event in server.events():
            if isinstance(event, EioMessage):
                self.received["server"].append(event.data)
        assert not client.closed and not server.closed
        if client.transport == "websocket":
            assert self.ws_up is not None
            self.ws_up += client.take_outgoing()
        else:
            polling = client.state in (EioClientState.POLLING, EioClientState.UPGRADING)
            if polling and not client.pausing and not self.get_out:
                self.get_held = True  # the poll loop sends the next GET
            if client.has_outgoing() and not client.pausing and self.post_body is None:
                if not self.post_answer:
                    self.post_body = client.take_payload()
        if server.transport == "websocket":
            self.ws_down += server.take_outgoing()

    @property
    def get_out(self) -> bool:
        return self.get_held or self.get_answer is not None

    # -- the steps ------------------------------------------------------------------------------

    def steps(self) -> list[str]:
        client, server = self.client, self.server
        possible = ["client sends", "server sends", "time passes"]
        if self.get_held and server.polling_ready():
            possible.append("server answers the GET")
        if self.get_answer is not None:
            possible.append("GET answer arrives")
        if self.post_body is not None:
            possible.append("POST arrives")
        if self.post_answer:
            possible.append("POST answer arrives")
        if self.ws_up is None and client.state is EioClientState.POLLING:
            possible.append("WebSocket opens")
        if self.ws_up:
            possible.append("frame up arrives")
        if self.ws_down:
            possible.append("frame down arrives")
        if self.ws_up is not None and client.transport == "polling" and client.paused:
            possible.append("client finishes the upgrade")
        return possible

    @property
    def probing(self) -> bool:
        """A probing WebSocket is open (the step "probe breaks" may happen)."""
        return self.ws_up is not None and self.client.transport == "polling"

    def step(self, what: str, size: int) -> None:
        client, server, now = self.client, self.server, self.now
        if what == "client sends":
            data = self.message("c", size)
            self.sent["client"].append(data)
            client.send(data)
        elif what == "server sends":
            data = self.message("s", size)
            self.sent["server"].append(data)
            server.send(data)
        elif what == "time passes":
            self.now = now = now + 0.4
            server.handle_timeout(now)
            client.handle_timeout(now)
        elif what == "server answers the GET":
            self.get_held, self.get_answer = False, server.take_payload()
        elif what == "GET answer arrives":
            body, self.get_answer = self.get_answer, None
            client.receive_payload(body, now)  # type: ignore[arg-type]
        elif what == "POST arrives":
            body, self.post_body = self.post_body, None
            server.receive_payload(body.encode(), now)  # type: ignore[union-attr]
            self.post_answer = True
        elif what == "POST answer arrives":
            self.post_answer = False
            client.post_done()
        elif what == "WebSocket opens":
            self.ws_up, self.ws_down = [client.start_upgrade()], []
            self.server_probing = self.client_probing = True
        elif what == "frame up arrives":
            assert self.ws_up is not None
            packet = decode_ws(encode_ws(self.ws_up.pop(0)))
            if self.server_probing:
                reply = server.receive_probe(packet, now)
                if reply is None:
                    self.server_probing = False  # the `5`: the session is the WebSocket's
                else:
                    self.ws_down.append(reply)
            else:
                server.receive(packet, now)
        elif what == "frame down arrives":
            packet = decode_ws(encode_ws(self.ws_down.pop(0)))
            if self.client_probing:
                client.receive_probe(packet)
                self.client_probing = False
            else:
                client.receive(packet, now)
        elif what == "client finishes the upgrade":
            assert self.ws_up is not None
            self.ws_up.append(client.finish_upgrade())
        elif what == "probe breaks":  # the probing WebSocket closes before the `5` left
            self.ws_up, self.ws_down = None, []
            client.probe_failed()
            if self.server_probing:
                server.probe_failed()
        self.settle()

    def message(self, prefix: str, size: int) -> str | bytes:
        """A numbered message; every third one binary; ``size`` pads it (to fill payloads)."""
        n = len(self.sent["client" if prefix == "c" else "server"])
        text = f"{prefix}{n}" + "." * size
        return text.encode() if n % 3 == 2 else text

    # what the network still owes, in the order drain() delivers it: frames first (the client
    # reads `3probe` before its next GET returns), so the noops of an upgrade do not go round
    DELIVERIES = (
        "frame down arrives",
        "frame up arrives",
        "client finishes the upgrade",
        "POST arrives",
        "POST answer arrives",
        "GET answer arrives",
        "server answers the GET",
    )

    def drain(self) -> None:
        """Let the network deliver everything still on its way (no more sends, no more time)."""
        for _ in range(1000):
            possible = self.steps()
            moves = [s for s in self.DELIVERIES if s in possible]
            if not moves:
                return
            self.step(moves[0], 0)
        raise AssertionError("the network never went quiet")


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow], **CI)
@given(
    st.sampled_from([(1_000_000, 16), (40, 3), (12, 1)]),
    st.lists(st.tuples(st.integers(0, 255), st.integers(0, 30)), max_size=80),
    st.sets(st.integers(0, 79), max_size=2),
)
def test_eio_sessions_lose_duplicate_reorder_nothing_across_the_upgrade(
    limits: tuple[int, int], choices: list[tuple[int, int]], breaks: set[int]
) -> None:
    """Random interleavings of sends both ways, GETs and POSTs answered late, pings and pongs,
    the upgrade (probe, pause, ``5``) and broken probes: each side receives exactly what the
    other sent, once, in order. Small maxPayload / packets-per-poll values force payloads to be
    split into several GETs and POSTs."""
    network = EioNetwork(*limits)
    for i, (pick, size) in enumerate(choices):
        if i in breaks and network.probing:
            network.step("probe breaks", size)
        else:
            possible = network.steps()
            network.step(possible[pick % len(possible)], size)
    network.drain()
    assert network.received["server"] == network.sent["client"]
    assert network.received["client"] == network.sent["server"]


def run_steps(network: EioNetwork, steps: list[str]) -> None:
    for what in steps:
        assert what in network.steps(), (what, network.steps())
        network.step(what, 0)


def test_eio_upgrade_waits_for_the_post_in_flight() -> None:
    """The probe succeeds while a POST is on its way: the `5` waits for the POST's answer, else
    what the client sends next on the WebSocket could overtake it. (One interleaving of the
    property above, spelled out.)"""
    network = EioNetwork(1_000_000, 16)
    run_steps(network, ["client sends", "WebSocket opens", "frame up arrives"])
    run_steps(network, ["frame down arrives", "server answers the GET", "GET answer arrives"])
    assert network.client.pausing and network.post_body is not None
    assert "client finishes the upgrade" not in network.steps()
    run_steps(network, ["client sends", "POST arrives", "POST answer arrives"])
    run_steps(network, ["client finishes the upgrade", "client sends"])
    network.drain()
    assert network.received["server"] == network.sent["client"] == ["c0", "c1", b"c2"]


def test_eio_get_held_at_the_probe_is_answered() -> None:
    """A GET held at the server when the probe arrives is answered at once (a noop, or what is
    queued), so that the client can pause; what the server sends next waits for the WebSocket."""
    network = EioNetwork(1_000_000, 16)
    run_steps(network, ["WebSocket opens", "frame up arrives", "server answers the GET"])
    assert network.get_answer == "6"  # the noop
    run_steps(network, ["server sends", "frame down arrives", "GET answer arrives"])
    run_steps(network, ["client finishes the upgrade", "frame up arrives", "server sends"])
    assert network.server.transport == "websocket"
    network.drain()
    assert network.received["client"] == network.sent["server"] == ["s0", "s1"]


def test_eio_network_upgrades() -> None:
    """The network model above does reach the WebSocket (a sanity check of the test itself)."""
    network = EioNetwork(1_000_000, 16)
    for what in ("client sends", "server sends", "WebSocket opens", "frame up arrives"):
        network.step(what, 0)
    for what in ("frame down arrives", "server answers the GET", "GET answer arrives"):
        network.step(what, 0)
    network.drain()
    assert network.client.transport == network.server.transport == "websocket"
    network.step("client sends", 0)
    network.step("server sends", 0)
    network.drain()
    assert network.received["server"] == network.sent["client"] == ["c0", "c1"]
    assert network.received["client"] == network.sent["server"] == ["s0", "s1"]


# -- Socket.IO: the client's connection and the server's, through a pipe that breaks -------------


class SioNetwork:
    """A :class:`ClientConnection` and the server's :class:`ServerConnection` of each Engine.IO
    connection, through an in-memory pipe that may break, on a fake clock. The test plays both
    shells (``client.py``, ``server.py``): it opens the transport when the client asks
    (``OpenTransport``) — or fails to —, takes the client's packets after every call (dropped when
    no transport is open, as ``Client._send`` does), accepts every CONNECT, and carries the
    Engine.IO messages (a packet's text, then its attachments) in order.

    Every message that is on the wire when the pipe breaks is lost (the numbers of the EVENTs
    they belonged to are kept in ``lost``); nothing else may be.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.client = ClientConnection(random=lambda: 0.5)
        self.server: ServerConnection | None = None
        self.opening = False  # the client asked for a transport; it opens or fails next
        self.open = False
        self.up: list[tuple[str | bytes, int | None]] = []  # (message, number of its EVENT)
        self.down: list[tuple[str | bytes, int | None]] = []
        self.sent: dict[str, list[int]] = {"client": [], "server": []}
        self.buffered: list[int] = []  # the client's emits made while "/" was not connected
        self.received: dict[str, list[int]] = {"client": [], "server": []}
        self.lost: set[int] = set()  # numbers (of either side) on the wire when it broke
        self.drops = 0
        self.client.connect("/", self.now)
        self.settle()

    @staticmethod
    def wire(packet: SioPacket) -> list[tuple[str | bytes, int | None]]:
        n = packet.data[1] if packet.type is SioType.EVENT else None
        text, attachments = encode(packet)
        return [(text, n)] + [(attachment, n) for attachment in attachments]

    def settle(self) -> None:
        """What the shells do after every change, until nothing more happens."""
        client = self.client
        while True:
            packets, events = client.take_outgoing(), client.events()
            server_events = self.server.events() if self.server else []
            if not (packets or events or server_events):
                return
            for packet in packets:
                if self.open:
                    self.up += self.wire(packet)
            for event in events:
                if isinstance(event, OpenTransport):
                    self.opening = True
                elif isinstance(event, EventReceived):
                    self.received["client"].append(event.args[0])
                else:
                    assert not isinstance(event, CloseTransport), event
            for event in server_events:
                assert self.server is not None
                if isinstance(event, ConnectRequested):
                    reply = self.server.accept(event.nsp, "sid")
                    assert reply is not None
                    self.down += self.wire(reply)
                elif isinstance(event, SioServerEvent):
                    self.received["server"].append(event.args[0])
                elif isinstance(event, CloseConnection):  # the connect timeout, say
                    self.drop()

    def steps(self) -> list[str]:
        possible = ["client emits", "time passes"]
        if self.server is not None and self.server.state("/") is SioServerState.CONNECTED:
            possible.append("server emits")
        if self.up:
            possible.append("message up arrives")
        if self.down:
            possible.append("message down arrives")
        if self.opening:
            possible += ["transport opens", "transport fails to open"]
        return possible

    def step(self, what: str, binary: bool) -> None:
        client, now = self.client, self.now
        if what == "client emits":
            n = len(self.sent["client"])
            self.sent["client"].append(n)
            if client.namespaces["/"].state is not NspState.CONNECTED:
                self.buffered.append(n)
            client.emit("/", "up", (n, b"\x00" * n) if binary else (n,), now)
        elif what == "server emits":
            n = 1000 + len(self.sent["server"])
            self.sent["server"].append(n)
            self.down += self.wire(SioPacket.event("/", "down", n, *[b"\x01"] * binary))
        elif what == "time passes":
            deadline = client.next_deadline()
            self.now = now = max(now + 0.5, deadline or 0.0)
            client.handle_timeout(now)
            if self.server is not None:
                self.server.handle_timeout(now)
        elif what == "message up arrives":
            assert self.server is not None
            self.server.receive(self.up.pop(0)[0], now)
        elif what == "message down arrives":
            client.receive(self.down.pop(0)[0], now)
        elif what == "transport opens":
            self.opening, self.open = False, True
            self.server = ServerConnection(now)
            client.opened(now)
        elif what == "transport fails to open":
            self.opening = False
            client.open_failed("connection refused", now)
        elif what == "connection drops":
            self.drop()
        self.settle()

    def drop(self) -> None:
        """The Engine.IO connection breaks: what is on the wire is lost; both sides hear it."""
        if not self.open:
            return
        self.lost |= {n for _, n in self.up + self.down if n is not None}
        self.up, self.down, self.open = [], [], False
        self.drops += 1
        assert self.server is not None
        self.server.lost("transport close")
        self.client.lost("transport close", self.now)

    def drain(self) -> None:
        """No more emits, no more drops: deliver everything, reconnecting if need be."""
        for _ in range(1000):
            possible = self.steps()
            for what in ("message up arrives", "message down arrives", "transport opens"):
                if what in possible:
                    self.step(what, False)
                    break
            else:
                if self.client.next_deadline() is None:
                    return
                self.step("time passes", False)
        raise AssertionError("the network never went quiet")


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow], **CI)
@given(
    st.lists(st.tuples(st.integers(0, 255), st.booleans()), max_size=80),
    st.sets(st.integers(0, 79), max_size=4),
)
def test_sio_send_buffer_survives_drops_and_reconnections(
    choices: list[tuple[int, bool]], drops: set[int]
) -> None:
    """Random interleavings of emits both ways (some with binary attachments), deliveries, broken
    connections, failed and successful reconnections, time: each side receives what the other
    sent, once and in order, except what was on the wire when the connection broke. In particular
    an emit made while the namespace was not connected (the send buffer) is never lost from the
    buffer: it leaves once, in order, after the reconnection."""
    network = SioNetwork()
    for i, (pick, binary) in enumerate(choices):
        if i in drops and network.open:
            network.step("connection drops", binary)
        else:
            possible = network.steps()
            network.step(possible[pick % len(possible)], binary)
    network.drain()
    assert network.client.namespaces["/"].state is NspState.CONNECTED
    for side, other in (("server", "client"), ("client", "server")):
        expected = [n for n in network.sent[other] if n not in network.lost]
        assert network.received[side] == expected, side
    unsent = [n for n in network.buffered if n not in network.received["server"]]
    assert set(unsent) <= network.lost  # a buffered emit is lost only on the wire


def test_sio_emits_while_disconnected_leave_after_the_reconnection() -> None:
    """One interleaving spelled out: connected, the connection breaks, three emits wait in the
    send buffer (the reconnection fails once meanwhile), and arrive in order after the CONNECT
    reply."""
    network = SioNetwork()
    for what in ("transport opens", "message up arrives", "message down arrives"):
        network.step(what, False)
    assert network.client.namespaces["/"].state is NspState.CONNECTED
    network.step("connection drops", False)
    for what in ("client emits", "time passes", "transport fails to open", "client emits"):
        network.step(what, what == "client emits")
    for what in ("time passes", "transport opens", "client emits", "message up arrives"):
        network.step(what, False)
    assert network.client.namespaces["/"].buffer  # CONNECT sent, its reply not yet in
    network.drain()
    assert network.buffered == [0, 1, 2]
    assert network.received["server"] == [0, 1, 2]
