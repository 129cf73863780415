"""The sans-I/O Engine.IO server session, driven by hand on a fake clock (plain floats, no sleeps).

Spec: socketio/engine.io-protocol README.md (v4) "Heartbeat", "Upgrade", "Handshake"; the reference
behaviour where the spec is silent is engine.io ``lib/socket.ts`` (``schedulePing``,
``resetPingTimeout``, ``maybeUpgrade``, ``onClose``).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sio_teach.eio.packet import Packet, PacketType, decode_payload
from sio_teach.eio.server_session import (
    TRANSITIONS,
    Closed,
    Config,
    Message,
    ServerSession,
    State,
    Upgraded,
)
from sio_teach.errors import ProtocolError

T = PacketType
PING_PROBE = Packet(T.PING, "probe")
PONG_PROBE = Packet(T.PONG, "probe")
UPGRADE = Packet(T.UPGRADE)
FAST = Config(ping_interval=0.3, ping_timeout=0.2)  # the conformance app's settings
SLOW = Config(ping_interval=1000.0, ping_timeout=1000.0)  # no heartbeat in the way


def polling(config: Config = FAST, now: float = 0.0) -> ServerSession:
    """A polling session whose open packet has already been read by the handshake GET."""
    session = ServerSession("sid1", config, now)
    assert decode_payload(session.take_payload())[0].type is T.OPEN
    return session


def payload(session: ServerSession) -> list[Packet]:
    """What the next GET would carry (decoded)."""
    assert session.polling_ready()
    return decode_payload(session.take_payload())


def message(data: str | bytes) -> Packet:
    return Packet(T.MESSAGE, data)


# -- handshake ----------------------------------------------------------------------------


def test_open_packet_polling() -> None:
    session = ServerSession("abc", FAST, now=0.0)
    assert session.state is State.POLLING and session.transport == "polling"
    assert session.polling_ready()  # the handshake GET is answered at once
    body = session.take_payload()
    assert body[0] == "0"
    open_data = json.loads(body[1:])
    assert list(open_data) == ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]
    assert open_data == {
        "sid": "abc",
        "upgrades": ["websocket"],
        "pingInterval": 300,
        "pingTimeout": 200,
        "maxPayload": 1_000_000,
    }
    assert all(type(open_data[k]) is int for k in ("pingInterval", "pingTimeout", "maxPayload"))
    assert not session.polling_ready()  # nothing more to say: the next GET waits


def test_open_packet_websocket_has_no_upgrades() -> None:
    session = ServerSession("abc", FAST, now=0.0, transport="websocket")
    assert session.state is State.WEBSOCKET
    [packet] = session.take_outgoing()
    assert packet.type is T.OPEN
    assert json.loads(packet.data)["upgrades"] == []


def test_open_packet_offers_only_the_given_upgrades() -> None:
    session = ServerSession("abc", FAST, 0.0, "polling", ())  # a polling-only server
    assert json.loads(session.take_payload()[1:])["upgrades"] == []


def test_open_packet_defaults_are_the_reference_servers() -> None:
    session = ServerSession("abc", Config(), now=0.0)
    data = json.loads(session.take_payload()[1:])
    assert (data["pingInterval"], data["pingTimeout"], data["maxPayload"]) == (
        25000,
        20000,
        1000000,
    )


@pytest.mark.parametrize(
    ("seconds", "millis"),
    [
        (0.3, 300),
        (0.29, 290),
        (0.57, 570),
        (0.1 + 0.2, 300),
        (1.001, 1001),
        (25.0, 25000),
        (0.0, 0),
    ],
)
def test_durations_are_rounded_to_milliseconds_never_truncated(seconds: float, millis: int) -> None:
    # 0.29 * 1000 == 289.99999999999994 and 0.57 * 1000 == 569.9999999999999: int() would be wrong
    session = ServerSession("abc", Config(ping_interval=seconds, ping_timeout=seconds), now=0.0)
    data = json.loads(session.take_payload()[1:])
    assert data["pingInterval"] == millis and data["pingTimeout"] == millis


# -- heartbeat ----------------------------------------------------------------------------


def test_first_ping_is_sent_after_ping_interval() -> None:
    session = polling(now=10.0)
    assert session.next_deadline() == pytest.approx(10.3)
    session.handle_timeout(10.29)  # early wake-up: nothing due
    assert not session.polling_ready()
    session.handle_timeout(10.3)
    assert payload(session) == [Packet(T.PING)]


def test_pong_resets_the_heartbeat() -> None:
    session = polling()
    session.handle_timeout(0.3)
    assert payload(session) == [Packet(T.PING)]
    assert session.next_deadline() == pytest.approx(0.5)  # the pong is due within pingTimeout
    session.receive_payload(b"3", now=0.35)
    assert session.next_deadline() == pytest.approx(0.65)  # next ping: pingInterval after the pong
    session.handle_timeout(0.5)  # the old pong deadline is gone
    assert not session.closed and not session.polling_ready()
    session.handle_timeout(0.65)
    assert payload(session) == [Packet(T.PING)]


def test_many_heartbeats_keep_the_session_open() -> None:
    session = polling()
    now = 0.0
    for _ in range(100):
        now = session.next_deadline()
        session.handle_timeout(now)
        assert payload(session) == [Packet(T.PING)]
        session.receive(Packet(T.PONG), now + 0.19)
    assert not session.closed
    assert session.events() == []


def test_no_pong_within_ping_timeout_closes_with_ping_timeout() -> None:
    session = polling()
    session.handle_timeout(0.3)
    assert payload(session) == [Packet(T.PING)]
    session.handle_timeout(0.49)
    assert not session.closed
    session.handle_timeout(0.5)
    assert session.closed and session.state is State.CLOSED
    assert session.close_reason == "ping timeout"
    assert session.events() == [Closed("ping timeout")]
    assert payload(session) == [Packet(T.CLOSE)]  # the next GET reads the close packet


def test_ping_timer_runs_even_when_no_get_is_pending() -> None:
    # Nobody calls take_payload: the ping stays queued, the pong deadline still runs.
    session = polling()
    session.handle_timeout(session.next_deadline())
    assert session.polling_ready()
    session.handle_timeout(session.next_deadline())
    assert session.close_reason == "ping timeout"
    assert payload(session) == [Packet(T.PING), Packet(T.CLOSE)]


def test_late_timer_with_ping_still_unanswered_closes() -> None:
    session = polling()
    session.handle_timeout(0.3)
    session.handle_timeout(5.0)  # the loop was busy: one very late wake-up
    assert session.close_reason == "ping timeout"


def test_heartbeat_on_a_websocket_session() -> None:
    session = ServerSession("abc", FAST, now=0.0, transport="websocket")
    session.take_outgoing()
    session.handle_timeout(0.3)
    assert session.take_outgoing() == [Packet(T.PING)]
    session.receive(Packet(T.PONG), 0.31)
    session.handle_timeout(0.61)
    assert session.take_outgoing() == [Packet(T.PING)]
    session.handle_timeout(0.81)
    assert session.close_reason == "ping timeout"
    assert session.take_outgoing() == [Packet(T.CLOSE)]
    assert session.forgettable  # a WebSocket delivers the close packet itself


def test_a_closed_session_has_no_heartbeat() -> None:
    session = polling()
    session.receive_payload(b"1", now=0.1)
    assert session.next_deadline() is None
    session.handle_timeout(100.0)
    assert session.take_payload() == "6"


# -- messages -----------------------------------------------------------------------------


def test_messages_from_the_client_become_events_in_order() -> None:
    session = polling()
    session.receive_payload(b"4hello\x1ebAQIDBA==\x1e4world", now=0.1)
    assert session.events() == [Message("hello"), Message(b"\x01\x02\x03\x04"), Message("world")]
    assert session.events() == []


def test_messages_to_the_client_wait_for_a_get() -> None:
    session = polling()
    assert not session.polling_ready()
    session.send("hello")
    session.send(b"\x01\x02\x03\x04")
    assert session.polling_ready()
    assert session.take_payload() == "4hello\x1ebAQIDBA=="
    assert not session.polling_ready()


def test_noop_from_the_client_is_ignored() -> None:
    session = polling()
    session.receive_payload(b"6", now=0.1)
    assert session.events() == [] and not session.closed


@pytest.mark.parametrize("body", [b"2", b"0", b"5", b"2probe"])
def test_packets_a_client_must_not_send_close_the_session(body: bytes) -> None:
    session = polling()
    with pytest.raises(ProtocolError):
        session.receive_payload(body, now=0.1)
    assert session.closed
    assert [type(e) for e in session.events()] == [Closed]


# -- close --------------------------------------------------------------------------------


def test_client_close_packet() -> None:
    session = polling()
    session.receive_payload(b"1", now=0.1)
    assert session.closed and session.close_reason == "transport close"
    assert session.events() == [Closed("transport close")]
    assert session.polling_ready()  # a pending GET is answered ...
    assert session.take_payload() == "6"  # ... with a noop, not a close packet
    assert session.forgettable


def test_messages_before_close_in_one_payload_are_delivered() -> None:
    session = polling()
    session.receive_payload(b"4bye\x1e1", now=0.1)
    assert session.events() == [Message("bye"), Closed("transport close")]


def test_packets_after_close_are_ignored() -> None:
    session = polling()
    session.receive_payload(b"1", now=0.1)
    session.events()
    session.receive(message("late"), 0.2)
    assert session.events() == []


def test_server_close_queues_a_close_packet_and_waits_for_the_last_get() -> None:
    session = polling()
    session.send("last words")
    session.close("forced close", now=1.0)
    assert session.closed and session.close_reason == "forced close"
    assert session.events() == [Closed("forced close")]
    assert not session.forgettable
    assert session.next_deadline() == pytest.approx(1.2)  # kept for pingTimeout for its last GET
    assert payload(session) == [message("last words"), Packet(T.CLOSE)]
    assert session.forgettable


def test_closed_session_is_forgotten_when_its_last_get_never_comes() -> None:
    session = polling()
    session.close("forced close", now=1.0)
    session.handle_timeout(1.1)
    assert not session.forgettable
    session.handle_timeout(1.2)
    assert session.forgettable
    assert session.next_deadline() is None


def test_send_after_close_is_a_local_error() -> None:
    session = polling()
    session.close(now=0.1)
    with pytest.raises(RuntimeError):
        session.send("x")


def test_close_twice_reports_once() -> None:
    session = polling()
    session.close("first", now=0.1)
    session.close("second", now=0.2)
    assert session.close_reason == "first"
    assert session.events() == [Closed("first")]
    assert payload(session) == [Packet(T.CLOSE)]


def test_transport_lost() -> None:
    session = ServerSession("abc", FAST, now=0.0, transport="websocket")
    session.take_outgoing()
    session.lost("transport close", now=0.1)
    assert session.close_reason == "transport close"
    assert session.events() == [Closed("transport close")]
    assert session.take_outgoing() == []  # nobody to send a close packet to
    assert session.forgettable


# -- payload errors -----------------------------------------------------------------------


def test_malformed_payload_ends_the_session_at_once() -> None:
    """As engine.io: a fault (here a parse error) closes the session with nothing owed to a
    later GET — a GET held open gets the close packet, the next request 400 "Session ID unknown".
    (The official test-suite's "closes the session upon invalid packet format".)"""
    session = polling()
    with pytest.raises(ProtocolError):
        session.receive_payload(b"abc", now=0.1)
    assert session.forgettable and session.next_deadline() is None


def test_ping_timeout_on_polling_ends_the_session_at_once() -> None:
    """A polling client that never polls is gone after pingInterval + pingTimeout (the official
    test-suite's "closes the session upon ping timeout"), not kept for a GET that never comes."""
    session = polling()
    session.take_payload()  # the open packet
    session.handle_timeout(FAST.ping_interval)  # ping queued
    session.handle_timeout(FAST.ping_interval + FAST.ping_timeout)
    assert session.close_reason == "ping timeout"
    assert session.forgettable


def test_a_forced_close_waits_for_the_get_that_reads_it() -> None:
    session = polling()
    session.take_payload()
    session.close("forced close", now=1.0)
    assert not session.forgettable and session.next_deadline() == 1.0 + FAST.ping_timeout
    assert payload(session) == [Packet(T.CLOSE)]
    assert session.forgettable


@pytest.mark.parametrize("body", [b"", b"7", b"x", b"4a\x1e", b"bAQID!!", b"4\xff\xfe"])
def test_malformed_payload_closes_with_parse_error(body: bytes) -> None:
    session = polling()
    with pytest.raises(ProtocolError) as info:
        session.receive_payload(body, now=0.1)
    assert info.value.status == 400
    assert session.closed and session.close_reason == "parse error"
    assert session.events() == [Closed("parse error")]
    assert payload(session) == [Packet(T.CLOSE)]


def test_malformed_payload_delivers_nothing_from_it() -> None:
    session = polling()
    with pytest.raises(ProtocolError):
        session.receive_payload(b"4first\x1e7bad", now=0.1)
    assert session.events() == [Closed("parse error")]


# -- upgrade ------------------------------------------------------------------------------


def test_upgrade_happy_path() -> None:
    session = polling(SLOW)
    assert session.receive_probe(PING_PROBE, now=1.0) == PONG_PROBE
    assert session.state is State.UPGRADING
    assert session.transport == "polling"
    # a GET pending at the probe (or sent after it) is answered at once with a noop
    assert session.polling_ready()
    assert session.take_payload() == "6"
    assert session.polling_ready()
    # until the upgrade packet, polling still carries data
    session.send("during-1")
    assert session.take_payload() == "4during-1"
    session.send("during-2")
    session.send(b"\x02")
    assert session.receive_probe(UPGRADE, now=1.1) is None
    assert session.state is State.WEBSOCKET and session.transport == "websocket"
    assert session.events() == [Upgraded()]
    # a stray GET after the upgrade gets a noop and does not steal the WebSocket's packets
    assert session.take_payload() == "6"
    assert session.take_outgoing() == [message("during-2"), message(b"\x02")]
    session.send("after")
    assert session.take_outgoing() == [message("after")]


def test_client_data_during_upgrade_still_arrives_over_polling() -> None:
    session = polling(SLOW)
    session.receive_probe(PING_PROBE, now=1.0)
    session.receive_payload(b"4via-post", now=1.05)
    session.receive_probe(UPGRADE, now=1.1)
    session.receive(message("via-ws"), now=1.2)
    assert session.events() == [Message("via-post"), Upgraded(), Message("via-ws")]


def test_upgrade_timeout_reverts_to_polling() -> None:
    session = polling(Config(ping_interval=1000.0, ping_timeout=1000.0, upgrade_timeout=10.0))
    session.receive_probe(PING_PROBE, now=5.0)
    assert session.next_deadline() == pytest.approx(15.0)
    session.handle_timeout(14.9)
    assert session.state is State.UPGRADING
    session.handle_timeout(15.0)
    assert session.state is State.POLLING and not session.closed
    assert not session.polling_ready()  # GETs wait again
    with pytest.raises(ProtocolError):  # too late for the upgrade packet
        session.receive_probe(UPGRADE, now=15.1)
    assert session.state is State.POLLING
    # and a new probe may start over
    assert session.receive_probe(PING_PROBE, now=16.0) == PONG_PROBE
    assert session.state is State.UPGRADING


def test_probe_failed_reverts_to_polling() -> None:
    session = polling(SLOW)
    session.receive_probe(PING_PROBE, now=1.0)
    session.probe_failed()
    assert session.state is State.POLLING
    assert session.next_deadline() == pytest.approx(1000.0)  # the upgrade timer is gone
    session.probe_failed()  # harmless when not upgrading
    assert session.state is State.POLLING


def test_heartbeat_during_upgrade_goes_over_polling_then_websocket() -> None:
    session = polling()
    session.receive_probe(PING_PROBE, now=0.1)
    session.handle_timeout(0.3)
    assert session.take_payload() == "2"
    session.receive_payload(b"3", now=0.31)
    session.receive_probe(UPGRADE, now=0.32)
    session.handle_timeout(0.61)
    assert session.take_outgoing() == [Packet(T.PING)]


def test_close_while_upgrading() -> None:
    session = polling()
    session.receive_probe(PING_PROBE, now=0.1)
    session.receive_payload(b"1", now=0.2)
    assert session.state is State.CLOSED
    assert session.next_deadline() is None  # no upgrade timer left behind


@pytest.mark.parametrize(
    "packet", [UPGRADE, PONG_PROBE, Packet(T.PING), message("x"), Packet(T.PING, "other")]
)
def test_illegal_probe_packets_on_polling_raise(packet: Packet) -> None:
    session = polling(SLOW)
    with pytest.raises(ProtocolError):
        session.receive_probe(packet, now=1.0)
    assert session.state is State.POLLING


def test_second_probe_while_upgrading_raises() -> None:
    session = polling(SLOW)
    session.receive_probe(PING_PROBE, now=1.0)
    with pytest.raises(ProtocolError):
        session.receive_probe(PING_PROBE, now=1.1)


@pytest.mark.parametrize("packet", [PING_PROBE, UPGRADE])
def test_probe_packets_after_upgrade_raise(packet: Packet) -> None:
    session = polling(SLOW)
    session.receive_probe(PING_PROBE, now=1.0)
    session.receive_probe(UPGRADE, now=1.1)
    with pytest.raises(ProtocolError):
        session.receive_probe(packet, now=1.2)
    assert session.state is State.WEBSOCKET


def test_websocket_session_cannot_be_probed() -> None:
    session = ServerSession("abc", SLOW, now=0.0, transport="websocket")
    with pytest.raises(ProtocolError):
        session.receive_probe(PING_PROBE, now=0.1)


@pytest.mark.parametrize("packet", [PING_PROBE, UPGRADE])
def test_closed_session_cannot_be_probed(packet: Packet) -> None:
    session = polling(SLOW)
    session.close(now=0.1)
    with pytest.raises(ProtocolError):
        session.receive_probe(packet, now=0.2)
    assert session.state is State.CLOSED


# -- the transition table -----------------------------------------------------------------


def test_transition_table() -> None:
    assert TRANSITIONS == {
        (State.POLLING, "probe"): State.UPGRADING,
        (State.UPGRADING, "upgrade"): State.WEBSOCKET,
        (State.UPGRADING, "upgrade timeout"): State.POLLING,
        (State.UPGRADING, "probe failed"): State.POLLING,
        (State.POLLING, "close"): State.CLOSED,
        (State.UPGRADING, "close"): State.CLOSED,
        (State.WEBSOCKET, "close"): State.CLOSED,
    }
    assert not any(state is State.CLOSED for state, _ in TRANSITIONS)  # CLOSED is final


ALLOWED = {(before, after) for (before, _), after in TRANSITIONS.items()}

OPERATIONS = st.sampled_from(
    [
        "probe",
        "upgrade",
        "probe_failed",
        "ping_timer",
        "pong",
        "message",
        "client_close",
        "server_close",
        "lost",
        "bad_payload",
        "client_ping",
        "send",
        "take_payload",
        "take_outgoing",
        "wait_long",
    ]
)


def apply(session: ServerSession, op: str, now: float) -> None:
    if op == "probe":
        session.receive_probe(PING_PROBE, now)
    elif op == "upgrade":
        session.receive_probe(UPGRADE, now)
    elif op == "probe_failed":
        session.probe_failed()
    elif op == "ping_timer":
        deadline = session.next_deadline()
        if deadline is not None:
            session.handle_timeout(max(now, deadline))
    elif op == "pong":
        session.receive(Packet(T.PONG), now)
    elif op == "message":
        session.receive(message("m"), now)
    elif op == "client_close":
        session.receive(Packet(T.CLOSE), now)
    elif op == "server_close":
        session.close("forced close", now)
    elif op == "lost":
        session.lost("transport close", now)
    elif op == "bad_payload":
        session.receive_payload(b"7", now)
    elif op == "client_ping":
        session.receive(Packet(T.PING), now)
    elif op == "send":
        session.send("x")
    elif op == "take_payload":
        session.take_payload()
    elif op == "take_outgoing":
        session.take_outgoing()
    elif op == "wait_long":
        session.handle_timeout(now + 100.0)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["polling", "websocket"]), st.lists(OPERATIONS, max_size=30))
