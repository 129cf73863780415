"""The Socket.IO client state machine, driven by hand on a fake clock.

No sockets, no event loop: time is a plain float passed in as ``now``; what the server says goes in
through ``receive`` (the Socket.IO text of one Engine.IO message), what the client sends comes out
of ``take_outgoing`` (encoded here to compare with the wire), what happens out of ``events``. (tests/test_pure_core.py checks that it imports no I/O.)
Reference: socket.io-client ``lib/manager.ts`` and ``lib/socket.ts``.
"""

from __future__ import annotations

import json
import random

import pytest

from sio_teach.eio.client_session import ClientSession
from sio_teach.eio.events import Closed, Message
from sio_teach.errors import DisconnectReason
from sio_teach.sio.backoff import Backoff
from sio_teach.sio.client_connection import (
    NSP_TRANSITIONS,
    TRANSITIONS,
    AckReceived,
    AckTimedOut,
    ClientConnection,
    CloseTransport,
    Connected,
    ConnectFailed,
    Delivered,
    Disconnected,
    EventReceived,
    NspState,
    OpenTransport,
    ReconnectAttempt,
    Reconnected,
    ReconnectError,
    ReconnectFailed,
    State,
    Undelivered,
)
from sio_teach.sio.packet import encode

BACKOFF = Backoff(delay=1.0, delay_max=5.0)


def machine(seed: int = 7, **options: object) -> ClientConnection:
    return ClientConnection(random=random.Random(seed).random, backoff=BACKOFF, **options)  # type: ignore[arg-type]


def wire(connection: ClientConnection) -> list[str]:
    """What the client sends, as Socket.IO text (attachments are not used here)."""
    return [encode(packet)[0] for packet in connection.take_outgoing()]


def connected(now: float = 0.0, sid: str = "s1", **options: object) -> ClientConnection:
    """A machine whose main namespace is connected at ``now``."""
    connection = machine(**options)
    connection.connect("/", now)
    connection.opened(now)
    connection.receive("0" + json.dumps({"sid": sid}), now)
    connection.take_outgoing()
    connection.events()
    return connection


# -- connecting -------------------------------------------------------------------------------


def test_connect_opens_the_connection_then_sends_connect_then_the_reply_connects() -> None:
    connection = machine()
    connection.namespace("/", {"token": "t"})
    connection.connect("/", now=0.0)
    assert connection.state is State.CONNECTING
    assert connection.events() == [OpenTransport()]
    assert wire(connection) == []  # nothing to send before Engine.IO is open

    connection.opened(now=0.1)
    assert connection.state is State.CONNECTED
    assert wire(connection) == ['0{"token":"t"}']
    assert connection.namespaces["/"].state is NspState.CONNECTING

    connection.receive('0{"sid":"abc"}', now=0.2)
    assert connection.events() == [Connected("/", "abc", recovered=False)]
    assert connection.namespaces["/"].state is NspState.CONNECTED
    assert connection.namespaces["/"].sid == "abc"
    assert connection.next_deadline() is None  # connected: no timer


def test_a_second_namespace_uses_the_open_connection() -> None:
    connection = connected()
    connection.connect("/admin", now=1.0)
    assert connection.events() == []  # no second Engine.IO connection
    assert wire(connection) == ["0/admin,"]
    connection.receive('0/admin,{"sid":"a1"}', now=1.1)
    assert connection.events() == [Connected("/admin", "a1", False)]


def test_connect_error_refuses_the_namespace_and_closes_an_idle_connection() -> None:
    connection = connected()
    connection.connect("/private", now=1.0)
    connection.receive('4/private,{"message":"not authorized"}', now=1.1)
    assert connection.events() == [ConnectFailed("/private", {"message": "not authorized"})]
    assert connection.namespaces["/private"].state is NspState.IDLE
    assert connection.state is State.CONNECTED  # "/" still uses the connection

    connection.disconnect("/")
    assert connection.state is State.DISCONNECTED
    assert connection.events() == [
        Disconnected("/", DisconnectReason.IO_CLIENT_DISCONNECT),
        CloseTransport(),
    ]


def test_an_unanswered_connect_times_out() -> None:
    connection = machine()
    connection.connect("/", now=0.0, timeout=2.0)
    connection.opened(now=0.1)
    assert connection.next_deadline() == 2.0
    connection.handle_timeout(1.9)
    assert connection.events() == [OpenTransport()]
    connection.handle_timeout(2.0)
    assert connection.events() == [ConnectFailed("/", {"message": "timeout"})]
    assert connection.next_deadline() is None
    connection.receive('0{"sid":"late"}', now=3.0)  # still wanted: a late reply connects it
    assert connection.events() == [Connected("/", "late", False)]


