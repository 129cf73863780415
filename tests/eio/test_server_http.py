"""The Tornado Engine.IO server over real HTTP and WebSocket on 127.0.0.1.

Every refusal has the status and body that the reference server gives (engine.io ``lib/server.ts``
``Server.errors`` / ``abortRequest``): ``{"code":N,"message":"..."}``, 403 for Forbidden, else 400.
Every await is bounded; nothing asserts a timing, only orders and outcomes.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import signal
import subprocess
import sys
from typing import Any

import pytest
import tornado.httpclient
import tornado.websocket
from tornado.httpclient import HTTPClientError, HTTPResponse

from sio_teach.eio.packet import Packet, PacketType, decode_payload
from sio_teach.transports.eio_server import EngineServer
from tests.conftest import ROOT, EchoApp, free_port

T = PacketType
TIMEOUT = 10.0  # generous: a noisy 2-core machine must not fail these

UNSUPPORTED = {"code": 5, "message": "Unsupported protocol version"}
TRANSPORT_UNKNOWN = {"code": 0, "message": "Transport unknown"}
UNKNOWN_SID = {"code": 1, "message": "Session ID unknown"}
BAD_HANDSHAKE_METHOD = {"code": 2, "message": "Bad handshake method"}


# -- helpers ------------------------------------------------------------------------------


class Http:
    """Thin bounded wrappers around AsyncHTTPClient that never raise on an HTTP error status."""

    def __init__(self, client: tornado.httpclient.AsyncHTTPClient) -> None:
        self.client = client

    async def fetch(self, url: str, method: str = "GET", **kwargs: Any) -> HTTPResponse:
        kwargs.setdefault("request_timeout", TIMEOUT)
        if method in ("POST", "PUT", "PATCH"):
            kwargs.setdefault("body", b"")
        return await asyncio.wait_for(
            self.client.fetch(url, method=method, raise_error=False, **kwargs), TIMEOUT + 5
        )

    async def get(self, url: str, **kwargs: Any) -> HTTPResponse:
        return await self.fetch(url, **kwargs)

    async def post(self, url: str, body: str | bytes, **kwargs: Any) -> HTTPResponse:
        headers = kwargs.pop("headers", {"Content-Type": "text/plain;charset=UTF-8"})
        return await self.fetch(url, "POST", body=body, headers=headers, **kwargs)


@pytest.fixture
def http(http_client: tornado.httpclient.AsyncHTTPClient) -> Http:
    return Http(http_client)


@pytest.fixture
async def app(eio_echo: Any) -> EchoApp:
    """The echo server with the default heartbeat (25 s: no ping gets in the way)."""
    return await eio_echo()


def error_body(response: HTTPResponse) -> dict[str, Any]:
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
    return json.loads(response.body)


def packets(response: HTTPResponse) -> list[Packet]:
    assert response.code == 200, (response.code, response.body)
    return decode_payload(response.body)


async def handshake(http: Http, app: EchoApp, **headers: str) -> tuple[str, dict[str, Any]]:
    """Open a polling session; return its sid and the open packet's data."""
    response = await http.get(app.url(transport="polling"), headers=headers)
    [open_packet] = packets(response)
    assert open_packet.type is T.OPEN
    data = json.loads(open_packet.data)
    return data["sid"], data


async def until(predicate: Any, timeout: float = TIMEOUT) -> None:
    """Wait (bounded) until ``predicate()`` is true."""

    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


async def recv(ws: tornado.websocket.WebSocketClientConnection) -> str | bytes | None:
    return await asyncio.wait_for(ws.read_message(), TIMEOUT)


async def start_get(http: Http, app: EchoApp, sid: str) -> asyncio.Task[HTTPResponse]:
    """Start a long-poll GET and wait until the server holds it."""
    task = asyncio.ensure_future(http.get(app.url(transport="polling", sid=sid)))
    await until(lambda: app.sockets[sid].get_waiter is not None or task.done())
    return task


async def upgrade(app: EchoApp, http: Http, ws_connect: Any, sid: str) -> Any:
    """Upgrade session ``sid`` to WebSocket by hand; return the WebSocket."""
    pending = await start_get(http, app, sid)
    ws = await ws_connect(app.ws_url(sid=sid))
    await ws.write_message("2probe")
    assert await recv(ws) == "3probe"
    assert packets(await pending) == [Packet(T.NOOP)]
    await ws.write_message("5")
    await until(lambda: app.sockets[sid].transport == "websocket")
    return ws


# -- handshake and echo -------------------------------------------------------------------


async def test_polling_handshake(http: Http, app: EchoApp) -> None:
    response = await http.get(app.url(transport="polling"))
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    body = response.body.decode()
    assert body.startswith("0{")
    data = json.loads(body[1:])
    assert list(data) == ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]
    assert data["upgrades"] == ["websocket"]
    assert (data["pingInterval"], data["pingTimeout"], data["maxPayload"]) == (
        25000,
        20000,
        1000000,
    )
    assert data["sid"] in app.engine.sessions


