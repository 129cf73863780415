"""The conformance app's Socket.IO part (``sio_teach/examples/conformance.py``), checked on the wire.

Every test drives raw Engine.IO packets by hand, over a WebSocket-only session and over HTTP
long-polling (the ``transport`` fixture), against the app started in the test's event loop. The
strings compared are the Socket.IO packets as they travel, without the Engine.IO ``4`` (so
``'2["message-back",1]'`` is the frame ``42["message-back",1]``).

"Nothing arrives" is never checked by sleeping: :meth:`RawClient.sync` makes a round trip through
``message-with-ack`` and returns what arrived before its ACK. The server writes to one client in
order, so a packet it queued for that client earlier would be in that list.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from sio_teach.examples import conformance as conformance_app
from tests.sio.conftest import SID_RE, ConformanceApp, RawClient, RawFactory, SessionClosed

pytestmark = pytest.mark.usefixtures("no_server_errors")

PH0 = '{"_placeholder":true,"num":0}'
PH1 = '{"_placeholder":true,"num":1}'


@pytest.fixture(params=["websocket", "polling"])
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


def prefix(nsp: str) -> str:
    """What follows the packet type for a namespace: nothing for ``/``, ``/custom,`` otherwise."""
    return "" if nsp == "/" else f"{nsp},"


async def client(
    raw: RawFactory, app: ConformanceApp, transport: str, *namespaces: str
) -> RawClient:
    """A raw client connected to ``namespaces`` (the ``auth`` event of each one consumed)."""
    c = await raw(app.live, transport)
    for nsp in namespaces:
        await c.connect(nsp)
        assert await c.recv() == f'2{prefix(nsp)}["auth",{{}}]'
    return c


async def assert_alive(c: RawClient, nsp: str = "/", text: str = "still here") -> None:
    """The client's connection still works: an echo comes back, and nothing came before it."""
    await c.send(f'2{prefix(nsp)}["message",{json.dumps(text)}]')
    assert await c.recv() == f'2{prefix(nsp)}["message-back",{json.dumps(text)}]'


# -- 2.1 Connection --------------------------------------------------------------------------


async def test_open_packet(raw: RawFactory, conformance: ConformanceApp, transport: str) -> None:
    c = await raw(conformance.live, transport)
    assert set(c.handshake) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert c.handshake["upgrades"] == (["websocket"] if transport == "polling" else [])
    assert c.handshake["pingInterval"] == 300
    assert c.handshake["maxPayload"] == 1_000_000


async def test_default_settings_are_the_documented_ones(serve, raw: RawFactory) -> None:
    """The app as shipped (not relaxed for the tests): pingInterval 300, pingTimeout 200."""
    sio = conformance_app.socketio_server()
    live = await serve(sio.routes("/socket.io/"), engines=[sio.engine])
    c = await raw(live, "polling", poll=False)
    assert c.handshake["pingInterval"] == 300
    assert c.handshake["pingTimeout"] == 200
    assert c.handshake["maxPayload"] == 1_000_000
    assert sio.connect_timeout == 1.0


