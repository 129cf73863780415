"""The emitter (sio_teach.adapters.emitter) against the official one (@socket.io/redis-emitter
5.x): the same operations publish the same bytes on the same channels; ours reaches a Node.js
node (official socket.io + @socket.io/redis-adapter) and our nodes; the official one reaches our
nodes; and, on sharded Pub/Sub (Redis 7+), ours reaches sharded nodes of both languages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sio_teach.adapters.emitter import Emitter
from tests.adapters.conftest import WAIT, Recorder
from tests.adapters.test_cluster import markers, wait_room
from tests.adapters.test_redis_wire import Tap
from tests.conftest import ROOT, node_executable

SCRIPT = ROOT / "tests" / "js" / "redis_emitter.js"

OPERATIONS: list[dict[str, Any]] = [
    {"op": "emit", "args": ["news", 1, "two", {"three": [3.5, None, True]}]},
    {"op": "emit", "to": ["red"], "args": ["x", {"$bin": "00ff10"}]},
    {"op": "emit", "to": ["red", "blue"], "except": ["green"], "args": ["y"]},
    {"op": "emit", "volatile": True, "args": ["z", "é" * 40]},
    {"op": "emit", "nsp": "/admin", "args": ["admin only"]},
    {"op": "socketsJoin", "to": ["red"], "rooms": ["a", "b"]},
    {"op": "socketsLeave", "except": ["red"], "rooms": ["a"]},
    {"op": "disconnectSockets", "to": ["blue"], "close": True},
    {"op": "serverSideEmit", "args": ["hello", 1, {"k": "v"}]},
]


def _arg(value: Any) -> Any:
    return bytes.fromhex(value["$bin"]) if isinstance(value, dict) and "$bin" in value else value


def apply(emitter: Emitter, op: dict[str, Any]) -> None:
    """One operation of the official script's language, on our emitter."""
    target = emitter.of(op["nsp"]) if "nsp" in op else emitter
    if "to" in op:
        target = target.to(op["to"])
    if "except" in op:
        target = target.except_(op["except"])
    if op.get("volatile"):
        target = target.volatile
    args = [_arg(a) for a in op.get("args", [])]
    if op["op"] == "emit":
        target.emit(*args)
    elif op["op"] == "socketsJoin":
        target.sockets_join(op["rooms"])
    elif op["op"] == "socketsLeave":
        target.sockets_leave(op["rooms"])
    elif op["op"] == "disconnectSockets":
        target.disconnect_sockets(op["close"])
    elif op["op"] == "serverSideEmit":
        target.server_side_emit(*args)