async def test_handshake_sids_are_unique(http: Http, app: EchoApp) -> None:
    sids = {(await handshake(http, app))[0] for _ in range(5)}
    assert len(sids) == 5


async def test_polling_echo_text_and_binary(http: Http, app: EchoApp) -> None:
    sid, _ = await handshake(http, app)
    response = await http.post(app.url(transport="polling", sid=sid), "4hello\x1ebAQIDBA==")
    assert (response.code, response.body) == (200, b"ok")
    assert response.headers["Content-Type"].startswith("text/html")
    response = await http.get(app.url(transport="polling", sid=sid))
    assert response.body == b"4hello\x1ebAQIDBA=="
    assert app.received[sid] == ["hello", b"\x01\x02\x03\x04"]


async def test_long_poll_waits_for_data(http: Http, app: EchoApp) -> None:
    sid, _ = await handshake(http, app)
    pending = await start_get(http, app, sid)
    assert not pending.done()
    app.sockets[sid].send("late")
    assert packets(await pending) == [Packet(T.MESSAGE, "late")]


async def test_many_packets_in_one_post(http: Http, app: EchoApp) -> None:
    # the official client sends hundreds of packets in one POST when it has them buffered
    sid, _ = await handshake(http, app)
    body = "\x1e".join(f"4m{i}" for i in range(500))
    assert (await http.post(app.url(transport="polling", sid=sid), body)).code == 200
    echoed: list[str | bytes] = []
    while len(echoed) < 500:  # the echoes come back 16 packets per GET (packets_per_poll)
        answer = packets(await http.get(app.url(transport="polling", sid=sid)))
        assert len(answer) <= 16
        echoed += [p.data for p in answer]
    assert echoed == [f"m{i}" for i in range(500)]


async def test_websocket_only_session(ws_connect: Any, app: EchoApp) -> None:
    ws = await ws_connect(app.ws_url())
    first = await recv(ws)
    assert isinstance(first, str) and first.startswith("0")
    data = json.loads(first[1:])
    assert list(data) == ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]
    assert data["upgrades"] == []
    await ws.write_message("4hello")
    assert await recv(ws) == "4hello"
    await ws.write_message(b"\x01\x02\x03\x04", binary=True)
    assert await recv(ws) == b"\x01\x02\x03\x04"
    await ws.write_message("1")  # client close
    assert await app.wait_closed(data["sid"]) == "transport close"


async def test_client_close_over_polling(http: Http, app: EchoApp) -> None:
    sid, _ = await handshake(http, app)
    pending = await start_get(http, app, sid)
    assert (await http.post(app.url(transport="polling", sid=sid), "1")).code == 200
    assert packets(await pending) == [Packet(T.NOOP)]
    assert await app.wait_closed(sid) == "transport close"
    response = await http.get(app.url(transport="polling", sid=sid))
    assert (response.code, error_body(response)) == (400, UNKNOWN_SID)


async def test_messages_before_a_close_packet_in_one_post_are_delivered(
    http: Http, app: EchoApp
) -> None:
    # a payload is processed packet by packet (engine.io lib/socket.ts onPacket): the messages are
    # emitted, then the close packet closes the session
    sid, _ = await handshake(http, app)
    url = app.url(transport="polling", sid=sid)
    assert (await http.post(url, "4one\x1ebAQIDBA==\x1e4bye\x1e1")).code == 200
    assert await app.wait_closed(sid) == "transport close"
    assert app.received[sid] == ["one", b"\x01\x02\x03\x04", "bye"]


async def test_server_close_over_polling(http: Http, app: EchoApp) -> None:
    sid, _ = await handshake(http, app)
    pending = await start_get(http, app, sid)
    app.sockets[sid].close()
    assert packets(await pending) == [Packet(T.CLOSE)]
    response = await http.get(app.url(transport="polling", sid=sid))
    assert (response.code, error_body(response)) == (400, UNKNOWN_SID)


# -- the numbered HTTP errors -------------------------------------------------------------


@pytest.mark.parametrize("eio", ["3", None, "abc", "5", ""])
async def test_bad_eio_version(http: Http, app: EchoApp, eio: str | None) -> None:
    url = app.live.url(app.path, EIO=eio, transport="polling")
    response = await http.get(url)
    assert (response.code, error_body(response)) == (400, UNSUPPORTED)


@pytest.mark.parametrize("transport", ["foo", None, "", "flashsocket"])
async def test_bad_transport(http: Http, app: EchoApp, transport: str | None) -> None:
    response = await http.get(app.url(transport=transport))
    assert (response.code, error_body(response)) == (400, TRANSPORT_UNKNOWN)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_unknown_sid(http: Http, app: EchoApp, method: str) -> None:
    url = app.url(transport="polling", sid="no-such-session")
    response = await (http.get(url) if method == "GET" else http.post(url, "4x"))
    assert (response.code, error_body(response)) == (400, UNKNOWN_SID)


