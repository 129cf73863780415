"""Two Python nodes and one Node.js node (official socket.io + @socket.io/redis-adapter) on one
Redis: every cluster-wide operation, started from either kind of node, reaches every node.

No test sleeps for a fixed time. A test waits for a state (:func:`wait_room`) or for a counted
number of events. To prove that nothing *else* arrives (no duplicate, nothing for a client outside
a room), each sender then emits a marker (:func:`markers`) down the same path — client, its node,
Redis, the other nodes — and the test waits for the markers: whatever was sent before a marker
would have arrived before it."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from tests.adapters.conftest import WAIT, Recorder

Cluster = tuple[list[Any], list[Recorder]]  # (nodes: PyNode | url of the Node.js node, clients)


async def wait_room(node: Any, room: str, size: int) -> None:
    """Wait until exactly ``size`` sockets of the cluster are in ``room``: asked through ``node``
    (``fetch_sockets``: every node answers), again until the answer is right."""
    async with asyncio.timeout(WAIT):
        while len(await node.sio.in_(room).fetch_sockets()) != size:
            await asyncio.sleep(0.01)


_MARKERS = itertools.count()


async def markers(senders: list[Recorder], receivers: list[Recorder]) -> None:
    """Each sender emits ``chat("marker", name, n)`` (its node sends it to every client of the
    cluster; ``n`` new at each call); wait until every receiver has every sender's marker.
    Anything a sender caused before its marker has arrived by then."""
    n = next(_MARKERS)
    for sender in senders:
        sender.client.emit("chat", "marker", sender.name, n)
    expected = {("marker", sender.name, n) for sender in senders}
    for rec in receivers:
        async with asyncio.timeout(WAIT):
            while not expected <= set(rec.got("chat")):
                await asyncio.sleep(0.01)


async def cluster(redis_server: Any, py_node: Any, js_node: Any, client: Any, per_node: int = 1):
    """Nodes A, B (Python) and J (Node.js), ``per_node`` clients on each (named A0, B0, J0, …)."""
    a, b = await py_node(redis_server.url), await py_node(redis_server.url)
    j = await js_node(redis_server.url)
    clients = []
    for name, url in (("A", a.url), ("B", b.url), ("J", j)):
        for i in range(per_node):
            clients.append(await client(url, f"{name}{i}"))
    return a, b, j, clients


async def test_broadcast_from_every_node_reaches_every_client_once_in_order(
    redis_server: Any, py_node: Any, js_node: Any, client: Any
) -> None:
    *_, clients = await cluster(redis_server, py_node, js_node, client, per_node=2)
    senders = clients[::2]  # one client per node: A0, B0, J0
    for i in range(20):
        for sender in senders:
            sender.client.emit("chat", sender.name, i)
    expected = 20 * len(senders)
    for rec in clients:
        await rec.wait("chat", expected)
    await markers(senders, clients)  # a duplicate would arrive before the markers
    for rec in clients:
        got = [args for args in rec.got("chat") if args[0] != "marker"]
        assert len(got) == expected, f"{rec.name} got {len(got)} messages: {got}"  # exactly once
        for sender in senders:
            assert [i for name, i in got if name == sender.name] == list(range(20)), rec.name


async def test_rooms_and_except_across_nodes(
    redis_server: Any, py_node: Any, js_node: Any, client: Any
) -> None:
    *_, clients = await cluster(redis_server, py_node, js_node, client, per_node=2)
    members = [c for c in clients if c.name.endswith("0")]  # A0, B0, J0 join "red"
    for rec in members:
        assert await rec.call("join", "red") == "red"
    others = [c for c in clients if c not in members]
    for sender in others:  # from every node, once to the room, once to everyone but the room
        sender.client.emit("to-room", "red", f"to red from {sender.name}")
        sender.client.emit("except-room", "red", f"except red from {sender.name}")
    for rec in members:
        await rec.wait("room", 3)
    for rec in others:
        await rec.wait("room", 3)
    await markers(others, clients)  # nothing else may come: not before the markers
    for rec in members:
        assert sorted(a[0] for a in rec.got("room")) == [f"to red from {s.name}" for s in others]
    for rec in others:
        assert sorted(a[0] for a in rec.got("room")) == [
            f"except red from {s.name}" for s in others
        ]

    # after leaving, a member is like the others
    assert await members[2].call("leave", "red") == "red"
    others[0].client.emit("to-room", "red", "again")
    await members[0].wait("room", 4)
    await members[1].wait("room", 4)
    await markers(others[:1], [members[2]])  # "again" would have reached it before the marker
    assert len(members[2].got("room")) == 3


async def test_binary_across_nodes(
    redis_server: Any, py_node: Any, js_node: Any, client: Any
) -> None:
    *_, clients = await cluster(redis_server, py_node, js_node, client)
    blob = bytes(range(256))
    for sender in clients:
        sender.client.emit("chat", sender.name, blob, {"nested": [b"\x00\x01", "text"]})
    for rec in clients:
        got = await rec.wait("chat", 3)
        assert sorted(args[0] for args in got) == ["A0", "B0", "J0"]
        for args in got:
            assert args[1:] == (blob, {"nested": [b"\x00\x01", "text"]}), (rec.name, args)


async def test_fetch_sockets_across_nodes(
    redis_server: Any, py_node: Any, js_node: Any, client: Any, adapter_kind: str
) -> None:
    a, _, _, clients = await cluster(redis_server, py_node, js_node, client)
    for rec in clients:
        await rec.call("join", f"room-{rec.name}")
    expected = sorted(
        (rec.client.id, sorted([rec.client.id, f"room-{rec.name}"])) for rec in clients
    )
    for rec in clients:  # asked on each node (the Python handler calls sio.fetch_sockets())
        found = await rec.call("fetch")
        assert sorted((s["id"], sorted(s["rooms"])) for s in found) == expected, rec.name

    sockets = await a.sio.in_("room-J0").fetch_sockets()  # a RemoteSocket on the Node.js node
    assert [s.id for s in sockets] == [clients[2].client.id]
    assert sockets[0].handshake["query"]["EIO"] == "4" and sockets[0].rooms == {
        clients[2].client.id,
        "room-J0",
    }
    sockets[0].emit("chat", "just you")  # its methods go through the adapter
    assert await clients[2].wait("chat", 1) == [("just you",)]
    if adapter_kind == "pubsub":  # sharded nodes have no message for it: the node's own rooms
        assert await a.adapter.fetch_all_rooms() >= {"room-A0", "room-B0", "room-J0"}


async def test_sockets_join_and_disconnect_sockets_across_nodes(
    redis_server: Any, py_node: Any, js_node: Any, client: Any
) -> None:
    a, _, _, clients = await cluster(redis_server, py_node, js_node, client)
    for rec in clients:
        await rec.call("join", "all")
    a.sio.in_("all").sockets_join("blue")  # from a Python node
    await wait_room(a, "blue", 3)  # every node has applied it
    clients[2].client.emit("to-room", "blue", "blue 1")  # sent from the Node.js node
    for rec in clients:
        assert await rec.wait("room", 1) == [("blue 1",)]
    await clients[0].call("sockets-join", "all", "green")  # through node A's handler
    await clients[2].call("sockets-join", "all", "pink")  # io.in("all").socketsJoin on Node.js
    await wait_room(a, "green", 3)
    await wait_room(a, "pink", 3)
    clients[1].client.emit("to-room", "pink", "pink 1")
    clients[1].client.emit("to-room", "green", "green 1")
    for rec in clients:
        assert await rec.wait("room", 3) == [("blue 1",), ("pink 1",), ("green 1",)]

    a.sio.in_("blue").sockets_leave("blue")
    await wait_room(a, "blue", 0)
    clients[2].client.emit("to-room", "blue", "nobody")
    await markers(clients[2:3], clients)  # "nobody" would have arrived before the marker
    assert all(len(rec.got("room")) == 3 for rec in clients)

    gone = [asyncio.Event() for _ in clients]
    for rec, event in zip(clients, gone, strict=True):
        rec.client.on("disconnect", lambda reason, event=event: event.set())
    a.sio.disconnect_sockets()
    async with asyncio.timeout(WAIT):
        for event in gone:
            await event.wait()
    assert not any(rec.client.connected for rec in clients)


async def test_server_side_emit_across_nodes(
    redis_server: Any, py_node: Any, js_node: Any, client: Any
) -> None:
    a, b, _, clients = await cluster(redis_server, py_node, js_node, client)
    heard: list[tuple[Any, ...]] = []
    arrived = asyncio.Event()

    def on_news(*args: Any) -> None:
        heard.append(args)
        arrived.set()

    b.sio.on_server_side("news", on_news)
    a.sio.server_side_emit("news", 1, {"x": [2]})  # without ack
    await asyncio.wait_for(arrived.wait(), WAIT)
    assert heard == [(1, {"x": [2]})]

    # with acks: one reply per *other* server, from both kinds
    replies = await a.sio.server_side_emit_with_ack("hello", 1, "two")
    assert sorted(replies) == ['node:[1,"two"]', 'py:[1,"two"]']
    for rec in clients:  # started on each node through its API
        replies = await rec.call("server-side", rec.name)
        others = ["py", "py"] if rec.name == "J0" else ["node", "py"]
        assert sorted(r.split(":")[0] for r in replies) == others, (rec.name, replies)


async def test_broadcast_with_acks_across_nodes(
    redis_server: Any, py_node: Any, js_node: Any, client: Any
) -> None:
    a, _, _, clients = await cluster(redis_server, py_node, js_node, client)
    answers = await a.sio.timeout(3.0).emit_with_ack("question", 7)
    assert sorted(answers) == [f"{name}:[7]" for name in ("A0", "B0", "J0")]
    for rec in clients:  # asked from each node (Node.js: io.timeout(3000).emitWithAck)
        answers = await rec.call("ask", rec.name)
        assert sorted(answers) == [f"{n}:{json.dumps([rec.name])}" for n in ("A0", "B0", "J0")]
    # a room on another node only
    await clients[2].call("join", "solo")
    assert await a.sio.to("solo").timeout(3.0).emit_with_ack("question", 1) == ["J0:[1]"]
