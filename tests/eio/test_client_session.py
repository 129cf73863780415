"""The Engine.IO client session state machine, driven by hand on a fake clock.

No sockets, no event loop: time is a plain float passed in as ``now``; packets go in through
``receive`` / ``receive_payload`` and come out of ``take_outgoing`` / ``take_payload``.
Spec: socketio/engine.io-protocol README.md ("Handshake", "Heartbeat", "Upgrade", "Payload").
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from sio_teach.eio import client_session
from sio_teach.eio.client_session import TRANSITIONS, ClientSession, State
from sio_teach.eio.events import Closed, Message, Upgraded
from sio_teach.eio.packet import (
    CLOSE,
    NOOP,
    PING,
    PING_PROBE,
    PONG,
    PONG_PROBE,
    UPGRADE,
    Packet,
    PacketType,
    decode_payload,
    encode_payload,
    encode_ws,
)
from sio_teach.errors import ProtocolError

SEP = "\x1e"


def open_body(
    sid: str = "abc",
    upgrades: list[str] | None = None,
    ping_interval: int = 300,
    ping_timeout: int = 200,
    max_payload: int = 1_000_000,
) -> str:
    """The handshake body the server sends (``0`` + JSON, times in milliseconds)."""
    info = {
        "sid": sid,
        "upgrades": ["websocket"] if upgrades is None else upgrades,
        "pingInterval": ping_interval,
        "pingTimeout": ping_timeout,
        "maxPayload": max_payload,
    }
    return "0" + json.dumps(info, separators=(",", ":"))


def opened(transport: str = "polling", now: float = 0.0, **handshake: object) -> ClientSession:
    """A session that has received its open packet at ``now``."""
    session = ClientSession(transport)
    session.receive_payload(open_body(**handshake), now)  # type: ignore[arg-type]
    assert session.events() == []
    return session


def message(text: str) -> Packet:
    return Packet(PacketType.MESSAGE, text)


# -- the module is pure -------------------------------------------------------------------------


def test_client_session_does_no_io() -> None:
    """ARCHITECTURE.md: eio/ never imports tornado, asyncio, time, socket (time is passed in)."""
    tree = ast.parse(Path(client_session.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"tornado", "asyncio", "time", "socket", "threading", "redis"}


# -- handshake --------------------------------------------------------------------------------


def test_new_session_is_opening_without_deadline() -> None:
    session = ClientSession()
    assert session.state is State.OPENING
    assert session.sid is None
    assert session.handshake is None
    assert session.next_deadline() is None
    session.handle_timeout(1e9)  # no handshake yet: nothing to time out
    assert session.state is State.OPENING
    assert session.events() == []


def test_open_packet_is_parsed_milliseconds_to_seconds() -> None:
    session = ClientSession("polling")
    session.receive_payload(
        open_body(sid="s1", ping_interval=300, ping_timeout=200, max_payload=100), now=10.0
    )
    assert session.state is State.POLLING
    assert session.sid == "s1"
    hs = session.handshake
    assert hs is not None
    assert hs.upgrades == ["websocket"]
    assert hs.ping_interval == pytest.approx(0.3)
    assert hs.ping_timeout == pytest.approx(0.2)
    assert hs.max_payload == 100
    # the server is presumed gone if no ping comes within pingInterval + pingTimeout
    assert session.next_deadline() == pytest.approx(10.5)
    assert session.events() == []


def test_default_intervals_convert_exactly() -> None:
    session = opened(ping_interval=25000, ping_timeout=20000)
    assert session.handshake is not None
    assert session.handshake.ping_interval == 25.0
    assert session.handshake.ping_timeout == 20.0
    assert session.next_deadline() == pytest.approx(45.0)


def test_open_on_websocket_goes_straight_to_websocket_state() -> None:
    session = ClientSession("websocket")
    session.receive(Packet(PacketType.OPEN, open_body(upgrades=[])[1:]), now=0.0)
    assert session.state is State.WEBSOCKET
    assert session.transport == "websocket"
    assert session.handshake is not None and session.handshake.upgrades == []


def test_max_payload_defaults_when_absent() -> None:
    """Older servers omit maxPayload; the client then uses the JS default (1e6)."""
    session = ClientSession()
    session.receive_payload('0{"sid":"a","upgrades":[],"pingInterval":300,"pingTimeout":200}', 0.0)
    assert session.handshake is not None and session.handshake.max_payload == 1_000_000


def test_handshake_payload_may_carry_messages_after_the_open_packet() -> None:
    session = ClientSession()
    session.receive_payload(open_body() + SEP + "4hello" + SEP + "bAQIDBA==", now=0.0)
    assert session.state is State.POLLING
    assert session.events() == [Message("hello"), Message(b"\x01\x02\x03\x04")]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("0", id="empty"),
        pytest.param("0not json", id="not-json"),
        pytest.param("0{", id="truncated-json"),
        pytest.param("0[]", id="array"),
        pytest.param("0null", id="null"),
        pytest.param('0"sid"', id="string"),
        pytest.param("0{}", id="empty-object"),
        pytest.param('0{"sid":"a","pingTimeout":200}', id="no-pingInterval"),
        pytest.param('0{"sid":"a","pingInterval":300}', id="no-pingTimeout"),
        pytest.param('0{"pingInterval":300,"pingTimeout":200}', id="no-sid"),
        pytest.param('0{"sid":"a","pingInterval":"300","pingTimeout":200}', id="interval-string"),
        pytest.param('0{"sid":"a","pingInterval":null,"pingTimeout":200}', id="interval-null"),
        pytest.param(
            '0{"sid":"a","pingInterval":300,"pingTimeout":200,"maxPayload":"big"}',
            id="maxPayload-string",
        ),
        # The two below are accepted today: `str(None)` makes the sid "None" (later sent as
        # `sid=None` in every URL) and `list("websocket")` makes the upgrades
        # ['w', 'e', 'b', ...]. A malformed open packet should be refused, not reinterpreted.
        pytest.param('0{"sid":null,"pingInterval":300,"pingTimeout":200}', id="sid-null"),
        pytest.param(
            '0{"sid":"a","upgrades":"websocket","pingInterval":300,"pingTimeout":200}',
            id="upgrades-string",
        ),
    ],
)
def test_malformed_open_packet_is_a_protocol_error(body: str) -> None:
    session = ClientSession()
    with pytest.raises(ProtocolError):
        session.receive_payload(body, now=0.0)
    assert session.state is State.OPENING
    assert session.sid is None


@pytest.mark.parametrize("wire", ["4hello", "2", "3", "6", "1", "5"])
def test_anything_but_open_first_is_a_protocol_error(wire: str) -> None:
    session = ClientSession()
    with pytest.raises(ProtocolError):
        session.receive_payload(wire, now=0.0)
    assert session.state is State.OPENING


def test_second_open_packet_is_a_protocol_error() -> None:
    session = opened()
    with pytest.raises(ProtocolError):
        session.receive_payload(open_body(sid="other"), now=1.0)
    assert session.sid == "abc"


@pytest.mark.parametrize(
    "packet", [PONG, PONG_PROBE, UPGRADE], ids=["pong", "pong-probe", "upgrade"]
)
def test_packets_only_a_client_sends_are_protocol_errors(packet: Packet) -> None:
    """v4: the server pings, the client pongs; a pong or an upgrade from the server is wrong."""
    session = opened()
    with pytest.raises(ProtocolError):
        session.receive(packet, now=0.1)


# -- heartbeat ------------------------------------------------------------------------------


def test_ping_is_answered_with_pong() -> None:
    session = opened()
    session.receive_payload("2", now=0.3)
    assert session.take_outgoing() == [PONG]
    assert session.has_outgoing() is False


def test_pong_goes_out_in_a_post_body_as_3() -> None:
    session = opened()
    session.receive(PING, now=0.3)
    assert session.take_payload() == "3"


def test_pong_keeps_its_place_after_queued_messages() -> None:
    session = opened()
    session.send("first")
    session.receive(PING, now=0.3)
    session.send("second")
    assert session.take_outgoing() == [message("first"), PONG, message("second")]


def test_no_ping_within_interval_plus_timeout_closes_with_ping_timeout() -> None:
    session = opened(now=100.0)  # pingInterval 0.3 + pingTimeout 0.2
    deadline = session.next_deadline()
    assert deadline == pytest.approx(100.5)
    session.handle_timeout(100.49)
    assert session.state is State.POLLING
    assert session.events() == []
    session.handle_timeout(deadline)  # type: ignore[arg-type]
    assert session.state is State.CLOSED
    assert session.close_reason == "ping timeout"
    assert session.events() == [Closed("ping timeout")]
    assert session.next_deadline() is None


def test_handle_timeout_is_harmless_when_called_early_or_twice() -> None:
    session = opened(now=0.0)
    for now in (0.0, 0.1, 0.4999):
        session.handle_timeout(now)
    assert session.state is State.POLLING
    session.handle_timeout(0.6)
    session.handle_timeout(0.7)
    assert session.events() == [Closed("ping timeout")]


def test_each_ping_pushes_the_deadline() -> None:
    session = opened(now=0.0)
    now = 0.0
    for _ in range(10):  # ten pings, each just before the server would be given up
        now += 0.45
        session.handle_timeout(now)
        session.receive(PING, now)
        assert session.next_deadline() == pytest.approx(now + 0.5)
    assert session.state is State.POLLING
    assert session.take_outgoing() == [PONG] * 10
    session.handle_timeout(now + 0.49)
    assert session.state is State.POLLING
    session.handle_timeout(now + 0.5)
    assert session.close_reason == "ping timeout"


def test_messages_do_not_push_the_deadline() -> None:
    """Only a ping proves the heartbeat (a message is data, not a ping)."""
    session = opened(now=0.0)
    session.receive(message("hi"), now=0.4)
    assert session.next_deadline() == pytest.approx(0.5)


def test_heartbeat_continues_over_websocket_after_upgrade() -> None:
    session = opened(now=0.0)
    session.start_upgrade()
    session.receive_probe(PONG_PROBE)
    session.receive_payload("6", now=0.1)  # the paused GET returns
    session.finish_upgrade()
    session.receive(PING, now=0.4)
    assert session.take_outgoing() == [PONG]
    assert session.next_deadline() == pytest.approx(0.9)
    session.handle_timeout(0.9)
    assert session.close_reason == "ping timeout"


# -- messages and noop ---------------------------------------------------------------------------


def test_text_and_binary_messages_from_a_payload() -> None:
    session = opened()
    session.receive_payload("4hello" + SEP + "bAQIDBA==" + SEP + "4" + SEP + "4é✓", now=0.1)
    assert session.events() == [
        Message("hello"),
        Message(b"\x01\x02\x03\x04"),
        Message(""),
        Message("é✓"),
    ]
    assert session.events() == []  # events are handed out once


def test_noop_is_ignored() -> None:
    session = opened()
    session.receive(NOOP, now=0.1)
    session.receive_payload("6" + SEP + "6", now=0.1)
    assert session.events() == []
    assert session.has_outgoing() is False
    assert session.state is State.POLLING


def test_malformed_payload_is_a_protocol_error() -> None:
    session = opened()
    with pytest.raises(ProtocolError):
        session.receive_payload("4ok" + SEP + "9bad", now=0.1)
    with pytest.raises(ProtocolError):
        session.receive_payload("b!!notbase64", now=0.1)


# -- closing --------------------------------------------------------------------------------


def test_close_packet_from_server_closes_with_transport_close() -> None:
    session = opened()
    session.receive_payload("4bye" + SEP + "1", now=0.1)
    assert session.state is State.CLOSED
    assert session.close_reason == "transport close"
    assert session.events() == [Message("bye"), Closed("transport close")]
    assert session.next_deadline() is None


def test_after_close_packets_are_ignored_and_send_refused() -> None:
    session = opened()
    session.receive(CLOSE, now=0.1)
    session.events()
    session.receive(message("late"), now=0.2)
    session.receive(PING, now=0.2)
    assert session.events() == []
    assert session.has_outgoing() is False  # no pong for a closed session
    with pytest.raises(RuntimeError):
        session.send("too late")


def test_client_close_queues_a_close_packet_once() -> None:
    session = opened()
    session.send("last words")
    session.close()
    session.close()  # idempotent
    assert session.state is State.CLOSED
    assert session.close_reason == "io client disconnect"
    assert session.events() == [Closed("io client disconnect")]
    assert session.take_payload() == "4last words" + SEP + "1"
    assert session.next_deadline() is None


def test_close_before_handshake() -> None:
    session = ClientSession()
    session.close()
    assert session.state is State.CLOSED
    assert session.events() == [Closed("io client disconnect")]


def test_lost_transport_closes_with_the_given_reason_once() -> None:
    session = opened()
    session.lost("transport error")
    session.lost("transport close")
    session.close()  # already closed: no close packet
    assert session.close_reason == "transport error"
    assert session.events() == [Closed("transport error")]
    assert session.has_outgoing() is False


def test_ping_timeout_after_close_does_nothing() -> None:
    session = opened(now=0.0)
    session.close()
    session.events()
    session.handle_timeout(10.0)
    assert session.close_reason == "io client disconnect"
    assert session.events() == []


# -- upgrade --------------------------------------------------------------------------------


def test_upgrade_sequence() -> None:
    session = opened()
    probe = session.start_upgrade()
    assert probe == PING_PROBE
    assert encode_ws(probe) == "2probe"
    assert session.state is State.UPGRADING
    assert session.transport == "polling"  # polling still carries data while probing

    # a ping on polling during the probe is still answered
    session.receive_payload("2" + SEP + "4during", now=0.3)
    assert session.take_payload() == "3"
    session.post_done()  # the POST carrying the pong has returned
    assert session.events() == [Message("during")]

    session.receive_probe(PONG_PROBE)  # "3probe": polling pauses
    assert session.state is State.UPGRADING
    assert session.pausing and not session.paused  # the GET sent after that payload still waits
    session.receive_payload("6", now=0.4)  # the server answers it with a noop
    assert session.paused

    upgrade = session.finish_upgrade()
    assert upgrade == UPGRADE
    assert encode_ws(upgrade) == "5"
    assert session.state is State.WEBSOCKET
    assert session.transport == "websocket"
    assert session.events() == [Upgraded()]


def test_messages_queued_during_upgrade_are_kept_for_the_websocket() -> None:
    session = opened()
    session.send("a")
    session.start_upgrade()
    session.send("b")
    session.receive_probe(PONG_PROBE)
    session.send("c")
    session.receive_payload("6", now=0.1)
    session.finish_upgrade()
    session.send("d")
    assert session.take_outgoing() == [message(x) for x in "abcd"]


@pytest.mark.parametrize(
    "answer",
    [
        Packet(PacketType.PONG, "prob"),
        Packet(PacketType.PONG, ""),
        Packet(PacketType.PING, "probe"),
        Packet(PacketType.MESSAGE, "probe"),
        Packet(PacketType.MESSAGE, b"3probe"),
        NOOP,
    ],
    ids=["3prob", "3", "2probe", "4probe", "binary", "noop"],
)
def test_wrong_probe_answer_is_a_protocol_error_and_polling_continues(answer: Packet) -> None:
    session = opened()
    session.start_upgrade()
    with pytest.raises(ProtocolError):
        session.receive_probe(answer)
    assert session.state is State.POLLING
    assert session.transport == "polling"
    assert session.events() == []
    # still a working polling session, and a later upgrade may be tried again
    session.send("still here")
    assert session.take_payload() == "4still here"
    assert session.start_upgrade() == PING_PROBE
    assert session.state is State.UPGRADING


def test_probe_failed_returns_to_polling_and_is_harmless_otherwise() -> None:
    session = opened()
    session.probe_failed()  # not upgrading: nothing happens
    assert session.state is State.POLLING
    session.start_upgrade()
    session.probe_failed()
    assert session.state is State.POLLING
    session.close()
    session.probe_failed()
    assert session.state is State.CLOSED


def test_upgrade_waits_for_the_paused_get() -> None:
    """Spec "Upgrade": the client pauses polling and sends ``5`` only once the pending GET (and
    POST) have returned (engine.io-client ``Polling.pause``). The GET is answered by a noop."""
    session = opened()
    session.start_upgrade()
    session.receive_probe(PONG_PROBE)
    with pytest.raises(ProtocolError, match="not paused"):
        session.finish_upgrade()  # the GET sent after the handshake has not returned
    assert (session.state, session.transport) == (State.UPGRADING, "polling")
    session.receive_payload("6", now=0.1)
    assert session.finish_upgrade() == UPGRADE
    assert session.state is State.WEBSOCKET


def test_upgrade_waits_for_the_post_in_flight() -> None:
    session = opened()
    session.send("a")
    session.start_upgrade()
    assert session.take_payload() == "4a"  # its POST is in flight
    session.receive_probe(PONG_PROBE)
    session.receive_payload("6", now=0.1)
    with pytest.raises(ProtocolError, match="not paused"):
        session.finish_upgrade()
    session.post_done()
    assert session.finish_upgrade() == UPGRADE


def test_a_paused_session_that_falls_back_polls_again() -> None:
    """The WebSocket died during the pause: polling resumes, and a new probe must wait again."""
    session = opened()
    session.start_upgrade()
    session.receive_probe(PONG_PROBE)
    session.receive_payload("6", now=0.1)
    session.probe_failed()
    assert (session.state, session.pausing) == (State.POLLING, False)
    session.start_upgrade()
    session.receive_probe(PONG_PROBE)
    with pytest.raises(ProtocolError, match="not paused"):
        session.finish_upgrade()  # the new GET of the resumed polling is in flight


def test_close_while_upgrading() -> None:
    session = opened()
    session.start_upgrade()
    session.receive(CLOSE, now=0.1)
    assert session.state is State.CLOSED
    with pytest.raises(ProtocolError):
        session.finish_upgrade()


# -- illegal transitions --------------------------------------------------------------------


def _opening() -> ClientSession:
    return ClientSession()


def _polling() -> ClientSession:
    return opened()


def _upgrading() -> ClientSession:
    session = opened()
    session.start_upgrade()
    return session


def _websocket() -> ClientSession:
    session = opened()
    session.start_upgrade()
    session.receive_probe(PONG_PROBE)
    session.receive_payload("6", now=0.0)
    session.finish_upgrade()
    return session


def _websocket_only() -> ClientSession:
    return opened("websocket")


def _closed() -> ClientSession:
    session = opened()
    session.close()
    return session


@pytest.mark.parametrize(
    ("make", "action"),
    [
        (_opening, "start_upgrade"),
        (_opening, "finish_upgrade"),
        (_polling, "finish_upgrade"),  # no 5 without a successful probe
        (_upgrading, "start_upgrade"),  # one probe at a time
        (_upgrading, "finish_upgrade"),  # no 5 before the 3probe
        (_websocket, "start_upgrade"),
        (_websocket, "finish_upgrade"),
        (_websocket_only, "start_upgrade"),
        (_closed, "start_upgrade"),
        (_closed, "finish_upgrade"),
    ],
)
def test_illegal_transitions_raise_protocol_error(make, action: str) -> None:  # type: ignore[no-untyped-def]
    session = make()
    before = (session.state, session.transport)
    with pytest.raises(ProtocolError):
        getattr(session, action)()
    assert (session.state, session.transport) == before


def test_transition_table() -> None:
    """Every state is reachable from OPENING, every live state can close, CLOSED is final."""
    reachable = {State.OPENING}
    frontier = [State.OPENING]
    while frontier:
        state = frontier.pop()
        for (source, _event), target in TRANSITIONS.items():
            if source is state and target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(State)
    for state in State:
        if state is not State.CLOSED:
            assert TRANSITIONS[(state, "close")] is State.CLOSED
    assert not [key for key in TRANSITIONS if key[0] is State.CLOSED]


# -- sending: take_payload batches by maxPayload ---------------------------------------------------


def drain_payloads(session: ClientSession) -> list[str]:
    bodies = []
    while session.has_outgoing():
        bodies.append(session.take_payload())
        assert len(bodies) < 1000, "take_payload does not make progress"
    return bodies


def test_take_payload_respects_max_payload() -> None:
    session = opened(max_payload=100)
    texts = [f"m{i:02d}".ljust(19, ".") for i in range(30)]  # "4" + 19 chars = 20 bytes each
    for text in texts:
        session.send(text)
    assert all(len(encode_payload([message(t)])) == 20 for t in texts)

    bodies = drain_payloads(session)
    assert len(bodies) > 1
    for body in bodies:
        assert len(body.encode()) <= 100
    received = [packet for body in bodies for packet in decode_payload(body)]
    assert received == [message(t) for t in texts]  # all of them, in order, once
    # "as many as fit": adding the next packet to any body would have gone over the limit
    for body, following in zip(bodies, bodies[1:], strict=False):
        next_packet = following.split(SEP)[0]
        assert len((body + SEP + next_packet).encode()) > 100


def test_take_payload_fills_a_body_up_to_exactly_max_payload() -> None:
    """Four 20-byte packets joined by three separators are 83 bytes: they fit a maxPayload of 83.

    The server refuses a body only when it is *larger* than maxPayload (413); the JS client
    (engine.io-client ``_getWritablePackets``) counts one separator per packet *between* packets.
    """
    session = opened(max_payload=83)
    for i in range(8):
        session.send(f"m{i}".ljust(19, "."))
    bodies = drain_payloads(session)
    assert [len(body.encode()) for body in bodies] == [83, 83]


def test_take_payload_counts_utf8_bytes_not_characters() -> None:
    session = opened(max_payload=50)
    text = "é" * 10  # 10 characters, 20 bytes: the packet is 21 bytes
    for _ in range(6):
        session.send(text)
    bodies = drain_payloads(session)
    for body in bodies:
        assert len(body.encode()) <= 50
    assert [packet for body in bodies for packet in decode_payload(body)] == [message(text)] * 6


def test_oversize_packet_is_still_sent_alone() -> None:
    session = opened(max_payload=100)
    big = "x" * 150
    session.send("before")
    session.send(big)
    session.send("after")
    bodies = drain_payloads(session)
    assert bodies == ["4before", "4" + big, "4after"]


def test_take_payload_without_limit_pressure_sends_everything_at_once() -> None:
    session = opened()  # maxPayload 1e6
    for i in range(100):
        session.send(str(i))
    bodies = drain_payloads(session)
    assert len(bodies) == 1
    assert decode_payload(bodies[0]) == [message(str(i)) for i in range(100)]


# -- sending: binary ---------------------------------------------------------------------------------


def test_binary_in_a_payload_is_b_plus_base64() -> None:
    session = opened()
    session.send("hello")
    session.send(b"\x01\x02\x03\x04")
    assert session.take_payload() == "4hello" + SEP + "bAQIDBA=="


def test_binary_on_websocket_stays_raw_bytes() -> None:
    session = _websocket()
    session.send(b"\x00\xff")
    packets = session.take_outgoing()
    assert packets == [Packet(PacketType.MESSAGE, b"\x00\xff")]
    assert encode_ws(packets[0]) == b"\x00\xff"  # no type prefix on a binary frame


def test_binary_size_is_counted_as_base64() -> None:
    """30 raw bytes are 41 bytes on the wire (``b`` + 40 base64 characters): two per 100-byte body."""
    session = opened(max_payload=100)
    blobs = [bytes([i]) * 30 for i in range(6)]
    for blob in blobs:
        session.send(blob)
    bodies = drain_payloads(session)
    for body in bodies:
        assert len(body.encode()) <= 100
    assert [len(decode_payload(body)) for body in bodies] == [2, 2, 2]
    assert [p.data for body in bodies for p in decode_payload(body)] == blobs


def test_take_outgoing_empties_the_queue() -> None:
    session = opened()
    session.send("x")
    assert session.has_outgoing()
    assert session.take_outgoing() == [message("x")]
    assert session.take_outgoing() == []
    assert session.has_outgoing() is False
