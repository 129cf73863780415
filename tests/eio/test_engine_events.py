"""The engine's own events: ``connection_error`` for every refused request, ``initial_headers``
and ``headers`` to add response headers (engine.io ``lib/server.ts``)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
import tornado.httpclient

from sio_teach.server import Server
from sio_teach.transports.eio_client import EngineClient
from sio_teach.transports.engine_events import RequestRefused
from tests.conftest import LiveServer


def refusals(engine: Any) -> list[RequestRefused]:
    seen: list[RequestRefused] = []
    engine.on("connection_error", seen.append)
    return seen


async def fetch(client: tornado.httpclient.AsyncHTTPClient, url: str, **kw: Any) -> Any:
    return await client.fetch(url, raise_error=False, **kw)


async def test_connection_error_for_every_refusal(eio_echo, http_client) -> None:  # type: ignore[no-untyped-def]
    app = await eio_echo(allow_request=lambda request: "bad" not in request.uri, max_payload=100)
    seen = refusals(app.engine)
    base = app.live.url("/engine.io/")
    cases = [
        (f"{base}?EIO=4&transport=carrier-pigeon", {}, 0, {"transport": "carrier-pigeon"}),
        (f"{base}?EIO=4&transport=polling&sid=nope", {}, 1, {"sid": "nope"}),
        (f"{base}?EIO=4&transport=polling", {"method": "POST", "body": "x"}, 2, {"method": "POST"}),
        (f"{base}?EIO=4&transport=polling&bad=1", {}, 4, {}),
        (f"{base}?EIO=3&transport=polling", {}, 5, {"protocol": "3"}),
        (f"{base}?EIO=4&transport=websocket", {}, 3, {"name": "TRANSPORT_HANDSHAKE_ERROR"}),
    ]
    for url, kw, code, context in cases:
        response = await fetch(http_client, url, **kw)
        error = seen[-1]
        print(url, "->", response.code, error.code, error.message, error.context)
        assert json.loads(response.body)["code"] == code == error.code
        assert error.context == context
        assert error.req.uri == url[len(app.live.base_url) :]
    assert [e.message for e in seen] == [
        "Transport unknown",
        "Session ID unknown",
        "Bad handshake method",
        "Forbidden",
        "Unsupported protocol version",
        "Bad request",
    ]
    # a refusal of engine.io's code 3 with a detail: the detail is in the context
    response = await fetch(http_client, app.url(transport="polling"))
    sid = json.loads(response.body[1:])["sid"]
    big = {"method": "POST", "body": "4" + "x" * 200}
    await fetch(http_client, app.url(transport="polling", sid=sid), **big)
    assert (seen[-1].code, seen[-1].message) == (3, "Bad request")
    assert seen[-1].context == {
        "name": "PAYLOAD_TOO_LARGE",
        "length": 201,
        "message": "Payload too large",
    }


async def test_a_failing_listener_is_logged(eio_echo, http_client, caplog) -> None:  # type: ignore[no-untyped-def]
    app = await eio_echo()

    @app.engine.on("connection_error")
    def broken(error: RequestRefused) -> None:
        raise RuntimeError("listener bug")

    with caplog.at_level(logging.ERROR, "sio_teach.eio"):
        response = await fetch(http_client, app.url(transport="polling", sid="nope"))
    assert response.code == 400  # answered all the same
    assert any("connection_error listener failed" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="unknown engine event"):
        app.engine.on("connection", print)


def header_server() -> tuple[Server, list[tuple[str, str]]]:
    """A server whose listeners add ``Set-Cookie`` to the handshake and ``X-Seen`` to all."""
    sio = Server()
    calls: list[tuple[str, str]] = []

    @sio.engine.on("initial_headers")
    def initial(headers: dict, request: Any) -> None:
        calls.append(("initial_headers", request.method))
        headers["Set-Cookie"] = ["region=eu; Path=/", "team=blue; Path=/"]

    @sio.engine.on("headers")
    def every(headers: dict, request: Any) -> None:
        calls.append(("headers", request.method))
        headers["X-Seen"] = "yes"

    return sio, calls


async def test_headers_on_polling_answers(serve, http_client) -> None:  # type: ignore[no-untyped-def]
    sio, calls = header_server()
    live: LiveServer = await serve(sio.routes(), engines=[sio.engine])
    first = await http_client.fetch(live.url("/socket.io/", EIO=4, transport="polling"))
    sid = json.loads(first.body[1:])["sid"]
    assert first.headers.get_list("Set-Cookie") == ["region=eu; Path=/", "team=blue; Path=/"]
    assert first.headers["X-Seen"] == "yes"
    assert calls == [("initial_headers", "GET"), ("headers", "GET")]
    url = live.url("/socket.io/", EIO=4, transport="polling", sid=sid)
    post = await http_client.fetch(url, method="POST", body="40")
    get = await http_client.fetch(url)  # the CONNECT reply
    for response in (post, get):
        assert response.headers["X-Seen"] == "yes" and "Set-Cookie" not in response.headers
    assert calls[2:] == [("headers", "POST"), ("headers", "GET")]


async def test_headers_on_websocket_upgrade_responses(serve, ws_connect, http_client) -> None:  # type: ignore[no-untyped-def]
    sio, calls = header_server()
    live: LiveServer = await serve(sio.routes(), engines=[sio.engine])
    ws = await ws_connect(live.ws_url("/socket.io/", EIO=4, transport="websocket"))
    opened = await ws.read_message()
    assert isinstance(opened, str) and opened.startswith("0{")
    print(ws.headers)  # the 101 answer's headers
    assert ws.headers.get_list("Set-Cookie") == ["region=eu; Path=/", "team=blue; Path=/"]
    assert ws.headers["X-Seen"] == "yes"
    assert calls == [("initial_headers", "GET"), ("headers", "GET")]
    # the WebSocket that upgrades a polling session: headers, not initial_headers
    first = await http_client.fetch(live.url("/socket.io/", EIO=4, transport="polling"))
    sid = json.loads(first.body[1:])["sid"]
    calls.clear()
    ws = await ws_connect(live.ws_url("/socket.io/", EIO=4, transport="websocket", sid=sid))
    assert ws.headers["X-Seen"] == "yes" and "Set-Cookie" not in ws.headers
    assert calls == [("headers", "GET")]


async def test_our_client_sends_its_headers_on_every_request(eio_echo) -> None:  # type: ignore[no-untyped-def]
    """EngineClient's ``headers`` go with the handshake GET, every GET and POST of long-polling,
    and the WebSocket of the upgrade (the ``headers`` event sees each request)."""
    app = await eio_echo()
    seen: set[tuple[str, str, str | None]] = set()

    def note(headers: Any, request: Any) -> None:
        transport = request.query_arguments["transport"][0].decode()
        seen.add((request.method, transport, request.headers.get("X-Client")))

    app.engine.on("headers", note)
    client = EngineClient(app.live.base_url, headers={"X-Client": "c1"})
    got: asyncio.Queue[str | bytes] = asyncio.Queue()
    client.on_message = got.put_nowait
    await client.connect()
    try:
        client.send("over polling")  # a POST: the probe needs a WebSocket first, so it comes later
        assert await asyncio.wait_for(got.get(), 5) == "over polling"
        for _ in range(500):  # bounded: the upgrade takes a few round trips on loopback
            if client.transport == "websocket":
                break
            await asyncio.sleep(0.01)
    finally:
        await client.close()
    print("requests seen (method, transport, X-Client):", sorted(seen, key=str))
    assert client.transport == "websocket"
    assert {(method, transport) for method, transport, _ in seen} == {
        ("GET", "polling"),
        ("POST", "polling"),
        ("GET", "websocket"),
    }
    assert {header for _, _, header in seen} == {"c1"}


async def test_official_client_keeps_the_cookie_of_initial_headers(serve, run_node) -> None:  # type: ignore[no-untyped-def]
    """``initial_headers`` sets a cookie; the official client (``withCredentials``) sends it
    back on every later request."""
    from sio_teach.examples import conformance as conformance_app
    from tests.sio.conftest import RELAXED_HEARTBEAT

    sio = conformance_app.socketio_server(**RELAXED_HEARTBEAT)
    cookies: list[str | None] = []
    sio.engine.on("initial_headers", lambda h, r: h.__setitem__("Set-Cookie", "lb=node-1; Path=/"))
    sio.engine.on("headers", lambda h, r: cookies.append(r.headers.get("Cookie")))
    live = await serve(sio.routes("/socket.io/"), engines=[sio.engine])
    records = await run_node("sio_engine_options.js", live.base_url, "cookie")
    print(records, cookies)
    assert {"event": "ack", "value": "hi"} in records
    assert cookies[0] is None and len(cookies) > 2
    assert all(cookie == "lb=node-1" for cookie in cookies[1:])
