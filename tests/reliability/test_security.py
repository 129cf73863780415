"""Security: session ids, session confusion, CORS, the WebSocket origin check, ``allow_request``.

* Session ids (Engine.IO ``sid`` and Socket.IO socket ids) come from a cryptographic source
  (``secrets``), carry at least 120 random bits, are URL-safe, distinct, and never reused: a
  session that is over stays unknown (400, code 1).
* A request for the wrong transport of a session is refused (400, code 3) and does not disturb it.
* CORS: no ``Access-Control-Allow-Origin`` unless configured; with an allowlist (and credentials),
  exactly the listed origins are echoed — on every answer, refusals and preflights included — and
  every other origin gets no CORS header at all.
* A WebSocket handshake from a disallowed ``Origin`` is refused (403) before any open packet, and
  no session is created; ``allow_request`` refusing gives 403 ``{"code":4,"message":"Forbidden"}``.
"""

from __future__ import annotations

import asyncio
import json
import re
import string
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import tornado.httpclient
import tornado.websocket
from tornado.httpclient import HTTPClientError, HTTPRequest

import sio_teach.server
from sio_teach.transports import eio_server
from sio_teach.transports.eio_server import new_sid
from tests.reliability.conftest import TIMEOUT, App, Http, error_body
from tests.sio.conftest import RawFactory, SessionClosed

pytestmark = pytest.mark.usefixtures("no_errors_logged")

AppFactory = Callable[..., Awaitable[App]]
URLSAFE = string.ascii_letters + string.digits + "-_"
SID_RE = re.compile(r"^[A-Za-z0-9_-]{20,}$")  # 20 base64url characters = 120 bits
BAD_REQUEST = 3
ALLOWED = "https://a.example"
NOT_ALLOWED = [
    "https://b.example",
    "https://a.example.evil.example",  # a suffix
    "https://evil.example/https://a.example",
    "http://a.example",  # another scheme
    "https://a.example:8443",  # another port
    "https://a.exampl",  # a prefix
    "https://a",
    "a.example",
    "null",  # sandboxed iframes, file:// pages
]
CORS_HEADERS = ("Access-Control-Allow-Origin", "Access-Control-Allow-Credentials")


def cors(response: Any) -> dict[str, str]:
    """The CORS headers of a response (a missing header is left out)."""
    return {h: response.headers[h] for h in CORS_HEADERS if h in response.headers}


# -- session ids ----------------------------------------------------------------------------


def test_new_sid_draws_from_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """``new_sid`` asks :mod:`secrets` for at least 15 bytes (120 bits), and nothing else."""
    calls: list[int] = []

    class Spy:
        @staticmethod
        def token_urlsafe(nbytes: int) -> str:
            calls.append(nbytes)
            return "s" * 20

    monkeypatch.setattr(eio_server, "secrets", Spy)
    assert new_sid() == "s" * 20
    assert len(calls) == 1 and calls[0] >= 15
    assert "random" not in vars(eio_server)  # the non-cryptographic module is not even imported


def test_socketio_socket_ids_draw_from_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    class Spy:
        @staticmethod
        def token_urlsafe(nbytes: int) -> str:
            calls.append(nbytes)
            return "t" * 20

    monkeypatch.setattr(sio_teach.server, "secrets", Spy)
    assert sio_teach.server.Server().sid_factory() == "t" * 20
    assert len(calls) == 1 and calls[0] >= 15
    assert "random" not in vars(sio_teach.server)


def test_1000_sids_are_urlsafe_distinct_and_look_uniform() -> None:
    sids = [new_sid() for _ in range(1000)]
    assert len(set(sids)) == 1000
    assert all(SID_RE.fullmatch(sid) for sid in sids)
    assert min(len(sid) for sid in sids) * 6 >= 120  # base64url: 6 bits per character
    # 20,000 characters over 64 symbols: about 312 each. A loose check (±50 %, ~9 standard
    # deviations) that would catch a constant, a counter or a reduced alphabet, never chance.
    counts = Counter("".join(sid[:20] for sid in sids))
    assert set(counts) == set(URLSAFE)
    assert 156 < min(counts.values()) and max(counts.values()) < 469, counts
    for position in range(20):  # no position is fixed
        assert len({sid[position] for sid in sids}) > 32


