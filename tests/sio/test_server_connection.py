"""The sans-I/O server side of one Socket.IO connection, driven by hand on a fake clock.

Spec: socket.io-protocol ``Readme.md`` (v5) "Connection to a namespace", "Sending and receiving
data", "Acknowledgement", "Disconnection from a namespace"; where it is silent, socket.io
``lib/client.ts`` (``connectTimeout``) and ``lib/socket.ts`` (``onack``).
"""

from __future__ import annotations

import pytest

from sio_teach.errors import DisconnectReason
from sio_teach.sio.packet import Packet, encode
from sio_teach.sio.server_connection import (
    TRANSITIONS,
    AckReceived,
    AckTimedOut,
    CloseConnection,
    ConnectRequested,
    Disconnected,
    Event,
    ServerConnection,
    State,
)

TIMEOUT = 45.0  # the reference server's connectTimeout


def wire(packet: Packet | None) -> str | None:
    return None if packet is None else encode(packet)[0]


def connected(*namespaces: str, now: float = 0.0) -> ServerConnection:
    """A connection whose client has connected to ``namespaces`` (default: ``/``)."""
    conn = ServerConnection(now, TIMEOUT)
    for i, nsp in enumerate(namespaces or ("/",)):
        conn.receive("0" if nsp == "/" else f"0{nsp},")
        assert conn.events() == [ConnectRequested(nsp, {})]
        assert conn.accept(nsp, f"sid-{i}") is not None
    return conn


# -- connecting ---------------------------------------------------------------------------------


def test_connect_is_requested_then_accepted_with_the_sid() -> None:
    conn = ServerConnection(now=0.0, connect_timeout=TIMEOUT)
    conn.receive('0{"token":"t"}')
    assert conn.events() == [ConnectRequested("/", {"token": "t"})]
    assert conn.state("/") is State.CONNECTING
    assert wire(conn.accept("/", "sid-1")) == '0{"sid":"sid-1"}'
    assert conn.state("/") is State.CONNECTED
    assert wire(conn.accept("/", "sid-2")) is None  # accepted once
    assert conn.events() == []


def test_two_namespaces_on_one_connection_are_independent() -> None:
    conn = connected("/", "/admin")
    conn.receive('2/admin,["hi"]')
    conn.receive('2["hello",1]')
    assert conn.events() == [Event("/admin", "hi", [], None), Event("/", "hello", [1], None)]
    conn.receive("1/admin,")
    assert conn.events() == [Disconnected("/admin", DisconnectReason.CLIENT_NAMESPACE_DISCONNECT)]
    assert (conn.state("/admin"), conn.state("/")) == (State.DISCONNECTED, State.CONNECTED)
    conn.receive("0/admin,")  # it may connect again
    assert conn.events() == [ConnectRequested("/admin", {})]


def test_a_second_connect_while_the_first_is_decided_is_ignored() -> None:
    conn = ServerConnection(0.0, TIMEOUT)
    conn.receive("0")
    conn.receive("0")
    assert conn.events() == [ConnectRequested("/", {})]
    assert conn.state("/") is State.CONNECTING


@pytest.mark.parametrize(
    "message",
    [
        '2["early"]',  # an EVENT before any CONNECT
        '21["early"]',  # … with an ack id
        '2/b,["hi"]',  # for a namespace still connecting
        '2/gone,["hi"]',  # for a namespace the client left
        "31[]",  # an ACK for a namespace never connected
        "1/gone,",  # a DISCONNECT for a namespace the client left
        "0/a,",  # a second CONNECT for a connected namespace
        '4/a,{"message":"from a client"}',  # a CONNECT_ERROR only travels to the client
    ],
)
def test_a_packet_out_of_state_closes_the_connection(message: str) -> None:
    """ "If the server does not receive a CONNECT packet first, then it MUST close the connection
    immediately" (as the reference, for any namespace the client is not connected to)."""
    conn = ServerConnection(0.0, TIMEOUT)
    conn.receive("0/a,")
    conn.accept("/a", "sid-a")
    conn.receive("0/gone,")
    conn.accept("/gone", "sid-g")
    conn.receive("1/gone,")
    conn.receive("0/b,")  # the middlewares of /b are still deciding
    conn.events()
    if message.startswith(("2[", "21[", "31[")):
        conn.expect_ack("/a", 0, now=0.0, timeout=1.0)
    conn.receive(message)
    assert conn.events() == [
        Disconnected("/a", DisconnectReason.FORCED_SERVER_CLOSE),
        CloseConnection(DisconnectReason.FORCED_CLOSE),
    ]
    assert conn.closed and conn.states == {} and conn.next_deadline() is None
    assert conn.accept("/b", "sid-b") is None  # too late for /b
    conn.receive('2/a,["after"]')  # nothing more from this connection
    assert conn.events() == []