# -- the send buffer --------------------------------------------------------------------------


def test_emits_while_disconnected_are_buffered_in_order_and_volatile_ones_dropped() -> None:
    connection = machine()
    connection.emit("/", "note", ("first",))
    connection.emit("/", "typing", (), volatile=True)
    assert connection.emit("/", "note", ("second",), ack=True) == 0  # its ack id is reserved now
    assert wire(connection) == []
    assert [encode(p)[0] for p in connection.namespaces["/"].buffer] == [
        '2["note","first"]',
        '20["note","second"]',
    ]

    connection.connect("/", now=0.0)
    connection.opened(now=0.0)
    assert wire(connection) == ["0"]  # still buffered: the namespace is not connected yet
    connection.emit("/", "note", ("third",))
    connection.receive('0{"sid":"s1"}', now=0.1)
    # the buffer leaves right after the CONNECT reply, in order, before "connect" is reported
    assert wire(connection) == ['2["note","first"]', '20["note","second"]', '2["note","third"]']
    assert connection.events() == [OpenTransport(), Connected("/", "s1", False)]
    assert connection.namespaces["/"].buffer == []

    connection.emit("/", "typing", (), volatile=True)  # connected: sent
    assert wire(connection) == ['2["typing"]']


# -- acks -------------------------------------------------------------------------------------


def test_ack_ids_count_from_zero_per_namespace_and_an_ack_is_delivered_once() -> None:
    connection = connected()
    connection.connect("/admin", now=0.0)
    connection.receive('0/admin,{"sid":"a"}', now=0.0)
    ids = [connection.emit("/", "q", (n,), ack=True) for n in range(3)]
    assert ids == [0, 1, 2]
    assert connection.emit("/admin", "q", (), ack=True) == 0
    assert connection.emit("/", "no-ack", ()) is None
    assert wire(connection)[:4] == ["0/admin,", '20["q",0]', '21["q",1]', '22["q",2]']
    connection.events()

    connection.receive('31["one"]', now=0.5)
    connection.receive('31["again"]', now=0.6)  # a second ACK for the same id: ignored
    connection.receive("3/admin,0[]", now=0.7)
    assert connection.events() == [AckReceived("/", 1, ["one"]), AckReceived("/admin", 0, [])]
    assert connection.next_deadline() is None  # no timeout was asked for


def test_an_ack_timeout_expires_on_the_fake_clock() -> None:
    connection = connected(now=10.0)
    first = connection.emit("/", "slow", (), 10.0, ack=True, timeout=2.0)
    second = connection.emit("/", "fast", (), 10.5, ack=True, timeout=1.0)
    assert connection.next_deadline() == 11.5
    connection.receive(f"3{second}[true]", now=11.0)  # answered in time
    connection.handle_timeout(11.5)  # its deadline passes harmlessly
    assert connection.events() == [AckReceived("/", second, [True])]
    assert connection.next_deadline() == 12.0

    connection.handle_timeout(11.99)
    assert connection.events() == []
    connection.handle_timeout(12.0)
    assert connection.events() == [AckTimedOut("/", first)]
    connection.receive(f"3{first}[true]", now=12.5)  # too late: forgotten
    assert connection.events() == []
    assert connection.next_deadline() is None


def test_an_event_asking_for_an_ack_is_answered_with_the_handler_value() -> None:
    connection = connected()
    connection.receive('25["question",1]', now=1.0)
    assert connection.events() == [EventReceived("/", "question", [1], 5)]
    connection.send_ack("/", 5, ("y", 2))
    connection.send_ack("/", 6, None)  # None: no ACK
    assert wire(connection) == ['35["y",2]']


# -- reconnection -----------------------------------------------------------------------------


