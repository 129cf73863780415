"""Which HTTP requests an Engine.IO v4 server accepts: the request checks, as pure functions.

The shell calls :func:`check_request` when a request's headers have arrived — *before* reading
any body — and gets either a :class:`Verdict` (what to do with the request) or a
:class:`~sio_teach.errors.ProtocolError` carrying the spec's error code and HTTP status, answered
as ``{"code":N,"message":"..."}``. The codes and messages are engine.io's (``lib/server.ts``
``Server.errors``)::

    0 Transport unknown             EIO=4&transport=carrier-pigeon
    1 Session ID unknown            sid=doesnotexist
    2 Bad handshake method          a POST (or PUT ...) without a sid
    3 Bad request                   polling on a WebSocket session, a second GET or POST at once ...
    4 Forbidden                     refused by the application's ``allow_request`` (HTTP 403)
    5 Unsupported protocol version  EIO=3, or no EIO at all

A refusal whose ``close_session`` is true also ends the session: the client broke a rule of the
session itself (two GETs at once, two POSTs at once, a binary body).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from sio_teach.eio.server_session import ServerSession
from sio_teach.errors import ProtocolError

TRANSPORT_UNKNOWN = 0, "Transport unknown"
UNKNOWN_SID = 1, "Session ID unknown"
BAD_HANDSHAKE_METHOD = 2, "Bad handshake method"
BAD_REQUEST = 3, "Bad request"
FORBIDDEN = 4, "Forbidden"
UNSUPPORTED_PROTOCOL_VERSION = 5, "Unsupported protocol version"


MESSAGES = dict(
    [
        TRANSPORT_UNKNOWN,
        UNKNOWN_SID,
        BAD_HANDSHAKE_METHOD,
        BAD_REQUEST,
        FORBIDDEN,
        UNSUPPORTED_PROTOCOL_VERSION,
    ]
)  # code -> engine.io's message for it (``Server.errorMessages``)


def refusal(
    error: tuple[int, str],
    message: str | None = None,
    *,
    status: int = 400,
    close: bool = False,
    **context: object,
) -> ProtocolError:
    """The error for a refused request: ``refusal(BAD_REQUEST, "overlapping GET", close=True,
    name="OVERLAPPING_GET")``. ``context`` says what was wrong, with engine.io's keys where it has
    them (``transport``, ``sid``, ``method``, ``protocol``, ``name``)."""
    code, text = error
    return ProtocolError(
        message or text, status=status, code=code, close_session=close, context=context
    )


class Verdict(Enum):
    """What an accepted request is for."""

    HANDSHAKE = "open a new session"
    POLL = "a long-polling GET: answer with the queued packets"
    PUSH = "a long-polling POST: feed the body to the session"
    UPGRADE = "a WebSocket that probes a polling session"
    IGNORE = "a WebSocket for a session that has one: accept it, then close it at once"


class Attached(Protocol):
    """What the shell holds for a session: the session and the requests attached to it now."""

    session: ServerSession

    @property
    def polling(self) -> bool: ...  # a GET is held open
    @property
    def pushing(self) -> bool: ...  # a POST body is being read
    @property
    def websocket(self) -> bool: ...  # a WebSocket is open (probing, or the transport)


@dataclass(frozen=True, slots=True)
class Request:
    """The parts of an HTTP request that the checks read (the shell copies them, nothing more)."""

    method: str
    query: Mapping[str, list[bytes]]  # raw query values, as Tornado parses them
    upgrade: str = ""  # the Upgrade header
    content_type: str = ""
    content_length: str = ""

    def arg(self, name: str) -> str | None:
        """The last value of a query argument (bytes read as latin-1: never fails)."""
        values = self.query.get(name)
        return values[-1].decode("latin-1") if values else None


def check_request(
    request: Request,
    sessions: Mapping[str, Attached],
    *,
    transports: tuple[str, ...] = ("polling", "websocket"),
    max_payload: int = 1_000_000,
) -> tuple[Verdict, Attached | None]:
    """Check a request before its body is read; return what it is for and its session.

    Raises :class:`ProtocolError` with the spec's code and status. A handshake returns
    ``(HANDSHAKE, None)``; the application's ``allow_request`` (code 4) is the shell's to ask.
    """
    transport, sid, method = request.arg("transport"), request.arg("sid"), request.method
    if request.arg("EIO") != "4":
        raise refusal(UNSUPPORTED_PROTOCOL_VERSION, protocol=request.arg("EIO"))
    if transport not in transports or len(request.query.get("transport", ())) != 1:
        raise refusal(TRANSPORT_UNKNOWN, transport=transport)
    # a WebSocket transport is reached by an upgrade only
    if transport == "websocket" and (method != "GET" or request.upgrade.lower() != "websocket"):
        raise refusal(BAD_REQUEST, name="TRANSPORT_HANDSHAKE_ERROR")
    if sid is None:
        if method != "GET":
            raise refusal(BAD_HANDSHAKE_METHOD, method=method)
        return Verdict.HANDSHAKE, None
    attached = sessions.get(sid)
    if attached is None or attached.session.forgettable:
        raise refusal(UNKNOWN_SID, sid=sid)
    session = attached.session
    if transport == "websocket":
        if session.transport != "polling" or attached.websocket:
            # "a second WebSocket for an upgraded session is closed": engine.io accepts it, then
            # closes it (``onWebSocket``: "transport had already been upgraded")
            return Verdict.IGNORE, attached
        if session.closed:
            raise refusal(BAD_REQUEST, name="SESSION_CLOSED")
        return Verdict.UPGRADE, attached
    if session.transport != "polling":
        # polling on a session that runs over WebSocket
        previous = session.transport
        raise refusal(
            BAD_REQUEST, name="TRANSPORT_MISMATCH", transport=transport, previousTransport=previous
        )
    if method == "GET":
        if attached.polling:  # "only one GET at a time": the overlap ends the session
            raise refusal(BAD_REQUEST, "overlapping GET", close=True, name="OVERLAPPING_GET")
        return Verdict.POLL, attached
    if method != "POST":
        raise refusal(BAD_REQUEST, "Bad method", name="BAD_METHOD", method=method)
    if attached.pushing:  # one POST at a time, too (engine.io: "data request overlap")
        raise refusal(BAD_REQUEST, "overlapping POST", close=True, name="OVERLAPPING_POST")
    if request.content_type.startswith("application/octet-stream"):  # EIO4 sends binary as base64
        raise refusal(BAD_REQUEST, "invalid content", close=True, name="INVALID_CONTENT")
    length = request.content_length
    if length.isdigit() and int(length) > max_payload:  # the one maxPayload check of a body
        raise refusal(
            BAD_REQUEST,
            "Payload too large",
            status=413,
            name="PAYLOAD_TOO_LARGE",
            length=int(length),
        )
    return Verdict.PUSH, attached