async def test_unknown_sid_websocket_is_refused(ws_connect: Any, app: EchoApp) -> None:
    with pytest.raises(HTTPClientError) as info:
        await ws_connect(app.ws_url(sid="no-such-session"))
    assert info.value.code == 400


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_handshake_with_another_method_than_get(
    http: Http, app: EchoApp, method: str
) -> None:
    response = await http.fetch(app.url(transport="polling"), method, body=b"4x")
    assert (response.code, error_body(response)) == (400, BAD_HANDSHAKE_METHOD)
    assert app.engine.sessions == {}


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_polling_on_a_websocket_session(
    http: Http, ws_connect: Any, app: EchoApp, method: str
) -> None:
    ws = await ws_connect(app.ws_url())
    sid = json.loads((await recv(ws))[1:])["sid"]
    url = app.url(transport="polling", sid=sid)
    response = await (http.get(url) if method == "GET" else http.post(url, "4x"))
    assert response.code == 400
    assert error_body(response)["code"] == 3
    # the WebSocket session is unharmed
    await ws.write_message("4still here")
    assert await recv(ws) == "4still here"


async def test_websocket_request_without_upgrade_header(http: Http, app: EchoApp) -> None:
    response = await http.get(app.url(transport="websocket"))
    assert response.code == 400
    assert error_body(response)["code"] == 3
    assert app.engine.sessions == {}


async def test_allow_request_refuses_with_403(http: Http, ws_connect: Any, eio_echo: Any) -> None:
    seen: list[str] = []

    def allow(request: Any) -> bool:
        seen.append(request.uri)
        return False

    app = await eio_echo(allow_request=allow)
    response = await http.get(app.url(transport="polling"))
    assert (response.code, error_body(response)) == (403, {"code": 4, "message": "Forbidden"})
    with pytest.raises(HTTPClientError) as info:
        await ws_connect(app.ws_url())
    assert info.value.code == 403
    assert len(seen) == 2 and app.engine.sessions == {}


async def test_allow_request_may_be_async(http: Http, eio_echo: Any) -> None:
    async def allow(request: Any) -> bool:
        await asyncio.sleep(0)
        return request.headers.get("X-Token") == "t"

    app = await eio_echo(allow_request=allow)
    assert (await http.get(app.url(transport="polling"))).code == 403
    await handshake(http, app, **{"X-Token": "t"})


async def test_allow_request_is_asked_only_at_the_handshake(http: Http, eio_echo: Any) -> None:
    calls: list[str] = []
    app = await eio_echo(allow_request=lambda request: calls.append(request.method) or True)
    sid, _ = await handshake(http, app)
    await http.post(app.url(transport="polling", sid=sid), "4x")
    assert calls == ["GET"]


# -- bad bodies ---------------------------------------------------------------------------


async def test_post_over_max_payload_is_413_and_the_session_lives_on(
    http: Http, eio_echo: Any
) -> None:
    app = await eio_echo(max_payload=1000)
    sid, data = await handshake(http, app)
    assert data["maxPayload"] == 1000
    url = app.url(transport="polling", sid=sid)
    response = await http.post(url, "4" + "x" * 1000)  # 1001 bytes
    assert response.code == 413
    assert app.received[sid] == []  # not processed
    assert (await http.post(url, "4" + "y" * 999)).code == 200  # exactly maxPayload: fine
    assert packets(await http.get(url)) == [Packet(T.MESSAGE, "y" * 999)]
    assert sid not in app.closed


async def test_octet_stream_post_is_refused_and_closes_the_session(
    http: Http, app: EchoApp
) -> None:
    sid, _ = await handshake(http, app)
    url = app.url(transport="polling", sid=sid)
    response = await http.post(url, b"4hello", headers={"Content-Type": "application/octet-stream"})
    assert response.code == 400
    assert error_body(response)["code"] == 3
    assert app.received[sid] == []
    await app.wait_closed(sid)
    await assert_session_gone(http, url)


async def assert_session_gone(http: Http, url: str) -> None:
    """The next GET gets 400 Session ID unknown: a session closed for a fault (parse error, ping
    timeout) is forgotten at once, as in engine.io (the official test-suite checks both)."""
    response = await http.get(url)
    assert (response.code, error_body(response)) == (400, UNKNOWN_SID)


@pytest.mark.parametrize("body", [b"7hello", b"x", b"4a\x1e", b"bAQID!!", b"4\xff\xfe", b""])
async def test_malformed_post_closes_only_that_session(
    http: Http, app: EchoApp, body: bytes
) -> None:
    other, _ = await handshake(http, app)
    sid, _ = await handshake(http, app)
    url = app.url(transport="polling", sid=sid)
    response = await http.post(url, body)
    assert response.code == 400
    assert error_body(response)["code"] == 3
    assert await app.wait_closed(sid) == "parse error"
    await assert_session_gone(http, url)
    # the session opened before is not affected
    other_url = app.url(transport="polling", sid=other)
    assert (await http.post(other_url, "4still here")).code == 200
    assert packets(await http.get(other_url)) == [Packet(T.MESSAGE, "still here")]
    assert other not in app.closed