def test_a_lost_connection_reconnects_after_the_backoff_and_reconnects_every_namespace() -> None:
    connection = connected(now=0.0, seed=3)
    connection.connect("/admin", now=0.0)
    connection.receive('0/admin,{"sid":"a"}', now=0.0)
    wire(connection), connection.events()

    connection.lost("transport close", now=10.0)
    assert connection.events() == [
        Disconnected("/", DisconnectReason.TRANSPORT_CLOSE),
        Disconnected("/admin", DisconnectReason.TRANSPORT_CLOSE),
    ]
    assert connection.state is State.RECONNECTING
    assert connection.attempt == 1
    delay = BACKOFF.duration(0, random.Random(3).random())  # the same seeded random, replayed
    assert connection.delays == [delay]
    assert connection.next_deadline() == 10.0 + delay

    connection.emit("/", "while-away", ())
    connection.handle_timeout(10.0 + delay - 0.001)
    assert connection.events() == []
    connection.handle_timeout(10.0 + delay)
    assert connection.events() == [ReconnectAttempt(1), OpenTransport()]
    assert connection.state is State.CONNECTING

    connection.opened(now=12.0)
    assert connection.events() == [Reconnected(1)]
    assert wire(connection) == ["0", "0/admin,"]  # every namespace asks again
    connection.receive('0{"sid":"s2"}', now=12.1)
    assert wire(connection) == ['2["while-away"]']
    assert connection.events() == [Connected("/", "s2", False)]
    assert connection.attempt == 0


def test_failed_attempts_wait_longer_and_the_client_gives_up_after_reconnection_attempts() -> None:
    rand = random.Random(11)
    connection = connected(seed=11, reconnection_attempts=3)
    connection.lost("ping timeout", now=0.0)
    assert connection.events() == [Disconnected("/", DisconnectReason.PING_TIMEOUT)]
    expected = []
    for attempt in range(1, 4):
        expected.append(BACKOFF.duration(attempt - 1, rand.random()))
        now = connection.next_deadline()  # type: ignore[assignment]
        connection.handle_timeout(now)
        connection.open_failed("connection refused", now)
        events = connection.events()
        assert events[:3] == [
            ReconnectAttempt(attempt),
            OpenTransport(),
            ReconnectError(attempt, "connection refused"),
        ]
    # given up: "/" waited to connect again, and cannot now
    assert events[3:] == [ReconnectFailed(), ConnectFailed("/", {"message": "connection refused"})]
    assert connection.namespaces["/"].state is NspState.IDLE
    assert connection.delays == expected
    assert expected[1] > expected[0]  # 1 s, 2 s, 4 s, give or take the jitter
    assert connection.state is State.DISCONNECTED
    assert connection.next_deadline() is None


def test_a_first_connection_that_fails_is_retried_unless_reconnection_is_off() -> None:
    connection = machine()
    connection.connect("/", now=0.0)
    connection.open_failed("connection refused", now=0.0)
    assert connection.state is State.RECONNECTING and connection.attempt == 1
    assert connection.events() == [OpenTransport()]  # no ReconnectError: no attempt was made

    off = machine(reconnection=False)
    off.connect("/", now=0.0)
    off.open_failed("connection refused", now=0.0)
    assert off.state is State.DISCONNECTED and off.next_deadline() is None
    assert off.events() == [OpenTransport(), ConnectFailed("/", {"message": "connection refused"})]


def test_a_connection_lost_before_the_connect_reply_fails_the_namespace_at_once() -> None:
    """The Engine.IO connection opened, then ended before the server answered the CONNECT (a
    balancer without sticky sessions: the POST carrying it got 400): with no reconnection, the
    namespace fails now, not at its connect timeout."""
    connection = machine(reconnection=False)
    connection.connect("/", now=0.0, timeout=20.0)
    connection.opened(now=0.1)
    assert wire(connection) == ["0"]
    connection.lost("transport error", now=0.2)
    assert connection.events() == [
        OpenTransport(),
        ConnectFailed("/", {"message": "transport error"}),
    ]
    assert connection.next_deadline() is None and connection.state is State.DISCONNECTED


def test_a_recovering_namespace_sends_its_pid_and_last_offset() -> None:
    connection = connected()
    connection.receive('0{"sid":"s1","pid":"p1"}', now=0.0)  # ignored: already connected
    connection = machine()
    connection.connect("/", now=0.0)
    connection.opened(now=0.0)
    connection.receive('0{"sid":"s1","pid":"p1"}', now=0.0)
    connection.receive('2["news","hello","off-7"]', now=1.0)  # the offset is the last argument
    connection.lost("transport close", now=2.0)
    connection.handle_timeout(connection.next_deadline())  # type: ignore[arg-type]
    wire(connection), connection.events()
    connection.opened(now=5.0)
    assert wire(connection) == ['0{"pid":"p1","offset":"off-7"}']
    connection.receive('0{"sid":"s1","pid":"p1"}', now=5.1)
    assert connection.events()[-1] == Connected("/", "s1", recovered=True)