def test_refused_namespace_answers_connect_error_and_may_be_asked_again() -> None:
    """An unknown namespace or a middleware's refusal: the shell calls refuse()."""
    conn = ServerConnection(0.0, TIMEOUT)
    conn.receive("0/nope,")
    [request] = conn.events()
    assert request == ConnectRequested("/nope", {})
    refusal = conn.refuse("/nope", "Invalid namespace")
    assert wire(refusal) == '4/nope,{"message":"Invalid namespace"}'
    assert conn.state("/nope") is State.DISCONNECTED
    assert wire(conn.refuse("/nope", "twice")) is None
    conn.receive("0/nope,")
    assert conn.events() == [ConnectRequested("/nope", {})]
    assert wire(conn.refuse("/nope", "no", {"code": 1})) == (
        '4/nope,{"message":"no","data":{"code":1}}'
    )


def test_recovery_pid_and_offset_come_with_the_connect_request() -> None:
    conn = ServerConnection(0.0, TIMEOUT)
    conn.receive('0{"pid":"p1","offset":"o9","token":1}')
    assert conn.events() == [
        ConnectRequested("/", {"pid": "p1", "offset": "o9", "token": 1}, "p1", "o9")
    ]
    assert wire(conn.accept("/", "sid-1", pid="p2")) == '0{"sid":"sid-1","pid":"p2"}'
    conn.receive('0/x,{"pid":"p1"}')  # a pid without an offset asks for nothing
    assert conn.events() == [ConnectRequested("/x", {"pid": "p1"}, None, None)]


# -- the connect timeout --------------------------------------------------------------------------


def test_connect_timeout_closes_at_exactly_connect_timeout_not_before() -> None:
    conn = ServerConnection(now=100.0, connect_timeout=1.0)
    assert conn.next_deadline() == 101.0
    conn.handle_timeout(100.999)  # an early wake-up: nothing
    assert conn.events() == [] and not conn.closed
    conn.handle_timeout(101.0)
    assert conn.events() == [CloseConnection(DisconnectReason.FORCED_CLOSE)]
    assert conn.closed and conn.next_deadline() is None
    conn.receive("0")  # too late
    assert conn.events() == []


def test_connect_timeout_is_cleared_by_the_first_accepted_connect() -> None:
    conn = ServerConnection(now=0.0, connect_timeout=1.0)
    conn.receive("0")
    conn.events()
    assert conn.next_deadline() == 1.0  # still running while the middlewares decide
    conn.accept("/", "sid-1")
    assert conn.next_deadline() is None
    conn.receive("1")  # leaving the only namespace does not bring the timeout back
    assert conn.next_deadline() is None
    conn.handle_timeout(5.0)
    assert conn.events() == [Disconnected("/", DisconnectReason.CLIENT_NAMESPACE_DISCONNECT)]
    assert not conn.closed


def test_connect_timeout_survives_a_refusal() -> None:
    conn = ServerConnection(now=0.0, connect_timeout=1.0)
    conn.receive("0/nope,")
    conn.events()
    conn.refuse("/nope", "Invalid namespace")
    assert conn.next_deadline() == 1.0
    conn.handle_timeout(1.0)
    assert conn.events() == [CloseConnection(DisconnectReason.FORCED_CLOSE)]