async def test_second_concurrent_get_is_refused_and_closes_the_session(
    http: Http, app: EchoApp
) -> None:
    sid, _ = await handshake(http, app)
    url = app.url(transport="polling", sid=sid)
    first = await start_get(http, app, sid)
    second = await http.get(url)
    assert second.code == 400
    assert error_body(second)["code"] == 3
    assert packets(await first) == [Packet(T.CLOSE)]
    assert sid in app.closed
    response = await http.get(url)
    assert (response.code, error_body(response)) == (400, UNKNOWN_SID)


async def test_client_that_goes_away_during_a_long_poll_loses_nothing(
    http: Http, app: EchoApp
) -> None:
    sid, _ = await handshake(http, app)
    url = app.url(transport="polling", sid=sid)
    # a GET whose client gives up (request_timeout) before anything is sent
    with pytest.raises(HTTPClientError) as info:
        await http.get(url, request_timeout=0.5)
    assert info.value.code == 599
    await until(lambda: app.sockets[sid].get_waiter is None)
    app.sockets[sid].send("kept")
    assert packets(await http.get(url)) == [Packet(T.MESSAGE, "kept")]


# -- heartbeat ----------------------------------------------------------------------------


async def test_ping_timeout_over_http(http: Http, eio_echo: Any) -> None:
    app = await eio_echo(ping_interval=0.3, ping_timeout=0.2)
    sid, data = await handshake(http, app)
    assert (data["pingInterval"], data["pingTimeout"]) == (300, 200)
    url = app.url(transport="polling", sid=sid)
    assert packets(await http.get(url)) == [Packet(T.PING)]  # the server pings first (v4)
    # never pong: the session is closed
    assert await app.wait_closed(sid) == "ping timeout"
    await assert_session_gone(http, url)


async def test_pongs_keep_a_polling_session_alive(http: Http, eio_echo: Any) -> None:
    app = await eio_echo(ping_interval=0.3, ping_timeout=2.0)
    sid, _ = await handshake(http, app)
    url = app.url(transport="polling", sid=sid)
    for _ in range(4):  # more than three ping intervals
        assert packets(await http.get(url)) == [Packet(T.PING)]
        assert (await http.post(url, "3")).code == 200
    assert sid not in app.closed
    assert (await http.post(url, "4alive")).code == 200
    assert Packet(T.MESSAGE, "alive") in packets(await http.get(url))


async def test_ping_timeout_over_websocket(ws_connect: Any, eio_echo: Any) -> None:
    app = await eio_echo(ping_interval=0.3, ping_timeout=0.2)
    ws = await ws_connect(app.ws_url())
    sid = json.loads((await recv(ws))[1:])["sid"]
    assert await recv(ws) == "2"
    assert await recv(ws) == "1"  # no pong: close packet, then the WebSocket closes
    assert await recv(ws) is None
    assert app.closed[sid] == "ping timeout"
    assert sid not in app.engine.sessions


# -- CORS and cookie ----------------------------------------------------------------------


async def test_cors_any_origin(http: Http, eio_echo: Any) -> None:
    app = await eio_echo(cors_origins="*")
    response = await http.get(app.url(transport="polling"), headers={"Origin": "http://a.example"})
    assert response.code == 200
    assert response.headers.get("Access-Control-Allow-Origin") in ("*", "http://a.example")
    sid = json.loads(response.body[1:])["sid"]
    response = await http.post(
        app.url(transport="polling", sid=sid), "4x", headers={"Origin": "http://b.example"}
    )
    assert response.headers.get("Access-Control-Allow-Origin") in ("*", "http://b.example")


async def test_cors_allowlist(http: Http, eio_echo: Any) -> None:
    good, evil = "http://good.example", "http://evil.example"
    app = await eio_echo(cors_origins=[good])
    allowed = await http.get(app.url(transport="polling"), headers={"Origin": good})
    assert allowed.code == 200
    assert allowed.headers.get("Access-Control-Allow-Origin") == good
    assert "Origin" in allowed.headers.get("Vary", "")
    other = await http.get(app.url(transport="polling"), headers={"Origin": evil})
    assert "Access-Control-Allow-Origin" not in other.headers
    # errors carry the CORS headers too, so that a browser can read them
    refused = await http.get(app.url(transport="foo"), headers={"Origin": good})
    assert refused.code == 400
    assert refused.headers.get("Access-Control-Allow-Origin") == good


def test_cors_wildcard_with_credentials_is_refused_at_start() -> None:
    """Browsers refuse ``Access-Control-Allow-Origin: *`` on a request with credentials: the
    server says so when it is built, rather than send headers no browser accepts."""
    with pytest.raises(ValueError, match="list the origins"):
        EngineServer(cors_origins="*", cors_credentials=True)


async def test_cors_credentials(http: Http, eio_echo: Any) -> None:
    app = await eio_echo(cors_origins=["http://good.example"], cors_credentials=True)
    response = await http.get(
        app.url(transport="polling"), headers={"Origin": "http://good.example"}
    )
    assert response.headers.get("Access-Control-Allow-Credentials") == "true"


PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type",
}