async def test_connect_with_auth(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    c = await raw(conformance.live, transport)
    await c.send('0{"token":"123"}')
    reply = await c.recv()
    match = SID_RE.match(reply)  # 40{"sid":"…"}, the main namespace never written out
    assert match and match["nsp"] is None, reply
    assert match["sid"] != c.sid  # the Socket.IO sid is not the Engine.IO sid
    # the auth event comes right after the CONNECT reply, never before it
    assert await c.recv() == '2["auth",{"token":"123"}]'


async def test_connect_without_auth(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    c = await raw(conformance.live, transport)
    await c.send("0")
    assert SID_RE.match(await c.recv())
    assert await c.recv() == '2["auth",{}]'


async def test_connect_custom_without_trailing_comma(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    c = await raw(conformance.live, transport)
    await c.send("0/custom")
    reply = await c.recv()
    match = SID_RE.match(reply)
    assert match and match["nsp"] == "/custom,", reply
    assert await c.recv() == '2/custom,["auth",{}]'


async def test_connect_custom_with_auth(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    c = await raw(conformance.live, transport)
    await c.send('0/custom,{"token":"abc","n":[1,2]}')
    assert SID_RE.match(await c.recv())
    assert await c.recv() == '2/custom,["auth",{"token":"abc","n":[1,2]}]'


async def test_socket_ids_are_distinct(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    a = await raw(conformance.live, transport)
    b = await raw(conformance.live, transport)
    ids = []
    for c, nsp in ((a, "/"), (a, "/custom"), (b, "/")):
        ids.append(await c.connect(nsp))
        assert await c.recv() == f'2{prefix(nsp)}["auth",{{}}]'
    assert len(set(ids) | {a.sid, b.sid}) == 5


async def test_invalid_namespace_keeps_the_connection(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    c = await raw(conformance.live, transport)
    await c.send("0/random,")
    assert await c.recv() == '4/random,{"message":"Invalid namespace"}'
    await c.send("0/random")  # the same without the comma
    assert await c.recv() == '4/random,{"message":"Invalid namespace"}'
    # the Engine.IO connection is still open: the client may still connect to /
    await c.connect("/")
    assert await c.recv() == '2["auth",{}]'
    await assert_alive(c)


# -- 2.2 Event handlers ----------------------------------------------------------------------


@pytest.mark.parametrize("nsp", ["/", "/custom"])
async def test_message_back(
    raw: RawFactory, conformance: ConformanceApp, transport: str, nsp: str
) -> None:
    c = await client(raw, conformance, transport, nsp)
    p = prefix(nsp)
    await c.send(f'2{p}["message",1,"2",{{"3":[true]}}]')
    assert await c.recv() == f'2{p}["message-back",1,"2",{{"3":[true]}}]'
    await c.send(f'2{p}["message"]')  # zero args
    assert await c.recv() == f'2{p}["message-back"]'
    await c.send(f'2{p}5["message","x"]')  # an ack id: message never acknowledges
    assert await c.recv() == f'2{p}["message-back","x"]'
    assert await c.sync(nsp) == []


@pytest.mark.parametrize("nsp", ["/", "/custom"])
async def test_message_back_binary(
    raw: RawFactory, conformance: ConformanceApp, transport: str, nsp: str
) -> None:
    c = await client(raw, conformance, transport, nsp)
    p = prefix(nsp)
    await c.send(f'52-{p}["message",{PH0},{PH1}]', b"\x01\x02\x03", b"\x04\x05\x06")
    assert await c.recv() == f'52-{p}["message-back",{PH0},{PH1}]'
    assert await c.recv() == b"\x01\x02\x03"
    assert await c.recv() == b"\x04\x05\x06"
    # nested and mixed with JSON; an empty buffer is still a buffer
    await c.send(f'52-{p}["message","a",{{"k":[{PH0}]}},{PH1}]', b"\xff" * 3, b"")
    assert await c.recv() == f'52-{p}["message-back","a",{{"k":[{PH0}]}},{PH1}]'
    assert await c.recv() == b"\xff\xff\xff"
    assert await c.recv() == b""


async def test_message_with_ack(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    c = await client(raw, conformance, transport, "/", "/custom")
    await c.send('2456["message-with-ack",1,"2",{"3":[false]}]')
    assert await c.recv() == '3456[1,"2",{"3":[false]}]'
    await c.send('212["message-with-ack"]')  # zero args → an empty ACK
    assert await c.recv() == "312[]"
    await c.send('2/custom,12["message-with-ack","y"]')
    assert await c.recv() == '3/custom,12["y"]'
    await c.send('20["message-with-ack",null]')  # ack id 0 is an ack id
    assert await c.recv() == "30[null]"
    await c.send('2["message-with-ack",1]')  # no ack requested: nothing at all
    assert await c.sync() == []


async def test_flaky_ignores_the_first_arrival_of_each_argument(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    """For clients with ``retries`` (conformance section 4): the first ``flaky`` of an argument
    gets no ACK, a later one with the same argument does; another argument starts over."""
    c = await client(raw, conformance, transport, "/", "/custom")
    tag = f"{transport}-{time.monotonic_ns()}"  # the app remembers arguments for its lifetime
    await c.send(f'21["flaky","{tag}"]')
    assert await c.sync() == []  # "lost"
    await c.send(f'22["flaky","{tag}"]')
    assert await c.recv() == f'32["{tag}"]'
    await c.send(f'23["flaky","{tag}-other"]')
    assert await c.sync() == []


async def test_message_with_ack_binary(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    c = await client(raw, conformance, transport, "/", "/custom")
    await c.send(f'52-789["message-with-ack",{PH0},{PH1}]', b"\x01\x02\x03", b"\x04\x05\x06")
    assert await c.recv() == f"62-789[{PH0},{PH1}]"
    assert await c.recv() == b"\x01\x02\x03"
    assert await c.recv() == b"\x04\x05\x06"
    await c.send(f'51-/custom,3["message-with-ack","t",{PH0}]', b"\x00")
    assert await c.recv() == f'61-/custom,3["t",{PH0}]'
    assert await c.recv() == b"\x00"


async def test_join_and_leave(raw: RawFactory, conformance: ConformanceApp, transport: str) -> None:
    member = await client(raw, conformance, transport, "/")
    sender = await client(raw, conformance, transport, "/")
    await member.send('217["join","room-1"]')
    assert await member.recv() == '317["room-1"]'
    await sender.send('21["to-room","room-1","hello"]')
    assert await sender.recv() == "31[]"
    assert await member.recv() == '2["room-message","hello"]'

    await member.send('218["leave","room-1"]')
    assert await member.recv() == '318["room-1"]'
    await sender.send('22["to-room","room-1","again"]')
    assert await sender.recv() == "32[]"
    assert await member.sync() == []  # left: nothing

    # without ack ids: no ACK, but the socket joins / leaves all the same
    await member.send('2["join","room-2"]')
    assert await member.sync() == []
    await sender.send('23["to-room","room-2","in"]')
    assert await sender.recv() == "33[]"
    assert await member.recv() == '2["room-message","in"]'
    await member.send('2["leave","room-2"]')
    assert await member.sync() == []
    await sender.send('24["to-room","room-2","out"]')
    assert await sender.recv() == "34[]"
    assert await member.sync() == []


async def test_to_room_among_three_clients(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    a, b, c = [await client(raw, conformance, transport, "/") for _ in range(3)]
    other_nsp = await client(raw, conformance, transport, "/custom")  # same room name, other nsp
    for member in (a, b):
        await member.send('21["join","room-1"]')
        assert await member.recv() == '31["room-1"]'
    await other_nsp.send('2/custom,1["join","room-1"]')
    assert await other_nsp.recv() == '3/custom,1["room-1"]'

    await a.send('25["to-room","room-1","hello",{"n":1}]')
    assert await a.recv() == "35[]"  # the ACK, and no room-message before it: sender excluded
    assert await b.recv() == '2["room-message","hello",{"n":1}]'
    assert await a.sync() == []
    assert await b.sync() == []
    assert await c.sync() == []  # not in the room
    assert await other_nsp.sync("/custom") == []  # room-1 of /custom is another room

    # from a socket outside the room, without an ack id: every member gets it
    await c.send('2["to-room","room-1","from-c"]')
    assert await a.recv() == '2["room-message","from-c"]'
    assert await b.recv() == '2["room-message","from-c"]'
    assert await c.sync() == []


async def test_broadcast_among_three_clients(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    a, b, c = [await client(raw, conformance, transport, "/") for _ in range(3)]
    other_nsp = await client(raw, conformance, transport, "/custom")
    await a.send('27["broadcast","hi",[1,2]]')
    assert await a.recv() == "37[]"
    for other in (b, c):
        assert await other.recv() == '2["broadcast-message","hi",[1,2]]'
    assert await a.sync() == []
    assert await other_nsp.sync("/custom") == []

    # on /custom, it stays on /custom; without an ack id there is no ACK
    a2 = await client(raw, conformance, transport, "/custom")
    await other_nsp.send('2/custom,["broadcast","x"]')
    assert await a2.recv() == '2/custom,["broadcast-message","x"]'
    assert await other_nsp.sync("/custom") == []
    for c_main in (a, b, c):
        assert await c_main.sync() == []


async def test_broadcast_binary(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    a, b = [await client(raw, conformance, transport, "/") for _ in range(2)]
    await a.send(f'51-["broadcast",{PH0}]', b"\x07\x08")
    assert await b.recv() == f'51-["broadcast-message",{PH0}]'
    assert await b.recv() == b"\x07\x08"
    assert await a.sync() == []


@pytest.mark.parametrize("nsp", ["/", "/custom"])
async def test_call_me_back(
    raw: RawFactory, conformance: ConformanceApp, transport: str, nsp: str
) -> None:
    c = await client(raw, conformance, transport, nsp)
    p = prefix(nsp)
    await c.send(f'2{p}["call-me-back","x",2]')
    request = await c.recv()
    assert isinstance(request, str)
    head = f"2{p}"
    assert request.startswith(head) and request.endswith('["callback","x",2]'), request
    ack_id = request[len(head) : -len('["callback","x",2]')]
    assert ack_id.isdigit(), request  # an ack id is requested
    await c.send(f'3{p}{ack_id}["y",{{"z":1}}]')
    assert await c.recv() == f'2{p}["callback-ack","y",{{"z":1}}]'

    # the client acknowledges with binary (BINARY_ACK): callback-ack carries it (BINARY_EVENT)
    await c.send(f'2{p}7["call-me-back"]')  # an ack id on call-me-back itself: never acknowledged
    request = await c.recv()
    assert isinstance(request, str) and request.endswith('["callback"]'), request
    ack_id = request[len(head) : -len('["callback"]')]
    await c.send(f"61-{p}{ack_id}[{PH0},3]", b"\x0a\x0b")
    assert await c.recv() == f'51-{p}["callback-ack",{PH0},3]'
    assert await c.recv() == b"\x0a\x0b"
    assert await c.sync(nsp) == []


async def test_call_me_back_with_binary_args(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    c = await client(raw, conformance, transport, "/")
    await c.send(f'51-["call-me-back",{PH0}]', b"\x01")
    request = await c.recv()
    assert isinstance(request, str) and request.startswith("51-"), request
    assert request.endswith(f'["callback",{PH0}]'), request
    assert await c.recv() == b"\x01"
    ack_id = request[len("51-") : -len(f'["callback",{PH0}]')]
    await c.send(f"3{ack_id}[]")  # an empty ACK → callback-ack with no args
    assert await c.recv() == '2["callback-ack"]'


async def test_disconnect_me_on_custom(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    c = await client(raw, conformance, transport, "/", "/custom")
    await c.send('2/custom,["disconnect-me"]')
    assert await c.recv() == "1/custom,"
    await assert_alive(c, "/")  # the Engine.IO connection and / stay up
    # and the client may connect to /custom again
    await c.connect("/custom")
    assert await c.recv() == '2/custom,["auth",{}]'
    await assert_alive(c, "/custom")


async def test_disconnect_me_on_main(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    c = await client(raw, conformance, transport, "/", "/custom")
    await c.send('2["disconnect-me"]')
    assert await c.recv() == "1"
    await assert_alive(c, "/custom")
    # an event for / now: / is not connected, so the server closes the whole connection
    await c.send('23["message-with-ack","gone"]')
    assert await c.expect_closed() == []


async def test_handlers_take_arguments_as_a_javascript_app_would(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    """Odd arguments are coerced (a room becomes a string) or ignored, never a handler failure."""
    c = await client(raw, conformance, transport, "/")
    await c.send('2["join",{}]', '2["join"]', '2["leave",["a"]]', '2["to-room",{}]')
    await c.send('2["to-room"]', '21["join",7]', '22["leave"]')
    assert await c.sync() == ["31[7]", "32[]"]
    assert conformance.sio.handler_errors == 0
    await c.send('2["disconnect-me",1]')
    assert await c.recv() == "1"


async def test_unknown_event_gets_no_ack(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    c = await client(raw, conformance, transport, "/", "/custom")
    await c.send('299["no-such-event",1]')
    await c.send('2/custom,98["no-such-event"]')
    await c.send('2["auth",{"x":1}]')  # a name the server *emits* is not one it handles
    assert await c.sync() == []
    assert await c.sync("/custom") == []


# -- 2.3 Robustness --------------------------------------------------------------------------

BAD_PACKETS: dict[str, list[str | bytes]] = {
    "unknown packet type": ['7["message",1]'],
    "unknown packet type letter": ['x["message",1]'],
    "event payload is an object": ['2{"message":1}'],
    "event payload is a string": ['2"message"'],
    "event payload is an empty array": ["2[]"],
    "event without payload": ["2"],
    "event name is not a string": ['2[{"a":1},2]'],
    "non-numeric ack id": ['2abc["message-with-ack",1]'],
    "ack id too large": ['29007199254740992["message-with-ack",1]'],
    "broken JSON": ['2["message",'],
    "broken JSON in binary event": [f'51-["message",{PH0}', b"\x01"],
    # over polling these travel in one POST: the packets after the bad one must not break the server
    "broken JSON then a valid event": ['2["message",', '2["message","after"]'],
    "reserved event name disconnect": ['2["disconnect"]'],
    "reserved event name connect": ['21["connect",{}]'],
    "reserved event name disconnecting": ['2["disconnecting","x"]'],
    "placeholder out of range": ['51-["message",{"_placeholder":true,"num":1}]', b"\x01"],
    "placeholder num not an integer": ['51-["message",{"_placeholder":true,"num":"0"}]', b"\x01"],
    "unexpected binary frame": [b"\x01\x02\x03"],
    "text while awaiting an attachment": [f'51-["message",{PH0}]', '2["message",2]'],
    "too many attachments": ['511-["message"]'],
    "binary type without attachment count": ['5["message"]'],
    "ACK without ack id": ["3[]"],
    "ACK payload not an array": ['31{"a":1}'],
    "CONNECT_ERROR from a client": ['4{"message":"x"}'],
    "CONNECT payload not an object": ['0/custom,"token"'],
    "DISCONNECT with a payload": ['1/custom,{"a":1}'],
    "namespace with garbage": ['2custom,["message",1]'],
}


@pytest.mark.parametrize("packets", list(BAD_PACKETS.values()), ids=list(BAD_PACKETS))
async def test_bad_packet_closes_or_is_ignored(
    raw: RawFactory, conformance: ConformanceApp, transport: str, packets: list[str | bytes]
) -> None:
    witness = await client(raw, conformance, transport, "/", "/custom")  # connected before
    victim = await client(raw, conformance, transport, "/", "/custom")
    try:
        await victim.send(*packets)
        before = await victim.sync()  # raises SessionClosed when the server closed the session
    except SessionClosed:
        pass  # closed: allowed
    else:
        # ignored: allowed, if nothing came back for it and the connection still works normally
        assert before == [], f"the bad packet was answered: {before!r}"
        await assert_alive(victim, "/")
        await assert_alive(victim, "/custom")
    # the server did not crash and keeps serving the other client
    await assert_alive(witness, "/")
    await assert_alive(witness, "/custom")
    # and accepts new connections
    newcomer = await client(raw, conformance, transport, "/")
    await assert_alive(newcomer)


@pytest.mark.parametrize(
    "bad",
    ['42["message",', "47", f'451-["message",{PH0}\x1ebAQ==', "4bAQ=="],
    ids=["json", "type", "binary-json", "binary"],
)
async def test_polling_post_with_a_bad_packet_then_more(
    raw: RawFactory, conformance: ConformanceApp, bad: str
) -> None:
    """A bad packet followed by more packets in the same POST: the session is closed (or the bad
    packet ignored), the POST is answered 200 or 400 — not 500 — and the rest is not dispatched
    on a connection the server has given up on."""
    c = await client(raw, conformance, "polling", "/")
    response = await c.post(bad + '\x1e42["message","after"]\x1e42["message","after2"]')
    assert response.code in (200, 400), (response.code, response.body)
    try:
        before = await c.sync()
    except SessionClosed:
        assert not any("after" in m for m in c.eio_log if isinstance(m, str)), c.eio_log
    else:
        assert before == ['2["message-back","after"]', '2["message-back","after2"]']


@pytest.mark.parametrize(
    "early",
    ['2["message","early"]', '21["message-with-ack","early"]', '2/custom,["message","early"]'],
    ids=["event", "event-with-ack", "other-namespace"],
)
async def test_event_before_connect_closes_the_connection(
    raw: RawFactory, conformance: ConformanceApp, transport: str, early: str
) -> None:
    """ "If the server does not receive a CONNECT packet first, then it MUST close the connection
    immediately": nothing is dispatched, nothing answered, the session ends."""
    c = await raw(conformance.live, transport)
    await c.send(early)
    assert await c.expect_closed() == []


async def test_event_for_a_namespace_not_connected_closes_only_that_connection(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    """A connected client that sends for a namespace it never joined is closed; another client
    of the same server carries on."""
    c = await client(raw, conformance, transport, "/")
    other = await client(raw, conformance, transport, "/")
    await c.send('2/custom,["message","not connected"]')
    assert await c.expect_closed() == []
    await assert_alive(other, "/")


async def test_connect_timeout(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    """No CONNECT within 1000 ms of the handshake: the server closes the Engine.IO session."""
    started = time.monotonic()
    c = await raw(conformance.live, transport)  # pings are answered, but no CONNECT is sent
    assert await c.expect_closed(timeout=10.0) == []
    assert 0.9 <= time.monotonic() - started < 4.0  # not before the connect timeout, nor long after
    assert c.pings >= 1  # the heartbeat ran meanwhile (pingInterval 300 ms)


async def past_the_connect_timeout(c: RawClient) -> None:
    """Wait for the server's 4th ping: by the server's own clock at least 4 × 300 ms after the
    handshake, so its 1 s connect timeout has come first (counted packets, no fixed sleep)."""

    async def wait() -> None:
        while c.pings < 4 and not c.closed:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), 10.0)


async def test_connect_timeout_spares_connected_clients(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    c = await client(raw, conformance, transport, "/")
    await past_the_connect_timeout(c)
    assert not c.closed, c.close_reason
    await assert_alive(c)


async def test_connect_timeout_is_cleared_by_the_first_connect(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    """A CONNECT did arrive in time, so the connection is not closed by the connect timeout even
    after the client left its only namespace (socket.io lib/client.ts clears ``connectTimeout`` in
    ``doConnect``; the document: "if no CONNECT packet arrives within 1000 ms")."""
    c = await client(raw, conformance, transport, "/")
    await c.send("1")  # leave /: the Engine.IO connection stays open (spec: DISCONNECT)
    await past_the_connect_timeout(c)
    assert not c.closed, f"session closed: {c.close_reason}"
    await c.connect("/")
    assert await c.recv() == '2["auth",{}]'
    await assert_alive(c)


async def test_refused_namespace_does_not_stop_the_connect_timeout(
    raw: RawFactory, conformance: ConformanceApp, transport: str
) -> None:
    c = await raw(conformance.live, transport)
    await c.send("0/random,")
    assert await c.recv() == '4/random,{"message":"Invalid namespace"}'
    assert await c.expect_closed(timeout=10.0) == []


async def test_polling_payload_of_500_packets(raw: RawFactory, conformance: ConformanceApp) -> None:
    """No limit on the number of packets in one POST (the official client sends hundreds)."""
    c = await client(raw, conformance, "polling", "/")
    body = "\x1e".join(f'42["message",{i},"p{i}"]' for i in range(500))
    response = await c.post(body)
    assert response.code == 200 and response.body == b"ok"
    for i in range(500):
        assert await c.recv(timeout=10.0) == f'2["message-back",{i},"p{i}"]'
    assert await c.sync() == []


async def test_polling_payload_mixing_namespaces_binary_and_acks(
    raw: RawFactory, conformance: ConformanceApp
) -> None:
    c = await client(raw, conformance, "polling", "/", "/custom")
    body = "\x1e".join(
        [
            '42["message","a"]',
            f'451-/custom,4["message-with-ack",{PH0}]',
            "bAQID",  # the attachment: b"\x01\x02\x03"
            '42/custom,["message","b"]',
            '425["message-with-ack"]',
        ]
    )
    response = await c.post(body)
    assert response.code == 200
    assert await c.recv() == '2["message-back","a"]'
    assert await c.recv() == f"61-/custom,4[{PH0}]"
    assert await c.recv() == b"\x01\x02\x03"
    assert await c.recv() == '2/custom,["message-back","b"]'
    assert await c.recv() == "35[]"


async def test_many_packets_on_websocket(raw: RawFactory, conformance: ConformanceApp) -> None:
    c = await client(raw, conformance, "websocket", "/")
    await c.send(*(f'2{i}["message-with-ack",{i}]' for i in range(300)))
    for i in range(300):
        assert await c.recv(timeout=10.0) == f"3{i}[{i}]"
