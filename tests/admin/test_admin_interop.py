"""The Admin UI protocol against the official ``socket.io-client`` playing the UI (npm
``@socket.io/admin-ui`` 0.5.x ``ui/src/App.vue``): ``tests/js/admin_ui.js`` logs in to ``/admin``
on a live sio_teach server and checks what it hears and what its commands do, with the JSON parser
and with the msgpack parser (the UI's "MessagePack parser" option)."""

from __future__ import annotations

from typing import Any

import pytest

from sio_teach import Server
from sio_teach.admin import hash_password
from sio_teach.admin.protocol import supported_features

PASSWORD_HASH = hash_password("changeit", rounds=4)  # bcrypt's fewest rounds: a quick test


def app_server(parser: str = "json") -> Server:
    sio = Server(parser=parser)

    @sio.on("hello")
    def hello(socket: Any, text: str) -> str:
        socket.join("r1")
        socket.emit("welcome", text)
        return "ok"

    sio.instrument(auth={"username": "admin", "password": PASSWORD_HASH}, stats_interval=0.2)
    return sio


@pytest.fixture(params=["json", "msgpack"])
async def records(request: Any, serve: Any, run_node: Any) -> dict[str, dict[str, Any]]:
    """What the UI heard, from a server on the JSON parser and one on the msgpack parser."""
    sio = app_server(parser=request.param)
    live = await serve(sio.routes(), engines=[sio.engine])
    lines = await run_node("admin_ui.js", live.base_url, request.param)
    sio.close()
    return {line.pop("event"): line for line in lines}


async def test_a_wrong_password_is_refused_with_connect_error(records: dict) -> None:
    assert records["refused"] == {"message": "invalid credentials"}


async def test_login_gets_a_session_config_and_all_sockets(records: dict) -> None:
    assert records["session"] == {"length": 16}
    assert records["config"]["config"] == {"supportedFeatures": supported_features(False, True)}
    (admin,) = records["all_sockets"]["sockets"]  # the UI's own socket, on /admin
    assert admin["nsp"] == "/admin" and admin["rooms"] == [admin["id"]]
    assert admin["transport"] in ("polling", "websocket")  # the upgrade may be done by now
    assert len(admin["clientId"]) == 12
    assert "auth" not in admin["handshake"] and admin["data"] == {}


async def test_sockets_rooms_and_events_are_reported(records: dict) -> None:
    connected = records["socket_connected"]
    socket = connected["socket"]
    assert socket["id"] == connected["id"] and socket["nsp"] == "/"
    assert socket["rooms"] == [socket["id"]] and socket["data"] == {}
    assert connected["timestamp"].endswith("Z")
    sid = socket["id"]
    assert records["event_received"]["args"][:3] == ["/", sid, ["hello", "x"]]
    assert records["event_sent"]["args"][:3] == ["/", sid, ["welcome", "x"]]
    assert records["room_joined"]["args"][:3] == ["/", "r1", sid]


async def test_the_commands_reach_the_sockets(records: dict) -> None:
    sid = records["socket_connected"]["id"]
    assert records["emit"]["args"] == [1, {"two": 2}]
    assert records["join"]["args"][:3] == ["/", "r2", sid]
    assert records["leave"]["args"][:3] == ["/", "r2", sid]
    assert records["_disconnect"]["args"][:3] == ["/", sid, "server namespace disconnect"]
    assert records["_disconnect"]["client"] == "io server disconnect"


async def test_server_stats_count_clients_namespaces_and_packets(records: dict) -> None:
    stats = records["server_stats"]["stats"]
    assert {"serverId", "hostname", "pid", "uptime", "clientsCount"} <= stats.keys()
    assert {n["name"] for n in stats["namespaces"]} == {"/", "/admin"}
    kinds = {event["type"] for event in stats["aggregatedEvents"]}
    assert kinds & {"rawConnection", "packetsIn", "packetsOut", "bytesIn", "bytesOut"}


async def test_a_session_id_logs_in_again_and_a_forged_one_does_not(records: dict) -> None:
    assert records["session_login"] == {"connected": True}
    assert records["forged_session"] == {"message": "invalid credentials"}
    assert set(records["seen"]["names"]) >= {
        "session",
        "config",
        "all_sockets",
        "server_stats",
        "socket_connected",
        "socket_disconnected",
        "room_joined",
        "room_left",
        "event_received",
        "event_sent",
    }
