"""The Admin UI on a cluster: two Python nodes instrumented by ``Server.instrument`` and one
Node.js node instrumented by the official ``@socket.io/admin-ui``, on one Redis. A UI logged in to
one Python node sees every node's statistics, sockets and rooms, and its commands reach sockets of
any node; its session id logs it in on the other Python node."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sio_teach import Client
from sio_teach.admin import hash_password
from tests.adapters.conftest import WAIT, Recorder

AUTH = {"username": "admin", "password": hash_password("changeit", 4)}


class Ui:
    """A client of ``/admin`` that records what it hears, as ``(event, args)``."""

    def __init__(self, url: str, auth: dict[str, Any]) -> None:
        self.client = Client(url, transports=("websocket",), reconnection=False)
        self.socket = self.client.socket("/admin", auth)
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        self.socket.on_any(lambda event, *args: self.events.append((event, args)))

    async def heard(self, event: str, test: Any = lambda *args: True) -> tuple[Any, ...]:
        """The first ``event`` (so far or to come) whose arguments pass ``test``."""
        async with asyncio.timeout(WAIT):
            while True:
                for name, args in self.events:
                    if name == event and test(*args):
                        return args
                await asyncio.sleep(0.01)


@pytest.fixture
async def uis() -> AsyncIterator[list[Ui]]:
    made: list[Ui] = []
    yield made
    for ui in made:
        await asyncio.wait_for(ui.client.close(), WAIT)


async def test_one_ui_sees_and_commands_every_node(
    redis_server: Any, py_node: Any, js_node: Any, client: Any, uis: list[Ui]
) -> None:
    a, b = await py_node(redis_server.url), await py_node(redis_server.url)
    for node, name in ((a, "py-a"), (b, "py-b")):
        node.sio.instrument(auth=AUTH, server_id=name, stats_interval=0.2)
        await node.sio.of("/admin").adapter.wait_ready(WAIT)
    j = await js_node(redis_server.url, None, "admin")
    try:
        ui = Ui(a.url, {"username": "admin", "password": "changeit"})
        uis.append(ui)
        await ui.socket.connect(timeout=WAIT)
        for server_id in ("py-a", "py-b", "node-js"):  # every node's server_stats
            await ui.heard("server_stats", lambda stats, s=server_id: stats["serverId"] == s)

        b0: Recorder = await client(b.url, "B0")
        j0: Recorder = await client(j, "J0")
        ids = {b0.client.id: "B0", j0.client.id: "J0"}
        for sid in ids:  # reported by node B (sio_teach) and by node J (the package)
            await ui.heard("socket_connected", lambda s, t, sid=sid: s["id"] == sid)

        # a UI that connects now gets every node's sockets (fetch_sockets across nodes)
        late = Ui(a.url, {"username": "admin", "password": "changeit"})
        uis.append(late)
        await late.socket.connect(timeout=WAIT)
        (everyone,) = await late.heard("all_sockets")
        found = {s["id"]: s for s in everyone if s["nsp"] == "/"}
        assert ids.keys() <= found.keys()
        assert {found[sid]["transport"] for sid in ids} == {"websocket"}

        # commands: join a room on node J, disconnect a socket of node B
        ui.socket.emit("join", "/", "r9", j0.client.id)
        await ui.heard("room_joined", lambda nsp, room, sid, t: (room, sid) == ("r9", j0.client.id))
        b0_id = b0.client.id
        ui.socket.emit("_disconnect", "/", False, b0_id)
        await ui.heard("socket_disconnected", lambda nsp, sid, reason, t: sid == b0_id)

        # the session id of a login on A opens node B too
        (session_id,) = await ui.heard("session")
        again = Ui(b.url, {"sessionId": session_id})
        uis.append(again)
        await again.socket.connect(timeout=WAIT)
        assert again.socket.connected
    finally:
        for node in (a, b):
            node.sio.close()
            await node.sio.of("/admin").adapter.aclose()