async def test_cors_preflight(http: Http, eio_echo: Any) -> None:
    good = "http://good.example"
    app = await eio_echo(cors_origins=[good])
    response = await http.fetch(
        app.url(transport="polling"), "OPTIONS", headers={"Origin": good, **PREFLIGHT}
    )
    assert response.code in (200, 204)
    assert response.headers.get("Access-Control-Allow-Origin") == good
    methods = {
        m.strip() for m in response.headers.get("Access-Control-Allow-Methods", "").split(",")
    }
    assert {"GET", "POST"} <= methods
    assert "content-type" in response.headers.get("Access-Control-Allow-Headers", "").lower()
    response = await http.fetch(
        app.url(transport="polling"),
        "OPTIONS",
        headers={"Origin": "http://evil.example", **PREFLIGHT},
    )
    assert "Access-Control-Allow-Origin" not in response.headers
    assert app.engine.sessions == {}  # a preflight opens no session


async def test_cors_preflight_any_origin(http: Http, eio_echo: Any) -> None:
    app = await eio_echo(cors_origins="*")
    response = await http.fetch(
        app.url(transport="polling"), "OPTIONS", headers={"Origin": "http://x.example", **PREFLIGHT}
    )
    assert response.code in (200, 204)
    assert response.headers.get("Access-Control-Allow-Origin") in ("*", "http://x.example")


async def test_no_cors_headers_by_default(http: Http, app: EchoApp) -> None:
    response = await http.get(app.url(transport="polling"), headers={"Origin": "http://a.example"})
    assert response.code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_cookie_on_handshake(http: Http, eio_echo: Any) -> None:
    app = await eio_echo(cookie="io")
    response = await http.get(app.url(transport="polling"))
    sid = json.loads(response.body[1:])["sid"]
    cookie = response.headers.get("Set-Cookie", "")
    assert cookie.startswith(f"io={sid}")
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert "path=/" in attributes and "httponly" in attributes
    assert "samesite=lax" in attributes  # as engine.io's default cookie
    # only the handshake sets it
    response = await http.post(app.url(transport="polling", sid=sid), "4x")
    assert "Set-Cookie" not in response.headers


async def test_no_cookie_by_default(http: Http, app: EchoApp) -> None:
    response = await http.get(app.url(transport="polling"))
    assert "Set-Cookie" not in response.headers


# -- upgrade ------------------------------------------------------------------------------


async def test_upgrade_by_hand(http: Http, ws_connect: Any, app: EchoApp) -> None:
    sid, _ = await handshake(http, app)
    url = app.url(transport="polling", sid=sid)
    pending = await start_get(http, app, sid)
    ws = await ws_connect(app.ws_url(sid=sid))
    await ws.write_message("2probe")
    assert await recv(ws) == "3probe"
    assert packets(await pending) == [Packet(T.NOOP)]  # the GET pending at the probe: a noop
    # polling still carries data until the upgrade packet
    assert (await http.post(url, "4via polling")).code == 200
    assert packets(await http.get(url)) == [Packet(T.MESSAGE, "via polling")]
    await ws.write_message("5")
    await ws.write_message("4hello")
    assert await recv(ws) == "4hello"
    await ws.write_message(b"\x01\x02\x03\x04", binary=True)
    assert await recv(ws) == b"\x01\x02\x03\x04"
    assert app.received[sid] == ["via polling", "hello", b"\x01\x02\x03\x04"]
    # polling is over for this session
    response = await http.get(url)
    assert response.code == 400 and error_body(response)["code"] == 3


async def test_get_after_probe_is_answered_at_once(
    http: Http, ws_connect: Any, app: EchoApp
) -> None:
    sid, _ = await handshake(http, app)
    ws = await ws_connect(app.ws_url(sid=sid))
    await ws.write_message("2probe")
    assert await recv(ws) == "3probe"
    # no GET was pending at the probe: one issued before the upgrade packet is not held
    assert packets(await http.get(app.url(transport="polling", sid=sid))) == [Packet(T.NOOP)]


@pytest.mark.parametrize("split", [0, 1, 25, 50])
async def test_messages_sent_during_the_upgrade_arrive_once_in_order(
    http: Http, ws_connect: Any, eio_echo: Any, split: int
) -> None:
    app = await eio_echo(echo=False)
    sid, _ = await handshake(http, app)
    url = app.url(transport="polling", sid=sid)
    socket = app.sockets[sid]
    pending = await start_get(http, app, sid)
    ws = await ws_connect(app.ws_url(sid=sid))
    await ws.write_message("2probe")
    assert await recv(ws) == "3probe"
    seen = [p.data for p in packets(await pending)]  # a noop, or messages
    for i in range(split):
        socket.send(f"m{i}")
    seen += [p.data for p in packets(await http.get(url)) if p.type is T.MESSAGE]
    for i in range(split, 50):
        socket.send(f"m{i}")
    await ws.write_message("5")
    await until(lambda: socket.transport == "websocket")
    socket.send("after")  # a marker: everything before it has been read from the WebSocket
    while True:
        frame = await recv(ws)
        assert frame is not None, "WebSocket closed early"
        if frame == "4after":
            break
        assert isinstance(frame, str) and frame.startswith("4"), frame
        seen.append(frame[1:])
    seen = [data for data in seen if data != ""]  # the noop's empty data
    assert seen == [f"m{i}" for i in range(50)]


