"""The Redis adapter's messages, byte for byte where it matters, as @socket.io/redis-adapter 8.x
reads and writes them (socket.io-redis-adapter ``lib/index.ts``): read with a plain Redis client,
and injected by hand as a Node.js node would publish them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest
import redis.asyncio

from sio_teach.adapters.redis import RedisAdapter, RequestType
from tests.adapters.conftest import WAIT, make_server, subscribers

pytestmark = pytest.mark.usefixtures("redis_server")


class Tap:
    """A plain subscriber to every ``socket.io*`` channel, recording (channel, raw bytes)."""

    def __init__(self, url: str) -> None:
        self.redis = redis.asyncio.Redis.from_url(url)
        self.pubsub = self.redis.pubsub()

    async def start(self) -> Tap:
        await self.pubsub.psubscribe("socket.io*")
        await self.pubsub.get_message(timeout=WAIT)  # the psubscribe confirmation
        return self

    async def next(self) -> tuple[str, bytes]:
        async with asyncio.timeout(WAIT):
            while True:
                message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    return message["channel"].decode(), message["data"]

    async def close(self) -> None:
        await self.pubsub.aclose()
        await self.redis.aclose()


@pytest.fixture
async def tap(redis_server: Any) -> AsyncIterator[Tap]:
    tap = await Tap(redis_server.url).start()
    yield tap
    await tap.close()


async def test_broadcast_message_shape_and_channels(
    redis_server: Any, py_node: Any, tap: Tap
) -> None:
    node = await py_node(redis_server.url)
    uid = node.adapter.uid
    node.sio.emit("news", 1, b"\x01\x02")
    channel, data = await tap.next()
    assert channel == "socket.io#/#"
    assert data[0] == 0x93  # a msgpack array of 3: [uid, packet, opts]
    assert msgpack.unpackb(data) == [
        uid,
        {"type": 2, "data": ["news", 1, b"\x01\x02"], "nsp": "/"},  # bytes travel as msgpack bin
        {"rooms": [], "except": [], "flags": {}},
    ]

    node.sio.to("red").except_("blue").volatile.emit("x")  # exactly one room: its own channel
    channel, data = await tap.next()
    assert channel == "socket.io#/#red#"
    assert msgpack.unpackb(data)[2] == {
        "rooms": ["red"],
        "except": ["blue"],
        "flags": {"volatile": True},
    }

    node.sio.to("red", "green").emit("x")  # two rooms: the namespace channel
    assert (await tap.next())[0] == "socket.io#/#"

    node.sio.of("/admin").emit("x")
    channel, data = await tap.next()
    assert channel == "socket.io#/admin#" and msgpack.unpackb(data)[1]["nsp"] == "/admin"


async def test_requests_are_json_with_the_reference_fields(
    redis_server: Any, py_node: Any, tap: Tap
) -> None:
    node = await py_node(redis_server.url)
    uid = node.adapter.uid
    node.sio.in_("a").except_("b").sockets_join("c", "d")
    node.sio.in_("a").sockets_leave("c")
    node.sio.disconnect_sockets(close=True)
    node.sio.server_side_emit("hello", 1)
    seen = []
    for _ in range(4):
        channel, data = await tap.next()
        assert channel == "socket.io-request#/#" and data[:1] == b"{"
        seen.append(json.loads(data))
    assert seen == [
        {"uid": uid, "type": 2, "opts": {"rooms": ["a"], "except": ["b"]}, "rooms": ["c", "d"]},
        {"uid": uid, "type": 3, "opts": {"rooms": ["a"], "except": []}, "rooms": ["c"]},
        {"uid": uid, "type": 4, "opts": {"rooms": [], "except": []}, "close": True},
        {"uid": uid, "type": 6, "data": ["hello", 1]},
    ]


async def test_a_foreign_broadcast_is_delivered_and_our_own_is_not(
    redis_server: Any, py_node: Any, client: Any
) -> None:
    node = await py_node(redis_server.url)
    rec = await client(node.url)
    pub = redis.asyncio.Redis.from_url(redis_server.url)
    undefined = msgpack.ExtType(0, b"\x00")  # notepack.io's encoding of JavaScript `undefined`
    packet = {"type": 2, "data": ["chat", "from js", b"\xff", undefined], "nsp": "/"}
    opts = {"rooms": [], "except": [], "flags": {}}
    try:
        await pub.publish("socket.io#/#", msgpack.packb(["js-uid", packet, opts]))
        await pub.publish("socket.io#/#", msgpack.packb([node.adapter.uid, packet, opts]))
        await pub.publish("socket.io#/#nowhere#", msgpack.packb(["js-uid", packet, opts]))
        packet_admin = {**packet, "nsp": "/admin"}
        await pub.publish("socket.io#/#", msgpack.packb(["js-uid", packet_admin, opts]))
        await pub.publish("socket.io#/#", b"\xc1 not msgpack")  # logged, and ignored
    finally:
        await pub.aclose()
    assert await rec.wait("chat", 1) == [("from js", b"\xff", None)]
    await asyncio.sleep(0.2)
    assert len(rec.got("chat")) == 1


async def test_answers_a_fetch_request_on_the_response_channel(
    redis_server: Any, py_node: Any, client: Any, tap: Tap
) -> None:
    node = await py_node(redis_server.url)
    rec = await client(node.url)
    await rec.call("join", "red")
    pub = redis.asyncio.Redis.from_url(redis_server.url)
    request = {"uid": "js", "requestId": "r1", "type": RequestType.REMOTE_FETCH}
    request["opts"] = {"rooms": ["red"], "except": []}
    try:
        await pub.publish("socket.io-request#/#", json.dumps(request))
    finally:
        await pub.aclose()
    await tap.next()  # the request itself
    channel, data = await tap.next()
    assert channel == "socket.io-response#/#"
    response = json.loads(data)
    assert response["requestId"] == "r1"
    [socket] = response["sockets"]
    assert socket["id"] == rec.client.id and sorted(socket["rooms"]) == sorted(
        [rec.client.id, "red"]
    )
    assert set(socket) == {"id", "handshake", "rooms", "data"}


async def test_broadcast_with_ack_request_and_responses(
    redis_server: Any, py_node: Any, client: Any, tap: Tap
) -> None:
    """BROADCAST requests and BROADCAST_ACK responses are msgpack (they carry a packet);
    BROADCAST_CLIENT_COUNT responses are JSON."""
    node = await py_node(redis_server.url)
    await client(node.url, "A0")
    pub = redis.asyncio.Redis.from_url(redis_server.url)
    request = {"uid": "js", "requestId": "b1", "type": RequestType.BROADCAST}
    request["packet"] = {"type": 2, "data": ["question", b"\x07"], "nsp": "/"}
    request["opts"] = {"rooms": [], "except": [], "flags": {"timeout": 1000}}
    try:
        await pub.publish("socket.io-request#/#", msgpack.packb(request))
    finally:
        await pub.aclose()
    await tap.next()  # the request itself
    channel, count = await tap.next()
    assert channel == "socket.io-response#/#"
    assert json.loads(count) == {"type": 8, "requestId": "b1", "clientCount": 1}
    channel, ack = await tap.next()
    assert msgpack.unpackb(ack) == {"type": 9, "requestId": "b1", "packet": 'A0:["07"]'}


def test_a_server_made_before_its_loop_runs_listens_once_it_runs(redis_server: Any) -> None:
    """``Server(adapter=redis_adapter(url))`` at import time: no loop yet, so the adapter starts
    its tasks at first use inside the loop (here ``wait_ready``; otherwise the first socket)."""
    sio = make_server(redis_server.url)
    adapter = sio.of("/").adapter
    assert isinstance(adapter, RedisAdapter) and not adapter.subscribed.is_set()

    async def main() -> int:
        await adapter.wait_ready(WAIT)
        count = await subscribers(redis_server.url)
        await adapter.aclose()
        return count

    assert asyncio.run(main()) == 1


def test_a_javascript_date_from_notepack_becomes_its_json_string() -> None:
    # node -e "require('notepack.io').encode([new Date(1700000000123)])": a msgpack timestamp 64
    from sio_teach.adapters.redis import _decode

    assert _decode(bytes.fromhex("91d7ff1d5353006553f100")) == ["2023-11-14T22:13:20.123Z"]
    assert _decode(msgpack.packb({"a": [1, b"\xd6\xff"]})) == {"a": [1, b"\xd6\xff"]}