def test_connect_after_giving_up_opens_again() -> None:
    connection = machine(reconnection=False)
    connection.connect("/", now=0.0, timeout=5.0)
    connection.open_failed("connection refused", now=0.0)
    assert connection.next_deadline() is None  # the caller of connect() was told already
    connection.events()
    connection.connect("/", now=1.0, timeout=5.0)  # the namespace is still wanted: try again
    assert connection.events() == [OpenTransport()]
    assert connection.next_deadline() == 6.0
    connection.opened(now=1.1)
    assert wire(connection) == ["0"]


def test_server_disconnect_does_not_reconnect() -> None:
    connection = connected()
    connection.receive("1", now=1.0)
    assert connection.events() == [
        Disconnected("/", DisconnectReason.IO_SERVER_DISCONNECT),
        CloseTransport(),
    ]
    assert connection.state is State.DISCONNECTED and connection.next_deadline() is None
    connection.lost("io client disconnect", now=1.1)  # the transport closing: nothing more
    assert connection.events() == [] and connection.delays == []


def test_client_disconnect_sends_disconnect_and_does_not_reconnect() -> None:
    connection = connected()
    connection.disconnect()
    assert wire(connection) == ["1"]
    assert connection.events() == [
        Disconnected("/", DisconnectReason.IO_CLIENT_DISCONNECT),
        CloseTransport(),
    ]
    connection.lost("transport close", now=1.0)
    assert connection.events() == [] and connection.next_deadline() is None


def test_disconnect_while_waiting_to_reconnect_cancels_the_attempt() -> None:
    connection = connected()
    connection.lost("transport error", now=0.0)
    connection.disconnect()
    assert connection.state is State.DISCONNECTED and connection.next_deadline() is None
    assert connection.events()[-1] == Disconnected("/", DisconnectReason.TRANSPORT_ERROR)


def test_an_open_that_completes_after_disconnect_is_closed() -> None:
    connection = machine()
    connection.connect("/", now=0.0)
    connection.disconnect()
    connection.opened(now=0.1)
    assert connection.events() == [OpenTransport(), CloseTransport()]
    assert connection.state is State.DISCONNECTED


def test_a_packet_that_cannot_be_decoded_closes_and_reconnects() -> None:
    connection = connected()
    connection.receive("9garbage", now=1.0)
    assert connection.events() == [
        CloseTransport(),
        Disconnected("/", DisconnectReason.PARSE_ERROR),
    ]
    assert connection.state is State.RECONNECTING


def test_transition_tables() -> None:
    """Every state is reachable; every state but DISCONNECTED can close (a lost connection either
    reconnects or closes)."""
    for table, start in ((TRANSITIONS, State.DISCONNECTED), (NSP_TRANSITIONS, NspState.IDLE)):
        reachable, frontier = {start}, [start]
        while frontier:
            state = frontier.pop()
            for (source, _event), target in table.items():
                if source is state and target not in reachable:
                    reachable.add(target)
                    frontier.append(target)
        assert reachable == set(type(start))
    assert all(
        TRANSITIONS[(s, "close")] is State.DISCONNECTED
        for s in State
        if s is not State.DISCONNECTED
    )


# -- with the Engine.IO session underneath ----------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_paired_with_the_engine_io_session_on_a_fake_clock(seed: int) -> None:
    """The two pure layers stacked: Socket.IO packets travel as Engine.IO messages in a POST body;
    the server goes silent, the Engine.IO heartbeat declares it gone, Socket.IO schedules attempt 1."""
    connection = machine(seed=seed)
    connection.connect("/", now=0.0)
    assert connection.events() == [OpenTransport()]
    session = ClientSession("polling")  # what the shell opens
    session.receive_payload(
        '0{"sid":"e1","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":100000}', 0.0
    )
    connection.opened(now=0.0)
    connection.emit("/", "hello", ("world",))  # buffered until the reply

    def pump(now: float) -> None:  # what the shells do: Engine.IO events up, Socket.IO packets down
        for event in session.events():
            if isinstance(event, Message):
                connection.receive(event.data, now)
            elif isinstance(event, Closed):
                connection.lost(event.reason, now)
        for packet in connection.take_outgoing():
            session.send(encode(packet)[0])

    pump(0.0)
    assert session.take_payload() == "40"  # one POST body: the CONNECT
    session.receive_payload('40{"sid":"x1"}\x1e2', now=0.1)  # the reply, and a ping
    pump(0.1)
    assert session.take_payload() == '3\x1e42["hello","world"]'  # the pong, then the buffer
    assert connection.events() == [Connected("/", "x1", False)]

    deadline = session.next_deadline()  # no ping within pingInterval + pingTimeout
    assert deadline == pytest.approx(0.6)
    session.handle_timeout(deadline)  # type: ignore[arg-type]
    pump(deadline)  # type: ignore[arg-type]
    assert connection.events() == [Disconnected("/", DisconnectReason.PING_TIMEOUT)]
    delay = BACKOFF.duration(0, random.Random(seed).random())
    assert connection.next_deadline() == pytest.approx(deadline + delay)  # type: ignore[operator]


