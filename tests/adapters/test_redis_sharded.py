"""The sharded adapter's messages and subscriptions, as ``createShardedAdapter`` of
@socket.io/redis-adapter 8.2+ writes and reads them (socket.io-adapter ``ClusterAdapter``
messages over ``SPUBLISH``): golden vectors of the pure format, then a Python node on a Redis 7
watched and driven with a plain Redis client. Without a Redis 7 the node tests are skipped, naming
the binary (``redis-server`` >= 7, from ``make system-deps``)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest
import redis.asyncio

from sio_teach.adapters.redis_sharded import (
    MessageType,
    ShardedRedisAdapter,
    compute_channel,
    decode_message,
    encode_message,
    redis_sharded_adapter,
)
from tests.adapters.conftest import WAIT
from tests.adapters.test_redis_wire import Tap
from tests.conftest import free_port

# -- the format (pure) -------------------------------------------------------------------------

BROADCAST = {
    "uid": "u1",
    "nsp": "/",
    "type": MessageType.BROADCAST,
    "data": {
        "packet": {"type": 2, "data": ["news", 1], "nsp": "/"},
        "opts": {"rooms": ["red"], "except": [], "flags": {}},
    },
}


def test_a_message_is_json_unless_it_carries_binary() -> None:
    assert encode_message(BROADCAST) == (
        '{"uid":"u1","nsp":"/","type":3,"data":{"packet":{"type":2,"data":["news",1],"nsp":"/"},'
        '"opts":{"rooms":["red"],"except":[],"flags":{}}}}'
    )
    binary = {**BROADCAST, "data": {**BROADCAST["data"], "packet": {"type": 2, "data": [b"\x01"]}}}
    encoded = encode_message(binary)
    assert isinstance(encoded, bytes) and encoded[0] == 0x84  # a msgpack map of 4
    assert decode_message(encoded)["data"]["packet"]["data"] == [b"\x01"]
    assert decode_message(encode_message(BROADCAST).encode()) == BROADCAST
    join = {"uid": "u1", "nsp": "/", "type": MessageType.SOCKETS_JOIN, "data": {"rooms": ["a"]}}
    assert encode_message(join) == '{"uid":"u1","nsp":"/","type":4,"data":{"rooms":["a"]}}'


@pytest.mark.parametrize(
    ("mode", "rooms", "request_id", "expected"),
    [
        ("dynamic", ["red"], None, "socket.io#/#red#"),
        ("dynamic", ["a" * 20], None, "socket.io#/#"),  # looks like a socket id: private
        ("dynamic", ["red", "blue"], None, "socket.io#/#"),  # more than one room
        ("dynamic", ["red"], "r1", "socket.io#/#"),  # with acks: every server must count
        ("dynamic-private", ["a" * 20], None, f"socket.io#/#{'a' * 20}#"),
        ("static", ["red"], None, "socket.io#/#"),
    ],
)
def test_compute_channel(mode: Any, rooms: list[str], request_id: Any, expected: str) -> None:
    data = {"opts": {"rooms": rooms, "except": []}, "requestId": request_id}
    message = {"type": MessageType.BROADCAST, "data": data}
    assert compute_channel("socket.io#/#", message, mode) == expected
    join = {"type": MessageType.SOCKETS_JOIN, "data": data}
    assert compute_channel("socket.io#/#", join, mode) == "socket.io#/#"


def test_an_unknown_subscription_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="subscription_mode"):
        redis_sharded_adapter("redis://127.0.0.1:1", subscription_mode="sometimes")  # type: ignore[arg-type]


# -- one node on a Redis 7 ---------------------------------------------------------------------


@pytest.fixture
def adapter_kind() -> str:
    return "sharded:dynamic"


class ShardTap(Tap):
    """A plain shard subscriber to the given channels, recording (channel, raw bytes)."""

    async def subscribe(self, *channels: str) -> None:
        await self.pubsub.ssubscribe(*channels)
        for _ in channels:  # each confirmation
            await self.pubsub.get_message(timeout=WAIT)


@pytest.fixture
async def tap(redis_server: Any) -> AsyncIterator[ShardTap]:
    tap = ShardTap(redis_server.url)
    yield tap
    await tap.close()


async def shard_subscribers(url: str, channel: str) -> int:
    client = redis.asyncio.Redis.from_url(url)
    try:
        [(_, count)] = await client.pubsub_shardnumsub(channel)
        return int(count)
    finally:
        await client.aclose()


async def wait_shard_subscribers(url: str, channel: str, count: int) -> None:
    async with asyncio.timeout(WAIT):
        while await shard_subscribers(url, channel) != count:
            await asyncio.sleep(0.02)


async def test_broadcasts_go_to_the_main_or_the_room_channel(
    redis_server: Any, py_node: Any, tap: ShardTap
) -> None:
    node = await py_node(redis_server.url)
    assert isinstance(node.adapter, ShardedRedisAdapter)
    await tap.subscribe("socket.io#/#", "socket.io#/#red#")
    node.sio.emit("news", 1)
    channel, data = await tap.next()
    assert channel == "socket.io#/#" and data[:1] == b"{"
    assert json.loads(data) == {
        "uid": node.adapter.uid,
        "nsp": "/",
        "type": 3,
        "data": {
            "packet": {"type": 2, "data": ["news", 1], "nsp": "/"},
            "opts": {"rooms": [], "except": [], "flags": {}},
        },
    }
    node.sio.to("red").emit("bin", b"\x00")  # one public room: its own channel; binary: msgpack
    channel, data = await tap.next()
    assert channel == "socket.io#/#red#"
    assert msgpack.unpackb(data)["data"]["packet"]["data"] == ["bin", b"\x00"]
    node.sio.in_("red").sockets_join("blue")  # not a broadcast: the main channel
    channel, data = await tap.next()
    assert channel == "socket.io#/#" and json.loads(data)["data"] == {
        "opts": {"rooms": ["red"], "except": [], "flags": {}},
        "rooms": ["blue"],
    }
    assert await node.adapter.server_count() == 2  # SHARDNUMSUB socket.io#/#: the node, the tap


@pytest.mark.parametrize(
    "adapter_kind", ["sharded:static", "sharded:dynamic", "sharded:dynamic-private"]
)
async def test_a_node_subscribes_to_its_rooms_channels_by_mode(
    redis_server: Any, py_node: Any, client: Any, adapter_kind: str
) -> None:
    node = await py_node(redis_server.url)
    rec = await client(node.url)
    await rec.call("join", "red")
    public, private = "socket.io#/#red#", f"socket.io#/#{rec.client.id}#"
    mode = adapter_kind.removeprefix("sharded:")
    await wait_shard_subscribers(redis_server.url, public, 0 if mode == "static" else 1)
    await wait_shard_subscribers(redis_server.url, private, int(mode == "dynamic-private"))
    assert await shard_subscribers(redis_server.url, "socket.io#/#") == 1
    await rec.call("leave", "red")  # the room is gone: its channel too
    await wait_shard_subscribers(redis_server.url, public, 0)
    await rec.client.close()  # and the socket's own room
    await wait_shard_subscribers(redis_server.url, private, 0)


async def test_a_foreign_message_is_delivered_and_a_request_answered(
    redis_server: Any, py_node: Any, client: Any, tap: ShardTap
) -> None:
    node = await py_node(redis_server.url)
    rec = await client(node.url)
    await rec.call("join", "red")
    await wait_shard_subscribers(redis_server.url, "socket.io#/#red#", 1)
    await tap.subscribe("socket.io#/#js#")  # where the node answers "js"
    pub = redis.asyncio.Redis.from_url(redis_server.url)
    packet = {"type": 2, "data": ["chat", "from js", b"\xff"], "nsp": "/"}
    to_red = {"packet": packet, "opts": {"rooms": ["red"], "except": [], "flags": {}}}
    own = {"uid": node.adapter.uid, "nsp": "/", "type": 3, "data": to_red}
    fetch = {"opts": {"rooms": ["red"], "except": []}, "requestId": "r1"}
    try:
        await pub.spublish("socket.io#/#", msgpack.packb({**own, "uid": "js"}))
        await pub.spublish("socket.io#/#", msgpack.packb(own))  # our own: ignored
        await pub.spublish("socket.io#/#", msgpack.packb({**own, "uid": "js", "nsp": "/x"}))
        await pub.spublish(
            "socket.io#/#red#",
            json.dumps(
                {
                    **own,
                    "uid": "js",
                    "data": {
                        "packet": {
                            "type": 2,
                            "data": ["chat", "on the room's channel"],
                            "nsp": "/",
                        },
                        "opts": to_red["opts"],
                    },
                }
            ),
        )
        await pub.spublish("socket.io#/#", b"\xc1 not msgpack")  # logged, and ignored
        request = {"uid": "js", "nsp": "/", "type": MessageType.FETCH_SOCKETS, "data": fetch}
        await pub.spublish("socket.io#/#", json.dumps(request))
    finally:
        await pub.aclose()
    channel, data = await tap.next()
    assert channel == "socket.io#/#js#"
    response = json.loads(data)
    assert (response["uid"], response["type"]) == (node.adapter.uid, 8)
    [socket] = response["data"]["sockets"]
    assert response["data"]["requestId"] == "r1" and socket["id"] == rec.client.id
    assert set(socket) == {"id", "handshake", "rooms", "data"}
    # the fetch came after the broadcasts: they have been handled
    assert rec.got("chat") == [("from js", b"\xff"), ("on the room's channel",)]


async def test_the_conformance_app_joins_a_sharded_cluster(redis_server: Any) -> None:
    """``--adapter redis-sharded://HOST:PORT``: the app's namespaces shard-subscribe."""
    address = redis_server.url.removeprefix("redis://")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sio_teach.examples.conformance",
        "--port",
        str(free_port()),
        "--adapter",
        f"redis-sharded://{address}",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 15.0)
        assert line.startswith(b"conformance app on")
        await wait_shard_subscribers(redis_server.url, "socket.io#/#", 1)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), WAIT)