def test_connect_timeout_closes_a_namespace_still_connecting() -> None:
    conn = ServerConnection(now=0.0, connect_timeout=1.0)
    conn.receive("0")
    conn.events()
    conn.handle_timeout(1.0)  # the middlewares took too long
    assert conn.events() == [CloseConnection(DisconnectReason.FORCED_CLOSE)]
    assert conn.accept("/", "sid-1") is None  # the shell must not send a CONNECT reply


# -- events and acks ------------------------------------------------------------------------------


def test_events_flow_once_connected() -> None:
    conn = ServerConnection(0.0, TIMEOUT)
    conn.receive("0")
    assert conn.events() == [ConnectRequested("/", {})]
    conn.accept("/", "sid-1")
    conn.receive('25["on-time",{"a":1}]')
    assert conn.events() == [Event("/", "on-time", [{"a": 1}], 5)]


def test_binary_event_is_reassembled_before_it_is_an_event() -> None:
    conn = connected()
    conn.receive('51-["file",{"_placeholder":true,"num":0}]')
    assert conn.events() == []
    conn.receive(b"\x01\x02")
    assert conn.events() == [Event("/", "file", [b"\x01\x02"], None)]


def test_attachments_never_sent_close_the_connection_at_the_deadline() -> None:
    """A BINARY_EVENT whose attachments do not all come within attachments_timeout can never be
    completed: the connection is closed (parse error) instead of holding what came forever."""
    conn = ServerConnection(0.0, TIMEOUT, attachments_timeout=5.0)
    conn.receive("0", now=0.0)
    conn.events()
    conn.accept("/", "sid-0")
    conn.receive('52-["file",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', now=1.0)
    conn.receive(b"\x01", now=2.0)
    assert conn.next_deadline() == 6.0  # counted from the header
    conn.handle_timeout(5.999)
    assert not conn.closed
    conn.handle_timeout(6.0)
    assert conn.close_reason == "parse error"
    assert conn.events()[-1] == CloseConnection(DisconnectReason.PARSE_ERROR)


def test_attachments_that_arrive_clear_their_deadline() -> None:
    conn = ServerConnection(0.0, connect_timeout=1.0, attachments_timeout=5.0)
    conn.receive("0", now=0.0)
    conn.accept("/", "sid-0")  # the connect timeout is cleared
    conn.receive('51-["file",{"_placeholder":true,"num":0}]', now=1.0)
    assert conn.next_deadline() == 6.0
    conn.receive(b"\x01", now=2.0)
    assert conn.next_deadline() is None


def test_acks_are_matched_by_namespace_and_id_once() -> None:
    conn = connected("/", "/b")
    for ack_id in (0, 1, 2):  # the shell numbers them (a namespace counter): 0, 1, 2...
        conn.expect_ack("/", ack_id, now=0.0)
    conn.expect_ack("/b", 1, now=0.0)
    conn.receive('31["one"]')
    conn.receive("3/b,1[]")
    conn.receive('31["again"]')  # answered already: ignored
    conn.receive("37[]")  # never asked: ignored
    conn.receive("30[1,2]")
    assert conn.events() == [
        AckReceived("/", 1, ["one"]),
        AckReceived("/b", 1, []),
        AckReceived("/", 0, [1, 2]),
    ]


def test_ack_deadline_expires_in_handle_timeout() -> None:
    conn = connected(now=0.0)
    conn.expect_ack("/", 0, now=10.0, timeout=2.0)
    conn.expect_ack("/", 1, now=10.5, timeout=0.5)
    conn.expect_ack("/", 2, now=10.5)  # no timeout: waits until the namespace ends
    assert conn.next_deadline() == 11.0
    conn.handle_timeout(10.99)
    assert conn.events() == []
    conn.handle_timeout(11.0)
    assert conn.events() == [AckTimedOut("/", 1)]
    assert conn.next_deadline() == 12.0
    conn.receive("30[]")  # in time
    assert conn.events() == [AckReceived("/", 0, [])]
    assert conn.next_deadline() is None
    conn.receive("31[]")  # late: ignored
    assert conn.events() == []