async def test_ids_handed_out_by_the_server(raw: RawFactory, app: App, http: Http) -> None:
    """200 Engine.IO sids and 50 Socket.IO socket ids, over both transports: the same format,
    all distinct, and a socket id never equal to an Engine.IO sid."""
    eio_sids = await asyncio.wait_for(
        asyncio.gather(*(http.handshake(app) for _ in range(200))), 60
    )
    socket_ids = []
    for i in range(50):
        c = await raw(app.live, "websocket" if i % 2 else "polling")
        eio_sids.append(c.sid)
        socket_ids.append(await c.connect("/"))
        await c.close()
    assert len(set(eio_sids)) == 250 and len(set(socket_ids)) == 50
    assert not set(eio_sids) & set(socket_ids)
    assert all(SID_RE.fullmatch(s) for s in eio_sids + socket_ids)


async def test_a_closed_session_id_is_never_honoured_again(
    raw: RawFactory, app: App, http: Http
) -> None:
    """Sessions closed by the client (polling ``1``, WebSocket closed): their sid is unknown from
    then on — GET, POST and a WebSocket with it get 400 code 1 — and no new session gets it."""
    old = []
    for transport in ["polling", "websocket"] * 10:
        c = await raw(app.live, transport)
        await c.connect("/")
        old.append(c.sid)
        await c.close()
    await asyncio.wait_for(_until_gone(app, old), TIMEOUT)
    for sid in old[:4]:
        for response in (
            await http.fetch(app.url(sid=sid)),
            await http.post(app.url(sid=sid), '42["message","hijack"]'),
        ):
            assert response.code == 400 and error_body(response) == {
                "code": 1,
                "message": "Session ID unknown",
            }
        with pytest.raises(HTTPClientError) as refused:
            await asyncio.wait_for(
                tornado.websocket.websocket_connect(app.ws_url(sid=sid)), TIMEOUT
            )
        assert refused.value.code == 400
    new = await asyncio.wait_for(asyncio.gather(*(http.handshake(app) for _ in range(100))), 60)
    assert not set(new) & set(old)


async def _until_gone(app: App, sids: list[str]) -> None:
    while any(sid in app.sessions for sid in sids):
        await asyncio.sleep(0.01)


# -- transport confusion ----------------------------------------------------------------------


async def test_polling_request_for_a_websocket_session_is_refused(
    raw: RawFactory, app: App, http: Http
) -> None:
    c = await raw(app.live, "websocket")
    await c.connect("/")
    assert await c.recv() == '2["auth",{}]'
    for response in (
        await http.fetch(app.url(sid=c.sid)),
        await http.post(app.url(sid=c.sid), '42["message","from the side"]'),
    ):
        assert response.code == 400
        assert error_body(response) == {"code": BAD_REQUEST, "message": "Bad request"}
    # a second WebSocket for it is closed at once, without data (engine.io: accepted, then closed)
    second = await asyncio.wait_for(
        tornado.websocket.websocket_connect(app.ws_url(sid=c.sid)), TIMEOUT
    )
    assert await asyncio.wait_for(second.read_message(), TIMEOUT) is None
    # and the session did not notice: nothing was injected, it works on
    await c.send('2["message","mine"]')
    assert await c.recv() == '2["message-back","mine"]'
    assert await c.sync() == []


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_websocket_transport_request_without_upgrade_on_a_polling_session_is_refused(
    raw: RawFactory, app: App, http: Http, method: str
) -> None:
    """``transport=websocket`` with a polling session's sid, as a plain HTTP request (no
    ``Upgrade``): engine.io refuses it (``verify(req, upgrade=false)``: the transport differs from
    the session's → 400 code 3). It must not be processed as a polling request."""
    c = await raw(app.live, "polling")
    await c.connect("/")
    assert await c.recv() == '2["auth",{}]'
    url = app.url(sid=c.sid, transport="websocket")
    if method == "GET":
        response = await http.fetch(url)
    else:
        response = await http.post(url, '42["message","injected"]\x1e41')
    assert response.code == 400, (response.code, response.body)
    assert error_body(response)["code"] == BAD_REQUEST
    # nothing was processed: no message-back for "injected", and / is still connected
    assert await c.sync() == []