async def test_second_websocket_on_an_upgraded_session_is_closed(
    http: Http, ws_connect: Any, app: EchoApp
) -> None:
    """As engine.io (``onWebSocket``: "transport had already been upgraded"): the second
    WebSocket is accepted at the HTTP level, then closed at once, without data; the first goes on.
    (The official test-suite's "ignores WebSocket connection with same sid after upgrade".)"""
    sid, _ = await handshake(http, app)
    ws = await upgrade(app, http, ws_connect, sid)
    second = await ws_connect(app.ws_url(sid=sid))
    assert await recv(second) is None
    await ws.write_message("4first still works")
    assert await recv(ws) == "4first still works"


async def test_second_websocket_while_probing_is_closed(
    http: Http, ws_connect: Any, app: EchoApp
) -> None:
    sid, _ = await handshake(http, app)
    probe = await ws_connect(app.ws_url(sid=sid))
    await probe.write_message("2probe")
    assert await recv(probe) == "3probe"
    second = await ws_connect(app.ws_url(sid=sid))
    assert await recv(second) is None  # closed at once, without data
    await probe.write_message("5")
    await probe.write_message("4ok")
    assert await recv(probe) == "4ok"


async def test_bad_probe_closes_the_websocket_and_polling_goes_on(
    http: Http, ws_connect: Any, app: EchoApp
) -> None:
    sid, _ = await handshake(http, app)
    ws = await ws_connect(app.ws_url(sid=sid))
    await ws.write_message("4not a probe")
    assert await recv(ws) is None
    url = app.url(transport="polling", sid=sid)
    assert (await http.post(url, "4polling works")).code == 200
    assert packets(await http.get(url)) == [Packet(T.MESSAGE, "polling works")]
    # and the upgrade may be tried again
    await upgrade(app, http, ws_connect, sid)


async def test_probe_websocket_that_breaks_leaves_polling_working(
    http: Http, ws_connect: Any, app: EchoApp
) -> None:
    sid, _ = await handshake(http, app)
    ws = await ws_connect(app.ws_url(sid=sid))
    await ws.write_message("2probe")
    assert await recv(ws) == "3probe"
    ws.close()
    await until(lambda: app.sockets[sid].probe is None)
    url = app.url(transport="polling", sid=sid)
    pending = await start_get(http, app, sid)  # held again: not upgrading any more
    assert (await http.post(url, "4back to polling")).code == 200
    assert packets(await pending) == [Packet(T.MESSAGE, "back to polling")]


async def test_polling_goes_on_after_an_upgrade_timeout(
    http: Http, ws_connect: Any, eio_echo: Any
) -> None:
    app = await eio_echo(upgrade_timeout=0.3)
    sid, _ = await handshake(http, app)
    ws = await ws_connect(app.ws_url(sid=sid))
    await ws.write_message("2probe")
    assert await recv(ws) == "3probe"
    # no upgrade packet: after upgradeTimeout the session is plain polling again, so a GET is held
    await until(lambda: app.sockets[sid].session.state.name == "POLLING")
    pending = await start_get(http, app, sid)
    await asyncio.sleep(0.05)
    assert not pending.done()
    app.sockets[sid].send("still polling")
    assert packets(await pending) == [Packet(T.MESSAGE, "still polling")]
    assert sid not in app.closed


async def test_upgrade_timeout_closes_the_probing_websocket(
    http: Http, ws_connect: Any, eio_echo: Any
) -> None:
    # engine.io lib/socket.ts maybeUpgrade: on upgradeTimeout "client did not complete upgrade -
    # closing transport" (transport.close()). Left open, the stale probe also blocks any new
    # upgrade attempt of the session (a second WebSocket is refused while one is probing).
    app = await eio_echo(upgrade_timeout=0.3)
    sid, _ = await handshake(http, app)
    ws = await ws_connect(app.ws_url(sid=sid))
    await ws.write_message("2probe")
    assert await recv(ws) == "3probe"
    try:
        frame = await asyncio.wait_for(ws.read_message(), 5.0)
    except TimeoutError:
        pytest.fail("the probing WebSocket is still open 5 s after upgradeTimeout (0.3 s)")
    assert frame is None
    # and a new upgrade of the same session can succeed
    await upgrade(app, http, ws_connect, sid)


async def test_websocket_message_over_max_payload_closes_it(ws_connect: Any, eio_echo: Any) -> None:
    app = await eio_echo(max_payload=1000)
    ws = await ws_connect(app.ws_url())
    sid = json.loads((await recv(ws))[1:])["sid"]
    await ws.write_message("4" + "x" * 999)  # exactly maxPayload: echoed
    assert await recv(ws) == "4" + "x" * 999
    await ws.write_message("4" + "x" * 5000)
    assert await recv(ws) is None
    assert ws.close_code == 1009  # "message too big"
    assert await app.wait_closed(sid) == "transport close"
    assert app.received[sid] == ["x" * 999]