def test_leaving_a_namespace_forgets_its_acks() -> None:
    conn = connected("/", "/b")
    conn.expect_ack("/", 0, now=0.0, timeout=1.0)
    conn.expect_ack("/b", 1, now=0.0, timeout=2.0)
    packet = conn.disconnect("/")
    assert wire(packet) == "1"
    assert conn.events() == [Disconnected("/", DisconnectReason.SERVER_NAMESPACE_DISCONNECT)]
    assert conn.disconnect("/") is None
    assert conn.next_deadline() == 2.0  # only /b's deadline is left
    conn.handle_timeout(2.0)
    assert conn.events() == [AckTimedOut("/b", 1)]


# -- the end ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        '2["broken",',
        "9",
        b"\x00",
        '51-["x",{"_placeholder":true,"num":3}]',
    ],
    ids=["bad JSON", "unknown type", "binary out of turn", "placeholder"],
)
def test_parse_error_ends_every_namespace_then_closes(message: str | bytes) -> None:
    conn = connected("/", "/b")
    conn.expect_ack("/", 0, now=0.0, timeout=1.0)
    conn.receive(message)
    if isinstance(message, str) and message.startswith("51-"):
        conn.receive(b"\x01")
    reason = DisconnectReason.PARSE_ERROR
    assert conn.events() == [
        Disconnected("/", reason),
        Disconnected("/b", reason),
        CloseConnection(reason),
    ]
    assert conn.closed and conn.next_deadline() is None
    conn.receive('2["after"]')  # nothing more from this connection
    assert conn.events() == []


def test_the_lost_connection_ends_every_connected_namespace() -> None:
    conn = connected("/")
    conn.receive("0/slow,")  # still connecting: it ends without a Disconnected
    conn.events()
    conn.lost("transport close")
    assert conn.events() == [Disconnected("/", "transport close")]
    assert conn.states == {} and conn.accept("/slow", "sid") is None
    conn.lost("ping timeout")  # once
    assert conn.events() == []


def test_close_by_the_server() -> None:
    conn = connected("/")
    conn.close(DisconnectReason.SERVER_NAMESPACE_DISCONNECT)
    reason = DisconnectReason.SERVER_NAMESPACE_DISCONNECT
    assert conn.events() == [Disconnected("/", reason), CloseConnection(reason)]


def test_transitions_table_covers_every_state() -> None:
    sources = {state for state, _ in TRANSITIONS}
    targets = set(TRANSITIONS.values())
    assert sources == targets == set(State)


def test_attachments_over_their_byte_bound_close_the_connection() -> None:
    """Ten attachments of up to maxPayload each could make one packet hold 10 MB: the machine
    refuses a packet whose attachments together pass max_attachment_bytes (parse error)."""
    conn = ServerConnection(0.0, TIMEOUT, max_attachment_bytes=10)
    conn.receive("0", now=0.0)
    conn.events()
    conn.accept("/", "sid-0")
    conn.receive('52-["f",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', now=0.0)
    conn.receive(b"\x01" * 6, now=0.0)
    assert not conn.closed
    conn.receive(b"\x02" * 5, now=0.0)  # 11 bytes in all
    assert conn.close_reason == "parse error"
    # exactly at the bound is fine
    ok = ServerConnection(0.0, TIMEOUT, max_attachment_bytes=10)
    ok.receive("0", now=0.0)
    ok.accept("/", "sid-0")
    ok.events()
    ok.receive('52-["f",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', now=0.0)
    ok.receive(b"\x01" * 6, now=0.0)
    ok.receive(b"\x02" * 4, now=0.0)
    assert ok.events() == [Event("/", "f", [b"\x01" * 6, b"\x02" * 4], None)]
