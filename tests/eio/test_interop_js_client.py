"""Interop: the official npm ``engine.io-client`` v6 against our Engine.IO echo server.

The Node script ``tests/js/eio_client.js`` connects, sends ``"hello"``, a binary Buffer and N
numbered messages right at open, waits for every echo (and, by default, for the upgrade to
WebSocket), and prints what it saw as JSON lines. The server runs in the test's own event loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests import conftest
from tests.conftest import EchoApp

# pingInterval 300 ms as in the conformance app; a roomier pingTimeout so that a loaded machine
# (Node start-up, two cores) does not turn a late pong into a failure.
SETTINGS = dict(ping_interval=0.3, ping_timeout=1.0)


@pytest.fixture
async def app(eio_echo: Any) -> EchoApp:
    return await eio_echo(**SETTINGS)


def events(records: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in records if r["event"] == name]


def echoed(records: list[dict[str, Any]]) -> list[Any]:
    """The echoed payloads in arrival order: text as str, binary as bytes."""
    return [
        r["data"] if r["kind"] == "text" else bytes(r["data"]) for r in events(records, "message")
    ]


async def run_client(
    run_node: Any, app: EchoApp, mode: str, count: int = 0, stay_ms: int = 0
) -> list[dict[str, Any]]:
    records = await run_node(
        "eio_client.js", app.live.base_url, mode, count, stay_ms, 30000, timeout=45.0
    )
    assert not events(records, "error"), records
    [done] = events(records, "done")
    [close] = events(records, "close")
    assert close["reason"] == "forced close"  # the client closed it itself, at the end
    [handshake] = events(records, "handshake")
    assert (handshake["pingInterval"], handshake["pingTimeout"]) == (300, 1000)
    assert handshake["maxPayload"] == 1_000_000
    sid = handshake["sid"]
    assert await app.wait_closed(sid, timeout=10.0) == "transport close"
    assert sid not in app.engine.sessions
    records.append({"event": "sid", "sid": sid, "final_transport": done["transport"]})
    return records


def expected(count: int) -> list[Any]:
    return ["hello", b"\x01\x02\x03\x04", *(f"m{i}" for i in range(count)), "final"]


def client_messages(records: list[dict[str, Any]]) -> list[Any]:
    """The echoes only (the server's own ``srv:`` messages left out)."""
    return [m for m in echoed(records) if not (isinstance(m, str) and m.startswith("srv:"))]


async def test_polling_only(run_node: Any, app: EchoApp) -> None:
    records = await run_client(run_node, app, "polling", count=20)
    [open_] = events(records, "open")
    assert open_["transport"] == "polling"
    [handshake] = events(records, "handshake")
    assert handshake["upgrades"] == ["websocket"]
    assert events(records, "upgrade") == []
    assert echoed(records) == expected(20)
    binary = [r for r in events(records, "message") if r["kind"] == "binary"]
    assert binary and all(r["buffer"] for r in binary)  # a Node Buffer, decoded from base64
    assert {r["transport"] for r in events(records, "message")} == {"polling"}
    assert records[-1]["final_transport"] == "polling"


async def test_websocket_only(run_node: Any, app: EchoApp) -> None:
    records = await run_client(run_node, app, "websocket", count=20)
    [open_] = events(records, "open")
    assert open_["transport"] == "websocket"
    [handshake] = events(records, "handshake")
    assert handshake["upgrades"] == []
    assert events(records, "upgrade") == []
    assert echoed(records) == expected(20)
    assert {r["transport"] for r in events(records, "message")} == {"websocket"}
    assert records[-1]["final_transport"] == "websocket"


async def test_default_upgrades_without_losing_a_message(run_node: Any, app: EchoApp) -> None:
    # 100 numbered messages at open, 100 while the upgrade is under way (the client has paused
    # polling and buffers them), 100 right after it
    records = await run_client(run_node, app, "default", count=100)
    [open_] = events(records, "open")
    assert open_["transport"] == "polling"
    assert [u["transport"] for u in events(records, "upgrading")] == ["websocket"]
    assert [u["transport"] for u in events(records, "upgrade")] == ["websocket"]
    assert records[-1]["final_transport"] == "websocket"
    # every message echoed exactly once and in order, across polling and the WebSocket
    assert echoed(records) == expected(300)
    sid = records[-1]["sid"]
    assert app.received[sid] == expected(300)
    transports = [r["transport"] for r in events(records, "message")]
    assert transports[0] == "polling" and transports[-1] == "websocket"


async def test_server_messages_across_the_upgrade(run_node: Any, app: EchoApp) -> None:
    """The server keeps sending while the client upgrades: each arrives once, in order."""
    sent: list[str] = []

    async def push() -> None:
        while not app.sockets:
            await asyncio.sleep(0.001)
        [socket] = app.sockets.values()
        after_upgrade = 0
        while after_upgrade < 20 and len(sent) < 5000 and not socket.session.closed:
            sent.append(f"srv:{len(sent)}")
            socket.send(sent[-1])
            if socket.transport == "websocket":
                after_upgrade += 1
            await asyncio.sleep(0.002)

    pusher = asyncio.ensure_future(push())
    try:
        records = await run_client(run_node, app, "default", count=10, stay_ms=500)
    finally:
        await asyncio.wait_for(pusher, 10.0)
    assert client_messages(records) == expected(30)
    received = [r for r in events(records, "message") if r["data"][:4] == "srv:"]
    got = [r["data"] for r in received]
    assert got == sent[: len(got)]  # in order, none lost, none twice
    assert len(got) > 20
    assert received[0]["transport"] == "polling" and received[-1]["transport"] == "websocket"


async def test_several_clients_at_once(run_node: Any, app: EchoApp) -> None:
    runs = await asyncio.wait_for(
        asyncio.gather(
            *(
                run_client(run_node, app, mode, count=30)
                for mode in ("polling", "websocket", "default")
            )
        ),
        60.0,
    )
    for records, count in zip(runs, (30, 30, 90), strict=True):
        assert echoed(records) == expected(count)
    assert len({records[-1]["sid"] for records in runs}) == 3


@pytest.mark.parametrize("mode", ["polling", "websocket", "default"])
async def test_heartbeat_keeps_the_session_alive(run_node: Any, app: EchoApp, mode: str) -> None:
    # stay 1.5 s (five ping intervals of 300 ms) after the echoes, then check the link still works
    records = await run_client(run_node, app, mode, count=0, stay_ms=1500)
    pings = events(records, "ping")
    assert len(pings) > 3
    assert echoed(records) == expected(0)  # "final" came back after the wait
    assert not [r for r in events(records, "close") if r["reason"] != "forced close"]
    assert app.closed[records[-1]["sid"]] == "transport close"  # not "ping timeout"


# -- the Node runner itself ---------------------------------------------------------------


def test_missing_node_fails_instead_of_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest.shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match="node"):
        conftest.node_executable()


def test_missing_node_modules_fails_instead_of_skipping(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(conftest, "NODE_MODULES", tmp_path / "node_modules")
    with pytest.raises(pytest.fail.Exception, match="npm ci"):
        conftest.node_executable()


async def test_a_failing_script_is_reported_with_its_output(run_node: Any) -> None:
    # nothing listens on that port: the client reports an error and a close, and exits 2
    url = f"http://127.0.0.1:{conftest.free_port()}"
    with pytest.raises(conftest.NodeScriptError, match="exited with status 2") as info:
        await run_node("eio_client.js", url, "websocket", 0, 0, 20000, timeout=30.0)
    assert '"event": "close"' in str(info.value) or '"event":"close"' in str(info.value)
    records = await run_node("eio_client.js", url, "websocket", 0, 0, 20000, check=False)
    assert [r["event"] for r in records][-1] == "close"