def test_every_state_change_is_in_the_transition_table(transport: str, ops: list[str]) -> None:
    session = ServerSession(
        "abc", Config(ping_interval=1.0, ping_timeout=0.5, upgrade_timeout=2.0), 0.0, transport
    )
    now = 0.0
    closes = 0
    for op in ops:
        now += 0.1
        before = session.state
        try:
            apply(session, op, now)
        except ProtocolError:
            pass
        except RuntimeError:
            assert op == "send" and session.closed  # only send-after-close is a local error
        after = session.state
        if after is not before:
            assert (before, after) in ALLOWED, f"{op}: {before} -> {after}"
        closes += sum(isinstance(e, Closed) for e in session.events())
        assert session.closed == (closes == 1)  # exactly one Closed event, when closed
        if session.closed:
            assert session.close_reason is not None


# -- what waits for the client ---------------------------------------------------------------


def test_a_polling_answer_holds_at_most_max_payload() -> None:
    """The GET answer is cut at maxPayload (at least one packet): the rest waits for the next GET,
    which is answered at once."""
    session = polling(Config(max_payload=30))
    session.take_payload()
    for n in range(5):
        session.send(f"message {n}")  # 9 characters, 11 with the type and a separator
    first = decode_payload(session.take_payload())
    assert [p.data for p in first] == ["message 0", "message 1"]
    assert session.polling_ready()
    rest = decode_payload(session.take_payload()) + decode_payload(session.take_payload())
    assert [p.data for p in rest] == ["message 2", "message 3", "message 4"]
    session.send("x" * 100)  # larger than maxPayload alone: it still goes, alone
    assert [p.data for p in decode_payload(session.take_payload())] == ["x" * 100]


def test_a_client_that_never_polls_cannot_make_the_queue_grow_past_max_buffer() -> None:
    session = polling(Config(max_buffer=1000))
    session.take_payload()
    session.events()
    for _ in range(9):
        session.send("x" * 100)
    assert not session.closed
    session.send("x" * 101)  # 1001 bytes waiting
    assert session.close_reason == "transport error"
    assert session.events() == [Closed("transport error")]
    assert session.forgettable  # nothing is owed to such a client
    session.backlog(10**9, now=1.0)  # a closed session ignores later reports


def test_the_shell_reports_a_websocket_backlog() -> None:
    session = ServerSession("abc", FAST, now=0.0, transport="websocket")
    session.backlog(FAST.max_buffer, now=0.1)  # at the limit: fine
    assert not session.closed
    session.backlog(FAST.max_buffer + 1, now=0.1)
    assert session.close_reason == "transport error"
