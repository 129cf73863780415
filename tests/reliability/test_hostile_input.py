"""Hostile input and resource limits, against the conformance app over HTTP long-polling and WebSocket.

What every test asks (the conformance app's robustness rules, the Engine.IO protocol's README): a request or packet the server cannot
accept gets the spec's HTTP status or a close of *that* connection (or is ignored, the connection
then working normally); the server does not crash (nothing is logged at ERROR: the
``no_errors_logged`` fixture), and clients connected *before* the storm — our own
:class:`sio_teach.Client`, one per transport — send and receive everything, once, in order,
afterwards (:meth:`Witness.check`: 100 numbered ``message`` → ``message-back``).

Limits: ``maxPayload`` on both transports (a WebSocket message over it closes that WebSocket, a POST
over it gets 413, exactly at it is accepted); the number of packets in a polling body is bounded by
bytes only; at most 10 attachments.

Every wait is bounded; every loop is bounded in count.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import tornado.websocket

from tests.reliability.conftest import (
    SEP,
    TIMEOUT,
    App,
    Http,
    RawTcp,
    Witness,
    error_body,
    until,
)
from tests.sio.conftest import RawClient, RawFactory, SessionClosed

pytestmark = pytest.mark.usefixtures("no_errors_logged")

MAX_PAYLOAD = 1_000_000  # the conformance app's maxPayload
RANDOM_BYTES = random.Random(6).randbytes(512)  # deterministic noise (not valid UTF-8)
Witnesses = Callable[[App], Awaitable[list[Witness]]]


def ph(num: Any) -> str:
    return json.dumps({"_placeholder": True, "num": num}, separators=(",", ":"))


@pytest.fixture(params=["websocket", "polling"])
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


async def connected(raw: RawFactory, app: App, transport: str) -> RawClient:
    """A raw client connected to ``/`` (its ``auth`` event consumed)."""
    c = await raw(app.live, transport)
    await c.connect("/")
    assert await c.recv() == '2["auth",{}]'
    return c


async def assert_alive(c: RawClient, text: str = "still here") -> None:
    await c.send(f'2["message",{json.dumps(text)}]')
    assert await c.recv(timeout=TIMEOUT) == f'2["message-back",{json.dumps(text)}]'


async def closed_or_ignored(c: RawClient) -> str:
    """After hostile input: "closed", or "ignored" — nothing came back and the connection works."""
    try:
        before = await c.sync(timeout=TIMEOUT)
    except SessionClosed:
        return "closed"
    assert before == [], f"the hostile packet was answered: {before!r}"
    await assert_alive(c)
    return "ignored"


# -- Socket.IO packets the server cannot accept -------------------------------------------------

ELEVEN = [f'511-["message",{",".join(ph(i) for i in range(11))}]', *(bytes([i]) for i in range(11))]
HOSTILE: dict[str, list[str | bytes]] = {
    "random bytes as a binary message": [RANDOM_BYTES],
    "invalid UTF-8 in a binary message where text is expected": [b"4\xff\xfe\xfd"],
    "truncated EVENT": ['2["message","abc'],
    "truncated BINARY_EVENT": ['51-["message",{"_placeholder":tr', b"\x01"],
    "truncated attachment count": ["51"],
    "truncated namespace": ["2/cus"],
    "empty message": [""],
    "ack id of 30 digits": ["2" + "9" * 30 + '["message-with-ack",1]'],
    "ack id 2**53": ['29007199254740992["message-with-ack",1]'],
    "100k [": ["2" + "[" * 100_000],
    "100k [ that close": ['2["message",' + "[" * 100_000 + "]" * 100_001],
    "100k { in a binary event": ["51-" + '{"a":' * 100_000, b"\x01"],
    "placeholder out of range": [f'51-["message",{ph(1)}]', b"\x01"],
    "placeholder negative": [f'51-["message",{ph(-1)}]', b"\x01"],
    "placeholder huge": [f'51-["message",{ph(10**30)}]', b"\x01"],
    "11 attachments": ELEVEN,
    "attachment count 9999": ['59999-["message"]'],
    "unknown packet type 7": ['7["message",1]'],
    "unknown packet type 9": ["9"],
    "CONNECT_ERROR from a client": ['4{"message":"x"}'],
    "BINARY_ACK without ack id": [f"61-[{ph(0)}]", b"\x01"],
    "reserved event name": ['2["disconnect"]'],
}


@pytest.mark.parametrize("packets", list(HOSTILE.values()), ids=list(HOSTILE))
async def test_hostile_socketio_packet(
    raw: RawFactory, app: App, transport: str, packets: list[str | bytes]
) -> None:
    bystander = await connected(raw, app, transport)  # connected before
    victim = await connected(raw, app, transport)
    try:
        await victim.send(*packets)
    except SessionClosed:
        pass  # the server refused the POST and closed the session
    await closed_or_ignored(victim)
    await assert_alive(bystander)
    await assert_alive(await connected(raw, app, transport))  # and new clients are served


async def test_storm_of_hostile_packets_spares_the_witnesses(
    raw: RawFactory, app: App, witnesses: Witnesses
) -> None:
    """Every hostile packet above, from 2 × 22 victims at once on both transports, while two
    clients connected before the storm keep talking."""
    ws_witness, polling_witness = await witnesses(app)

    victims: list[RawClient] = []

    async def victim(transport: str, packets: list[str | bytes]) -> str:
        c = await connected(raw, app, transport)
        victims.append(c)
        try:
            await c.send(*packets)
        except SessionClosed:
            pass
        return await closed_or_ignored(c)

    outcomes = await asyncio.wait_for(
        asyncio.gather(
            *(victim(t, p) for t in ("websocket", "polling") for p in HOSTILE.values()),
            ws_witness.check(),
            polling_witness.check(),
        ),
        60,
    )
    assert set(outcomes[:-2]) <= {"closed", "ignored"}
    await ws_witness.check()
    await polling_witness.check()
    # once the victims are gone, nothing of theirs is left: sessions, sockets, rooms
    await asyncio.wait_for(asyncio.gather(*(c.close() for c in victims)), TIMEOUT)
    alive = {ws_witness.eio_sid, polling_witness.eio_sid}
    await until(lambda: set(app.sessions) == alive, TIMEOUT, "the victims' sessions forgotten")
    assert set(app.sio.of("/").sockets) == {ws_witness.id, polling_witness.id}
    assert set(app.sio.of("/").adapter.rooms) == {ws_witness.id, polling_witness.id}


# -- Engine.IO-level garbage ----------------------------------------------------------------------

BAD_BODIES: dict[str, bytes] = {
    "random bytes": RANDOM_BYTES,
    "invalid UTF-8": b'42["message","\xff\xfe"]',
    "truncated UTF-8": '42["message","é'.encode()[:-1],
    "invalid base64": b"bAQ=x",
    "base64 of a wrong length": b"bAQID",
    "base64 with a newline": b"bAQID\nBA==",
    "unknown packet type": b"7hello",
    "empty packet between two": b'42["message",1]\x1e\x1e42["message",2]',
    "empty body": b"",
    "a ping from the client": b"2",
    "an open packet from the client": b"0{}",
    "an upgrade packet on polling": b"5",
}


@pytest.mark.parametrize("body", list(BAD_BODIES.values()), ids=list(BAD_BODIES))
async def test_hostile_polling_body(raw: RawFactory, app: App, body: bytes) -> None:
    """A POST body the Engine.IO parser refuses: 400 with ``{"code":3,...}`` (or 200 and the
    session closed, as engine.io does); the session is closed in both cases, nothing after the
    bad packet is dispatched, and the other sessions live on."""
    bystander = await connected(raw, app, "polling")
    victim = await connected(raw, app, "polling")
    response = await victim.post(body)  # type: ignore[arg-type]
    assert response.code in (200, 400), (response.code, response.body)
    if response.code == 400:
        assert error_body(response)["code"] == 3
    seen = await victim.expect_closed(timeout=TIMEOUT)
    assert '2["message-back",2]' not in seen, seen  # nothing after the bad packet
    await assert_alive(bystander)


@pytest.mark.parametrize(
    "frame", [RANDOM_BYTES.decode("latin1"), "7hello", "", "0{}", "5", "2", "9" * 1000]
)
async def test_hostile_websocket_text_frame(raw: RawFactory, app: App, frame: str) -> None:
    """A text frame the Engine.IO parser refuses (or a packet a client never sends): the server
    closes that WebSocket; the others live on."""
    bystander = await connected(raw, app, "websocket")
    victim = await connected(raw, app, "websocket")
    await victim.send_eio(frame)
    assert await victim.expect_closed(timeout=TIMEOUT) == []
    await assert_alive(bystander)


async def test_garbage_over_tcp_gets_an_error_or_a_close(app: App, raw: RawFactory) -> None:
    """Not even HTTP: a TLS hello, a bad request line, a huge header, a bad Content-Length."""
    garbage = [
        bytes.fromhex("160301020001") + RANDOM_BYTES + b"\r\n\r\n",  # a TLS hello, say
        b"GET /socket.io/?EIO=4&transport=polling HTTP/9.9\r\n\r\n",
        b"\x00\x01\x02\r\n\r\n",
        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nX: " + b"a" * 100_000 + b"\r\n\r\n",
        b"POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nContent-Length: 1e9\r\n\r\n",
    ]
    for data in garbage:
        tcp = await RawTcp.open(app.port)
        try:
            await tcp.send(data)
            try:
                status, _ = await tcp.read_head()
                assert 400 <= status < 500, status
            except asyncio.IncompleteReadError:
                pass  # closed without an answer: fine
        finally:
            tcp.close()
    await assert_alive(await connected(raw, app, "polling"))


# -- valid packets that are hard to handle: answered, or the connection closed -----------------

NESTED_200 = "[" * 200 + "1" + "]" * 200
NESTED_400 = "[" * 400 + "1" + "]" * 400


@pytest.mark.parametrize(
    "sent, expected",
    [
        (
            '29007199254740991["message-with-ack","max"]',  # the largest ack id: answered
            ['39007199254740991["max"]'],
        ),
        (f'2["message",{NESTED_200}]', [f'2["message-back",{NESTED_200}]']),
        (f'27["message-with-ack",{NESTED_200}]', [f"37[{NESTED_200}]"]),
        (f'2["message",{NESTED_400}]', [f'2["message-back",{NESTED_400}]']),
        (f'27["message-with-ack",{NESTED_400}]', [f"37[{NESTED_400}]"]),
        ('2["message",1e400]', ['2["message-back",null]']),  # JSON.stringify(Infinity): null
        ('27["message-with-ack",-1e400]', ["37[null]"]),
        ('2["message","\\ud800"]', ['2["message-back","\\ud800"]']),  # a lone surrogate, escaped
        ('27["message-with-ack","a\\udfffb"]', ['37["a\\udfffb"]']),
    ],
    ids=[
        "ack-id-2**53-1",
        "nested-200",
        "nested-200-ack",
        "nested-400",
        "nested-400-ack",
        "1e400",
        "1e400-ack",
        "lone-surrogate",
        "lone-surrogate-ack",
    ],
)
async def test_valid_but_demanding_packet_is_answered_or_refused(
    raw: RawFactory, app: App, transport: str, sent: str, expected: list[str]
) -> None:
    """The decoder accepted it, so the app's handler runs: the reply must go out (the exact text
    may differ, the packet must not), or the server must refuse the packet at the door by closing.
    Silently dropping it (a handler failing inside the server) is a bug."""
    c = await connected(raw, app, transport)
    await c.send(sent)
    try:
        before = await c.sync(timeout=TIMEOUT)
    except SessionClosed:
        return
    assert [json.loads(m[m.index("[") :]) if isinstance(m, str) else m for m in before] == [
        json.loads(m[m.index("[") :]) for m in expected
    ], f"answered {before!r}, expected {expected!r}"
    await assert_alive(c)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_one_client_cannot_break_delivery_to_the_others(
    raw: RawFactory, app: App, transport: str
) -> None:
    """A broadcast carrying a lone surrogate (valid JSON text: ``"\\ud800"``) reaches every other
    socket of the namespace: each must get it, and keep its connection. (A text the server cannot
    encode as UTF-8 would fail the first WebSocket write and stop the broadcast loop there, or
    answer the long-poll GETs of the polling recipients with a 500 and cut them off.)"""
    witness = Witness(app.base_url, transport)  # our Client, connected first
    got: list[tuple[Any, ...]] = []
    witness.client.on("broadcast-message", lambda *args: got.append(args))
    try:
        await witness.start()
        bystander = await connected(raw, app, transport)
        attacker = await connected(raw, app, "websocket")
        await attacker.send('2["broadcast","\\ud800"]')
        await closed_or_ignored(attacker)
        await witness.check()  # its connection survived
        await until(lambda: got, 3.0, "the broadcast at the witness")
        assert got == [("\ud800",)]
        message = await bystander.recv(timeout=TIMEOUT)
        assert isinstance(message, str)
        assert json.loads(message[1:]) == ["broadcast-message", "\ud800"]
        await assert_alive(bystander)
    finally:
        await witness.close()


# -- limits: maxPayload -------------------------------------------------------------------------


def event_of_size(size: int, tag: str = "x") -> str:
    """``2["message","<tag>xxx…"]`` whose Engine.IO packet (``4`` + this) is ``size`` bytes."""
    head = f'42["message","{tag}'
    tail = '"]'
    return (head + "x" * (size - len(head) - len(tail)) + tail)[1:]


async def test_polling_post_exactly_at_max_payload_is_accepted(raw: RawFactory, app: App) -> None:
    c = await connected(raw, app, "polling")
    message = event_of_size(MAX_PAYLOAD)
    assert len(("4" + message).encode()) == MAX_PAYLOAD
    response = await c.post("4" + message)
    assert (response.code, response.body) == (200, b"ok")
    assert await c.recv(timeout=TIMEOUT) == message.replace('["message"', '["message-back"')


async def test_polling_post_just_over_max_payload_is_413(
    raw: RawFactory, app: App, witnesses: Witnesses
) -> None:
    ws_witness, polling_witness = await witnesses(app)
    c = await connected(raw, app, "polling")
    response = await c.post("4" + event_of_size(MAX_PAYLOAD + 1))
    assert response.code == 413, (response.code, response.body)
    # not processed: no message-back; the session lives on (as in engine.io) or is closed
    await closed_or_ignored(c)
    await ws_witness.check()
    await polling_witness.check()


async def test_oversized_post_is_refused_before_it_is_read(app: App, http: Http) -> None:
    """maxPayload (``maxHttpBufferSize`` in engine.io) exists so that a client cannot make the server
    buffer big bodies. A POST announcing 100 MB must be answered 413 once more than maxPayload
    bytes have arrived (engine.io answers 413 as soon as the data exceeds it), not buffered whole
    (Tornado's default ``max_body_size`` is 100 MiB) before the limit is checked."""
    sid = await http.handshake(app)
    tcp = await RawTcp.open(app.port)
    try:
        await tcp.send(
            f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nContent-Type: text/plain;charset=UTF-8\r\n"
            f"Content-Length: {100 * MAX_PAYLOAD}\r\n\r\n".encode()
        )
        try:
            await tcp.send(b"4" + b"x" * MAX_PAYLOAD)  # one byte over the limit, then we wait
        except (ConnectionResetError, BrokenPipeError):
            return  # answered and closed while we were still sending: refused before being read
        try:
            status, _ = await tcp.read_head(timeout=5.0)
        except TimeoutError:
            pytest.fail(
                "no answer 5 s after maxPayload + 1 bytes of a 100 MB POST: the server keeps "
                "reading (and buffering) the body before it checks maxPayload"
            )
        except (asyncio.IncompleteReadError, ConnectionResetError):
            return  # the connection was closed at once: also refused before being read
        assert status == 413
    finally:
        tcp.close()


async def test_websocket_message_exactly_at_max_payload_is_accepted(
    raw: RawFactory, app: App
) -> None:
    c = await connected(raw, app, "websocket")
    message = event_of_size(MAX_PAYLOAD, "w")
    await c.send(message)
    assert await c.recv(timeout=TIMEOUT) == message.replace('["message"', '["message-back"')


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
async def test_websocket_message_over_max_payload_closes_that_websocket(
    raw: RawFactory, app: App, witnesses: Witnesses, binary: bool
) -> None:
    ws_witness, polling_witness = await witnesses(app)
    c = await connected(raw, app, "websocket")
    if binary:
        await c.send(f'51-["message",{ph(0)}]', b"\x00" * (MAX_PAYLOAD + 1))
    else:
        await c.send(event_of_size(MAX_PAYLOAD + 1))
    assert await c.expect_closed(timeout=TIMEOUT) == []
    assert c.ws.close_code == 1009  # type: ignore[attr-defined]  # "message too big"
    await ws_witness.check()
    await polling_witness.check()


# -- limits: packets per payload, attachments ---------------------------------------------------


async def test_1000_small_packets_in_one_post_are_all_processed(raw: RawFactory, app: App) -> None:
    c = await connected(raw, app, "polling")
    body = SEP.join(f'42["message",{i}]' for i in range(1000))
    response = await c.post(body)
    assert (response.code, response.body) == (200, b"ok")
    got = [await c.recv(timeout=TIMEOUT) for _ in range(1000)]
    assert got == [f'2["message-back",{i}]' for i in range(1000)]
    assert await c.sync() == []  # exactly once


async def test_packets_per_payload_are_bounded_by_bytes_only(raw: RawFactory, app: App) -> None:
    """300,000 noop packets (600 KB, under maxPayload) and then a message: all processed."""
    c = await connected(raw, app, "polling")
    body = SEP.join(["6"] * 300_000 + ['42["message","after the noops"]'])
    assert len(body) < MAX_PAYLOAD
    response = await c.post(body)
    assert (response.code, response.body) == (200, b"ok")
    assert await c.recv(timeout=TIMEOUT) == '2["message-back","after the noops"]'


async def test_ten_attachments_are_accepted(raw: RawFactory, app: App, transport: str) -> None:
    c = await connected(raw, app, transport)
    buffers = [bytes([i]) * (i + 1) for i in range(10)]
    await c.send(f'510-["message",{",".join(ph(i) for i in range(10))}]', *buffers)
    assert await c.recv() == f'510-["message-back",{",".join(ph(i) for i in range(10))}]'
    assert [await c.recv() for _ in range(10)] == buffers


async def test_eleven_attachments_are_refused(raw: RawFactory, app: App, transport: str) -> None:
    c = await connected(raw, app, transport)
    try:
        await c.send(*ELEVEN)
    except SessionClosed:
        pass
    assert await closed_or_ignored(c) == "closed"  # the parser refuses it: the connection closes


# -- slow and abandoned clients -----------------------------------------------------------------


async def test_slow_partial_requests_do_not_stop_the_server(
    raw: RawFactory, app: App, http: Http, witnesses: Witnesses
) -> None:
    """50 connections that send half their request headers and hold, 10 POSTs that send 10 bytes of
    a 1000-byte body and hold, 10 WebSocket upgrades cut short: the server keeps serving."""
    ws_witness, polling_witness = await witnesses(app)
    sid = await http.handshake(app)
    half_requests = (
        [b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "] * 50
        + [
            f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            'Content-Type: text/plain\r\nContent-Length: 1000\r\n\r\n42["message",'.encode()
        ]
        * 10
        + [
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Ver"
        ]
        * 10
    )
    slow = []
    try:
        for data in half_requests:
            tcp = await RawTcp.open(app.port)
            slow.append(tcp)
            await tcp.send(data)
        await ws_witness.check()
        await polling_witness.check()
        await assert_alive(await connected(raw, app, "polling"))
        await assert_alive(await connected(raw, app, "websocket"))
    finally:
        for tcp in slow:
            tcp.close()
    await ws_witness.check()
    await polling_witness.check()


async def test_hundreds_of_abandoned_handshakes_are_reaped(
    raw: RawFactory, app_factory: Callable[..., Awaitable[App]], http: Http, witnesses: Witnesses
) -> None:
    """300 polling handshakes and 20 WebSocket sessions that never send CONNECT (and never poll or
    pong): each is closed by the connect timeout (1 s) or the ping timeout, and forgotten; the
    session table and the namespaces end up holding only the two witnesses."""
    app = await app_factory(ping_interval=0.3, ping_timeout=2.0)
    ws_witness, polling_witness = await witnesses(app)
    abandoned = await asyncio.wait_for(
        asyncio.gather(*(http.handshake(app) for _ in range(300))), 60
    )
    assert len(set(abandoned)) == 300
    sockets = [
        await asyncio.wait_for(tornado.websocket.websocket_connect(app.ws_url()), TIMEOUT)
        for _ in range(20)
    ]
    try:
        for ws in sockets:
            first = await asyncio.wait_for(ws.read_message(), TIMEOUT)
            assert isinstance(first, str) and first.startswith("0")
        await ws_witness.check()  # during the reaping
        await polling_witness.check()
        alive = {ws_witness.eio_sid, polling_witness.eio_sid}
        await until(lambda: set(app.sessions) == alive, 20.0, "the abandoned sessions reaped")
        for ws in sockets:  # each got at most a ping and the close packet, then the close
            frames = []
            for _ in range(50):
                frame = await asyncio.wait_for(ws.read_message(), TIMEOUT)
                if frame is None:
                    break
                frames.append(frame)
            assert frames and frames[-1] == "1" and set(frames) <= {"1", "2"}, frames
    finally:
        for ws in sockets:
            ws.close()
    # nothing left behind for them: namespaces, rooms, session table
    for nsp in ("/", "/custom"):
        sockets_left = app.sio.of(nsp).sockets
        assert set(sockets_left) == ({ws_witness.id, polling_witness.id} if nsp == "/" else set())
        assert set(app.sio.of(nsp).adapter.rooms) == set(sockets_left)
    response = await http.fetch(app.url(sid=abandoned[0]))
    assert response.code == 400 and error_body(response)["code"] == 1  # forgotten
    await ws_witness.check()
    await polling_witness.check()
