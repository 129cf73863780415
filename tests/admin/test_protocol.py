"""The Admin UI protocol's pure part (``sio_teach/admin/protocol.py``): golden values in the
shapes of npm ``@socket.io/admin-ui`` 0.5.1 ``lib/index.ts`` and ``lib/typed-events.ts``."""

from __future__ import annotations

import pytest

from sio_teach.admin import hash_password, instrument
from sio_teach.admin import protocol as p
from sio_teach.server import Server


def test_features_as_the_package_computes_them_for_socket_io_v4() -> None:
    commands = ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT"]
    assert p.supported_features(False, True) == [*commands, "AGGREGATED_EVENTS", "ALL_EVENTS"]
    assert p.supported_features(False, False) == [*commands, "AGGREGATED_EVENTS"]
    assert p.supported_features(True, True) == ["AGGREGATED_EVENTS", "ALL_EVENTS"]


def test_dates_as_json_stringify_writes_a_javascript_date() -> None:
    assert p.js_date(0) == "1970-01-01T00:00:00.000Z"
    assert p.js_date(1700000000.1234) == "2023-11-14T22:13:20.123Z"


@pytest.mark.parametrize(
    ("password", "valid"),
    [
        ("$2b$10$XoFaNxmfww9pcyIyD5xHIenAQMvHV.09qI2TfZW3JY5p3MJU6UgX6", True),
        ("$2a$04$XoFaNxmfww9pcyIyD5xHIenAQMvHV.09qI2TfZW3JY5p3MJU6UgX6", True),
        ("changeit", False),
        ("$2b$10$tooshort", False),
    ],
)
def test_only_a_bcrypt_hash_is_a_password(password: str, valid: bool) -> None:
    assert p.is_bcrypt_hash(password) is valid


def test_a_socket_serialized_for_the_ui() -> None:
    handshake = {
        "headers": {"Host": "h", "X-Forwarded-For": "10.0.0.7", "Origin": "http://o"},
        "query": {"EIO": "4"},
        "address": "127.0.0.1",
        "auth": {"token": "secret"},
        "url": "/socket.io/?EIO=4",
    }
    data = {"_admin": p.admin_data("abcdefghijklmnopqrst", "polling", 1700000000.5), "x": 1}
    assert p.serialize("sid1", "/", handshake, {"sid1", "a"}, data) == {
        "id": "sid1",
        "clientId": "abcdefghijkl",
        "transport": "polling",
        "nsp": "/",
        "data": {"x": 1},
        "handshake": {
            "address": "10.0.0.7",
            "headers": handshake["headers"],
            "query": {"EIO": "4"},
            "issued": 1700000000500,
            "secure": False,
            "time": "2023-11-14T22:13:20.500Z",
            "url": "/socket.io/?EIO=4",
            "xdomain": True,
        },
        "rooms": ["a", "sid1"],
    }


def test_aggregated_events_count_per_second_and_empty_on_take() -> None:
    events = p.EventBuffer()
    events.push(10.2, "rawConnection")
    events.push(10.9, "bytesIn", None, 5)
    events.push(10.95, "bytesIn", None, 7)
    events.push(11.0, "rawDisconnection", "transport close")
    assert events.take() == [
        {"timestamp": 10000, "type": "rawConnection", "count": 1},
        {"timestamp": 10000, "type": "bytesIn", "count": 12},
        {"timestamp": 11000, "type": "rawDisconnection", "count": 1, "subType": "transport close"},
    ]
    assert events.take() == []


def test_server_stats_shape() -> None:
    base = {"serverId": "node1", "hostname": "h", "pid": 7}
    assert p.server_stats(base, 1.5, 3, 1, [], {"/": 2, "/admin": 1}) == {
        "serverId": "node1",
        "hostname": "h",
        "pid": 7,
        "uptime": 1.5,
        "clientsCount": 3,
        "pollingClientsCount": 1,
        "aggregatedEvents": [],
        "namespaces": [{"name": "/", "socketsCount": 2}, {"name": "/admin", "socketsCount": 1}],
    }


def test_instrument_refuses_what_the_package_refuses() -> None:
    with pytest.raises(TypeError):
        instrument(Server())  # type: ignore[call-arg]  # auth must be said, even if None
    with pytest.raises(ValueError, match="bcrypt"):
        instrument(Server(), auth={"username": "admin", "password": "changeit"})
    with pytest.raises(ValueError, match="mode"):
        instrument(Server(), auth=None, mode="debug")
    admin = instrument(Server(), auth={"username": "a", "password": hash_password("b", 4)})
    assert admin.nsp.name == "/admin" and admin.nsp.middlewares
    assert not instrument(Server(), auth=False, namespace="/ops").nsp.middlewares