# -- retries: at-least-once delivery (socket.io-client 4.6 `retries`, `ackTimeout`) -----------


def test_with_retries_one_emit_at_a_time_each_with_an_ack_request() -> None:
    c = connected(retries=2, ack_timeout=0.5)
    first = c.emit("/", "a", (1,), 0.0)
    second = c.emit("/", "b", (2,), 0.0)
    assert (first, second) == (0, 1)  # tickets
    assert wire(c) == ['20["a",1]']  # the second waits: order is kept
    c.receive("30[]", 0.1)
    assert c.events() == [Delivered("/", 0, [])]
    assert wire(c) == ['21["b",2]']
    c.receive('31["ok"]', 0.2)
    assert c.events() == [Delivered("/", 1, ["ok"])]
    assert wire(c) == []


def test_an_emit_without_ack_is_sent_again_with_a_new_ack_id_then_given_up() -> None:
    c = connected(retries=2, ack_timeout=0.5)
    c.emit("/", "a", (1,), 0.0)
    assert wire(c) == ['20["a",1]'] and c.next_deadline() == 0.5
    c.handle_timeout(0.5)
    assert wire(c) == ['21["a",1]'] and c.events() == []  # try 2
    c.handle_timeout(1.0)
    assert wire(c) == ['22["a",1]']  # try 3 = 1 + retries
    c.handle_timeout(1.5)
    assert c.events() == [Undelivered("/", 0)]
    assert wire(c) == [] and c.next_deadline() is None
    c.receive("30[]", 1.6)  # a late answer to a try of an emit given up: ignored
    assert c.events() == []


def test_a_timed_out_try_is_forgotten_but_a_try_still_awaited_counts() -> None:
    """As socket.ts: a try whose ack timed out is forgotten (its late answer is ignored); a try
    still awaited when the head is sent again (after a reconnection) counts if it answers first,
    and then the other try's answer is ignored."""
    c = connected(retries=3, ack_timeout=5.0)
    c.emit("/", "a", (), 0.0)
    c.handle_timeout(5.0)
    assert wire(c) == ['20["a"]', '21["a"]']
    c.receive("30[]", 5.1)  # the timed-out first try: ignored
    assert c.events() == [] and wire(c) == []
    c.lost("transport close", 5.2)  # try 2 is still awaited (until 10.0)…
    c.events()
    assert c.reconnect_at is not None and c.reconnect_at < 10.0
    c.handle_timeout(c.reconnect_at)
    c.opened(c.reconnect_at)
    assert wire(c) == ["0"]
    c.receive('0{"sid":"s2"}', 7.0)
    assert wire(c) == ['22["a"]']  # …and the head is sent again at once: try 3
    c.receive("31[]", 7.5)  # try 2 answers first: delivered
    assert Delivered("/", 0, []) in c.events()
    c.receive("32[]", 7.6)  # try 3's answer: already acknowledged
    assert c.events() == []


def test_the_queue_waits_while_disconnected_and_resends_its_head_on_connect() -> None:
    c = connected(retries=1, ack_timeout=10.0)
    c.emit("/", "a", (), 0.0)
    assert wire(c) == ['20["a"]']
    c.lost("transport close", 1.0)
    c.emit("/", "b", (), 1.0)
    assert wire(c) == []  # nothing leaves while disconnected
    c.events()
    c.handle_timeout(c.next_deadline())  # the reconnection attempt
    c.opened(3.0)
    c.receive('0{"sid":"s2"}', 3.0)
    assert wire(c) == ["0", '21["a"]']  # the head again (force), "b" after it
    c.receive("31[]", 3.1)
    assert wire(c) == ['22["b"]']


def test_volatile_emits_bypass_the_queue() -> None:
    c = connected(retries=2, ack_timeout=0.5)
    c.emit("/", "a", (), 0.0)
    assert c.emit("/", "v", (), 0.0, volatile=True) is None
    assert wire(c) == ['20["a"]', '2["v"]']


def test_ack_timeout_is_the_default_timeout_of_every_ack() -> None:
    c = connected(ack_timeout=0.5)  # no retries: acks as usual, with a default timeout
    ack_id = c.emit("/", "a", (), 0.0, ack=True)
    c.handle_timeout(0.5)
    assert c.events() == [AckTimedOut("/", ack_id)]