# -- CORS ---------------------------------------------------------------------------------------


async def _every_kind_of_answer(app: App, http: Http, origin: str | None) -> dict[str, Any]:
    """A handshake, a long-poll GET, a POST, a refusal, and a preflight, sent with ``origin``."""
    headers = {"Origin": origin} if origin is not None else {}
    answers: dict[str, Any] = {"handshake": await http.fetch(app.url(), headers=headers)}
    sid = json.loads(answers["handshake"].body.decode().split("\x1e")[0][1:])["sid"]
    post_headers = {**headers, "Content-Type": "text/plain;charset=UTF-8"}
    answers["post"] = await http.post(app.url(sid=sid), "40", headers=post_headers)
    answers["get"] = await http.fetch(app.url(sid=sid), headers=headers)
    answers["refusal"] = await http.fetch(app.url(EIO=3), headers=headers)
    answers["413"] = await http.post(app.url(sid=sid), "4" + "x" * 1_000_001, headers=post_headers)
    answers["preflight"] = await http.fetch(
        app.url(),
        "OPTIONS",
        headers={**headers, "Access-Control-Request-Method": "POST"},
        allow_nonstandard_methods=True,
    )
    assert answers["handshake"].code == answers["post"].code == answers["get"].code == 200
    assert answers["refusal"].code == 400 and answers["413"].code == 413
    return answers


@pytest.mark.parametrize("origin", [None, "https://evil.example", ALLOWED])
async def test_no_cors_headers_unless_configured(
    app_factory: AppFactory, http: Http, origin: str | None
) -> None:
    app = await app_factory(cors_origins=None)
    for kind, response in (await _every_kind_of_answer(app, http, origin)).items():
        assert cors(response) == {}, kind


async def test_cors_allowlist_with_credentials_echoes_only_the_listed_origin(
    app_factory: AppFactory, http: Http
) -> None:
    app = await app_factory(cors_origins=[ALLOWED], cors_credentials=True)
    for kind, response in (await _every_kind_of_answer(app, http, ALLOWED)).items():
        assert cors(response) == {
            "Access-Control-Allow-Origin": ALLOWED,
            "Access-Control-Allow-Credentials": "true",
        }, kind
        assert "Origin" in response.headers.get("Vary", ""), kind
    for origin in [*NOT_ALLOWED, None]:
        for kind, response in (await _every_kind_of_answer(app, http, origin)).items():
            assert cors(response) == {}, (origin, kind)


async def test_cors_single_origin_string_is_matched_exactly(
    app_factory: AppFactory, http: Http
) -> None:
    """``cors_origins`` may be one origin as a string (the type says ``str | list[str]``, as in
    the JS ``cors.origin``): it must be compared as a whole, never as a substring."""
    app = await app_factory(cors_origins=ALLOWED, cors_credentials=True)
    response = await http.fetch(app.url(), headers={"Origin": ALLOWED})
    assert cors(response)["Access-Control-Allow-Origin"] == ALLOWED
    leaks = {}
    for origin in NOT_ALLOWED:
        response = await http.fetch(app.url(), headers={"Origin": origin})
        if cors(response):
            leaks[origin] = cors(response)
    assert leaks == {}, "origins that are only substrings of the configured one were allowed"


# -- the WebSocket origin check -------------------------------------------------------------------


async def _ws_handshake(app: App, origin: str | None) -> str | bytes | None:
    """Open a WebSocket-only session from ``origin``; the first frame (the open packet)."""
    headers = {"Origin": origin} if origin is not None else {}
    ws = await asyncio.wait_for(
        tornado.websocket.websocket_connect(HTTPRequest(app.ws_url(), headers=headers)), TIMEOUT
    )
    try:
        return await asyncio.wait_for(ws.read_message(), TIMEOUT)
    finally:
        ws.close()