class OfficialEmitter:
    """``tests/js/redis_emitter.js``: each :meth:`run` returns once Redis has the message."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def _line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 15.0)
        assert line, "redis_emitter.js exited"
        return json.loads(line)

    async def run(self, *ops: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        for op in ops:
            self.proc.stdin.write(json.dumps(op).encode() + b"\n")
            assert "done" in await self._line()


@pytest.fixture
async def official_emitter(redis_server: Any) -> AsyncIterator[OfficialEmitter]:
    proc = await asyncio.create_subprocess_exec(
        node_executable(),
        str(SCRIPT),
        redis_server.url,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    official = OfficialEmitter(proc)
    assert await official._line() == {"ready": True}
    yield official
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        await asyncio.wait_for(proc.wait(), WAIT)
    except TimeoutError:
        proc.kill()
        await proc.wait()


@pytest.fixture
async def emitter(redis_server: Any) -> AsyncIterator[Emitter]:
    emitter = Emitter(redis_server.url)
    yield emitter
    emitter.close()


async def test_the_same_bytes_on_the_same_channels_as_the_official_emitter(
    redis_server: Any, official_emitter: OfficialEmitter, emitter: Emitter
) -> None:
    tap = await Tap(redis_server.url).start()
    try:
        await official_emitter.run(*OPERATIONS)
        theirs = [await tap.next() for _ in OPERATIONS]
        for op in OPERATIONS:
            await asyncio.to_thread(apply, emitter, op)
        ours = [await tap.next() for _ in OPERATIONS]
    finally:
        await tap.close()
    assert [channel for channel, _ in theirs] == [
        "socket.io#/#",
        "socket.io#/#red#",
        "socket.io#/#",
        "socket.io#/#",
        "socket.io#/admin#",
        *["socket.io-request#/#"] * 4,
    ]
    for op, mine, official in zip(OPERATIONS, ours, theirs, strict=True):
        assert mine == official, op


def test_reserved_events_are_refused() -> None:
    emitter = Emitter("redis://127.0.0.1:1")  # nothing is sent: no connection is made
    with pytest.raises(ValueError, match="reserved"):
        emitter.emit("disconnect")


async def cluster(redis_server: Any, py_node: Any, js_node: Any, client: Any) -> Any:
    """A Python node A and a Node.js node J, a client on each (A0 in room "red")."""
    a, j = await py_node(redis_server.url), await js_node(redis_server.url)
    a0, j0 = await client(a.url, "A0"), await client(j, "J0")
    await a0.call("join", "red")
    await wait_room(a, "red", 1)
    return a, [a0, j0]


async def both_reach_and_obey(a: Any, clients: list[Recorder], run: Any) -> None:
    """``run(op)`` (an emitter of either kind) reaches every node and is obeyed."""
    a0, j0 = clients
    await run({"op": "emit", "args": ["chat", "to all", {"$bin": "0102"}]})
    for rec in clients:
        assert await rec.wait("chat", 1) == [("to all", b"\x01\x02")]
    await run({"op": "emit", "to": ["red"], "args": ["room", "to red"]})
    await run({"op": "emit", "except": ["red"], "args": ["room", "except red"]})
    assert await a0.wait("room", 1) == [("to red",)]
    assert await j0.wait("room", 1) == [("except red",)]
    await run({"op": "socketsJoin", "rooms": ["green"]})  # every socket of the cluster
    await wait_room(a, "green", 2)
    await run({"op": "socketsLeave", "to": ["red"], "rooms": ["green"]})
    await wait_room(a, "green", 1)
    heard = asyncio.Event()
    a.sio.on_server_side("reload", lambda *args: heard.set() if args == ("now", 1) else None)
    await run({"op": "serverSideEmit", "args": ["reload", "now", 1]})
    await asyncio.wait_for(heard.wait(), WAIT)
    await markers([a0], clients)  # nothing more came: "to red" reached only A0 and so on
    assert len(a0.got("room")) == len(j0.got("room")) == 1
    gone = asyncio.Event()
    j0.client.on("disconnect", lambda reason: gone.set())
    await run({"op": "disconnectSockets", "to": ["green"], "close": True})
    await asyncio.wait_for(gone.wait(), WAIT)
    assert a0.client.connected and not j0.client.connected


async def test_our_emitter_reaches_a_node_js_node_and_ours(
    redis_server: Any, py_node: Any, js_node: Any, client: Any, emitter: Emitter
) -> None:
    a, clients = await cluster(redis_server, py_node, js_node, client)
    await both_reach_and_obey(a, clients, lambda op: asyncio.to_thread(apply, emitter, op))


async def test_the_official_emitter_reaches_our_nodes(
    redis_server: Any, py_node: Any, client: Any, official_emitter: OfficialEmitter
) -> None:
    a, b = await py_node(redis_server.url), await py_node(redis_server.url)
    a0, b0 = await client(a.url, "A0"), await client(b.url, "B0")
    await a0.call("join", "red")
    await wait_room(a, "red", 1)
    await both_reach_and_obey(a, [a0, b0], official_emitter.run)


@pytest.mark.parametrize("adapter_kind", ["sharded:dynamic", "sharded:dynamic-private"])
async def test_a_sharded_emitter_reaches_sharded_nodes_of_both_languages(
    redis_server: Any, py_node: Any, js_node: Any, client: Any, adapter_kind: str
) -> None:
    mode: Any = adapter_kind.removeprefix("sharded:")
    emitter = Emitter(redis_server.url, sharded=True, subscription_mode=mode)
    try:
        a, clients = await cluster(redis_server, py_node, js_node, client)
        await both_reach_and_obey(a, clients, lambda op: asyncio.to_thread(apply, emitter, op))
    finally:
        emitter.close()
