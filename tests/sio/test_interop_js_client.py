"""The official npm ``socket.io-client`` (4.8.4, run by Node) against our server.

The server is the conformance app (namespaces ``/`` and ``/custom``) plus, for these tests, a
``/private`` namespace guarded by a middleware, a ``record`` event that keeps what it receives, and
``whoami`` on ``/private``. Each scenario of ``tests/js/sio_client.js`` runs in three modes: the
default (polling, then upgrade to WebSocket), WebSocket only, polling only.

A missing ``node`` or ``node_modules`` fails these tests (never skips): see ``tests/conftest.py``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sio_teach.server import Server
from tests.conftest import NODE_MODULES, LiveServer, node_executable, run_node
from tests.sio.conftest import NodeProcess, RestartableServer, interop_server

pytestmark = pytest.mark.usefixtures("no_server_errors")

MODES = ["default", "websocket", "polling"]


def by_event(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for record in records:
        found.setdefault(record["event"], record)
    return found


def b(*values: int) -> dict[str, list[int]]:
    """How the Node script reports a Buffer."""
    return {"$bytes": list(values)}


async def start(serve: Callable[..., Awaitable[LiveServer]], sio: Server) -> LiveServer:
    return await serve(sio.routes("/socket.io/"), engines=[sio.engine])


def test_official_client_is_installed() -> None:
    """Fails (does not skip) without Node or the pinned npm packages."""
    node_executable()
    for package, version in (("socket.io-client", "4.8.4"), ("engine.io-client", "6.6.8")):
        manifest = NODE_MODULES / package / "package.json"
        assert manifest.is_file(), f"{manifest} missing: run `npm ci` in the repository root"
        assert json.loads(manifest.read_text())["version"] == version


@pytest.mark.parametrize("mode", MODES)
async def test_emit_ack_binary_and_namespaces(serve, mode: str) -> None:
    reasons: list[str] = []
    live = await start(serve, interop_server(reasons=reasons))
    records = await run_node("sio_client.js", live.base_url, mode, "basic", timeout=30.0)
    got = by_event(records)
    assert "error" not in got, got["error"]
    assert got["connect"]["hasId"] is True
    if mode != "default":  # (in the default mode the upgrade may already be done by then)
        assert got["connect"]["transport"] == mode
    assert got["auth"]["args"] == [{"token": "abc"}]
    assert got["ack"]["args"] == [1, "2", {"3": [True]}]
    assert got["emitWithAck"]["value"] == "x"
    assert got["empty-ack"]["args"] == []
    # an unknown event gets no ACK: the client's emitWithAck times out
    assert "unknown-event-acked" not in got
    assert got["unknown-event-timeout"]["message"] == "operation has timed out"
    # binary stays binary, both ways, nested too, and an empty Buffer is a Buffer
    assert got["message-back"]["args"] == [b(1, 2, 3), {"nested": [b(4, 5)]}, "text", b()]
    assert got["message-back"]["isBuffer"] is True
    assert got["binary-ack"]["args"] == [b(9, 8), "t"]
    assert got["binary-ack"]["isBuffer"] is True
    # the server asks the client for an ACK and gets its (binary) answer
    assert got["callback"] == {"event": "callback", "args": ["x", 2], "ackIsFunction": True}
    assert got["callback-ack"]["args"] == ["y", {"z": b(7)}]
    # /custom over the same connection; disconnect-me leaves / connected
    assert got["custom-auth"]["args"] == [{}]
    assert got["custom"]["value"] == "on custom"
    assert got["custom-disconnect"] == {
        "event": "custom-disconnect",
        "reason": "io server disconnect",
        "mainConnected": True,
    }
    assert got["after"]["value"] == "still here"
    assert got["transport"]["name"] == ("polling" if mode == "polling" else "websocket")
    assert "done-script" in got
    assert "/custom server namespace disconnect" in reasons


@pytest.mark.parametrize("mode", MODES)
async def test_rooms_and_broadcast_between_three_clients(serve, mode: str) -> None:
    live = await start(serve, interop_server())
    records = await run_node("sio_client.js", live.base_url, mode, "rooms", timeout=30.0)
    got = by_event(records)
    assert "error" not in got, got["error"]
    # a, b, d joined room-1 (d on /custom); a sends to room-1: b only (not the sender, not c, not d)
    assert got["to-room"]["received"] == {
        "a": [],
        "b": [["room-message", "hello", b(1)]],
        "c": [],
        "d": [],
    }
    # b broadcasts on /: a and c, not b, not d (another namespace)
    assert got["broadcast"]["received"] == {
        "a": [["broadcast-message", "hi", {"n": 1}]],
        "b": [],
        "c": [["broadcast-message", "hi", {"n": 1}]],
        "d": [],
    }
    # a left room-1; c (not a member) sends to it: b only
    assert got["after-leave"]["received"] == {
        "a": [],
        "b": [["room-message", "again"]],
        "c": [],
        "d": [],
    }
    # d broadcasts on /custom, where it is alone: nobody
    assert got["custom-broadcast"]["received"] == {"a": [], "b": [], "c": [], "d": []}


@pytest.mark.parametrize("mode", MODES)
async def test_middleware_refusal_is_a_connect_error(serve, mode: str) -> None:
    live = await start(serve, interop_server())
    records = await run_node("sio_client.js", live.base_url, mode, "refused", timeout=30.0)
    got = by_event(records)
    assert "error" not in got, got["error"]
    assert got["connect_error"] == {
        "event": "connect_error",
        "message": "not authorized",
        "data": {"code": 4001, "hint": "use a good token"},
        "connected": False,
    }
    assert got["main"]["value"] == "ok"
    assert got["private"]["value"] == "private:good"


@pytest.mark.parametrize("mode", MODES)
async def test_reconnection_after_a_server_restart(
    restartable: Callable[..., Awaitable[RestartableServer]],
    node_process: Callable[..., Awaitable[NodeProcess]],
    mode: str,
) -> None:
    recorded: list[Any] = []  # shared by both server instances
    server = await restartable(lambda: interop_server(recorded=recorded))
    port = server.port
    proc = await node_process("sio_client.js", server.base_url, mode, "reconnect")
    first = await proc.expect("ready", timeout=15.0)
    assert first["event"] == "ready"
    assert recorded == ["before"]

    await server.stop()  # every session closed, the port released
    disconnect = await proc.expect("disconnect", timeout=10.0)
    assert disconnect["reason"] in ("transport close", "transport error"), disconnect
    assert disconnect["active"] is True  # it will reconnect by itself
    buffered = await proc.expect("buffered", timeout=5.0)
    assert buffered["sendBuffer"] == 1  # the emit while disconnected waits in the client

    await proc.expect("reconnect_error", timeout=10.0)  # it tried while the server was down

    await server.start()  # the same port, a brand new server
    assert server.port == port
    done = await proc.expect("done", timeout=20.0)
    assert done["value"] == "after" and done["connects"] == 2
    assert await proc.wait(10.0) == 0
    connects = [r for r in proc.records if r["event"] == "connect"]
    assert [c["n"] for c in connects] == [1, 2]
    # the buffered event reached the new server exactly once (and the first one, once)
    assert recorded == ["before", "while-disconnected"]
