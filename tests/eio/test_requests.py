"""The Engine.IO request checks (``eio/requests.py``), pure: no server, no socket.

Each refusal is the spec's: the code and message of engine.io ``Server.errors`` and its status.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sio_teach.eio.packet import Packet, PacketType
from sio_teach.eio.requests import Request, Verdict, check_request
from sio_teach.eio.server_session import Config, ServerSession
from sio_teach.errors import ProtocolError


@dataclass
class Held:
    """A session as the shell holds it (``requests.Attached``)."""

    session: ServerSession
    polling: bool = False
    pushing: bool = False
    websocket: bool = False


def query(**args: str) -> dict[str, list[bytes]]:
    return {name: [value.encode()] for name, value in args.items()}


POLLING = Held(ServerSession("P", Config(), 0.0, "polling"))
WEBSOCKET = Held(ServerSession("W", Config(), 0.0, "websocket"))
SESSIONS = {"P": POLLING, "W": WEBSOCKET}


def check(method: str = "GET", held: Held | None = None, **kw: str) -> tuple[Verdict, object]:
    upgrade = kw.pop("upgrade", "")
    content_type = kw.pop("content_type", "")
    length = kw.pop("content_length", "")
    request = Request(method, query(**kw), upgrade, content_type, length)
    sessions = SESSIONS if held is None else {"X": held}
    return check_request(request, sessions, max_payload=100)


def refused(
    method: str = "GET", held: Held | None = None, **kw: str
) -> tuple[int, int | None, str, bool]:
    with pytest.raises(ProtocolError) as info:
        check(method, held, **kw)
    error = info.value
    return error.status, error.code, error.message, error.close_session


def test_accepted_requests() -> None:
    assert check(EIO="4", transport="polling") == (Verdict.HANDSHAKE, None)
    assert check(EIO="4", transport="websocket", upgrade="websocket") == (Verdict.HANDSHAKE, None)
    assert check(EIO="4", transport="polling", sid="P") == (Verdict.POLL, POLLING)
    assert check("POST", EIO="4", transport="polling", sid="P") == (Verdict.PUSH, POLLING)
    upgrade = check(EIO="4", transport="websocket", sid="P", upgrade="WebSocket")
    assert upgrade == (Verdict.UPGRADE, POLLING)


@pytest.mark.parametrize(
    ("method", "args", "expected"),
    [
        ("GET", {"transport": "polling"}, (400, 5, "Unsupported protocol version", False)),
        (
            "GET",
            {"EIO": "3", "transport": "polling"},
            (400, 5, "Unsupported protocol version", False),
        ),
        (
            "GET",
            {"EIO": "abc", "transport": "polling"},
            (400, 5, "Unsupported protocol version", False),
        ),
        ("GET", {"EIO": "4"}, (400, 0, "Transport unknown", False)),
        ("GET", {"EIO": "4", "transport": "pigeon"}, (400, 0, "Transport unknown", False)),
        (
            "GET",
            {"EIO": "4", "transport": "polling", "sid": "nope"},
            (400, 1, "Session ID unknown", False),
        ),
        ("POST", {"EIO": "4", "transport": "polling"}, (400, 2, "Bad handshake method", False)),
        ("PUT", {"EIO": "4", "transport": "polling"}, (400, 2, "Bad handshake method", False)),
        ("PUT", {"EIO": "4", "transport": "polling", "sid": "P"}, (400, 3, "Bad method", False)),
        (
            "GET",
            {"EIO": "4", "transport": "websocket"},
            (400, 3, "Bad request", False),
        ),  # no Upgrade
        ("GET", {"EIO": "4", "transport": "polling", "sid": "W"}, (400, 3, "Bad request", False)),
        ("POST", {"EIO": "4", "transport": "polling", "sid": "W"}, (400, 3, "Bad request", False)),
    ],
)
def test_refusals_carry_the_spec_code_and_status(
    method: str, args: dict[str, str], expected: tuple[int, int, str, bool]
) -> None:
    assert refused(method, **args) == expected


def test_a_second_get_or_post_at_once_ends_the_session() -> None:
    busy = Held(ServerSession("X", Config(), 0.0), polling=True, pushing=True)
    assert refused(held=busy, EIO="4", transport="polling", sid="X") == (
        400,
        3,
        "overlapping GET",
        True,
    )
    assert refused("POST", held=busy, EIO="4", transport="polling", sid="X") == (
        400,
        3,
        "overlapping POST",
        True,
    )


def test_binary_body_is_refused_and_ends_the_session() -> None:
    status = refused(
        "POST", EIO="4", transport="polling", sid="P", content_type="application/octet-stream"
    )
    assert status == (400, 3, "invalid content", True)


def test_body_over_max_payload_is_413_before_it_is_read() -> None:
    """The one maxPayload check of a POST body, on its announced length; the session lives on."""
    assert refused("POST", EIO="4", transport="polling", sid="P", content_length="101") == (
        413,
        3,
        "Payload too large",
        False,
    )
    accepted = check("POST", EIO="4", transport="polling", sid="P", content_length="100")
    assert accepted == (Verdict.PUSH, POLLING)


def test_a_websocket_for_a_session_that_has_one_is_ignored() -> None:
    probing = Held(ServerSession("X", Config(), 0.0), websocket=True)
    ws = {"EIO": "4", "transport": "websocket", "upgrade": "websocket"}
    assert check(held=probing, sid="X", **ws) == (Verdict.IGNORE, probing)
    assert check(sid="W", **ws) == (Verdict.IGNORE, WEBSOCKET)


def test_a_closed_session_is_unknown_once_nothing_is_owed() -> None:
    session = ServerSession("X", Config(), 0.0)
    session.receive(Packet(PacketType.CLOSE), now=0.0)  # the client closes
    assert session.forgettable
    assert refused(held=Held(session), EIO="4", transport="polling", sid="X")[:2] == (400, 1)


def test_query_bytes_that_are_not_utf8_never_fail() -> None:
    request = Request("GET", {"EIO": [b"4"], "transport": [b"polling"], "x": [b"\xff"]})
    assert check_request(request, {}) == (Verdict.HANDSHAKE, None)
