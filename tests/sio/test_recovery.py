"""Connection state recovery: the session's id, rooms and missed events come back after a cut.

The pure part (``sio_teach/sio/recovery.py``) on a fake clock, then our server with the official
``socket.io-client`` (its ``socket.recovered`` must be true) and with our own client.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import tornado.web

from sio_teach import Client, Server
from sio_teach.sio.backoff import Backoff
from sio_teach.sio.recovery import Options, Recovery, Session

# -- the pure store, on a fake clock -------------------------------------------------------------


def test_offsets_are_appended_and_missed_events_restored_in_order() -> None:
    store = Recovery(Options(max_disconnection_duration=10.0))
    first = store.stamp(["news", 1], frozenset({"r1"}), frozenset(), now=0.0)
    assert first[:2] == ["news", 1] and isinstance(first[2], str)
    store.persist(Session("sid-1", "pid-1", {"sid-1", "r1"}, {"k": "v"}), now=1.0)
    second = store.stamp(["news", 2], frozenset({"r1"}), frozenset(), now=2.0)
    store.stamp(["other", 0], frozenset({"r2"}), frozenset(), now=2.0)  # not one of its rooms
    store.stamp(["excluded", 0], frozenset(), frozenset({"r1"}), now=2.0)  # its room is excepted
    third = store.stamp(["all", 3], frozenset(), frozenset(), now=3.0)  # the whole namespace
    session = store.restore("pid-1", first[2], now=4.0)
    assert session is not None and session.sid == "sid-1" and session.data == {"k": "v"}
    assert session.missed == [second, third]
    assert store.restore("pid-1", first[2], now=4.0) is None  # a session is restored once


def test_an_expired_session_or_an_unknown_offset_is_not_restored() -> None:
    store = Recovery(Options(max_disconnection_duration=10.0))
    offset = store.stamp(["news", 1], frozenset(), frozenset(), now=0.0)[-1]
    store.persist(Session("a", "pid-a", {"a"}, {}), now=1.0)
    store.persist(Session("b", "pid-b", {"b"}, {}), now=1.0)
    assert store.restore("pid-a", "no-such-offset", now=2.0) is None
    assert store.restore("pid-b", offset, now=12.0) is None  # disconnected 11 s > 10 s ago
    assert not store.sessions and not store.events  # both forgotten
    assert store.restore(None, offset, now=12.0) is None  # not a string: refused quietly


# -- live -------------------------------------------------------------------------------------


def recovering_server() -> Server:
    sio = Server(connection_state_recovery=True, ping_interval=0.5, ping_timeout=2.0)

    @sio.on("join")
    def join(socket: Any, room: str) -> str:
        socket.join(room)
        return room

    return sio


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


@pytest.mark.parametrize("transports", ["websocket", "polling", "polling,websocket"])
async def test_the_official_client_recovers_its_session(
    serve: Any, node_process: Any, transports: str
) -> None:
    sio = recovering_server()
    live = await serve(tornado.web.Application(sio.routes()), engines=[sio.engine])
    node = await node_process("sio_recovery.js", f"http://127.0.0.1:{live.port}", transports)
    ready = await node.expect("ready")
    assert ready["room"] == "r1" and ready["recovered"] is False
    sio.to("r1").emit("news", 1)
    await node.expect("cut")
    await wait_for(lambda: not sio.of("/").sockets)  # the server saw the connection go
    sio.to("r1").emit("news", 2)  # missed while away: to its room ...
    sio.emit("news", 3)  # ... and to everyone
    sio.to("elsewhere").emit("news", -1)  # not for it
    back = await node.expect("reconnected")
    assert back["recovered"] is True and back["sameId"] is True, node.report()
    assert ready["id"] in sio.of("/").sockets
    assert "r1" in sio.of("/").sockets[ready["id"]].rooms  # the room came back too
    sio.to("r1").emit("news", 4)
    while (await node.expect("news"))["args"][0] != 4:
        pass
    news = [r["args"] for r in node.records if r["event"] == "news"]
    assert [args[0] for args in news] == [1, 2, 3, 4], node.report()  # once each, in order
    assert all(isinstance(args[-1], str) for args in news)  # the offset rides last


async def test_our_client_recovers_its_session(serve: Any) -> None:
    sio = recovering_server()
    live = await serve(tornado.web.Application(sio.routes()), engines=[sio.engine])
    client = Client(f"http://127.0.0.1:{live.port}", backoff=Backoff(0.05, 0.1))
    got: list[Any] = []
    client.on("news", lambda *args: got.append(args[0]))
    try:
        await client.connect()
        assert await client.emit_with_ack("join", "r1", timeout=5) == "r1"
        first_id = client.id
        sio.to("r1").emit("news", 1)
        await wait_for(lambda: got == [1])
        for eio in list(sio.engine.sessions.values()):
            eio.close("transport error")  # a cut, as the server sees it
        await wait_for(lambda: not client.connected)
        sio.to("r1").emit("news", 2)
        sio.emit("news", 3)
        await wait_for(lambda: client.connected)
        await wait_for(lambda: len(got) == 3)
        assert client.recovered and client.id == first_id
        assert got == [1, 2, 3]
        assert "r1" in sio.of("/").sockets[first_id].rooms
    finally:
        await client.disconnect()


async def test_without_recovery_a_reconnection_is_a_new_session(serve: Any) -> None:
    sio = Server(ping_interval=0.5, ping_timeout=2.0)
    live = await serve(tornado.web.Application(sio.routes()), engines=[sio.engine])
    client = Client(f"http://127.0.0.1:{live.port}", backoff=Backoff(0.05, 0.1))
    got: list[Any] = []
    client.on("news", lambda *args: got.append(args))
    try:
        await client.connect()
        first_id = client.id
        sio.emit("news", 1)
        await wait_for(lambda: got == [(1,)])  # no offset appended when recovery is off
        for eio in list(sio.engine.sessions.values()):
            eio.close("transport error")
        await wait_for(lambda: not client.connected)
        sio.emit("news", 2)  # lost: nobody keeps it
        await wait_for(lambda: client.connected)
        sio.emit("news", 3)
        await wait_for(lambda: len(got) == 2)
        assert not client.recovered and client.id != first_id
        assert got == [(1,), (3,)]
    finally:
        await client.disconnect()