@pytest.mark.parametrize(
    "options, allowed, refused",
    [
        ({"cors_origins": None}, [None, "same-origin"], ["https://evil.example", ALLOWED]),
        ({"cors_origins": [ALLOWED]}, [ALLOWED, None, "same-origin"], NOT_ALLOWED),
        ({"cors_origins": ALLOWED}, [ALLOWED, None, "same-origin"], NOT_ALLOWED),
    ],
    ids=["no-cors", "allowlist", "single-origin-string"],
)
async def test_websocket_handshake_from_a_disallowed_origin_is_refused(
    app_factory: AppFactory,
    options: dict[str, Any],
    allowed: list[str | None],
    refused: list[str],
) -> None:
    app = await app_factory(**options)
    for origin in allowed:
        if origin == "same-origin":
            origin = app.base_url
        first = await _ws_handshake(app, origin)
        assert isinstance(first, str) and first.startswith("0"), (origin, first)
    before = set(app.sessions)
    wrongly_allowed = []
    for origin in refused:
        try:
            first = await _ws_handshake(app, origin)
        except HTTPClientError as error:
            assert error.code == 403, (origin, error)
        else:
            wrongly_allowed.append((origin, first))
    assert wrongly_allowed == [], "disallowed origins got a WebSocket session"
    await asyncio.sleep(0)
    assert set(app.sessions) <= before  # no session was created for a refused handshake


# -- allow_request --------------------------------------------------------------------------------


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
async def test_allow_request_refusal_is_403_forbidden(
    app_factory: AppFactory, http: Http, asynchronous: bool
) -> None:
    asked: list[str] = []

    def check(request: Any) -> bool:
        asked.append(request.uri)
        return request.headers.get("X-Token") == "good"

    async def check_async(request: Any) -> bool:
        await asyncio.sleep(0)
        return check(request)

    app = await app_factory(allow_request=check_async if asynchronous else check)
    forbidden = {"code": 4, "message": "Forbidden"}
    for headers in ({}, {"X-Token": "bad"}):
        response = await http.fetch(app.url(), headers=headers)
        assert response.code == 403 and error_body(response) == forbidden
        with pytest.raises(HTTPClientError) as refused:
            request = HTTPRequest(app.ws_url(), headers=headers)
            await asyncio.wait_for(tornado.websocket.websocket_connect(request), TIMEOUT)
        assert refused.value.code == 403
        assert json.loads(refused.value.response.body) == forbidden  # type: ignore[union-attr]
    assert app.sessions == {}  # nothing was created for a refused handshake
    # allowed: a session, and requests on it are not asked again (the handshake only)
    response = await http.fetch(app.url(), headers={"X-Token": "good"})
    assert response.code == 200
    sid = json.loads(response.body.decode().split("\x1e")[0][1:])["sid"]
    asked.clear()
    response = await http.post(app.url(sid=sid), "40")
    assert (response.code, response.body) == (200, b"ok")
    assert asked == []


async def test_refusals_leave_other_sessions_alone(
    app_factory: AppFactory, http: Http, raw: RawFactory
) -> None:
    """A flood of refused requests (bad origins, forbidden, unknown sids, wrong transports) does
    not touch the sessions that exist."""
    app = await app_factory(
        cors_origins=[ALLOWED], allow_request=lambda r: "X-Bad" not in r.headers
    )
    c = await raw(app.live, "polling")
    await c.connect("/")
    assert await c.recv() == '2["auth",{}]'
    requests: list[Awaitable[Any]] = []
    for i in range(40):
        requests.append(http.fetch(app.url(), headers={"X-Bad": "1"}))
        requests.append(http.fetch(app.url(sid=f"guess{i}")))
        requests.append(http.post(app.url(sid=c.sid, EIO=5), "41"))
        requests.append(http.fetch(app.url(EIO=3, sid=c.sid)))
    answers = await asyncio.wait_for(asyncio.gather(*requests), 60)
    assert {a.code for a in answers} <= {400, 403}
    try:
        await c.send('2["message","untouched"]')
        assert await c.recv() == '2["message-back","untouched"]'
    except SessionClosed:
        pytest.fail(f"the session was closed by someone else's refused request: {c.close_reason}")
    assert c.sid in app.sessions