async def test_upgraded_websocket_message_over_max_payload_closes_it(
    http: Http, ws_connect: Any, eio_echo: Any
) -> None:
    app = await eio_echo(max_payload=1000)
    sid, _ = await handshake(http, app)
    ws = await upgrade(app, http, ws_connect, sid)
    await ws.write_message(b"\x00" * 2000, binary=True)
    assert await recv(ws) is None
    await app.wait_closed(sid)


async def test_malformed_websocket_frame_closes_the_session(ws_connect: Any, app: EchoApp) -> None:
    ws = await ws_connect(app.ws_url())
    sid = json.loads((await recv(ws))[1:])["sid"]
    await ws.write_message("9nonsense")
    while (frame := await recv(ws)) is not None:
        assert frame == "1"  # at most a close packet before the WebSocket closes
    assert await app.wait_closed(sid) == "parse error"  # as engine.io, not "transport close"


async def test_close_all_answers_pending_gets_and_closes_websockets(
    http: Http, ws_connect: Any, app: EchoApp
) -> None:
    sid, _ = await handshake(http, app)
    pending = await start_get(http, app, sid)
    ws = await ws_connect(app.ws_url())
    await recv(ws)
    app.engine.close_all()
    assert packets(await pending) == [Packet(T.CLOSE)]
    frames = []
    while (frame := await recv(ws)) is not None:
        frames.append(frame)
    assert frames in ([], ["1"])
    assert app.engine.sessions == {}


# -- the conformance app in a subprocess --------------------------------------------------


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_conformance_app_subprocess(http: Http, ws_connect: Any, loop: str) -> None:
    """The conformance app as the test-suites start it; ``--uvloop`` runs it on uvloop's loop."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sio_teach.examples.conformance",
        "--port",
        str(port),
        *(["--uvloop"] if loop == "uvloop" else []),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}/engine.io/?EIO=4&transport=polling"
    try:
        # ready when the handshake answers (the spec allows 30 s)
        async def ready() -> HTTPResponse:
            while True:
                assert proc.returncode is None, (await proc.stderr.read()).decode()
                try:
                    response = await http.get(base, request_timeout=2.0)
                except OSError:  # not listening yet (connection refused)
                    response = None
                if response is not None and response.code == 200:
                    return response
                await asyncio.sleep(0.1)

        response = await asyncio.wait_for(ready(), 30.0)
        data = json.loads(response.body[1:])
        assert (data["pingInterval"], data["pingTimeout"], data["maxPayload"]) == (
            300,
            200,
            1000000,
        )
        assert data["upgrades"] == ["websocket"]
        assert response.headers.get("Access-Control-Allow-Origin") == "*"
        url = f"{base}&sid={data['sid']}"
        assert (await http.post(url, "4hello\x1ebAQIDBA==")).body == b"ok"
        echoed = [p for p in decode_payload((await http.get(url)).body) if p.type is T.MESSAGE]
        assert echoed == [Packet(T.MESSAGE, "hello"), Packet(T.MESSAGE, b"\x01\x02\x03\x04")]
        ws = await ws_connect(f"ws://127.0.0.1:{port}/engine.io/?EIO=4&transport=websocket")
        assert json.loads((await recv(ws))[1:])["upgrades"] == []
        await ws.write_message("4ws hello")
        assert await recv(ws) == "4ws hello"
        maps = pathlib.Path(f"/proc/{proc.pid}/maps")
        if maps.exists():  # which event loop serves: uvloop's extension is loaded, or not
            assert ("uvloop" in maps.read_text()) == (loop == "uvloop")
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 5.0)
        assert proc.returncode == 0, (await proc.stderr.read()).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# -- options, session lifetime ------------------------------------------------------------


async def test_polling_only_server_advertises_no_upgrade(
    http: Http, ws_connect: Any, eio_echo: Any
) -> None:
    # engine.io lib/server.ts `upgrades(transport)`: only transports the server accepts are offered
    app = await eio_echo(transports=("polling",))
    _, data = await handshake(http, app)
    assert data["upgrades"] == []
    with pytest.raises(HTTPClientError) as info:
        await ws_connect(app.ws_url())
    assert info.value.code == 400


async def test_websocket_only_server_refuses_polling(
    http: Http, ws_connect: Any, eio_echo: Any
) -> None:
    app = await eio_echo(transports=("websocket",))
    response = await http.get(app.url(transport="polling"))
    assert (response.code, error_body(response)) == (400, TRANSPORT_UNKNOWN)
    ws = await ws_connect(app.ws_url())
    assert json.loads((await recv(ws))[1:])["upgrades"] == []


async def test_default_max_payload_is_one_megabyte(http: Http, app: EchoApp) -> None:
    sid, _ = await handshake(http, app)
    url = app.url(transport="polling", sid=sid)
    assert (await http.post(url, "4" + "x" * 1_000_000)).code == 413
    assert (await http.post(url, "4" + "y" * 999_999)).code == 200
    assert packets(await http.get(url)) == [Packet(T.MESSAGE, "y" * 999_999)]


async def test_closed_session_is_forgotten_without_a_last_get(http: Http, eio_echo: Any) -> None:
    app = await eio_echo(ping_interval=25.0, ping_timeout=0.2)
    sid, _ = await handshake(http, app)
    app.sockets[sid].close()
    await until(lambda: sid not in app.engine.sessions, 5.0)  # kept pingTimeout at most
    response = await http.get(app.url(transport="polling", sid=sid))
    assert (response.code, error_body(response)) == (400, UNKNOWN_SID)


async def test_abandoned_polling_client_is_closed_and_forgotten(http: Http, eio_echo: Any) -> None:
    app = await eio_echo(ping_interval=0.3, ping_timeout=0.2)
    sid, _ = await handshake(http, app)  # and then nothing: no GET, no pong
    assert await app.wait_closed(sid) == "ping timeout"
    assert sid not in app.engine.sessions  # gone at once: nothing is owed to it
    response = await http.get(app.url(transport="polling", sid=sid))
    assert (response.code, error_body(response)) == (400, UNKNOWN_SID)


async def test_websocket_client_disconnect_closes_the_session(
    ws_connect: Any, app: EchoApp
) -> None:
    ws = await ws_connect(app.ws_url())
    sid = json.loads((await recv(ws))[1:])["sid"]
    ws.close()
    assert await app.wait_closed(sid) == "transport close"
    await until(lambda: sid not in app.engine.sessions)


async def test_upgraded_websocket_disconnect_closes_the_session(
    http: Http, ws_connect: Any, app: EchoApp
) -> None:
    sid, _ = await handshake(http, app)
    ws = await upgrade(app, http, ws_connect, sid)
    ws.close()
    assert await app.wait_closed(sid) == "transport close"
    await until(lambda: sid not in app.engine.sessions)


async def test_websocket_origin_follows_the_cors_allowlist(ws_connect: Any, eio_echo: Any) -> None:
    good, evil = "http://good.example", "http://evil.example"
    app = await eio_echo(cors_origins=[good])
    request = tornado.httpclient.HTTPRequest(app.ws_url(), headers={"Origin": good})
    ws = await ws_connect(request)
    assert (await recv(ws))[0] == "0"
    with pytest.raises(HTTPClientError) as info:
        await ws_connect(tornado.httpclient.HTTPRequest(app.ws_url(), headers={"Origin": evil}))
    assert info.value.code == 403


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_application_may_send_from_on_connect(
    http: Http, ws_connect: Any, serve: Any, transport: str
) -> None:
    engine = EngineServer(lambda socket: socket.send("welcome"))
    live = await serve(engine.routes("/engine.io/"), engines=[engine])
    if transport == "polling":
        url = live.url("/engine.io/", EIO=4, transport="polling")
        first = packets(await http.get(url))
        assert first[0].type is T.OPEN  # the open packet always comes first
        sid = json.loads(first[0].data)["sid"]
        rest = first[1:] or packets(await http.get(f"{url}&sid={sid}"))
        assert rest == [Packet(T.MESSAGE, "welcome")]
    else:
        ws = await ws_connect(live.ws_url("/engine.io/", EIO=4, transport="websocket"))
        assert (await recv(ws))[0] == "0"
        assert await recv(ws) == "4welcome"


async def test_a_refused_websocket_does_not_release_the_held_get(
    http: Http, ws_connect: Any, app: EchoApp
) -> None:
    """A WebSocket refused for a polling session (here by the block-WebSocket fault knob) is not
    the session's: its connection closing must not answer the GET the session holds."""
    sid, _ = await handshake(http, app)
    pending = await start_get(http, app, sid)
    app.engine.block_websocket = True
    with pytest.raises(HTTPClientError) as info:
        await ws_connect(app.ws_url(sid=sid))
    assert info.value.code == 400
    await asyncio.sleep(0.05)  # the refused connection has closed by now
    assert not pending.done()
    app.sockets[sid].send("still held")
    assert packets(await pending) == [Packet(T.MESSAGE, "still held")]


async def test_a_get_after_the_pong_deadline_finds_the_session_closed(
    http: Http, eio_echo: Any
) -> None:
    """The official test-suite's "closes the session upon ping timeout": a session that never
    polls, asked again after pingInterval + pingTimeout, is gone (400) — even when the server's
    timer has not swept it yet (a busy loop): the request runs the session's due deadline first."""
    app = await eio_echo(ping_interval=0.3, ping_timeout=0.2)
    sid, _ = await handshake(http, app)
    await until(lambda: app.sockets[sid].session.polling_ready())  # its ping is queued
    late = app.engine.now() + 0.2  # the pong deadline, which no timer has reached yet
    app.engine.now = lambda: late  # type: ignore[method-assign]  # the request arrives then
    await assert_session_gone(http, app.url(transport="polling", sid=sid))
    assert app.closed[sid] == "ping timeout"
